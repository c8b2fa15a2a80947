"""checks/vlan.py: each pair has its own VLAN between the servers (KVMHA-VLAN-001), and the
uplink carries every pair's VLAN (KVMHA-VLAN-002).

How the tests edit and audit a recorded scenario: tests/checks/__init__.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ..bundlekit import (
    HostBundle,
    copy_scenario,
    drop_vlan,
    edit_inactive,
    edit_nic,
    edit_toml,
    finding,
    host,
    remove_ovs_port,
    run,
    stop_domain,
)
from ..remedykit import apply_remediation
from .checkkit import (
    A_IF1,
    A_IF2,
    A_VNET1,
    A_VNET2,
    B_IF1,
    B_IF2,
    B_VNET1,
    B_VNET2,
    HB1,
    VLAN1,
    VLAN2,
    expected,
    statuses,
    undeclare_vlans,
)

# --- KVMHA-VLAN-001 --------------------------------------------------------------------------


def untag_vm_ports(hb: HostBundle, domain: str, ports: tuple[str, ...]) -> None:
    """The VM ports carry no access tag, live or in the persistent XML."""
    for p in ports:
        hb.edit_ovs_row("Port", p, "tag", ["set", []])
    hb.edit_domain(domain, drop_vlan)


@pytest.mark.parametrize("hosts", [("kvm-a",), ("kvm-a", "kvm-b")], ids=["one-server", "both"])
def test_vlan1_tag_on_patch_port(tmp_path: Path, hosts: tuple[str, ...]) -> None:
    d = copy_scenario("two-ok", tmp_path)
    vm = {"kvm-a": ("fw-a", (A_VNET1, A_VNET2)), "kvm-b": ("fw-b", (B_VNET1, B_VNET2))}
    for h in hosts:
        hb = host(d, h)
        untag_vm_ports(hb, *vm[h])
        hb.edit_ovs_row("Port", "patch-1-out", "tag", 101)
        hb.edit_ovs_row("Port", "patch-2-out", "tag", 102)
    result = run(d)
    assert statuses(result) == expected("two-ok")
    if hosts == ("kvm-a", "kvm-b"):
        assert "patch port tag on bridge br1-internal" in finding(result, VLAN1, "If1").detail


def test_vlan1_vm_ports_untagged(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    untag_vm_ports(host(d, "kvm-a"), "fw-a", (A_VNET1, A_VNET2))
    result = run(d)
    assert statuses(result) == expected("two-ok", {(VLAN1, "If1"): "fail", (VLAN1, "If2"): "fail"})
    f = finding(result, VLAN1, "If2")
    assert "untagged on fw-a@kvm-a" in f.detail
    assert f.found == "fw-a@kvm-a: untagged, fw-b@kvm-b: 102"
    assert f.remediation.splitlines() == [
        f"ovs-vsctl set port {A_VNET2} tag=102  # on kvm-a, now",
        f"virsh edit fw-a  # on kvm-a, NIC {A_IF2}: <vlan><tag id='102'/></vlan>",
    ]


@pytest.mark.parametrize(
    ("keep_vlan", "status"), [(True, "pass"), (False, "fail")], ids=["vlan-in-xml", "no-vlan"]
)
def test_vlan1_stopped_domain_judged_from_inactive_xml(
    tmp_path: Path, keep_vlan: bool, status: str
) -> None:
    d = copy_scenario("two-ok", tmp_path)
    hb = host(d, "kvm-b")
    stop_domain(hb, "fw-b")
    if not keep_vlan:
        hb.edit_domain("fw-b", edit_nic(B_IF2, drop_vlan))
    result = run(d)
    assert statuses(result) == expected("two-ok", {(VLAN1, "If2"): status})
    if not keep_vlan:
        f = finding(result, VLAN1, "If2")
        assert f.found == "fw-a@kvm-a: 102, fw-b@kvm-b: untagged"
        assert (
            f.remediation
            == f"virsh edit fw-b  # on kvm-b, NIC {B_IF2}: <vlan><tag id='102'/></vlan>"
        )


@pytest.mark.parametrize("declared", [True, False], ids=["declared", "undeclared"])
def test_vlan1_different_vlan_on_the_two_servers(tmp_path: Path, declared: bool) -> None:
    d = copy_scenario("two-ok", tmp_path)
    if not declared:
        undeclare_vlans(d)
    hb = host(d, "kvm-b")
    hb.edit_ovs_row("Port", B_VNET2, "tag", 202)
    hb.edit_domain(
        "fw-b", edit_nic(B_IF2, lambda b: b.replace("<tag id='102'/>", "<tag id='202'/>"))
    )
    result = run(d)
    changes = {(VLAN1, "If2"): "fail"}
    if not declared:  # then the uplink must carry what the port uses
        changes[(VLAN2, "kvm-b")] = "fail"
    assert statuses(result) == expected("two-ok", changes)
    f = finding(result, VLAN1, "If2")
    assert "VLANs differ between the servers" in f.detail
    assert f.found == "fw-a@kvm-a: 102, fw-b@kvm-b: 202"
    if declared:
        assert "declared VLAN is 102" in f.detail
        assert (
            f.remediation.splitlines()[0]
            == f"ovs-vsctl set port {B_VNET2} tag=102  # on kvm-b, now"
        )
    else:
        assert "VLAN 202 not carried by up-b" in finding(result, VLAN2, "kvm-b").detail


def test_vlan1_undeclared_mismatch_remediation_follows_the_master(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    undeclare_vlans(d)
    hb = host(d, "kvm-b")
    hb.edit_ovs_row("Port", B_VNET2, "tag", 202)
    hb.edit_domain(
        "fw-b", edit_nic(B_IF2, lambda b: b.replace("<tag id='102'/>", "<tag id='202'/>"))
    )
    assert finding(run(d), VLAN1, "If2").remediation.splitlines() == [
        f"ovs-vsctl set port {B_VNET2} tag=102  # on kvm-b, now",
        f"virsh edit fw-b  # on kvm-b, NIC {B_IF2}: <vlan><tag id='102'/></vlan>",
    ]


def test_vlan1_declared_vlan_differs(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    edit_toml(d, lambda t: t.replace("vlan = 101", "vlan = 111"))
    result = run(d)
    # the uplinks trunk [101, 102]: the declared 111 is not carried either
    assert statuses(result) == expected(
        "two-ok", {(VLAN1, "If1"): "fail", (VLAN2, "kvm-a"): "fail", (VLAN2, "kvm-b"): "fail"}
    )
    f = finding(result, VLAN1, "If1")
    assert "declared VLAN is 111" in f.detail
    assert f.remediation.splitlines() == [
        f"ovs-vsctl set port {A_VNET1} tag=111  # on kvm-a, now",
        f"virsh edit fw-a  # on kvm-a, NIC {A_IF1}: <vlan><tag id='111'/></vlan>",
        f"ovs-vsctl set port {B_VNET1} tag=111  # on kvm-b, now",
        f"virsh edit fw-b  # on kvm-b, NIC {B_IF1}: <vlan><tag id='111'/></vlan>",
    ]


def test_vlan1_two_pairs_one_vlan(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    edit_toml(d, lambda t: t.replace("vlan = 102\n", ""))
    for h, dom, mac, vnet in (("kvm-a", "fw-a", A_IF2, A_VNET2), ("kvm-b", "fw-b", B_IF2, B_VNET2)):
        hb = host(d, h)
        hb.edit_ovs_row("Port", vnet, "tag", 101)
        hb.edit_domain(
            dom, edit_nic(mac, lambda b: b.replace("<tag id='102'/>", "<tag id='101'/>"))
        )
    result = run(d)
    assert statuses(result) == expected("two-ok", {(VLAN1, "If1"): "fail", (VLAN1, "If2"): "fail"})
    assert "VLAN 101 is also used by pair If1" in finding(result, VLAN1, "If2").detail


# --- KVMHA-VLAN-002 --------------------------------------------------------------------------


def test_vlan2_uplink_misses_a_vlan(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    host(d, "kvm-a").edit_ovs_row("Port", "up-a", "trunks", ["set", [101]])
    result = run(d)
    assert statuses(result) == expected("two-ok", {(VLAN2, "kvm-a"): "fail"})
    f = finding(result, VLAN2, "kvm-a")
    assert f.detail == "kvm-a: pair If2: VLAN 102 not carried by up-a (trunk, trunks [101])"
    assert f.remediation == "ovs-vsctl add port up-a trunks 102"


def test_vlan2_empty_trunks_carry_all(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    host(d, "kvm-a").edit_ovs_row("Port", "up-a", "trunks", ["set", []])
    result = run(d)
    assert statuses(result) == expected("two-ok")
    assert finding(result, VLAN2, "kvm-a").detail == "kvm-a: uplinks carry VLANs 101, 102"


def _access_uplink(hb: HostBundle) -> None:
    hb.edit_ovs_row("Port", "up-a", "tag", 101)
    hb.edit_ovs_row("Port", "up-a", "trunks", ["set", []])
    hb.edit_ovs_row("Port", "up-a", "vlan_mode", "access")


def test_vlan2_uplink_in_access_mode(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    _access_uplink(host(d, "kvm-a"))
    result = run(d)
    assert statuses(result) == expected("two-ok", {(VLAN2, "kvm-a"): "fail"})
    f = finding(result, VLAN2, "kvm-a")
    assert "pair If1: VLAN 101 not carried by up-a (access, trunks all)" in f.detail
    assert "pair If2: VLAN 102 not carried by up-a (access, trunks all)" in f.detail


def test_vlan2_access_uplink_remediation_changes_the_mode(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    _access_uplink(host(d, "kvm-a"))
    remediation = finding(run(d), VLAN2, "kvm-a").remediation
    # One command: two ``set ... trunks=`` in a row would leave only the second VLAN carried.
    assert remediation == (
        "ovs-vsctl clear port up-a tag -- set port up-a vlan_mode=trunk trunks=101,102"
    )
    apply_remediation(d, "kvm-a", remediation)
    assert statuses(run(d)) == expected("two-ok")


@pytest.mark.parametrize(
    ("tag", "trunks", "mode", "command"),
    [
        # the trunk already carries 103: it keeps it
        (101, [103], "access", "ovs-vsctl clear port up-a tag -- set port up-a vlan_mode=trunk "
         "trunks=101,102,103"),
        # native-untagged sends its native VLAN 101 untagged; 102 is missing from the set
        (101, [103], "native-untagged", "ovs-vsctl set port up-a vlan_mode=native-tagged -- add "
         "port up-a trunks 102"),
        # an empty trunks set carries all: only the native VLAN's mode changes
        (102, [], "native-untagged", "ovs-vsctl set port up-a vlan_mode=native-tagged"),
        (None, [103], "trunk", "ovs-vsctl add port up-a trunks 101 102"),
    ],
    ids=["access-keeps-trunks", "native-untagged", "native-untagged-all", "trunk"],
)  # fmt: skip
def test_vlan2_uplink_remediation_applied_carries_both(
    tmp_path: Path, tag: int | None, trunks: list[int], mode: str, command: str
) -> None:
    d = copy_scenario("two-ok", tmp_path)
    hb = host(d, "kvm-a")
    hb.edit_ovs_row("Port", "up-a", "tag", tag if tag is not None else ["set", []])
    hb.edit_ovs_row("Port", "up-a", "trunks", ["set", trunks])
    hb.edit_ovs_row("Port", "up-a", "vlan_mode", mode)
    f = finding(run(d), VLAN2, "kvm-a")
    assert (f.status, f.remediation) == ("fail", command)
    apply_remediation(d, "kvm-a", f.remediation)
    assert statuses(run(d)) == expected("two-ok")


def test_vlan2_native_tagged_uplink_carries_its_native_vlan(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    hb = host(d, "kvm-a")
    hb.edit_ovs_row("Port", "up-a", "tag", 102)
    hb.edit_ovs_row("Port", "up-a", "trunks", ["set", [101]])
    hb.edit_ovs_row("Port", "up-a", "vlan_mode", "native-tagged")
    assert statuses(run(d)) == expected("two-ok")


def test_vlan2_no_uplink(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    remove_ovs_port(host(d, "kvm-a"), "up-a")
    result = run(d)
    assert statuses(result) == expected(
        "two-ok", {(VLAN2, "kvm-a"): "fail", (HB1, "kvm-a"): "fail"}
    )
    f = finding(result, VLAN2, "kvm-a")
    assert "pair If1 (VLAN 101): no uplink reachable from br1-internal" in f.detail
    assert f.remediation.splitlines() == [
        "# on kvm-a: add the physical NIC that reaches the other server to bridge br1-internal"
        " as a trunk carrying VLAN 101 (ovs-vsctl add-port with trunks)",
        "# on kvm-a: add the physical NIC that reaches the other server to bridge br2-external"
        " as a trunk carrying VLAN 102 (ovs-vsctl add-port with trunks)",
    ]
    assert "no physical uplink" in finding(result, HB1, "kvm-a").detail


# --- drift: running now, broken at the next start ---------------------------------------------


def test_vlan1_live_only_tag_is_lost_at_next_start(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    edit_inactive(
        host(d, "kvm-b"), "fw-b", lambda x: x.replace("<tag id='102'/>", "<tag id='202'/>")
    )
    result = run(d)
    assert statuses(result) == expected("two-ok", {(VLAN1, "If2"): "fail"})
    assert (
        "fw-b@kvm-b: VLAN 102 is set on the running port only; the persistent XML says 202"
        in finding(result, VLAN1, "If2").detail
    )
