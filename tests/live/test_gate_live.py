"""The CI gate on the real namespace lab: waivers (active, expired) and baseline gating
(--kvmha-fail-on-new) over SSH, with the JSON, Markdown, JUnit and HTML outputs (the HTML of the
waived run read in chromium, its screenshot left in the test artifacts)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from lxml import html as lxml_html

from pytest_kvmha.testing import Lab
from tests.scenarios import CLUSTER, SCENARIOS, build_scenario, reset

from ..browser import artifacts_dir, chromium, full_page_screenshot, require
from .test_audit_live import run_audit

pytestmark = pytest.mark.live

WAIVER = """
[[waiver]]
check = "KVMHA-PKG-001"
host = "kvm-*"
reason = "bridge-utils kept until the legacy bridge is gone"
approver = "Jane Doe"
ticket = "{ticket}"
expires = {expires}
"""


def verdict(path: Path) -> str:
    doc = lxml_html.fromstring(path.read_text(encoding="utf-8"))
    return " ".join(doc.get_element_by_id("verdict").text_content().split())


def article(path: Path, check: str) -> Any:
    doc = lxml_html.fromstring(path.read_text(encoding="utf-8"))
    return next(a for a in doc.xpath("//article") if check in a.findtext(".//h3/code"))


def test_waivers_and_baseline_gating_live(lab: Lab, tmp_path: Path) -> None:
    require()  # the waived run's HTML is read in the browser
    from selenium.webdriver.common.by import By

    # KVMHA-PKG-001 (high) fails on kvm-a
    inventory = build_scenario(lab, SCENARIOS["bridge-utils"], tmp_path)
    common = (f"--kvmha-inventory={inventory}", f"--kvmha-ssh-config={lab.ssh_config}")
    pkg = "kvmha/kvm-a/KVMHA-PKG-001[kvm-a]"

    rc, out, before = run_audit(tmp_path, *common)
    assert rc == 1, out
    (tmp_path / "before.json").write_text((tmp_path / "report.json").read_text())

    # An active waiver: the failure is waived (xfail), the run passes, every output says so.
    (tmp_path / "w.toml").write_text(WAIVER.format(ticket="OPS-7", expires="2999-01-01"))
    rc, out, report = run_audit(
        tmp_path,
        *common,
        "--kvmha-waivers=w.toml",
        "--kvmha-report-md=r.md",
        "--junitxml=j.xml",
        "--kvmha-report-html=r.html",
    )
    assert rc == 0, out
    assert f"XFAIL {pkg} - bridge-utils is installed on kvm-a" in out
    f = next(f for f in report["findings"] if f["nodeid"] == pkg)
    assert f["waived"]["ticket"] == "OPS-7"
    assert [(w["status"], w["matches"]) for w in report["waivers"]] == [("active", 1)]
    assert "## Waived" in (tmp_path / "r.md").read_text()
    assert (
        'name="waived" value="waived by OPS-7 until 2999-01-01' in (tmp_path / "j.xml").read_text()
    )
    html = tmp_path / "r.html"
    with chromium() as driver:  # the verdict agrees with the exit status; the waiver is shown
        driver.get(html.as_uri())
        assert driver.title == "kvmha audit: gate passed"
        text = driver.find_element(By.ID, "verdict").text
        assert "Gate passed" in text and "1 waived (not gating)" in text, text
        waived = driver.find_element(By.CSS_SELECTOR, "article.finding.waived")
        assert "KVMHA-PKG-001" in waived.text
        assert waived.find_element(By.CSS_SELECTOR, "dd.waiver").text == (
            "by OPS-7 until 2999-01-01, approved by Jane Doe: "
            "bridge-utils kept until the legacy bridge is gone"
        )
        rows = driver.find_elements(By.CSS_SELECTOR, "table.waivers tbody tr")
        assert [r.find_element(By.CSS_SELECTOR, "span.badge").text for r in rows] == ["active"]
        cell = driver.find_element(By.CSS_SELECTOR, "#host-checks td.st-waived")
        assert cell.text == "≈ waived"
        full_page_screenshot(driver, artifacts_dir(tmp_path) / "report-html-lab-waived.png")

    # Expired: it no longer waives, and the failure names it.
    (tmp_path / "w.toml").write_text(WAIVER.format(ticket="OPS-6", expires="2020-01-01"))
    rc, out, report = run_audit(
        tmp_path, *common, "--kvmha-waivers=w.toml", "--kvmha-report-html=r.html"
    )
    assert rc == 1, out
    assert "expired on 2020-01-01, no longer waives: OPS-6" in out
    assert report["waivers"][0]["status"] == "expired"
    assert "Gate failed" in verdict(html) and "1 finding at or above" in verdict(html)
    expired = article(html, "KVMHA-PKG-001").xpath(".//dd[@class='waiver-expired']")
    assert expired[0].text_content().startswith("expired on 2020-01-01, no longer waives: OPS-6")

    # Baseline gating: the known failure passes, not gating...
    rc, out, report = run_audit(
        tmp_path,
        *common,
        "--kvmha-baseline=before.json",
        "--kvmha-fail-on-new",
        "--kvmha-report-html=r.html",
    )
    assert rc == 0, out
    (pkg,) = [
        f for f in report["findings"] if f["check"] == "KVMHA-PKG-001" and f["host"] == "kvm-a"
    ]
    assert (pkg["status"], pkg["gating"]) == ("fail", False), pkg
    assert "Gate passed" in verdict(html) and "1 known since the baseline" in verdict(html)
    pkg_key = {"check": "KVMHA-PKG-001", "host": "kvm-a", "cluster": None, "subject": "kvm-a"}
    assert pkg_key in report["baseline"]["unchanged"] and not report["baseline"]["new"]

    # ... and a new one fails: the hosts change (bridge-utils gone, a PCI slot moved).
    reset(lab)
    SCENARIOS["slot-mismatch"].build(lab)
    inventory.write_text(SCENARIOS["slot-mismatch"].inventory(lab))
    rc, out, report = run_audit(
        tmp_path,
        *common,
        "--kvmha-baseline=before.json",
        "--kvmha-fail-on-new",
        "--kvmha-report-md=r.md",
        "--kvmha-report-html=r.html",
    )
    assert rc == 1, out
    assert "Gate failed" in verdict(html)
    doc = lxml_html.fromstring(html.read_text(encoding="utf-8"))
    baseline = doc.xpath("//h2[@id='baseline']/following-sibling::section[1]")[0]
    assert "KVMHA-VIRT-002[If2]" in baseline.xpath(".//div[h3='New']")[0].text_content()
    assert "KVMHA-PKG-001[kvm-a]" in baseline.xpath(".//div[h3='Resolved']")[0].text_content()
    assert "Gating on new findings only" in baseline.text_content()
    assert f"FAILED kvmha/{CLUSTER}/KVMHA-VIRT-002[If2]" in out
    assert [k["check"] for k in report["baseline"]["new"]] == ["KVMHA-VIRT-002"]
    assert [k["check"] for k in report["baseline"]["resolved"]] == ["KVMHA-PKG-001"]
    md = (tmp_path / "r.md").read_text()
    assert "- new: `KVMHA-VIRT-002[If2]`" in md and "- resolved: `KVMHA-PKG-001[kvm-a]`" in md
