"""The HTML report in a real browser: Debian's chromium, headless, through chromedriver.

Asserts on the DOM the browser built (not on the file's text) and leaves a full-page screenshot
in the test artifacts ($KVMHA_ARTIFACTS, else the test's tmp dir). CI installs the browser
(scripts/setup-system), so there a missing browser fails; elsewhere it skips with the reason."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ..browser import artifacts_dir, chromium, full_page_screenshot, require
from .test_reports import EXAMPLES, IMG, hostile_hosts

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    require()
    with chromium() as driver:
        yield driver


def open_page(driver: Any, path: Path) -> None:
    driver.set_window_size(1280, 900)
    driver.get(path.resolve().as_uri())


def js(driver: Any, script: str, *args: Any) -> Any:
    return driver.execute_script(script, *args)


def test_demo_report_in_chromium(browser: Any, pytester: pytest.Pytester, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    shutil.copytree(EXAMPLES / "bundles", pytester.path / "bundles")
    shutil.copy(EXAMPLES / "clusters.toml", pytester.path / "clusters.toml")
    pytester.runpytest("--kvmha-inventory=clusters.toml", "--kvmha-report-html=r.html")
    open_page(browser, pytester.path / "r.html")
    assert browser.title == "kvmha audit: gate failed"
    verdict = browser.find_element(By.ID, "verdict")
    assert "✗ Gate failed" in verdict.text
    assert "4 findings at or above the threshold fail-on medium" in verdict.text
    # the verdict is the first thing on the page and it is red
    assert verdict.location["y"] < 120
    background = js(browser, "return getComputedStyle(arguments[0]).backgroundColor", verdict)
    assert background == "rgb(255, 235, 233)"
    # a failed finding's remediation, rendered as a command block
    article = next(
        a
        for a in browser.find_elements(By.CSS_SELECTOR, "article.finding")
        if "KVMHA-VIRT-002" in a.find_element(By.TAG_NAME, "h3").text
    )
    remediation = article.find_element(By.CSS_SELECTOR, ".remediation pre").text
    assert re.match(r"virsh edit dmz-b  # NIC 52:54:00(:[0-9a-f]{2}){3}:", remediation)
    assert "<address type='pci' domain='0x0000' bus='0x00' slot='0x03' function='0x0'/>" in (
        remediation
    )
    # matrix marks carry text, not only colour
    fails = [c.text for c in browser.find_elements(By.CSS_SELECTOR, "table.matrix td.st-fail")]
    assert fails and all("✗ fail" in t for t in fails)
    # laid out for a 1280 px screen: nothing runs off to the side
    assert js(browser, "return document.documentElement.scrollWidth") <= 1280
    assert js(browser, "return document.scripts.length") == 0
    shot = full_page_screenshot(browser, artifacts_dir(tmp_path) / "report-html-demo.png")
    assert shot.stat().st_size > 50_000


def test_hostile_names_stay_text_in_chromium(
    browser: Any, pytester: pytest.Pytester, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    pytester.runpytest(*hostile_hosts(pytester.path), "--kvmha-report-html=h.html")
    open_page(browser, pytester.path / "h.html")
    assert js(browser, "return typeof window.kvmhaPwned") == "undefined"  # no script ran
    assert js(browser, "return document.querySelectorAll('script, img').length") == 0
    hosts = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "table.hosts tbody th")]
    assert IMG in hosts
    assert "kvm-b<script>window.kvmhaPwned=2<" in hosts
    body = browser.find_element(By.TAG_NAME, "body").text
    assert "bridge-utils is installed on kvm-b<script>window.kvmhaPwned=2< (dpkg)" in body
    full_page_screenshot(browser, artifacts_dir(tmp_path) / "report-html-hostile.png")


def test_failing_cells_on_screen_at_1280_px(
    browser: Any, pytester: pytest.Pytester, tmp_path: Path
) -> None:
    """The example's matrices at 1,280 px: every failing or error cell inside the viewport, no
    sideways scrolling (not even inside a matrix's own scroll box), checks as rows, failing
    first."""
    from selenium.webdriver.common.by import By

    shutil.copytree(EXAMPLES / "bundles", pytester.path / "bundles")
    shutil.copy(EXAMPLES / "clusters.toml", pytester.path / "clusters.toml")
    pytester.runpytest("--kvmha-inventory=clusters.toml", "--kvmha-report-html=r.html")
    open_page(browser, pytester.path / "r.html")
    assert js(browser, "return window.innerWidth") == 1280
    boxes = js(
        browser,
        """return [...document.querySelectorAll(
               'table.matrix td.st-fail, table.matrix td.st-error, table.matrix .entry.st-fail')]
             .map(e => { const r = e.getBoundingClientRect();
                         return [e.closest('tr').dataset.check, r.left, r.right]; });""",
    )
    assert len(boxes) >= 4  # the example's dmz-fw fails HB-002, TOPO-002, VIRT-002, VIRT-003
    off = [b for b in boxes if b[1] < 0 or b[2] > 1280]
    assert off == [], f"failing cells outside the 1280 px viewport: {off}"
    wide = js(
        browser,
        "return [...document.querySelectorAll('.scroll')]"
        ".filter(e => e.scrollWidth > e.clientWidth).length",
    )
    assert wide == 0
    # checks are rows; a cluster's failing checks come first
    dmz = next(
        s
        for s in browser.find_elements(By.CSS_SELECTOR, "section.cluster")
        if s.find_element(By.TAG_NAME, "h3").text.startswith("dmz-fw")
    )
    rows = [r.get_attribute("data-check") for r in dmz.find_elements(By.CSS_SELECTOR, "tbody tr")]
    assert set(rows[:4]) == {"KVMHA-HB-002", "KVMHA-TOPO-002", "KVMHA-VIRT-002", "KVMHA-VIRT-003"}
    shot = full_page_screenshot(browser, artifacts_dir(tmp_path) / "report-html-1280.png")
    assert shot.stat().st_size > 50_000
