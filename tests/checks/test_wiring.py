"""checks/wiring.py: each interface pair has its own OVS bridge (KVMHA-OVS-002), each NIC is
bound to it as an openvswitch virtualport (KVMHA-VIRT-001), both NICs of a pair have the same PCI
address (KVMHA-VIRT-002) and model (KVMHA-VIRT-003).

How the tests edit and audit a recorded scenario: tests/checks/__init__.py.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pytest_kvmha.model import Severity

from ..bundlekit import (
    NIC,
    HostBundle,
    _refs,
    copy_scenario,
    domain_uuid,
    drop_virtualport,
    drop_vlan,
    edit_inactive,
    edit_live,
    edit_nic,
    edit_toml,
    finding,
    host,
    remove_ovs_port,
    run,
    stop_domain,
)
from .checkkit import (
    B_IF1,
    B_IF2,
    B_VNET2,
    HB2,
    OVS2,
    VIRT1,
    VIRT2,
    VIRT3,
    expected,
    live_nics,
    statuses,
)

# --- KVMHA-OVS-002 ---------------------------------------------------------------------------

SLAVE_IF2 = live_nics("q35-ok", "kvm-a", "fw-slave")[1][1][0]


def _single_ok_slave_if2(d: Path) -> tuple[HostBundle, str, str]:
    """fw-slave's If2 NIC on single-ok: (bundle, MAC, vnet port)."""
    hb = host(d, "kvm-a")
    uuid = domain_uuid(hb, "fw-slave")
    live = (hb.dir / "sections" / f"domain-live/{uuid}").read_text()
    blocks = [m.group(0) for m in NIC.finditer(live)]
    mac = re.search(r"<mac address='([^']+)'", blocks[1]).group(1)  # type: ignore[union-attr]
    vnet = re.search(r"<target dev='([^']+)'", blocks[1]).group(1)  # type: ignore[union-attr]
    return hb, mac, vnet


def test_ovs2_nic_on_a_linux_bridge(tmp_path: Path) -> None:
    d = copy_scenario("single-ok", tmp_path)
    hb, mac, vnet = _single_ok_slave_if2(d)
    hb.edit_domain(
        "fw-slave",
        edit_nic(mac, lambda b: drop_virtualport(b).replace("br2-external", "br2-linux")),
    )
    remove_ovs_port(hb, vnet)
    result = run(d)
    assert statuses(result) == expected(
        "single-ok", {(OVS2, "If2"): "fail", (VIRT1, "fw-slave:If2"): "fail"}
    )
    f = finding(result, OVS2, "If2")
    assert "fw-slave NIC #2 is on br2-linux, not an OVS bridge on kvm-a" in f.detail
    assert "bridges differ: fw-master on br2-external, fw-slave on br2-linux" in f.detail
    assert f.remediation.splitlines() == [
        # br2-external exists on kvm-a: only the NIC moves
        "virsh edit fw-slave  # on kvm-a, NIC #2: <source bridge='br2-external'/>",
    ]
    v = finding(result, VIRT1, "fw-slave:If2")
    assert (
        "source br2-linux is not an OVS bridge" in v.detail and "virtualport is missing" in v.detail
    )


