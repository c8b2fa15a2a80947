"""Check logic that mutation testing (scripts/mutation) showed no test could fail.

Each test kills one or more cosmic-ray mutants that made a check pass on a wrong configuration
(docs/mutation.md lists the survivors that remain and why they are harmless). Like the other
tests in tests/checks they edit a recorded bundle's raw evidence and audit it through the real
parsers; every finding not named in the test keeps the scenario's recorded status.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ..bundlekit import (
    BUNDLES,
    NIC,
    HostBundle,
    add_nwfilter,
    add_section,
    bond_uplink,
    copy_scenario,
    domain_uuid,
    drop_vlan,
    edit_inactive,
    edit_nic,
    edit_toml,
    failing,
    finding,
    host,
    remove_ovs_port,
    run,
    set_section,
    stop_domain,
    undefine_domain,
    use_filter,
)
from .checkkit import (
    A_IF2,
    A_VNET2,
    B_IF1,
    B_IF2,
    B_VNET2,
    HB1,
    HB2,
    HB3,
    OVS1,
    OVS2,
    TOPO1,
    TOPO2,
    VIRT1,
    VIRT2,
    VIRT3,
    VLAN1,
    VLAN2,
    Key,
    add_third_member,
    expected,
    statuses,  # without KVMHA-TRACE-001, as in the other check tests
    undeclare_vlans,
)

NO_PAIRS = re.compile(r"\n\[\[clusters\.edge-fw\.pairs\]\]\n(?:[a-z]+ = .*\n)+")


def drop_pairs(d: Path) -> None:
    """The inventory names the members only: pairs come from the members' NICs."""
    edit_toml(d, lambda t: NO_PAIRS.sub("", t))


# --- KVMHA-VIRT-001: the persistent XML moves a running NIC ----------------------------------


