"""One verdict everywhere: the exit status, the terminal, the JSON, Markdown, HTML and JUnit
all say what plugin.gate.decide decided (a refused plan, waived and known failures)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from lxml import etree

from pytest_kvmha.plugin.gate import ERRORED, FAILED, WAIVED, decide

from ..bundlekit import BUNDLES

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

EXAMPLES = Path(__file__).parents[2] / "examples"

WAIVER = """
[[waiver]]
check = "KVMHA-PKG-001"
host = "kvm-b"
reason = "legacy"
approver = "Jane Doe"
ticket = "OPS-1"
expires = 2999-12-31
"""


def _json(pytester: pytest.Pytester, name: str = "r.json") -> dict:
    return json.loads((pytester.path / name).read_text())


def _junit(pytester: pytest.Pytester) -> dict[str, dict[str, str]]:
    tree = etree.parse(str(pytester.path / "j.xml"))
    out = {}
    for case in tree.iter("testcase"):
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        if "nodeid" in props:
            out[props["nodeid"]] = props
    return out


def test_decide_names_what_fails_and_makes_the_exit_status() -> None:
    v = decide(
        {"kvmha-whatif/c/KVMHA-PLAN-001[c]": ERRORED, "kvmha/c/X[a]": FAILED, "y": WAIVED},
        errors=(),
        strict_stale=0,
        exit_status=0,
    )
    assert not v.passed and v.exit_status == 1
    assert "plan refused: kvmha-whatif/c/KVMHA-PLAN-001[c]" in v.reason
    assert "1 gating failure(s): kvmha/c/X[a]" in v.reason
    ok = decide({"y": WAIVED}, errors=(), strict_stale=0, exit_status=0)
    assert ok.passed and ok.exit_status == 0
    assert decide({}, errors=(), strict_stale=1, exit_status=0).exit_status == 1
    other = decide({}, errors=(), strict_stale=0, exit_status=2)
    assert not other.passed and "pytest exit status 2" in other.reason


def test_refused_plan_fails_the_gate_and_every_report(pytester: pytest.Pytester) -> None:
    """KVMHA-PLAN-001 lives only among the what-if findings: the HTML still says failed."""
    shutil.copytree(BUNDLES / "single-ok", pytester.path / "s")
    inv = pytester.path / "s" / "clusters.toml"
    wanted = pytester.path / "wanted.toml"
    wanted.write_text(
        inv.read_text()
        .replace('bridge = "br2-external"', 'bridge = "br1-internal"')
        .replace('"replay://', '"replay://s/')
    )
    result = pytester.runpytest(
        f"--kvmha-inventory={inv}",
        f"--kvmha-plan={wanted}",
        "--kvmha-report=r.json",
        "--kvmha-report-md=r.md",
        "--kvmha-report-html=r.html",
        "-rA",
    )
    assert result.ret == 1
    result.stdout.fnmatch_lines(["ERROR kvmha-whatif/edge-fw/KVMHA-PLAN-001[[]edge-fw[]]*"])
    result.stdout.fnmatch_lines(["*edge-fw: plan refused: the wanted pairs share a bridge*"])
    (refusal,) = [
        f for f in _json(pytester)["whatif"]["findings"] if f["check"] == "KVMHA-PLAN-001"
    ]
    assert refusal["status"] == "error" and refusal["cluster"] == "edge-fw"
    assert refusal["nodeid"] == "kvmha/edge-fw/KVMHA-PLAN-001[edge-fw]"
    assert "share a bridge" in refusal["detail"]
    verdict = _json(pytester)["verdict"]
    assert verdict["passed"] is False and verdict["exit_status"] == 1
    assert "plan refused: kvmha-whatif/edge-fw/KVMHA-PLAN-001[edge-fw]" in verdict["reason"]
    html = (pytester.path / "r.html").read_text()
    assert "Gate failed" in html and "Gate passed" not in html
    assert "plan refused" in html
    assert "**Gate failed** (exit status 1)" in (pytester.path / "r.md").read_text()
    result.stdout.fnmatch_lines(["kvmha verdict: gate failed (exit status 1): plan refused*"])


def test_waived_and_known_failures_do_not_gate_in_json_or_junit(pytester: pytest.Pytester) -> None:
    shutil.copytree(EXAMPLES / "bundles", pytester.path / "bundles")
    shutil.copy(EXAMPLES / "clusters.toml", pytester.path / "clusters.toml")
    (pytester.path / "w.toml").write_text(WAIVER)
    inv = "--kvmha-inventory=clusters.toml"
    waived = pytester.runpytest(
        inv, "--kvmha-waivers=w.toml", "--kvmha-report=r.json", "--junitxml=j.xml"
    )
    assert waived.ret == 1  # the other failures still gate
    r = _json(pytester)
    pkg = "kvmha/kvm-b/KVMHA-PKG-001[kvm-b]"
    by_id = {f["nodeid"]: f for f in r["findings"]}
    assert by_id[pkg]["gating"] is False and by_id[pkg]["waived"]
    assert by_id["kvmha/dmz-fw/KVMHA-VIRT-002[Dmz1]"]["gating"] is True
    assert all(isinstance(f["gating"], bool) for f in r["findings"])
    assert r["verdict"] == {"passed": False, "exit_status": 1, "reason": r["verdict"]["reason"]}
    props = _junit(pytester)
    assert props[pkg]["gating"] == "false"
    assert props["kvmha/dmz-fw/KVMHA-VIRT-002[Dmz1]"]["gating"] == "true"

    pytester.runpytest(inv, "--kvmha-report=before.json")
    known = pytester.runpytest(
        inv,
        "--kvmha-baseline=before.json",
        "--kvmha-fail-on-new",
        "--kvmha-report=r.json",
        "--kvmha-report-md=r.md",
        "--junitxml=j.xml",
    )
    assert known.ret == 0
    r = _json(pytester)
    assert r["verdict"] == {"passed": True, "exit_status": 0, "reason": "nothing gating"}
    assert not any(f["gating"] for f in r["findings"])
    assert all(p["gating"] == "false" for p in _junit(pytester).values())
    md = (pytester.path / "r.md").read_text()
    assert "**Gate passed** (exit status 0)" in md
    assert "| fail (not gating) | high |" in md
