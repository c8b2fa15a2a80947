"""End to end, for real: audit lab clusters over SSH with the installed plugin.

Each scenario is built on two namespace hosts (own sshd, OVS, libvirtd; domains started paused),
audited by ``python -m pytest --kvmha-inventory`` in a directory without test files, and its
JSON report must hold exactly the scenario's findings. The recorded bundles then replay offline
to the very same findings.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from pytest_kvmha.model import Severity
from pytest_kvmha.testing import Lab
from pytest_kvmha.testing.processes import PYTEST
from tests.scenarios import (
    CLUSTER,
    HOSTS,
    IDENTITY,
    SCENARIOS,
    SECOND,
    Scenario,
    build_scenario,
    reset,
)

pytestmark = pytest.mark.live


def run_audit(cwd: Path, *args: str) -> tuple[int, str, dict[str, Any]]:
    report = cwd / "report.json"
    proc = subprocess.run(
        [
            *PYTEST,
            "-rA",
            f"--kvmha-report={report}",
            *args,
        ],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return proc.returncode, proc.stdout + proc.stderr, json.loads(report.read_text())


def audit_recording(lab: Lab, inventory: Path, cwd: Path) -> tuple[int, str, dict[str, Any]]:
    """run_audit, from cwd/again, of the bundles a run in ``cwd`` recorded (--kvmha-record=
    cwd/bundles): ``inventory`` with each lab host's spec replaced by replay://bundles/HOST."""
    text = inventory.read_text()
    for i, name in enumerate(HOSTS):
        text = text.replace(json.dumps(lab.hosts[i].spec), json.dumps(f"replay://bundles/{name}"))
    replay = cwd / "replay.toml"
    replay.write_text(text)
    (cwd / "again").mkdir()
    return run_audit(cwd / "again", f"--kvmha-inventory={replay}")


def statuses(report: dict[str, Any]) -> dict[tuple[str, str], str]:
    """(check, subject) -> status of every finding; the checks that do not apply to a cluster at
    all (no items, listed under ``not_applicable``) are the skips they stand for."""
    found = {(f["check"], f["subject"]): f["status"] for f in report["findings"]}
    for na in report.get("not_applicable", []):
        for nodeid in na["nodeids"]:
            check, _, subject = nodeid.split("/", 2)[2].partition("[")
            key = (check, subject[:-1])
            assert key not in found, key
            found[key] = "skip"
    return found


def expected_exit(s: Scenario) -> int:
    gate = Severity.MEDIUM
    checks = {
        c: Severity.parse(sev)
        for c, sev in (("KVMHA-TOPO-002", "low"), ("KVMHA-VIRT-003", "medium"))
    }
    bad = [
        k
        for k, v in s.expected.items()
        if v == "error" or (v == "fail" and checks.get(k[0], Severity.HIGH) >= gate)
    ]
    return 1 if bad else 0


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario_audit_over_ssh(lab: Lab, name: str, tmp_path: Path) -> None:
    scenario = SCENARIOS[name]
    inventory = build_scenario(lab, scenario, tmp_path)
    try:
        rc, out, report = run_audit(
            tmp_path,
            f"--kvmha-inventory={inventory}",
            f"--kvmha-ssh-config={lab.ssh_config}",
            f"--kvmha-record={tmp_path / 'bundles'}",
        )
    finally:
        for h in scenario.unreachable:
            lab.start_sshd(lab.hosts[h])
    assert statuses(report) == dict(scenario.expected), out
    assert rc == expected_exit(scenario), out
    hosts = {h["name"]: h for h in report["hosts"]}
    for i, name_ in enumerate(HOSTS):
        want = "unreachable" if i in scenario.unreachable else "ok"
        assert hosts[name_]["status"] == want, hosts[name_]
        if want == "ok":
            assert hosts[name_]["round_trips"] == scenario.round_trips(i)
    # Every item is in the pytest output under its stable node id.
    assert "kvmha/edge-fw/KVMHA-TOPO-001[edge-fw]" in out
    if scenario.second:  # the cross-cluster finding names both clusters and its segment
        (shared,) = [
            f for f in report["findings"] if f["check"] == IDENTITY and f["status"] == "fail"
        ]
        assert CLUSTER in shared["detail"] and SECOND in shared["detail"], shared
        assert shared["nodeid"] == f"kvmha/segment/{IDENTITY}[{shared['subject']}]"
        assert f"FAILED {shared['nodeid']}" in out

    # The recorded bundles replay through the same path to the same findings.
    rc2, out2, report2 = audit_recording(lab, inventory, tmp_path)
    assert statuses(report2) == statuses(report), out2
    assert rc2 == rc


def test_discovery_without_inventory(lab: Lab, tmp_path: Path) -> None:
    reset(lab)
    SCENARIOS["two-ok"].build(lab)
    rc, out, report = run_audit(
        tmp_path,
        *(f"--kvmha-host={h.spec}" for h in lab.hosts),
        f"--kvmha-ssh-config={lab.ssh_config}",
    )
    assert [c["name"] for c in report["clusters"]] == ["fw-a+fw-b"]
    cluster = report["clusters"][0]
    assert cluster["discovered"] is True
    assert [p["name"] for p in cluster["pairs"]] == ["br1-internal", "br2-external"]
    got = statuses(report)
    assert got[("KVMHA-OVS-002", "br1-internal")] == "pass"
    assert got[("KVMHA-VIRT-001", "fw-b:br2-external")] == "pass"
    # Discovered pairs have no declared VLAN: VLAN-001 still reads them from the live tags.
    assert got[("KVMHA-VLAN-001", "br1-internal")] == "pass"
    assert rc == 0, out
    assert "kvmha/fw-a+fw-b/KVMHA-VIRT-002[br2-external]" in out