def test_ovs2_declared_bridge_differs(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    edit_toml(d, lambda t: t.replace('bridge = "br2-external"', 'bridge = "br2-dmz"'))
    result = run(d)
    assert statuses(result) == expected("two-ok", {(OVS2, "If2"): "fail"})
    f = finding(result, OVS2, "If2")
    assert "declared bridge is br2-dmz" in f.detail
    assert f.remediation.splitlines()[0] == "ovs-vsctl --may-exist add-br br2-dmz  # on kvm-a"


def test_ovs2_declared_bridge_typo_says_did_you_mean(tmp_path: Path) -> None:
    """A misspelt bridge in the inventory: the finding lists the hosts' bridges and corrects
    the inventory; no ``add-br`` of the typo. Applied, the audit is the scenario's again."""
    d = copy_scenario("two-ok", tmp_path)
    edit_toml(d, lambda t: t.replace('bridge = "br1-internal"', 'bridge = "br1-internl"'))
    result = run(d)
    assert statuses(result) == expected("two-ok", {(OVS2, "If1"): "fail"})
    f = finding(result, OVS2, "If1")
    assert f.detail.startswith("declared bridge br1-internl does not exist on kvm-a, kvm-b (kvm-a")
    assert "kvm-b has bridges " in f.detail and "br1-internal" in f.detail
    assert f.detail.endswith("did you mean br1-internal?")
    assert f.remediation == (
        "# did you mean br1-internal? correct the inventory: cluster edge-fw, pair If1: "
        'bridge = "br1-internal"'
    )
    edit_toml(d, lambda t: t.replace('bridge = "br1-internl"', 'bridge = "br1-internal"'))
    assert statuses(run(d)) == expected("two-ok", {})


def test_ovs2_shared_bridge_between_pairs(tmp_path: Path) -> None:
    d = copy_scenario("single-ok", tmp_path)
    edit_toml(d, lambda t: t.replace('bridge = "br2-external"\n', ""))
    hb, mac, vnet = _single_ok_slave_if2(d)
    # fw-slave's If2 NIC moved to br1-internal, persistent and live (ovs-vsctl shows it there)
    hb.edit_domain("fw-slave", edit_nic(mac, lambda b: b.replace("br2-external", "br1-internal")))

    def move(doc: Any) -> None:
        h = doc["headings"]
        pu = [r for r in host(d, "kvm-a").ovs_rows("Port")[1] if r[1] == vnet][0][0]
        for r in doc["data"]:
            refs = [u for u in _refs(r[h.index("ports")]) if u != pu]
            if r[h.index("name")] == "br1-internal":
                refs.append(pu)
            r[h.index("ports")] = ["set", refs]

    hb.edit_json("ovs-Bridge", move)
    result = run(d)
    assert statuses(result) == expected("single-ok", {(OVS2, "If1"): "fail", (OVS2, "If2"): "fail"})
    assert "br1-internal on kvm-a is also used by pair If1" in finding(result, OVS2, "If2").detail


# --- KVMHA-VIRT-001 --------------------------------------------------------------------------


def test_virt1_running_nic_without_ovs_port(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    remove_ovs_port(host(d, "kvm-b"), B_VNET2)
    result = run(d)
    assert statuses(result) == expected("two-ok", {(VIRT1, "fw-b:If2"): "fail"})
    f = finding(result, VIRT1, "fw-b:If2")
    assert f"running, but no OVS port carries MAC {B_IF2} (target {B_VNET2})" in f.detail
    assert f.remediation.startswith(f"virsh edit fw-b  # NIC {B_IF2}")


def test_virt1_port_found_by_attached_mac_when_target_dev_differs(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    # the live XML names a tap that OVS does not know; external_ids:attached-mac + vm-id find it
    edit_live(
        host(d, "kvm-b"),
        "fw-b",
        lambda x: x.replace(f"<target dev='{B_VNET2}'/>", "<target dev='vnet9'/>"),
    )
    result = run(d)
    assert statuses(result) == expected("two-ok")
    assert f"port {B_VNET2}" in finding(result, VIRT1, "fw-b:If2").detail


def test_virt1_attached_mac_of_another_vm_is_not_this_nic(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    hb = host(d, "kvm-b")
    edit_live(
        hb, "fw-b", lambda x: x.replace(f"<target dev='{B_VNET2}'/>", "<target dev='vnet9'/>")
    )

    def other_vm(doc: Any) -> None:
        h = doc["headings"]
        for r in doc["data"]:
            if r[h.index("name")] == B_VNET2:
                r[h.index("external_ids")] = [
                    "map",
                    [
                        [k, "0f0f0f0f-0000-4000-8000-000000000001" if k == "vm-id" else v]
                        for k, v in r[h.index("external_ids")][1]
                    ],
                ]

    hb.edit_json("ovs-Interface", other_vm)
    result = run(d)
    assert statuses(result)[(VIRT1, "fw-b:If2")] == "fail"


def macvtap(trust: bool) -> Callable[[str], str]:
    def apply(block: str) -> str:
        out = drop_vlan(drop_virtualport(block))
        out = re.sub(
            r"<interface type='bridge'>",
            "<interface type='direct'%s>" % (" trustGuestRxFilters='yes'" if trust else ""),
            out,
        )
        out = re.sub(r"<source bridge='[^']+'/>", "<source dev='eno2' mode='bridge'/>", out)
        return re.sub(r"<target dev='vnet\d+'/>", "<target dev='macvtap0'/>", out)

    return apply


@pytest.mark.parametrize(
    ("trust", "hb2"), [(False, "fail"), (True, "pass")], ids=["untrusted", "trusted"]
)
def test_virt1_macvtap_nic(tmp_path: Path, trust: bool, hb2: str) -> None:
    d = copy_scenario("single-ok", tmp_path)
    hb, mac, vnet = _single_ok_slave_if2(d)
    hb.edit_domain("fw-slave", edit_nic(mac, macvtap(trust)))
    remove_ovs_port(hb, vnet)
    result = run(d)
    assert statuses(result) == expected(
        "single-ok",
        {
            (VIRT1, "fw-slave:If2"): "fail",
            (OVS2, "If2"): "fail",
            (HB2, "fw-slave"): hb2,
            ("KVMHA-SRIOV-001", "fw-slave:If2"): hb2,  # the shared MAC needs trusted filters
        },
    )
    v = finding(result, VIRT1, "fw-slave:If2")
    assert "type='direct', not a bridge or OVS-backed network" in v.detail
    assert v.remediation.startswith("virsh edit fw-slave  # NIC")
    assert "<source bridge='br2-external'/><virtualport type='openvswitch'/>" in v.remediation
    h = finding(result, HB2, "fw-slave")
    if not trust:
        assert h.detail == f"fw-slave: NIC #2 ({mac}) is macvtap without trustGuestRxFilters='yes'"
        assert "<interface type='direct' trustGuestRxFilters='yes'>" in h.remediation


def test_virt1_network_without_virtualport(tmp_path: Path) -> None:
    d = copy_scenario("network-ok", tmp_path)
    hb = host(d, "kvm-a")
    (net,) = [n for n in hb.sections("network/") if "ha-br2-external" in hb.text(n)]
    hb.edit(net, lambda x: x.replace("  <virtualport type='openvswitch'/>\n", ""))
    # without it libvirt cannot plug the NIC into OVS: fw-slave is down, judged from its config
    stop_domain(hb, "fw-slave")
    result = run(d)
    # fw-master still runs on the network, but would fail at its next start too
    assert statuses(result) == expected(
        "network-ok", {(VIRT1, "fw-slave:If2"): "fail", (VIRT1, "fw-master:If2"): "fail"}
    )
    assert "the NIC fails at the next start" in finding(result, VIRT1, "fw-master:If2").detail
    f = finding(result, VIRT1, "fw-slave:If2")
    assert "virtualport is missing" in f.detail
    assert "type='network' source=br2-external virtualport=None" == f.found


def test_virt1_stopped_network_nic_with_virtualport_passes(tmp_path: Path) -> None:
    d = copy_scenario("network-ok", tmp_path)
    stop_domain(host(d, "kvm-a"), "fw-slave")
    result = run(d)
    assert statuses(result) == expected("network-ok")
    assert (
        "on OVS bridge br2-external with virtualport"
        in finding(result, VIRT1, "fw-slave:If2").detail
    )


def test_virt1_network_not_defined_is_an_error(tmp_path: Path) -> None:
    d = copy_scenario("network-ok", tmp_path)
    hb = host(d, "kvm-a")
    stop_domain(hb, "fw-slave")
    hb.edit_domain("fw-slave", lambda x: x.replace("network='ha-br2-external'", "network='ha-dmz'"))
    result = run(d)
    assert statuses(result)[(VIRT1, "fw-slave:If2")] == "error"
    assert (
        "libvirt network 'ha-dmz', which is not defined on kvm-a"
        in finding(result, VIRT1, "fw-slave:If2").detail
    )


# --- KVMHA-VIRT-002 / 003 --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda x: x.replace(
                "<target chassis='2' port='0x11'/>", "<target chassis='5' port='0x11'/>"
            ),
            "chassis=5",
        ),
        (
            lambda x: x.replace(
                "<target chassis='2' port='0x11'/>", "<target chassis='2' port='0x14'/>"
            ),
            "port=20",
        ),
    ],
    ids=["chassis", "port"],
)
def test_virt2_q35_root_ports_differ(tmp_path: Path, edit: Any, message: str) -> None:
    d = copy_scenario("q35-ok", tmp_path)
    host(d, "kvm-a").edit_domain("fw-slave", edit)
    result = run(d)
    assert statuses(result) == expected("q35-ok", {(VIRT2, "If2"): "fail"})
    f = finding(result, VIRT2, "If2")
    assert "the PCI controllers behind bus 0x02 differ" in f.detail
    assert message in f.found and "fw-slave: pcie-root-port index=2" in f.found
    assert "index='2' model='pcie-root-port'" in f.remediation


