"""Every report format from an audit of the real namespace lab over SSH: JSON (with run metadata
and bundle digests), Markdown, JUnit with context, and the HTML report read in chromium."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from lxml import etree

from pytest_kvmha.bundle.store import EvidenceBundle
from pytest_kvmha.testing import Lab
from pytest_kvmha.testing.processes import PYTEST
from tests.scenarios import HOSTS, SCENARIOS, build_scenario

from ..browser import artifacts_dir, chromium, full_page_screenshot, require

pytestmark = pytest.mark.live


def test_reports_from_the_lab(lab: Lab, tmp_path: Path) -> None:
    require()  # before building anything: the browser is part of the test
    from selenium.webdriver.common.by import By

    scenario = SCENARIOS["bridge-utils"]  # bridge-utils installed on the first host
    inventory = build_scenario(lab, scenario, tmp_path)
    proc = subprocess.run(
        [
            *PYTEST,
            f"--kvmha-inventory={inventory}",
            f"--kvmha-ssh-config={lab.ssh_config}",
            f"--kvmha-record={tmp_path / 'bundles'}",
            "--kvmha-report=r.json",
            "--kvmha-report-md=r.md",
            "--kvmha-report-html=r.html",
            "--junitxml=j.xml",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    host = HOSTS[0]

    report = json.loads((tmp_path / "r.json").read_text())
    assert report["duration_s"] > 0 and report["generated_at"].endswith("Z")
    digests = {h["name"]: h["bundle_sha256"] for h in report["hosts"]}
    for name in HOSTS:  # the live evidence and its recording have one digest
        assert digests[name] == EvidenceBundle.read(tmp_path / "bundles" / name).sha256()
    assert "apt-get remove -y bridge-utils" in (tmp_path / "r.md").read_text()

    cases = {
        (c.get("classname"), c.get("name")): c
        for c in etree.parse(str(tmp_path / "j.xml")).iter("testcase")
    }
    pkg = cases[(host, f"KVMHA-PKG-001[{host}]")]
    detail = f"bridge-utils is installed on {host} (dpkg)"
    assert pkg.find("failure").get("message") == detail
    props = {p.get("name"): p.get("value") for p in pkg.iter("property")}
    assert (props["host"], props["severity"], props["gating"]) == (host, "high", "true")
    cluster = next(c for c, _ in cases if c not in HOSTS)
    assert cluster == report["clusters"][0]["name"]

    with chromium() as driver:
        driver.get((tmp_path / "r.html").as_uri())
        verdict = driver.find_element(By.ID, "verdict").text
        assert "Gate failed" in verdict and "1 finding at or above" in verdict, verdict
        article = next(
            a
            for a in driver.find_elements(By.CSS_SELECTOR, "article.finding")
            if "KVMHA-PKG-001" in a.text
        )
        assert article.find_element(By.CSS_SELECTOR, ".remediation pre").text == (
            "apt-get remove -y bridge-utils"
        )
        assert detail in article.text
        hosts = driver.find_element(By.CSS_SELECTOR, "table.hosts").text
        assert all(d in hosts for d in digests.values())
        assert driver.execute_script("return document.scripts.length") == 0
        full_page_screenshot(driver, artifacts_dir(tmp_path) / "report-html-lab.png")
