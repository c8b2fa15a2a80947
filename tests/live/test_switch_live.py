"""Spanning tree, bonds and MTU on the real lab switch: what the findings say, not only their
status (tests/live/test_audit_live.py checks every scenario's statuses)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_kvmha.testing import Lab
from tests.scenarios import SCENARIOS, build_scenario

from .test_audit_live import run_audit

pytestmark = pytest.mark.live


def _audit(lab: Lab, name: str, tmp_path: Path) -> dict[tuple[str, str], dict[str, str]]:
    inventory = build_scenario(lab, SCENARIOS[name], tmp_path)
    _, out, report = run_audit(
        tmp_path, f"--kvmha-inventory={inventory}", f"--kvmha-ssh-config={lab.ssh_config}"
    )
    return {(f["check"], f["subject"]): f for f in report["findings"]}


def test_stp_on_names_spanning_tree(lab: Lab, tmp_path: Path) -> None:
    found = _audit(lab, "stp-on", tmp_path)
    stp = found[("KVMHA-OVS-003", "If1")]
    assert stp["status"] == "fail" and "STP on" in stp["detail"], stp
    for subject in ("fw-a:If1", "fw-b:If1"):
        trace = found[("KVMHA-TRACE-001", subject)]
        assert trace["status"] == "fail" and "spanning tree" in trace["detail"], trace


def test_bonded_uplinks_trace_through_the_bond(lab: Lab, tmp_path: Path) -> None:
    found = _audit(lab, "bond-ok", tmp_path)
    assert found[("KVMHA-OVS-004", "kvm-a")]["status"] == "pass"
    assert all(f["status"] == "pass" for (c, _), f in found.items() if c == "KVMHA-TRACE-001"), (
        found
    )


def test_a_bond_member_down_is_reported(lab: Lab, tmp_path: Path) -> None:
    found = _audit(lab, "bond-member-down", tmp_path)
    bond = found[("KVMHA-OVS-004", "kvm-a")]
    assert bond["status"] == "fail" and "bond-a2 disabled" in bond["detail"], bond


def test_an_mtu_step_fails(lab: Lab, tmp_path: Path) -> None:
    found = _audit(lab, "mtu-step", tmp_path)
    mtu = found[("KVMHA-OVS-005", "If1")]
    assert mtu["status"] == "fail" and "up-a on br-trunk on kvm-a: 1400" in mtu["detail"], mtu
