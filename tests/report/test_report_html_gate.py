"""The HTML report and the CI gate: waived findings (with the waiver), expired and stale
waivers, baseline gating (--kvmha-fail-on-new); the verdict at the top agrees with the exit
status. Parsed with lxml from pytester runs on the demo bundles."""

from __future__ import annotations

import json
import shutil
from typing import Any

import pytest
from lxml import html as lxml_html

from .test_reports import EXAMPLES, SCRIPT, matrix_column

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

WAIVER = """
[[waiver]]
check = "{check}"
{scope}
reason = "{reason}"
approver = "Jane Doe"
ticket = "{ticket}"
expires = {expires}
"""
# The demo's four failures at or above fail-on medium, each waived by its own entry.
ALL_FOUR = [
    ("KVMHA-PKG-001", 'host = "kvm-b"', "OPS-1"),
    ("KVMHA-HB-002", 'cluster = "dmz-fw"', "OPS-2"),
    ("KVMHA-VIRT-00[23]", 'subject = "Dmz1"', "OPS-3"),
]


def waivers(*entries: tuple[str, str, str], expires: str = "2999-12-31", reason: str = "r") -> str:
    return "".join(
        WAIVER.format(check=c, scope=s, ticket=t, expires=expires, reason=reason)
        for c, s, t in entries
    )


@pytest.fixture
def demo(pytester: pytest.Pytester) -> pytest.Pytester:
    shutil.copytree(EXAMPLES / "bundles", pytester.path / "bundles")
    shutil.copy(EXAMPLES / "clusters.toml", pytester.path / "clusters.toml")
    return pytester


def run(p: pytest.Pytester, *args: str) -> tuple[int, Any, dict[str, Any]]:
    result = p.runpytest(
        "--kvmha-inventory=clusters.toml",
        "--kvmha-report=r.json",
        "--kvmha-report-html=r.html",
        *args,
    )
    doc = lxml_html.fromstring((p.path / "r.html").read_text(encoding="utf-8"))
    return int(result.ret), doc, json.loads((p.path / "r.json").read_text())


def verdict(doc: Any) -> str:
    return " ".join(doc.get_element_by_id("verdict").text_content().split())


def article(doc: Any, check: str) -> Any:
    return next(a for a in doc.xpath("//article") if check in a.findtext(".//h3/code"))


def test_waived_findings_are_shown_waived_and_the_gate_passes(demo: pytest.Pytester) -> None:
    (demo.path / "w.toml").write_text(
        waivers(*ALL_FOUR, reason="legacy <b>bridge</b> & VLAN")
        + waivers(("KVMHA-OVS-001", 'host = "kvm-*"', "OPS-9"))  # nothing fails: stale
    )
    rc, doc, report = run(demo, "--kvmha-waivers=w.toml")
    assert rc == 0
    assert doc.findtext(".//title") == "kvmha audit: gate passed"
    v = verdict(doc)
    assert "Gate passed" in v and "0 findings at or above" in v and "4 waived (not gating)" in v
    assert "1 stale waiver (matching no failed finding): a warning" in v
    pkg = article(doc, "KVMHA-PKG-001")
    assert "waived" in pkg.get("class").split()
    assert "waived by OPS-1 until 2999-12-31: not gating" in pkg.text_content()
    waiver = pkg.xpath(".//dd[@class='waiver']")[0].text_content()
    assert waiver == "by OPS-1 until 2999-12-31, approved by Jane Doe: legacy <b>bridge</b> & VLAN"
    # the matrices say waived, not a red fail
    host_checks = doc.get_element_by_id("host-checks")
    assert matrix_column(host_checks, "kvm-b")["KVMHA-PKG-001"] == "≈ waived"
    assert host_checks.xpath(".//tr[@data-check='KVMHA-PKG-001']/td[contains(@class,'st-waived')]")
    cluster = next(
        s
        for s in doc.xpath("//section[contains(@class,'cluster')]")
        if "dmz-fw" in s.findtext("h3")
    )
    marks = matrix_column(cluster, "Dmz1")
    assert marks["KVMHA-VIRT-002"] == marks["KVMHA-VIRT-003"] == "≈ waived"
    # the one red cell left: TOPO-002, below the threshold and not waived
    assert len(doc.xpath("//table[@class='matrix']//td[contains(@class,'st-fail')]")) == 1
    # every waiver with its status, as in the JSON
    rows = doc.xpath("//table[@class='waivers']/tbody/tr")
    statuses = [r.xpath("./td[7]/span")[0].text_content() for r in rows]
    assert statuses == [w["status"] for w in report["waivers"]] == ["active"] * 3 + ["stale"]
    assert [r.xpath("./td[8]")[0].text_content() for r in rows] == ["1", "1", "2", "0"]
    assert (
        "OPS-9" in rows[3].text_content() and "matches no failed finding" in rows[3].text_content()
    )


def test_expired_waiver_says_so_and_fails(demo: pytest.Pytester) -> None:
    (demo.path / "w.toml").write_text(
        waivers(*ALL_FOUR[:2]) + waivers(ALL_FOUR[2], expires="2020-01-01")
    )
    rc, doc, report = run(demo, "--kvmha-waivers=w.toml")
    assert rc == 1
    v = verdict(doc)
    assert "Gate failed" in v and "2 findings at or above" in v and "2 waived" in v
    virt = article(doc, "KVMHA-VIRT-002")
    assert "waiver OPS-3 expired on 2020-01-01" in virt.text_content()
    assert virt.xpath(".//dd[@class='waiver-expired']")[0].text_content() == (
        "expired on 2020-01-01, no longer waives: OPS-3 (Jane Doe): r"
    )
    assert "waived" not in virt.get("class").split()
    row = doc.xpath("//table[@class='waivers']/tbody/tr")[2].text_content()
    assert "expired" in row and "no longer waives" in row


