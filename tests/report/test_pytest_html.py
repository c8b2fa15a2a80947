"""pytest-html's results table gains check, severity, host and cluster columns for audit items
(pytest-html 4: the rows travel as JSON in the page's data-jsonblob, the header as HTML)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from lxml import html as lxml_html

from .test_reports import EXAMPLES, IMG, hostile_hosts

pytest.importorskip("pytest_html", reason="pytest-html is in the dev extra")
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


def table(path: Path) -> tuple[list[str], dict[str, list[str]]]:
    """The header texts, and per test id its row's cells as text."""
    doc = lxml_html.fromstring(path.read_text(encoding="utf-8"))
    header = [th.text_content().strip() for th in doc.xpath("//table[@id='results-table']//th")]
    blob = json.loads(doc.get_element_by_id("data-container").get("data-jsonblob"))
    rows = {}
    for test_id, runs in blob["tests"].items():
        cells = [lxml_html.fragment_fromstring(c) for c in runs[-1]["resultsTableRow"]]
        rows[test_id] = [c.text_content() for c in cells]
    return header, rows


def test_pytest_html_gains_audit_columns(pytester: pytest.Pytester) -> None:
    shutil.copytree(EXAMPLES / "bundles", pytester.path / "bundles")
    shutil.copy(EXAMPLES / "clusters.toml", pytester.path / "clusters.toml")
    pytester.makepyfile(test_plain="def test_plain(): pass")
    result = pytester.runpytest(
        "--kvmha-inventory=clusters.toml",
        "--kvmha-audit",
        "test_plain.py",
        "--html=report.html",
        "--self-contained-html",
    )
    assert result.ret == 1  # the demo fails its gate
    header, rows = table(pytester.path / "report.html")
    assert header[:6] == ["Result", "Test", "check", "severity", "host", "cluster"], header
    pkg = rows["kvmha/kvm-b/KVMHA-PKG-001[kvm-b]"]
    assert pkg[1:6] == ["kvmha/kvm-b/KVMHA-PKG-001[kvm-b]", "KVMHA-PKG-001", "high", "kvm-b", ""]
    virt = rows["kvmha/dmz-fw/KVMHA-VIRT-002[Dmz1]"]
    assert virt[2:6] == ["KVMHA-VIRT-002", "high", "", "dmz-fw"]
    # a plain test keeps the table aligned: empty cells, same width
    plain = rows["test_plain.py::test_plain"]
    assert plain[2:6] == ["", "", "", ""] and len(plain) == len(pkg) == len(header)


def test_pytest_html_columns_escape_host_names(pytester: pytest.Pytester) -> None:
    pytester.runpytest(*hostile_hosts(pytester.path), "--html=h.html", "--self-contained-html")
    _, rows = table(pytester.path / "h.html")
    hosts = {cells[4] for cells in rows.values()}
    assert IMG in hosts  # shown as text: escaped, not parsed into an element
    blob = lxml_html.fromstring((pytester.path / "h.html").read_text(encoding="utf-8"))
    runs = json.loads(blob.get_element_by_id("data-container").get("data-jsonblob"))["tests"]
    ours = [c for r in runs.values() for run in r for c in run["resultsTableRow"][2:6]]
    assert any("&lt;img src=x" in c for c in ours)
    assert not any("<img" in c or "<script" in c for c in ours)


def test_without_pytest_html_the_plugin_runs(pytester: pytest.Pytester) -> None:
    shutil.copytree(EXAMPLES / "bundles", pytester.path / "bundles")
    shutil.copy(EXAMPLES / "clusters.toml", pytester.path / "clusters.toml")
    result = pytester.runpytest("-p", "no:html", "--kvmha-inventory=clusters.toml")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*FAILED kvmha/kvm-b/KVMHA-PKG-001*"])
