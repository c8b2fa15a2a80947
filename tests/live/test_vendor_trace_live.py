"""KVMHA-TRACE-001 traces the frames the vendors document, on the namespace lab (real Open
vSwitch, real OpenFlow tables): a drop rule for any one of FGCP's Ethertypes fails naming the
frame; a drop of the cluster's virtual MAC fails on its data pair and not on the heartbeat pair;
cOS Core's UDP 999 heartbeats are traced as UDP; a unicast cluster decided by its configurations
is traced as unicast (and a drop of its TCP/703 heartbeat fails)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from pytest_kvmha.testing import Lab
from tests.scenarios import SCENARIOS, reset

from .test_audit_live import run_audit
from .test_fwconfig_live import DATA, STATUS, StartConsole, console, inventory_with_consoles

pytestmark = pytest.mark.live
__all__ = ["console"]  # the fixture, imported for this module's tests

TRACE = "KVMHA-TRACE-001"


def _trace(lab: Lab, tmp: Path, inventory: str) -> dict[str, dict[str, Any]]:
    tmp.mkdir(parents=True, exist_ok=True)
    path = tmp / "clusters.toml"
    path.write_text(inventory)
    _, out, report = run_audit(
        tmp,
        f"--kvmha-inventory={path}",
        f"--kvmha-ssh-config={lab.ssh_config}",
        f"--kvmha-record={tmp / 'bundles'}",
    )
    got = {f["subject"]: f for f in report["findings"] if f["check"] == TRACE}
    assert got, out
    return got


def _failing(got: dict[str, dict[str, Any]]) -> dict[str, str]:
    """subject -> detail of every finding that is not a pass or a skip (errors included)."""
    return {s: f["detail"] for s, f in got.items() if f["status"] not in ("pass", "skip")}


def _flows_recorded(tmp: Path) -> list[str]:
    """The flows the audit traced (first line of each recorded ofproto/trace)."""
    return [
        p.read_text().splitlines()[0]
        for p in sorted((tmp / "bundles").rglob("sections/trace/t*"))
        if p.is_file()
    ]


# (bridge on kvm-b, flow added, failing subjects, text every failing detail holds)
FGCP_DROPS = [
    ("br1-internal", "priority=100,dl_type=0x8891,actions=drop", "FGCP hc"),
    ("br1-internal", "priority=100,dl_type=0x8892,actions=drop", "FGCP session sync 0x8892"),
    ("br1-internal", "priority=100,dl_type=0x8893,actions=drop", "FGCP config sync 0x8893"),
]


def test_each_fgcp_frame_type_dropped_fails_naming_it(lab: Lab, tmp_path: Path) -> None:
    reset(lab)
    SCENARIOS["two-ok"].build(lab)
    inventory = SCENARIOS["two-ok"].inventory(lab)
    b = lab.hosts[1]
    for i, (bridge, flow, text) in enumerate(FGCP_DROPS):
        b.run(["ovs-ofctl", "add-flow", bridge, flow])
        try:
            got = _trace(lab, tmp_path / str(i), inventory)
        finally:
            b.run(["ovs-ofctl", "del-flows", bridge, "--strict", flow.rsplit(",actions", 1)[0]])
        failing = _failing(got)
        assert set(failing) == {"fw-a:If1", "fw-b:If1"}, failing
        for detail in failing.values():
            assert text in detail and f"dropped by rule bridge {bridge}" in detail, detail
        assert "on kvm-b: dropped by rule" in failing["fw-b:If1"]


def test_virtual_mac_drop_fails_on_the_data_pair_only(lab: Lab, tmp_path: Path) -> None:
    reset(lab)
    SCENARIOS["two-ok"].build(lab)
    inventory = SCENARIOS["two-ok"].inventory(lab)
    inventory = inventory.replace('vendor = "fortigate"', 'vendor = "fortigate"\ngroup_id = 10')
    inventory = inventory.replace('name = "If1"', 'name = "If1"\nheartbeat = true')
    a = lab.hosts[0]
    vmac = "00:09:0f:09:0a:01"  # group-id 10, port2 (interface index 1)
    for i, bridge in enumerate(("br2-external", "br1-internal")):
        flow = f"priority=100,dl_src={vmac},actions=drop"
        a.run(["ovs-ofctl", "add-flow", bridge, flow])
        try:
            got = _trace(lab, tmp_path / str(i), inventory)
        finally:
            a.run(["ovs-ofctl", "del-flows", bridge, "--strict", f"priority=100,dl_src={vmac}"])
        failing = _failing(got)
        if bridge == "br1-internal":  # the heartbeat pair: no virtual MAC traced there
            assert failing == {}, failing
            continue
        assert set(failing) == {"fw-a:If2", "fw-b:If2"}, failing
        for detail in failing.values():
            assert f"FGCP virtual MAC {vmac} (group-id 10" in detail, detail
            assert "dropped by rule bridge br2-external" in detail, detail


def test_cos_core_udp_999_heartbeat_drop_fails(lab: Lab, tmp_path: Path) -> None:
    reset(lab)
    SCENARIOS["two-ok"].build(lab)
    inventory = SCENARIOS["two-ok"].inventory(lab)
    inventory = inventory.replace('vendor = "fortigate"', 'vendor = "cos-core"')
    got = _trace(lab, tmp_path / "ok", inventory)
    assert _failing(got) == {}
    assert not [f for f in _flows_recorded(tmp_path / "ok") if "0x889" in f]
    b = lab.hosts[1]
    b.run(["ovs-ofctl", "add-flow", "br1-internal", "priority=100,udp,tp_dst=999,actions=drop"])
    try:
        got = _trace(lab, tmp_path / "drop", inventory)
    finally:
        b.run(["ovs-ofctl", "del-flows", "br1-internal", "--strict", "priority=100,udp,tp_dst=999"])
    failing = _failing(got)
    assert set(failing) == {"fw-a:If1", "fw-b:If1"}, failing
    for detail in failing.values():
        assert "cOS Core heartbeat UDP 999->999 TTL 255" in detail, detail
        assert "dropped by rule bridge br1-internal" in detail and "tp_dst=999" in detail


def test_unicast_cluster_decided_by_configs_is_traced_as_unicast(
    lab: Lab, tmp_path: Path, console: StartConsole
) -> None:
    reset(lab)
    SCENARIOS["two-ok"].build(lab)
    a = console(lab.hosts[0], 2211, "fortigate", DATA / "fgt-a.conf", STATUS / "fgt-a-7x.txt")
    b = console(lab.hosts[1], 2212, "fortigate", DATA / "fgt-b.conf", STATUS / "fgt-b-7x.txt")
    # the inventory says nothing about the heartbeat: the configurations (unicast-hb) decide
    text = inventory_with_consoles(lab, a, b, "broadcast").replace('heartbeat = "broadcast"\n', "")
    assert "heartbeat =" not in text
    got = _trace(lab, tmp_path / "ok", text)
    assert {s: f["status"] for s, f in got.items()} == {
        "fw-a:If2": "pass",
        "fw-b:If2": "pass",
        "fw-a:If1": "skip",  # a data pair: no virtual MACs in unicast mode
        "fw-b:If1": "skip",
    }
    flows = _flows_recorded(tmp_path / "ok")
    assert flows and all("tcp" in f and "tp_dst=703" in f for f in flows), flows
    assert any("nw_src=169.254.90.1,nw_dst=169.254.90.2" in f for f in flows), flows
    host_b = lab.hosts[1]
    host_b.run(
        ["ovs-ofctl", "add-flow", "br2-external", "priority=100,tcp,tp_dst=703,actions=drop"]
    )
    try:
        got = _trace(lab, tmp_path / "drop", text)
    finally:
        host_b.run(
            ["ovs-ofctl", "del-flows", "br2-external", "--strict", "priority=100,tcp,tp_dst=703"]
        )
    failing = _failing(got)
    assert set(failing) == {"fw-a:If2", "fw-b:If2"}, failing
    assert "FGCP unicast heartbeat TCP/703 169.254.90." in failing["fw-a:If2"]


@pytest.mark.parametrize(
    ("standard", "dropped"),
    [
        ("no-arp-mac-spoofing", "drops FGCP virtual MAC 00:09:0f:09:00:00"),
        ("no-other-l2-traffic", "drops FGCP heartbeat 0x8890 broadcast from"),
    ],
)
def test_standard_filters_on_a_broadcast_member_fail_hb2(
    lab: Lab, tmp_path: Path, standard: str, dropped: str
) -> None:
    """libvirt's own shipped filters, on a NIC of a running member (libvirtd instantiates them):
    HB-002 judges what they drop, and says what libvirt does on an Open vSwitch port."""
    two = SCENARIOS["two-ok"]
    b = two.members[1]
    nics = tuple(replace(n, filterref=standard) if k == 0 else n for k, n in enumerate(b.nics))
    # defined, not started: libvirt refuses to start a domain whose Open vSwitch (virtualport)
    # NIC has a filterref ("filterref is not supported for network interfaces with virtualport
    # type openvswitch", libvirt 9.0 here); HB-002 reads the domain's XML and the filters
    scenario = replace(two, members=(two.members[0], replace(b, nics=nics, start=False)))
    reset(lab)
    scenario.build(lab)
    path = tmp_path / "clusters.toml"
    path.write_text(scenario.inventory(lab))
    _, out, report = run_audit(
        tmp_path, f"--kvmha-inventory={path}", f"--kvmha-ssh-config={lab.ssh_config}"
    )
    hb2 = {f["subject"]: f for f in report["findings"] if f["check"] == "KVMHA-HB-002"}
    assert hb2["fw-a"]["status"] == "pass", out
    f = hb2["fw-b"]
    assert f["status"] == "fail", out
    assert f"filter {standard} {dropped}" in f["detail"], f["detail"]
    assert (
        "filterref is not supported for network interfaces with virtualport type" in (f["detail"])
    )
    assert f["severity"] == "medium"