def test_strict_stale_waiver_fails_the_verdict_too(demo: pytest.Pytester) -> None:
    (demo.path / "w.toml").write_text(
        waivers(*ALL_FOUR) + waivers(("KVMHA-OVS-001", 'host = "kvm-*"', "OPS-9"))
    )
    rc, doc, _ = run(demo, "--kvmha-waivers=w.toml", "--kvmha-strict-waivers")
    assert rc == 1
    v = verdict(doc)
    assert "Gate failed" in v and "the run fails (--kvmha-strict-waivers)" in v


def test_known_since_baseline_does_not_gate_in_the_html(demo: pytest.Pytester) -> None:
    run(demo)  # the demo as its own baseline
    shutil.copy(demo.path / "r.json", demo.path / "before.json")
    rc, doc, report = run(demo, "--kvmha-baseline=before.json", "--kvmha-fail-on-new")
    assert rc == 0
    v = verdict(doc)
    assert "Gate passed" in v and "4 known since the baseline (not gating" in v
    known = [f["nodeid"] for f in report["findings"] if f.get("known_since_baseline")]
    assert len(known) == 4
    assert "known since the baseline: not gating" in article(doc, "KVMHA-PKG-001").text_content()
    gating = doc.xpath("//p[@class='baseline-gating']")[0].text_content()
    assert "Gating on new findings only" in " ".join(gating.split())

    # VIRT-003 passed in the baseline: it is new now, and gates
    before = json.loads((demo.path / "before.json").read_text())
    for f in before["findings"]:
        if f["check"] == "KVMHA-VIRT-003":
            f["status"] = "pass"
    (demo.path / "before.json").write_text(json.dumps(before))
    rc, doc, report = run(demo, "--kvmha-baseline=before.json", "--kvmha-fail-on-new")
    assert rc == 1
    v = verdict(doc)
    assert "Gate failed" in v and "1 finding at or above" in v and "3 known since" in v
    assert "not gating" not in article(doc, "KVMHA-VIRT-003").text_content()


def test_baseline_without_fail_on_new_says_it_does_not_gate(demo: pytest.Pytester) -> None:
    run(demo)
    shutil.copy(demo.path / "r.json", demo.path / "before.json")
    rc, doc, report = run(demo, "--kvmha-baseline=before.json")
    assert rc == 1 and "Gate failed" in verdict(doc)
    assert not any(f.get("known_since_baseline") for f in report["findings"])
    gating = " ".join(doc.xpath("//p[@class='baseline-gating']")[0].text_content().split())
    assert gating.startswith("For information: every failure at or above the threshold gates")


@pytest.mark.parametrize(
    "args",
    [
        (),
        ("--kvmha-fail-on=critical",),
        ("--kvmha-fail-on=low",),
        ("--kvmha-waivers=w.toml",),
        ("--kvmha-waivers=w.toml", "--kvmha-strict-waivers"),
        ("--kvmha-waivers=w.toml", "--kvmha-fail-on=low"),
        ("--kvmha-baseline=before.json", "--kvmha-fail-on-new"),
        ("--kvmha-baseline=before.json", "--kvmha-fail-on-new", "--kvmha-fail-on=low"),
        ("--kvmha-baseline=before.json",),
    ],
)
def test_verdict_agrees_with_the_exit_status(demo: pytest.Pytester, args: tuple[str, ...]) -> None:
    run(demo, "--kvmha-fail-on=high")  # baseline: TOPO-002 (low) was not even failing "then"
    before = json.loads((demo.path / "r.json").read_text())
    for f in before["findings"]:
        if f["check"] == "KVMHA-TOPO-002":
            f["status"] = "pass"
    (demo.path / "before.json").write_text(json.dumps(before))
    (demo.path / "w.toml").write_text(waivers(*ALL_FOUR))
    rc, doc, _ = run(demo, *args)
    passed = "Gate passed" in verdict(doc)
    assert rc in (0, 1)
    assert passed == (rc == 0), (args, rc, verdict(doc))


def test_waiver_fields_are_escaped() -> None:
    from pytest_kvmha.report.html import render_html

    bad = SCRIPT + "\"'&"
    waiver = {
        "index": 0,
        "check": bad,
        "host": bad,
        "cluster": None,
        "subject": bad,
        "reason": bad,
        "approver": bad,
        "ticket": bad,
        "expires": "2999-12-31",
    }
    finding = {
        "check": "KVMHA-X",
        "title": bad,
        "severity": "high",
        "status": "fail",
        "host": "h",
        "cluster": None,
        "subject": bad,
        "detail": bad,
        "expected": None,
        "found": None,
        "remediation": bad,
        "source": bad,
        "nodeid": bad,
    }
    report = {
        "schema": "kvmha-report/1",
        "generated_at": "t",
        "tool_version": "v",
        "duration_s": 1.0,
        "fail_on": "medium",
        "hosts": [],
        "clusters": [],
        "findings": [{**finding, "waived": waiver}, {**finding, "waiver_expired": waiver}],
        "summary": {"pass": 0, "fail": 2, "error": 0, "skip": 0},
        "errors": [],
        "waivers": [{**waiver, "status": "active", "matches": 1}],
        "waivers_path": bad,
        "strict_waivers": False,
    }
    text = render_html(report)
    doc = lxml_html.fromstring(text)
    assert doc.xpath("//script") == []
    assert text.count("&lt;script&gt;") >= 15
    assert "Gate failed" in verdict(doc)  # the expired one gates