def test_virt1_persistent_xml_moves_the_nic_to_another_bridge(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    edit_inactive(
        host(d, "kvm-b"),
        "fw-b",
        edit_nic(B_IF2, lambda b: b.replace("bridge='br2-external'", "bridge='br1-internal'")),
    )
    result = run(d)
    assert statuses(result) == expected("two-ok", {(VIRT1, "fw-b:If2"): "fail"})
    assert (
        "persistent XML puts it on br1-internal: it moves there at the next start"
        in finding(result, VIRT1, "fw-b:If2").detail
    )


def test_virt1_port_found_by_target_dev_alone(tmp_path: Path) -> None:
    """A port whose Interface row lacks external_ids:attached-mac (plugged by hand, or by an
    older libvirt) is still the NIC's port: OVS knows the tap by the name the live XML gives."""
    d = copy_scenario("two-ok", tmp_path)

    def no_attached_mac(doc: Any) -> None:
        h = doc["headings"]
        for r in doc["data"]:
            if r[h.index("name")] == B_VNET2:
                ids = r[h.index("external_ids")][1]
                r[h.index("external_ids")] = ["map", [kv for kv in ids if kv[0] != "attached-mac"]]

    host(d, "kvm-b").edit_json("ovs-Interface", no_attached_mac)
    result = run(d)
    assert statuses(result) == expected("two-ok")
    assert f"port {B_VNET2} with virtualport" in finding(result, VIRT1, "fw-b:If2").detail


# --- KVMHA-VIRT-002 ----------------------------------------------------------------------------


def no_pci_address(block: str) -> str:
    return re.sub(r"      <address type='pci'[^>]*/>\n", "", block)


def test_virt2_both_nics_without_pci_address(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    host(d, "kvm-a").edit_domain("fw-a", edit_nic(A_IF2, no_pci_address))
    host(d, "kvm-b").edit_domain("fw-b", edit_nic(B_IF2, no_pci_address))
    result = run(d)
    assert statuses(result) == expected("two-ok", {(VIRT2, "If2"): "fail"})
    assert finding(result, VIRT2, "If2").detail == (
        "NIC #2 has no PCI address: fw-a: no PCI address, fw-b: no PCI address"
    )


# --- KVMHA-TOPO-001: declared pairs against the NICs --------------------------------------------


def test_topo1_more_pairs_declared_than_nics(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    edit_toml(d, lambda t: t + '\n[[clusters.edge-fw.pairs]]\nname = "If3"\nvlan = 103\n')
    result = run(d)
    st = statuses(result)
    assert st[(TOPO1, "edge-fw")] == "fail"
    assert finding(result, TOPO1, "edge-fw").detail == (
        "3 pairs declared but the members have 2 NICs"
    )
    # If3 has no NIC to judge: every check of it is an error, none a pass
    if3 = {k: v for k, v in st.items() if k[1] in ("If3", "fw-a:If3", "fw-b:If3")}
    assert if3 and set(if3.values()) == {"error"}


def test_topo1_fewer_pairs_declared_than_nics_passes(tmp_path: Path) -> None:
    """Declaring only the pairs that matter (If1 of two NICs) is allowed."""
    d = copy_scenario("two-ok", tmp_path)
    edit_toml(d, lambda t: t[: t.index('[[clusters.edge-fw.pairs]]\nname = "If2"')])
    result = run(d)
    assert statuses(result)[(TOPO1, "edge-fw")] == "pass"
    assert finding(result, TOPO1, "edge-fw").detail == "2 members (fw-a, fw-b), 2 NICs each"
    assert not [k for k in statuses(result) if "If2" in k[1]]


# --- Cluster.pairs(): an inventory without pairs ------------------------------------------------


def test_undeclared_pairs_come_from_the_nics(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    drop_pairs(d)
    result = run(d)
    # the same pair checks, named If1 and If2 like the recording's declared pairs
    assert statuses(result) == expected("two-ok")
    assert "pair If2 on its own OVS bridge br2-external" in finding(result, OVS2, "If2").detail


def test_undeclared_pairs_follow_the_member_with_the_most_nics(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    drop_pairs(d)
    hb = host(d, "kvm-a")
    hb.edit_domain("fw-a", edit_nic(A_IF2, lambda _: ""))  # fw-a has one NIC left
    remove_ovs_port(hb, A_VNET2)
    result = run(d)
    st = statuses(result)
    assert st[(TOPO1, "edge-fw")] == "fail"
    # If2 still exists (fw-b has two NICs), and fw-a's missing NIC is an error, not a pass
    for key in [(OVS2, "If2"), (VIRT1, "fw-a:If2"), (VIRT2, "If2"), (VIRT3, "If2")]:
        assert st[key] == "error", key
    assert st[(VIRT1, "fw-b:If2")] == "pass"


def test_undeclared_pairs_with_a_member_undefined(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    drop_pairs(d)
    undefine_domain(host(d, "kvm-b"), "fw-b")
    result = run(d)
    st = statuses(result)
    assert st[(TOPO1, "edge-fw")] == "fail"
    # the pairs are read from fw-a; fw-b's side of each is an error
    assert st[(VIRT1, "fw-a:If2")] == "pass"
    assert st[(VIRT1, "fw-b:If2")] == "error"
    assert st[(OVS2, "If2")] == "error"


# --- KVMHA-VLAN-001: the live port decides for a running NIC ------------------------------------


def test_vlan1_running_port_untagged_although_the_xml_has_a_vlan(tmp_path: Path) -> None:
    """``ovs-vsctl remove port vnetN tag 102`` on a running domain: the NIC is untagged now,
    whatever its XML says (the XML only comes back at the next start)."""
    d = copy_scenario("two-ok", tmp_path)
    host(d, "kvm-a").edit_ovs_row("Port", A_VNET2, "tag", ["set", []])
    result = run(d)
    assert statuses(result) == expected("two-ok", {(VLAN1, "If2"): "fail"})
    f = finding(result, VLAN1, "If2")
    assert f.found == "fw-a@kvm-a: untagged, fw-b@kvm-b: 102"
    assert f.remediation == f"ovs-vsctl set port {A_VNET2} tag=102  # on kvm-a, now"


# --- VLANs from a libvirt network (<vlan>, portgroups) -------------------------------------------

NET_UUID = "5e7c1d2a-0000-4000-8000-0000000000a2"


def network_nic(hb: HostBundle, net: str, body: str, nic_source: str) -> None:
    """fw-b (stopped) takes If2 from libvirt network ``net`` (no <vlan> of its own)."""
    add_section(
        hb,
        f"network/{NET_UUID}",
        f"<network>\n  <name>{net}</name>\n  <uuid>{NET_UUID}</uuid>\n"
        "  <forward mode='bridge'/>\n  <bridge name='br2-external'/>\n"
        f"  <virtualport type='openvswitch'/>\n{body}</network>\n",
    )
    hb.edit("virsh-networks", lambda t: t + f"{NET_UUID}\n")
    stop_domain(hb, "fw-b")

    def to_network(block: str) -> str:
        block = drop_vlan(block).replace("<interface type='bridge'>", "<interface type='network'>")
        block = re.sub(
            r"<virtualport type='openvswitch'>.*?</virtualport>\n\s*", "", block, flags=re.S
        )
        return block.replace("<source bridge='br2-external'/>", nic_source)

    hb.edit_domain("fw-b", edit_nic(B_IF2, to_network))


@pytest.mark.parametrize(
    ("body", "source", "status"),
    [
        ("  <vlan><tag id='102'/></vlan>\n", "<source network='ha-if2'/>", "pass"),
        ("  <vlan><tag id='202'/></vlan>\n", "<source network='ha-if2'/>", "fail"),
        (
            "  <vlan><tag id='202'/></vlan>\n"
            "  <portgroup name='ha'><vlan><tag id='102'/></vlan></portgroup>\n",
            "<source network='ha-if2' portgroup='ha'/>",
            "pass",
        ),
        (
            "  <vlan><tag id='202'/></vlan>\n"
            "  <portgroup name='ha' default='yes'><vlan><tag id='102'/></vlan></portgroup>\n",
            "<source network='ha-if2'/>",
            "pass",
        ),
        (
            "  <portgroup name='ha' default='yes'><vlan><tag id='202'/></vlan></portgroup>\n"
            "  <portgroup name='ha2'><vlan><tag id='102'/></vlan></portgroup>\n",
            "<source network='ha-if2' portgroup='ha2'/>",
            "pass",
        ),
        (
            "  <vlan><tag id='102'/></vlan>\n"
            "  <portgroup name='ha' default='yes'><vlan><tag id='202'/></vlan></portgroup>\n",
            "<source network='ha-if2'/>",
            "fail",
        ),
        (
            "  <vlan trunk='yes'><tag id='102'/><tag id='103'/></vlan>\n",
            "<source network='ha-if2'/>",
            "fail",
        ),
        (
            # several tags make a trunk in libvirt, trunk='yes' or not: no access VLAN
            "  <vlan><tag id='102'/><tag id='103'/></vlan>\n",
            "<source network='ha-if2'/>",
            "fail",
        ),
    ],
    ids=[
        "network-vlan",
        "network-vlan-differs",
        "portgroup",
        "default-portgroup",
        "named-portgroup-over-default",
        "default-portgroup-over-network-vlan",
        "network-trunk",
        "network-two-tags",
    ],
)
def test_vlan1_vlan_from_a_libvirt_network(
    tmp_path: Path, body: str, source: str, status: str
) -> None:
    d = copy_scenario("two-ok", tmp_path)
    network_nic(host(d, "kvm-b"), "ha-if2", body, source)
    result = run(d)
    changes: dict[tuple[str, str], str] = {(VLAN1, "If2"): status}
    assert statuses(result) == expected("two-ok", changes)
    f = finding(result, VLAN1, "If2")
    if status == "pass":
        assert f.detail == f"pair If2: VLAN 102 on both servers (OVS access tag on port {A_VNET2})"
        assert (
            "on OVS bridge br2-external with virtualport"
            in finding(result, VIRT1, "fw-b:If2").detail
        )
    else:
        assert not f.found.endswith("fw-b@kvm-b: 102")


# --- KVMHA-HB-002: a diamond of nested filters ---------------------------------------------------


def test_hb2_spoofing_filter_behind_a_diamond(tmp_path: Path) -> None:
    """ha-guard -> (ha-left, ha-right); both reach ha-base, which is harmless; only ha-left also
    nests no-mac-spoofing. The walk meets ha-base twice before it reaches the spoofing filter."""
    d = copy_scenario("two-ok", tmp_path)
    hb = host(d, "kvm-b")
    filters = {
        "ha-guard": ["ha-left", "ha-right"],
        "ha-left": ["no-mac-spoofing", "ha-base"],
        "ha-right": ["ha-base"],
        "ha-base": ["allow-arp"],
    }
    for i, (name, refs) in enumerate(filters.items()):
        add_nwfilter(hb, name, f"a5e1f0c2-0000-4000-8000-0000000001{i:02d}", refs)
    use_filter(hb, "fw-b", B_IF1, "ha-guard")
    result = run(d)
    assert statuses(result) == expected("two-ok", {(HB2, "fw-b"): "fail"})
    assert finding(result, HB2, "fw-b").detail.startswith(
        f"fw-b: NIC #1 ({B_IF1}) filter ha-guard -> ha-left -> no-mac-spoofing drops "
    )


# --- messages that name the wrong thing --------------------------------------------------------


def test_topo2_single_server_names_the_host(tmp_path: Path) -> None:
    result = run(BUNDLES / "single-ok")
    f = finding(result, TOPO2, "edge-fw")
    assert (f.status, f.found) == ("fail", "both members on kvm-a")


def test_virt1_detail_names_the_nic(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    edit_inactive(
        host(d, "kvm-b"),
        "fw-b",
        edit_nic(B_IF2, lambda b: b.replace("bridge='br2-external'", "bridge='br1-internal'")),
    )
    f = finding(run(d), VIRT1, "fw-b:If2")
    assert f.detail == (
        f"fw-b NIC #2 ({B_IF2}): persistent XML puts it on br1-internal: "
        "it moves there at the next start"
    )
    assert f.expected == (
        "type='bridge' on OVS bridge br2-external with <virtualport type='openvswitch'/>"
    )


def test_network_not_defined_names_the_nic(tmp_path: Path) -> None:
    d = copy_scenario("network-ok", tmp_path)
    hb = host(d, "kvm-a")
    stop_domain(hb, "fw-slave")
    hb.edit_domain("fw-slave", lambda x: x.replace("network='ha-br2-external'", "network='ha-dmz'"))
    f = finding(run(d), VIRT1, "fw-slave:If2")
    assert f.status == "error"
    assert (
        "fw-slave: NIC #2 uses libvirt network 'ha-dmz', which is not defined on kvm-a" in f.detail
    )


def test_undeclared_pairs_without_any_member_domain(tmp_path: Path) -> None:
    """Nothing to count NICs from: no pair checks at all (TOPO-001 fails the cluster)."""
    d = copy_scenario("two-ok", tmp_path)
    drop_pairs(d)
    undefine_domain(host(d, "kvm-a"), "fw-a")
    undefine_domain(host(d, "kvm-b"), "fw-b")
    result = run(d)
    st = statuses(result)
    assert st[(TOPO1, "edge-fw")] == "fail"
    assert not [k for k in st if k[1].startswith("If") or ":If" in k[1]]


# --- KVMHA-VLAN-001/002: whose NIC, whose fix ---------------------------------------------------


def test_vlan1_remediation_covers_every_member_after_a_patch_port(tmp_path: Path) -> None:
    """fw-a's If2 takes its VLAN from a wrongly tagged patch port, fw-b's port and XML are wrong
    too: the remediation fixes both, not only the first."""
    d = copy_scenario("two-ok", tmp_path)
    a = host(d, "kvm-a")
    a.edit_ovs_row("Port", A_VNET2, "tag", ["set", []])
    a.edit_domain("fw-a", edit_nic(A_IF2, drop_vlan))
    a.edit_ovs_row("Port", "patch-2-out", "tag", 202)
    b = host(d, "kvm-b")
    b.edit_ovs_row("Port", B_VNET2, "tag", 302)
    b.edit_domain(
        "fw-b", edit_nic(B_IF2, lambda x: x.replace("<tag id='102'/>", "<tag id='302'/>"))
    )
    f = failing(run(d), VLAN1, "If2")
    assert f.remediation.splitlines() == [
        "# on kvm-a: tag the patch port of br2-external with VLAN 102",
        f"ovs-vsctl set port {B_VNET2} tag=102  # on kvm-b, now",
        f"virsh edit fw-b  # on kvm-b, NIC {B_IF2}: <vlan><tag id='102'/></vlan>",
    ]


def test_vlan2_judges_each_host_by_its_own_member(tmp_path: Path) -> None:
    """Undeclared VLANs, fw-a on 202: kvm-a's uplink misses it, kvm-b's (fw-b on 102) does not."""
    d = copy_scenario("two-ok", tmp_path)
    undeclare_vlans(d)
    a = host(d, "kvm-a")
    a.edit_ovs_row("Port", A_VNET2, "tag", 202)
    a.edit_domain(
        "fw-a", edit_nic(A_IF2, lambda x: x.replace("<tag id='102'/>", "<tag id='202'/>"))
    )
    result = run(d)
    assert statuses(result) == expected(
        "two-ok", {(VLAN1, "If2"): "fail", (VLAN2, "kvm-a"): "fail"}
    )
    assert "VLAN 202 not carried by" in finding(result, VLAN2, "kvm-a").detail


def test_undeclared_pairs_when_the_first_member_host_is_broken(tmp_path: Path) -> None:
    """kvm-a's bundle is unreadable: the pairs come from fw-b's NICs, each an error for fw-a."""
    d = copy_scenario("two-ok", tmp_path)
    drop_pairs(d)
    (d / "kvm-a" / "bundle.json").write_text("{not json")
    st = statuses(run(d))
    for key in [(VIRT2, "If1"), (VIRT2, "If2"), (VIRT1, "fw-a:If2")]:
        assert st[key] == "error", key
    assert st[(VIRT1, "fw-b:If2")] == "pass"


@pytest.mark.parametrize(
    ("mac", "old", "new"),
    [(B_IF2, "br2-external", "br1-internal"), (B_IF1, "br1-internal", "br2-external")],
    ids=["if2-to-br1", "if1-to-br2"],
)
def test_virt1_persistent_bridge_differs_either_way(
    tmp_path: Path, mac: str, old: str, new: str
) -> None:
    d = copy_scenario("two-ok", tmp_path)
    edit_inactive(
        host(d, "kvm-b"),
        "fw-b",
        edit_nic(mac, lambda b: b.replace(f"bridge='{old}'", f"bridge='{new}'")),
    )
    pair = "If2" if mac == B_IF2 else "If1"
    result = run(d)
    assert statuses(result) == expected("two-ok", {(VIRT1, f"fw-b:{pair}"): "fail"})
    assert f"persistent XML puts it on {new}" in finding(result, VIRT1, f"fw-b:{pair}").detail


def test_virt1_live_only_nic_is_gone_at_the_next_start(tmp_path: Path) -> None:
    """``virsh attach-interface --live`` (no --config): the NIC runs, but the persistent XML does
    not have it, so it is gone at the next start."""
    d = copy_scenario("two-ok", tmp_path)
    edit_inactive(host(d, "kvm-b"), "fw-b", edit_nic(B_IF2, lambda _: ""))
    result = run(d)
    f = failing(result, VIRT1, "fw-b:If2")
    assert "not in the persistent XML" in f.detail


def test_unreachable_host_errors_say_why(tmp_path: Path) -> None:
    """An unreachable host's checks give its connection error, not "no libvirt facts"."""
    result = run(BUNDLES / "unreachable")
    f = finding(result, VIRT1, "fw-b:If1")
    assert f.status == "error"
    assert "kvm-b: ssh: connect to host" in f.detail and "Connection refused" in f.detail


def user_nic(mac: str) -> Callable[[str], str]:
    """A user-mode (SLIRP) NIC in place of the OVS one: no bridge, no tap, no VLAN."""

    def apply(block: str) -> str:
        address = re.search(r"      <address type='pci'[^>]*/>\n", block)
        assert address is not None
        return (
            f"    <interface type='user'>\n      <mac address='{mac}'/>\n"
            f"      <model type='virtio'/>\n{address.group(0)}    </interface>\n"
        )

    return apply


def test_user_mode_nic_fails_and_gets_a_bridge_named_after_the_pair(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    drop_pairs(d)
    hb = host(d, "kvm-a")
    hb.edit_domain("fw-a", edit_nic(A_IF2, user_nic(A_IF2)))
    remove_ovs_port(hb, A_VNET2)
    result = run(d)
    st = statuses(result)
    assert (st[(VIRT1, "fw-a:If2")], st[(OVS2, "If2")], st[(VLAN1, "If2")]) == (
        "fail",
        "fail",
        "fail",
    )
    v = finding(result, VIRT1, "fw-a:If2")
    assert "type='user', not a bridge or OVS-backed network" in v.detail
    o = finding(result, OVS2, "If2")
    assert "ovs-vsctl --may-exist add-br br-if2  # on kvm-a" in o.remediation.splitlines()


def test_topology_views_are_frozen_and_slotted(tmp_path: Path) -> None:
    """Checks share one Cluster per audit: nothing may change a member or a placement."""
    from pytest_kvmha.bundle.store import EvidenceBundle
    from pytest_kvmha.config.inventory import load_inventory
    from pytest_kvmha.parse.host import parse_bundle
    from pytest_kvmha.topology import Cluster, Member

    inv = load_inventory(BUNDLES / "two-ok" / "clusters.toml")
    spec = inv.clusters[0]
    facts = {
        h: parse_bundle(EvidenceBundle.read(BUNDLES / "two-ok" / h)) for h in ("kvm-a", "kvm-b")
    }
    cluster = Cluster(spec, tuple(Member(m, facts[m.host]) for m in spec.members))
    member = cluster.members[0]
    placement = cluster.placement(member, 0)
    for obj, attr in [(member, "host"), (placement, "vlan"), (cluster, "spec")]:
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(obj, attr, None)
        assert not hasattr(obj, "__dict__")


def test_pair_beyond_the_nics_is_an_error_naming_the_nic(tmp_path: Path) -> None:
    """Two pairs more than NICs: the last pair is an error that says which NIC is missing."""
    d = copy_scenario("two-ok", tmp_path)
    extra = (
        '\n[[clusters.edge-fw.pairs]]\nname = "If3"\n\n[[clusters.edge-fw.pairs]]\nname = "If4"\n'
    )
    edit_toml(d, lambda t: t + extra)
    f = finding(run(d), VIRT2, "If4")
    assert f.status == "error"
    assert "depends on NIC #4 of fw-a on kvm-a, which is missing" in f.detail


def test_vlan1_live_only_tag_lost_when_the_saved_vlan_is_lower(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    edit_inactive(
        host(d, "kvm-b"), "fw-b", lambda x: x.replace("<tag id='102'/>", "<tag id='100'/>")
    )
    result = run(d)
    assert statuses(result) == expected("two-ok", {(VLAN1, "If2"): "fail"})
    assert "the persistent XML says 100" in finding(result, VLAN1, "If2").detail


# --- survivors of the second run (docs/mutation.md) ---------------------------------------------


@pytest.mark.parametrize(
    ("inner_tag", "changes", "said"),
    [
        (
            103,
            {(VLAN1, "If2"): "fail"},
            lambda f: f.found == "fw-a@kvm-a: untagged, fw-b@kvm-b: 102",
        ),
        (
            102,
            {},
            lambda f: (
                "VLAN 102 on both servers (patch port tag on bridge br2-external)" in f.detail
            ),
        ),
    ],
    ids=["ends-conflict", "ends-agree"],
)
def test_vlan1_patch_port_ends(
    tmp_path: Path, inner_tag: int, changes: dict[Key, str], said: Callable[[Any], bool]
) -> None:
    """fw-a's If2 port is untagged and its XML has no <vlan>; the patch link of br2-external is
    tagged 102 on its outer end. Tagged 103 on the inner end, no single VLAN can be read from it:
    the NIC is untagged (fail), not on whichever of the two tags comes first. The same tag on
    both ends is one VLAN: it passes."""
    d = copy_scenario("two-ok", tmp_path)
    a = host(d, "kvm-a")
    a.edit_ovs_row("Port", A_VNET2, "tag", ["set", []])
    a.edit_domain("fw-a", edit_nic(A_IF2, drop_vlan))
    a.edit_ovs_row("Port", "patch-2-out", "tag", 102)
    a.edit_ovs_row("Port", "patch-2-in", "tag", inner_tag)
    result = run(d)
    assert statuses(result) == expected("two-ok", changes)
    assert said(finding(result, VLAN1, "If2"))


def test_virt1_every_nic_live_only(tmp_path: Path) -> None:
    """Both NICs hot-plugged with --live only: the persistent XML has no NIC at all, so each of
    them is gone at the next start, the second as much as the first."""
    d = copy_scenario("two-ok", tmp_path)
    edit_inactive(host(d, "kvm-b"), "fw-b", lambda x: NIC.sub("", x))
    result = run(d)
    st = statuses(result)
    for pair in ("If1", "If2"):
        assert st[(VIRT1, f"fw-b:{pair}")] == "fail", pair
        assert "not in the persistent XML" in finding(result, VIRT1, f"fw-b:{pair}").detail


def test_vlan1_port_tag_in_trunk_mode_is_no_access_vlan(tmp_path: Path) -> None:
    """fw-a's If2 port keeps tag=102 but has vlan_mode=trunk, in which OVS ignores the tag: the
    NIC has no access VLAN (fail), whatever the tag column says."""
    d = copy_scenario("two-ok", tmp_path)
    host(d, "kvm-a").edit_ovs_row("Port", A_VNET2, "vlan_mode", "trunk")
    result = run(d)
    assert statuses(result) == expected("two-ok", {(VLAN1, "If2"): "fail"})
    assert finding(result, VLAN1, "If2").found == "fw-a@kvm-a: untagged, fw-b@kvm-b: 102"


@pytest.mark.parametrize("fw_a_nics", [2, 1])
def test_ovs2_a_later_pair_shares_the_bridge_on_the_member_with_more_nics(
    tmp_path: Path, fw_a_nics: int
) -> None:
    """No pairs declared; fw-b (stopped) has a third NIC on br1-internal, fw-a only two (or
    one). Pair If3 does not exist on fw-a, but on fw-b it shares If1's bridge: OVS-002 of If1
    fails for fw-b's side; it is neither skipped nor an error because fw-a has no NIC #3."""
    d = copy_scenario("two-ok", tmp_path)
    drop_pairs(d)
    if fw_a_nics == 1:
        a = host(d, "kvm-a")
        a.edit_domain("fw-a", edit_nic(A_IF2, lambda _: ""))
        remove_ovs_port(a, A_VNET2)
    hb = host(d, "kvm-b")
    stop_domain(hb, "fw-b")

    def third_nic(xml: str) -> str:
        (block,) = [m.group(0) for m in NIC.finditer(xml) if f"address='{B_IF1}'" in m.group(0)]
        extra = block.replace(B_IF1, "52:54:00:0f:70:99").replace("slot='0x03'", "slot='0x09'")
        return xml.replace("    <input type='mouse'", extra + "    <input type='mouse'", 1)

    hb.edit_domain("fw-b", third_nic)
    result = run(d)
    f = failing(result, OVS2, "If1")
    assert "br1-internal on kvm-b is also used by pair If3" in f.detail


def test_hb1_no_uplink_names_the_pair_bridges(tmp_path: Path) -> None:
    """kvm-a's uplink is gone: HB-001 fails and says which bridges lack one."""
    d = copy_scenario("two-ok", tmp_path)
    remove_ovs_port(host(d, "kvm-a"), "up-a")
    f = failing(run(d), HB1, "kvm-a")
    assert f.detail == (
        "no physical uplink on br1-internal, br2-external of kvm-a: "
        "heartbeats cannot reach the other server"
    )
    assert f.remediation.splitlines() == [
        f"# on kvm-a: add the physical NIC that reaches the other server to bridge {b} "
        "(ovs-vsctl add-port), then set it promiscuous (ip link set dev ... promisc on)"
        for b in ("br1-internal", "br2-external")
    ]


@pytest.mark.parametrize(
    ("domain", "target", "copied"),
    [
        # the master's root port has a port but no chassis: the fix cannot copy a chassis, it
        # says to copy the master's <target> instead of printing chassis='None'
        ("fw-master", "<target port='0x11'/>", "its <target chassis=... port=.../>"),
        ("fw-slave", "<target chassis='5' port='0x11'/>", "<target chassis='2' port='0x11'/>"),
    ],
    ids=["master-without-chassis", "slave-other-chassis"],
)
def test_virt2_q35_root_port_remediation_copies_the_masters_target(
    tmp_path: Path, domain: str, target: str, copied: str
) -> None:
    d = copy_scenario("q35-ok", tmp_path)
    host(d, "kvm-a").edit_domain(
        domain, lambda x: x.replace("<target chassis='2' port='0x11'/>", target)
    )
    f = failing(run(d), VIRT2, "If2")
    assert f.remediation == (
        "virsh edit fw-slave  # on kvm-a: copy fw-master's <controller type='pci' index='2' "
        f"model='pcie-root-port'> with {copied} at PCI address 0000:00:02.1"
    )


def test_vlan2_second_member_on_a_host_after_an_untagged_one(tmp_path: Path) -> None:
    """Three members, fw-b and fw-c on kvm-b, no VLAN declared. fw-b's If2 is untagged (VLAN-001
    says so); fw-c's If2 is on VLAN 202, which kvm-b's uplink (trunks 101,102) does not carry.
    An untagged member must not end the look at the others on the same host."""
    d = copy_scenario("two-ok", tmp_path)
    add_third_member(d)
    undeclare_vlans(d)
    hb = host(d, "kvm-b")
    hb.edit_ovs_row("Port", B_VNET2, "tag", ["set", []])
    hb.edit_domain("fw-b", edit_nic(B_IF2, drop_vlan))
    hb.edit_domain("fw-c", lambda x: x.replace("<tag id='102'/>", "<tag id='202'/>"))
    f = failing(run(d), VLAN2, "kvm-b")
    assert f.detail == "kvm-b: pair If2: VLAN 202 not carried by up-b (trunk, trunks [101, 102])"


@pytest.mark.parametrize("heartbeat", ["broadcast", "unicast"])
def test_one_member_cluster_fails(tmp_path: Path, heartbeat: str) -> None:
    """An inventory may list a single member (the array need only be non-empty): that is no HA
    cluster. TOPO-001 fails, and with unicast heartbeat HB-003 fails too; neither may pass."""
    d = copy_scenario("two-ok", tmp_path)
    edit_toml(
        d,
        lambda t: t.replace('  { host = "kvm-b", domain = "fw-b", role = "slave" },\n', "").replace(
            'heartbeat = "broadcast"', f'heartbeat = "{heartbeat}"'
        ),
    )
    result = run(d)
    f = finding(result, TOPO1, "edge-fw")
    assert (f.status, f.detail) == ("fail", "cluster edge-fw has 1 members")
    if heartbeat == "unicast":
        h = finding(result, HB3, "edge-fw")
        assert (h.status, h.detail) == ("fail", "unicast heartbeat with 1 members")


# --- details and remediations that name the wrong thing -----------------------------------------


def test_ovs1_pass_names_the_version() -> None:
    result = run(BUNDLES / "two-ok")
    version = host(BUNDLES / "two-ok", "kvm-a").text("ovs-version").splitlines()[0]
    f = finding(result, OVS1, "kvm-a")
    assert f.status == "pass"
    assert f.detail.startswith("ovs-vsctl (Open vSwitch) ") and f.detail.endswith(
        " answers on kvm-a"
    )
    assert version.split()[-1] in f.detail


def test_vlan1_untagged_on_both_servers_is_not_a_vlan_difference(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    for h, dom, vnet, mac in (("kvm-a", "fw-a", A_VNET2, A_IF2), ("kvm-b", "fw-b", B_VNET2, B_IF2)):
        hb = host(d, h)
        hb.edit_ovs_row("Port", vnet, "tag", ["set", []])
        hb.edit_domain(dom, edit_nic(mac, drop_vlan))
    f = failing(run(d), VLAN1, "If2")
    assert f.detail == "pair If2: untagged on fw-a@kvm-a, fw-b@kvm-b; declared VLAN is 102"


@pytest.mark.parametrize("patch_tag", [100, 102], ids=["patch-lower", "patch-right"])
def test_vlan1_patch_port_fix_only_where_the_patch_tag_is_wrong(
    tmp_path: Path, patch_tag: int
) -> None:
    """fw-a takes its VLAN from the patch port of br2-external; fw-b's port is on 302. The
    remediation retags the patch port only if its tag is not 102 (lower or higher alike)."""
    d = copy_scenario("two-ok", tmp_path)
    a = host(d, "kvm-a")
    a.edit_ovs_row("Port", A_VNET2, "tag", ["set", []])
    a.edit_domain("fw-a", edit_nic(A_IF2, drop_vlan))
    a.edit_ovs_row("Port", "patch-2-out", "tag", patch_tag)
    host(d, "kvm-b").edit_ovs_row("Port", B_VNET2, "tag", 302)
    f = failing(run(d), VLAN1, "If2")
    fixes = [f"ovs-vsctl set port {B_VNET2} tag=102  # on kvm-b, now"]
    if patch_tag != 102:
        fixes.insert(0, "# on kvm-a: tag the patch port of br2-external with VLAN 102")
    assert f.remediation.splitlines() == fixes


def test_virt3_remediation_fixes_a_model_that_sorts_after_the_master(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    host(d, "kvm-a").edit_domain(
        "fw-a",
        edit_nic(A_IF2, lambda b: b.replace("<model type='virtio'/>", "<model type='e1000'/>")),
    )
    f = failing(run(d), VIRT3, "If2")
    assert f.remediation == "virsh edit fw-b  # NIC #2: <model type='e1000'/>"


def test_vlan2_member_off_ovs_does_not_hide_the_next_on_its_host(tmp_path: Path) -> None:
    """Three members, fw-b and fw-c (both stopped) on kvm-b, no VLAN declared. fw-b's If2 is on
    a bridge OVS does not know; fw-c's If2 is on VLAN 202, which kvm-b's uplink does not carry.
    VLAN-002 names both problems, not only the first."""
    d = copy_scenario("two-ok", tmp_path)
    add_third_member(d)
    undeclare_vlans(d)
    hb = host(d, "kvm-b")
    stop_domain(hb, "fw-b")
    hb.edit_domain("fw-b", edit_nic(B_IF2, lambda b: b.replace("br2-external", "virbr9")))
    hb.edit_domain("fw-c", lambda x: x.replace("<tag id='102'/>", "<tag id='202'/>"))
    f = failing(run(d), VLAN2, "kvm-b")
    assert f.detail == (
        "kvm-b: pair If2: fw-b is not on an OVS bridge; "
        "pair If2: VLAN 202 not carried by up-b (trunk, trunks [101, 102])"
    )


def test_virt2_fix_only_for_the_member_whose_address_differs(tmp_path: Path) -> None:
    """Three members: fw-b's If2 moved to slot 0x09, fw-c still at the master's address. Only
    fw-b gets a fix."""
    d = copy_scenario("two-ok", tmp_path)
    add_third_member(d)
    hb = host(d, "kvm-b")
    hb.edit_domain("fw-b", edit_nic(B_IF2, lambda b: b.replace("slot='0x04'", "slot='0x09'")))
    f = failing(run(d), VIRT2, "If2")
    assert f.remediation == (
        f"virsh edit fw-b  # NIC {B_IF2}: <address type='pci' domain='0x0000' bus='0x00' "
        "slot='0x04' function='0x0'/>"
    )
    assert f.expected == "the same address on both (as fw-a: 0000:00:04.0)"


def test_host0_names_a_domain_whose_name_has_a_colon(tmp_path: Path) -> None:
    """Two domains named ``ha:spare`` (libvirt allows ':' in names): neither can be audited,
    and the KVMHA-HOST-000 error names the whole name, not the part before a second colon."""
    d = copy_scenario("two-ok", tmp_path)
    hb = host(d, "kvm-b")
    uuid_b = domain_uuid(hb, "fw-b")
    xml = (hb.dir / "sections" / f"domain-inactive/{uuid_b}").read_text()
    for n, uuid in enumerate(
        ("6d1c0e4a-9b1f-4c39-8f64-3e0f5a6b7c81", "6d1c0e4a-9b1f-4c39-8f64-3e0f5a6b7c82")
    ):
        copy = (
            xml.replace("<name>fw-b</name>", "<name>ha:spare</name>")
            .replace(uuid_b, uuid)
            .replace(B_IF1, f"52:54:00:ee:0{n}:01")
            .replace(B_IF2, f"52:54:00:ee:0{n}:02")
        )
        add_section(hb, f"domain-inactive/{uuid}", copy)
        hb.edit("virsh-domains", lambda t, u=uuid: t + u + "\n")
    f = finding(run(d), "KVMHA-HOST-000", "domain:ha:spare")
    assert f.status == "error"
    assert f.detail.startswith(
        "domain ha:spare not read, the checks that need it were not evaluated"
    )


@pytest.mark.parametrize("nic", ["user", "bridge"])
def test_virt1_persistent_nic_without_network_facts(tmp_path: Path, nic: str) -> None:
    """The host's libvirt networks could not be read; fw-b's persistent If2 is a bridge NIC (as
    recorded) or a user-mode NIC. Neither needs a libvirt network: KVMHA-VIRT-001 passes for the
    bridge and fails for the user NIC (no virtualport at the next start), never an error."""
    d = copy_scenario("two-ok", tmp_path)
    hb = host(d, "kvm-b")
    if nic == "user":
        edit_inactive(hb, "fw-b", edit_nic(B_IF2, user_nic(B_IF2)))
    set_section(hb, "virsh-networks", rc=1, stderr="error: failed to list networks")
    f = finding(run(d), VIRT1, "fw-b:If2")
    if nic == "user":
        assert f.status == "fail"
        assert "persistent XML lacks <virtualport type='openvswitch'/>" in f.detail
    else:
        assert f.status == "pass"


def test_vlan1_empty_vlan_element_is_untagged(tmp_path: Path) -> None:
    """fw-b (stopped) has ``<vlan/>`` without a tag on If2: untagged, a fail, not an error."""
    d = copy_scenario("two-ok", tmp_path)
    hb = host(d, "kvm-b")
    stop_domain(hb, "fw-b")
    hb.edit_domain(
        "fw-b", edit_nic(B_IF2, lambda b: drop_vlan(b).replace("<model", "<vlan/>\n      <model"))
    )
    result = run(d)
    assert statuses(result) == expected("two-ok", {(VLAN1, "If2"): "fail"})
    assert finding(result, VLAN1, "If2").found == "fw-a@kvm-a: 102, fw-b@kvm-b: untagged"


def test_vlan1_no_vlan_anywhere_asks_to_choose_one_per_port(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    edit_toml(d, lambda t: t.replace("vlan = 102\n", ""))
    for h, dom, vnet, mac in (("kvm-a", "fw-a", A_VNET2, A_IF2), ("kvm-b", "fw-b", B_VNET2, B_IF2)):
        hb = host(d, h)
        hb.edit_ovs_row("Port", vnet, "tag", ["set", []])
        hb.edit_domain(dom, edit_nic(mac, drop_vlan))
    f = failing(run(d), VLAN1, "If2")
    assert f.remediation == (
        "# choose a VLAN ID for pair If2 that no other pair uses, set it on "
        f"{A_VNET2} on kvm-a, {B_VNET2} on kvm-b as the port tag (ovs-vsctl set port) and in each "
        "domain's XML (a <vlan><tag id=.../></vlan>), or declare it in the inventory"
    )


def test_hb1_bond_members_not_promiscuous_name_their_port(tmp_path: Path) -> None:
    """Port ``m-bond`` bonds eno3 (sorts before the port name) and up-a (after it); neither is
    promiscuous: each is named with its port."""
    d = copy_scenario("two-ok", tmp_path)
    hb = host(d, "kvm-a")

    def not_promiscuous(e: dict[str, Any]) -> None:
        e.update(promiscuity=0, flags=[f for f in e["flags"] if f != "PROMISC"])

    bond_uplink(hb, "m-bond", not_promiscuous)
    f = failing(run(d), HB1, "kvm-a")
    assert f.detail == (
        "kvm-a: not promiscuous: up-a (port m-bond on br-trunk, promiscuity 0), "
        "eno3 (port m-bond on br-trunk, promiscuity 0)"
    )


def test_virt2_q35_remediation_copies_the_masters_controller_model(tmp_path: Path) -> None:
    """The master's controller for bus 2 is a pcie-switch-downstream-port: the fix copies that
    model, not a default pcie-root-port."""
    d = copy_scenario("q35-ok", tmp_path)
    host(d, "kvm-a").edit_domain(
        "fw-master",
        lambda x: x.replace(
            "<controller type='pci' index='2' model='pcie-root-port'>",
            "<controller type='pci' index='2' model='pcie-switch-downstream-port'>",
        ),
    )
    f = failing(run(d), VIRT2, "If2")
    assert "model='pcie-switch-downstream-port'> with" in f.remediation
