"""Discovery on the namespace lab, over SSH: an HA pair next to ordinary VMs.

kvm-a carries, next to fw-a (the pair two-ok builds across kvm-a and kvm-b), what real
hypervisors carry: single-NIC VMs on libvirt's virbr0 and on an OVS LAN bridge, three two-NIC VMs
sharing one layout, and a protected server running on the pair's internal bridge (its vnet port
sits on br1-internal next to the firewall's). Discovery must find exactly fw-a+fw-b, its checks
must pass, and the shared layout must be reported as ambiguous.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_kvmha.config.hosts import host_name_from_spec
from pytest_kvmha.testing import Lab, LabNic, firewall_domain_xml
from tests.scenarios import SCENARIOS, reset

from .test_audit_live import run_audit, statuses

pytestmark = pytest.mark.live


def _build_crowded_host(lab: Lab) -> None:
    reset(lab)
    SCENARIOS["two-ok"].build(lab)
    a = lab.hosts[0]
    for bridge in ("br-lan", "br-dmz"):
        a.add_bridge(bridge)
    for i in range(3):  # libvirt's NAT network bridge, no OVS: defined, stopped
        nic = LabNic("virbr0", slot=3, virtualport=False)
        a.define_domain(firewall_domain_xml(f"nat{i}", [nic]), start=False)
    for i in range(3):  # single NIC on an OVS LAN bridge; one runs
        nic = LabNic("br-lan", slot=3)
        a.define_domain(firewall_domain_xml(f"lan{i}", [nic]), start=i == 0)
    for i in range(3):  # two NICs, one layout shared by three: ambiguous; one runs
        nics = [LabNic("br-lan", slot=3), LabNic("br-dmz", slot=4)]
        a.define_domain(firewall_domain_xml(f"app{i}", nics), start=i == 0)
    # A protected server in If1's VLAN on the pair's internal bridge, running: its OVS port
    # carries attached-mac and must not count as an uplink nor join the cluster.
    db = LabNic("br1-internal", slot=3, vlan=101)
    a.define_domain(firewall_domain_xml("db1", [db]), start=True)


def test_pair_next_to_ordinary_vms_is_discovered_alone(lab: Lab, tmp_path: Path) -> None:
    _build_crowded_host(lab)
    ka, kb = (host_name_from_spec(h.spec) for h in lab.hosts)  # without an inventory: addresses
    rc, out, report = run_audit(
        tmp_path,
        *(f"--kvmha-host={h.spec}" for h in lab.hosts),
        f"--kvmha-ssh-config={lab.ssh_config}",
    )
    assert [c["name"] for c in report["clusters"]] == ["fw-a+fw-b"], out
    assert [(m["domain"], m["host"]) for m in report["clusters"][0]["members"]] == [
        ("fw-a", ka),
        ("fw-b", kb),
    ]
    got = statuses(report)
    assert {k: v for k, v in got.items() if v not in ("pass", "skip")} == {}, out
    # The server's port on br1-internal is no uplink: HB-001 saw only the trunk's wire.
    for check, subject in (
        ("KVMHA-OVS-002", "br1-internal"),
        ("KVMHA-HB-001", ka),
        ("KVMHA-VLAN-002", ka),
        ("KVMHA-TOPO-001", "fw-a+fw-b"),
    ):
        assert got[(check, subject)] == "pass", (check, subject, out)
    hb = next(f for f in report["findings"] if f["nodeid"].endswith(f"KVMHA-HB-001[{ka}]"))
    assert hb["detail"] == f"{ka}: uplinks promiscuous: up-a"
    assert rc == 0, out
    discovery = report["discovery"]
    assert [(a["domains"], a["hosts"], a["layout"]) for a in discovery["ambiguous"]] == [
        (["app0", "app1", "app2"], [ka], ["br-lan", "br-dmz"])
    ]
    assert discovery["domains"] == {ka: 11, kb: 1}
    assert discovery["skipped"] == {ka: {"fewer than 2 NICs": 7}}
    assert f"ambiguous layout (br-lan, br-dmz): app0@{ka}, app1@{ka}, app2@{ka}: " in out

    # kvm-a alone: fw-a has no partner there, the app layout is ambiguous: no cluster, an error.
    (tmp_path / "alone").mkdir()
    rc, out, report = run_audit(
        tmp_path / "alone",
        f"--kvmha-host={lab.hosts[0].spec}",
        f"--kvmha-ssh-config={lab.ssh_config}",
    )
    assert report["clusters"] == []
    (f,) = [f for f in report["findings"] if f["check"] == "KVMHA-DISC-001"]
    assert f["status"] == "error"
    assert f["nodeid"] == "kvmha/discovery/KVMHA-DISC-001[clusters]"
    assert f["detail"] == (
        f"no HA cluster found: 11 domains read on {ka} (7 fewer than 2 NICs), none pair up; "
        f"3 domains share one layout (br-lan, br-dmz): app0@{ka}, app1@{ka}, app2@{ka}; "
        "write an inventory"
    )
    assert rc == 1, out


def test_same_host_under_two_specs_is_a_usage_error(lab: Lab, tmp_path: Path) -> None:
    reset(lab)
    SCENARIOS["two-ok"].build(lab)
    a = lab.hosts[0]
    alias = f"ssh://root@{a.name}"  # the lab's ssh_config knows the host by name and address
    assert alias != a.spec
    rc, out, report = run_audit(
        tmp_path,
        f"--kvmha-host={a.spec}",
        f"--kvmha-host={alias}",
        f"--kvmha-ssh-config={lab.ssh_config}",
    )
    assert rc == 4, out
    assert (
        f"({a.spec}) and " in out and f"({alias}) are one machine (machine-id {a.machine_id}" in out
    )
    assert report["errors"] and report["findings"] == []
