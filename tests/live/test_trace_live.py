"""KVMHA-TRACE-001 on the namespace lab: real Open vSwitch (netdev datapath, real OpenFlow
tables), audited over SSH. Good clusters pass; a drop rule, a VLAN rewrite, a missing trunk and
an access-mode uplink fail naming where the frame dies; the recording replays to the same
findings; and the audit leaves the switch's flow tables exactly as they were."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pytest_kvmha.testing import Lab
from tests.scenarios import HOSTS, SCENARIOS, build_scenario

from .test_audit_live import audit_recording, run_audit

pytestmark = pytest.mark.live

TRACE = "KVMHA-TRACE-001"

# scenario -> {subject: text the finding's detail must hold} (empty: every trace passes)
LOSS: dict[str, dict[str, list[str]]] = {
    "single-ok": {},
    "two-ok": {},
    "trace-drop": {
        "fw-b:If1": [
            "FGCP heartbeat 0x8890 broadcast from",
            "on kvm-b: dropped by rule bridge br1-internal table 0 priority 100 "
            "match dl_type=0x8890 actions drop",
        ],
        "fw-a:If1": [
            "entering by up-b with VLAN 101 on kvm-b",
            "dropped by rule bridge br1-internal",
        ],
    },
    "trace-vlan-rewrite": {
        "fw-a:If1": ["on kvm-a: VLAN rewritten to 201 after rule bridge br-trunk", "left by up-a"],
    },
    "trunk-missing-vlan": {
        "fw-b:If2": ["on kvm-b: does not leave by up-b with VLAN 102", "KVMHA-VLAN-002"],
        "fw-a:If2": ["not configured for trunking VLAN 102"],
    },
    "uplink-access": {
        "fw-b:If1": ["on kvm-b: left untagged by up-b (expected VLAN 101)"],
        "fw-a:If1": ["entering by up-b with VLAN 101 on kvm-b", "access port"],
    },
}


def flows(lab: Lab) -> dict[str, str]:
    """Every bridge's OpenFlow rules, without counters."""
    out = {}
    for h in lab.hosts:
        for br in h.ovs_vsctl("list-br").split():
            out[f"{h.name}/{br}"] = h.run(["ovs-ofctl", "--no-stats", "dump-flows", br]).stdout
    return out


def trace_findings(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["subject"]: f for f in report["findings"] if f["check"] == TRACE}


@pytest.mark.parametrize("name", list(LOSS))
def test_heartbeat_path_live(lab: Lab, name: str, tmp_path: Path) -> None:
    scenario = SCENARIOS[name]
    inventory = build_scenario(lab, scenario, tmp_path)
    before = flows(lab)
    rc, out, report = run_audit(
        tmp_path,
        f"--kvmha-inventory={inventory}",
        f"--kvmha-ssh-config={lab.ssh_config}",
        f"--kvmha-record={tmp_path / 'bundles'}",
    )
    assert flows(lab) == before  # read-only: no flow added, none changed
    got = trace_findings(report)
    want = {s: v for (c, s), v in scenario.expected.items() if c == TRACE}
    assert {s: f["status"] for s, f in got.items()} == want, out
    for subject, texts in LOSS[name].items():
        f = got[subject]
        for text in texts:
            assert text in f["detail"], (subject, f["detail"])
    if name == "trace-drop":
        assert (
            "ovs-ofctl del-flows br1-internal --strict priority=100,dl_type=0x8890  # on kvm-b"
            in got["fw-b:If1"]["remediation"]
        )
        # the printed command really removes the offending rule, and then the path is clear
        b = lab.hosts[1]
        b.run(["ovs-ofctl", "del-flows", "br1-internal", "--strict", "priority=100,dl_type=0x8890"])
        (tmp_path / "after").mkdir()
        _, out2, again = run_audit(
            tmp_path / "after",
            f"--kvmha-inventory={inventory}",
            f"--kvmha-ssh-config={lab.ssh_config}",
        )
        assert {f["status"] for f in trace_findings(again).values()} == {"pass"}, out2
    hosts = {h["name"]: h for h in report["hosts"]}
    for i, host in enumerate(HOSTS):
        assert hosts[host]["round_trips"] == scenario.round_trips(i)

    # The recording replays offline to the very same trace findings (details included).
    _, out3, replayed = audit_recording(lab, inventory, tmp_path)
    assert {
        s: (f["status"], f["detail"], f["remediation"]) for s, f in trace_findings(replayed).items()
    } == {s: (f["status"], f["detail"], f["remediation"]) for s, f in got.items()}, out3
    assert all(h["round_trips"] == hosts[h["name"]]["round_trips"] for h in replayed["hosts"])