def test_virt2_q35_function_differs(tmp_path: Path) -> None:
    d = copy_scenario("q35-ok", tmp_path)
    host(d, "kvm-a").edit_domain(
        "fw-slave",
        edit_nic(
            SLAVE_IF2,
            lambda b: b.replace(
                "bus='0x02' slot='0x00' function='0x0'", "bus='0x02' slot='0x00' function='0x1'"
            ),
        ),
    )
    result = run(d)
    assert statuses(result) == expected("q35-ok", {(VIRT2, "If2"): "fail"})
    f = finding(result, VIRT2, "If2")
    assert f.found == "fw-master: 0000:02:00.0, fw-slave: 0000:02:00.1"
    assert f.remediation == (
        f"virsh edit fw-slave  # NIC {SLAVE_IF2}: <address type='pci' domain='0x0000' "
        "bus='0x02' slot='0x00' function='0x0'/>"
    )


def test_virt2_missing_pci_address(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    host(d, "kvm-b").edit_domain(
        "fw-b", edit_nic(B_IF1, lambda b: re.sub(r"      <address type='pci'[^>]*/>\n", "", b))
    )
    result = run(d)
    assert statuses(result) == expected("two-ok", {(VIRT2, "If1"): "fail"})
    assert "fw-b: no PCI address" in finding(result, VIRT2, "If1").detail


def test_virt3_model_differs(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    host(d, "kvm-b").edit_domain(
        "fw-b",
        edit_nic(B_IF2, lambda b: b.replace("<model type='virtio'/>", "<model type='e1000'/>")),
    )
    result = run(d)
    assert statuses(result) == expected("two-ok", {(VIRT3, "If2"): "fail"})
    f = finding(result, VIRT3, "If2")
    assert f.check.severity is Severity.MEDIUM
    assert f.found == "fw-a: virtio, fw-b: e1000"
    assert f.remediation == "virsh edit fw-b  # NIC #2: <model type='virtio'/>"


# --- drift: running now, broken at the next start ---------------------------------------------


def test_virt1_persistent_xml_lost_virtualport(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    edit_inactive(host(d, "kvm-b"), "fw-b", lambda x: drop_virtualport(x))
    result = run(d)
    assert statuses(result) == expected(
        "two-ok", {(VIRT1, "fw-b:If1"): "fail", (VIRT1, "fw-b:If2"): "fail"}
    )
    assert "persistent XML lacks <virtualport" in finding(result, VIRT1, "fw-b:If1").detail
