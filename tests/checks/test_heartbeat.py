"""checks/heartbeat.py: the uplinks are promiscuous (KVMHA-HB-001) and no MAC-spoofing filter
sits on an HA NIC (KVMHA-HB-002) for a broadcast heartbeat; a unicast heartbeat cluster has
exactly two members (KVMHA-HB-003).

How the tests edit and audit a recorded scenario: tests/checks/__init__.py.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ..bundlekit import (
    HostBundle,
    add_nwfilter,
    add_section,
    bond_uplink,
    copy_scenario,
    drop_section,
    edit_toml,
    fetch_listed_filter,
    finding,
    host,
    recorded_filter,
    run,
    use_filter,
)
from .checkkit import (
    B_IF1,
    FW_C_PASSES,
    HB1,
    HB2,
    HB3,
    HOST0,
    TOPO1,
    Key,
    add_third_member,
    expected,
    statuses,
)

# --- KVMHA-HB-001 ----------------------------------------------------------------------------


def edit_link(name: str, **fields: Any) -> Callable[[Any], None]:
    def apply(doc: Any) -> None:
        (entry,) = [e for e in doc if e["ifname"] == name]
        entry.update(fields)

    return apply


def test_hb1_kernel_datapath_promiscuity_counter_counts(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    hb = host(d, "kvm-a")
    for br in ("br-trunk", "br1-internal", "br2-external"):
        hb.edit_ovs_row("Bridge", br, "datapath_type", "system")
    hb.edit_json(
        "links",
        edit_link("up-a", flags=["BROADCAST", "MULTICAST", "UP", "LOWER_UP"], promiscuity=1),
    )
    result = run(d)
    assert statuses(result) == expected("two-ok")
    assert finding(result, HB1, "kvm-a").detail == "kvm-a: uplinks promiscuous: up-a"


def test_hb1_uplink_not_promiscuous(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    host(d, "kvm-a").edit_json(
        "links",
        edit_link("up-a", flags=["BROADCAST", "MULTICAST", "UP", "LOWER_UP"], promiscuity=0),
    )
    result = run(d)
    assert statuses(result) == expected("two-ok", {(HB1, "kvm-a"): "fail"})
    f = finding(result, HB1, "kvm-a")
    assert "not promiscuous: up-a (on br-trunk, promiscuity 0)" in f.detail
    assert f.remediation == "ip link set dev up-a promisc on"


def test_hb1_uplink_netdev_missing(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    hb = host(d, "kvm-a")
    hb.edit_json("links", lambda doc: doc.remove([e for e in doc if e["ifname"] == "up-a"][0]))
    hb.edit_ovs_row("Interface", "up-a", "ofport", -1)
    hb.edit_ovs_row(
        "Interface", "up-a", "error", "could not open network device up-a (No such device)"
    )
    result = run(d)
    assert statuses(result) == expected("two-ok", {(HB1, "kvm-a"): "fail"})
    assert "no such host NIC: up-a (on br-trunk)" in finding(result, HB1, "kvm-a").detail


def test_hb1_bond_uplink_members_are_checked(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    hb = host(d, "kvm-a")
    bond_uplink(hb, "bond0")  # with trunks=101,102: port bond0, two system interfaces
    result = run(d)
    # OVSDB now has a bond that bond/show (recorded before the edit) does not know
    assert statuses(result) == expected("two-ok", {("KVMHA-OVS-004", "kvm-a"): "fail"})


def test_hb1_unicast_heartbeat_skips(tmp_path: Path) -> None:
    d = copy_scenario("promisc-off", tmp_path)  # the uplink is not promiscuous: irrelevant
    edit_toml(d, lambda t: t.replace('heartbeat = "broadcast"', 'heartbeat = "unicast"'))
    result = run(d)
    assert statuses(result) == expected(
        "two-ok",
        {
            (HB1, "kvm-a"): "skip",
            (HB1, "kvm-b"): "skip",
            (HB2, "fw-a"): "skip",
            (HB2, "fw-b"): "skip",
            (HB3, "edge-fw"): "pass",
        },
    )
    assert "unicast heartbeat" in finding(result, HB1, "kvm-a").detail


def test_hb1_links_missing_is_an_error(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    drop_section(host(d, "kvm-a"), "links")
    result = run(d)
    assert statuses(result) == expected(
        "two-ok",
        {
            (HB1, "kvm-a"): "error",
            (HOST0, "links"): "error",
            ("KVMHA-OVS-005", "If1"): "error",  # the taps' and uplinks' MTUs
            ("KVMHA-OVS-005", "If2"): "error",
        },
    )
    assert "links: section missing from bundle" in finding(result, HB1, "kvm-a").detail


# --- KVMHA-HB-002 ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filters", "chain"),
    [
        ({"ha-guard": ["clean-traffic"]}, "ha-guard -> clean-traffic"),
        (
            {"ha-guard": ["allow-arp", "ha-base"], "ha-base": ["no-mac-spoofing"]},
            "ha-guard -> ha-base -> no-mac-spoofing",
        ),
    ],
    ids=["one-level", "two-levels"],
)
def test_hb2_nested_spoofing_filter(
    tmp_path: Path, filters: dict[str, list[str]], chain: str
) -> None:
    d = copy_scenario("two-ok", tmp_path)
    hb = host(d, "kvm-b")
    for i, (name, refs) in enumerate(filters.items()):
        add_nwfilter(hb, name, f"a5e1f0c2-0000-4000-8000-00000000000{i}", refs)
    use_filter(hb, "fw-b", B_IF1, "ha-guard")
    result = run(d)
    assert statuses(result) == expected("two-ok", {(HB2, "fw-b"): "fail"})
    f = finding(result, HB2, "fw-b")
    assert f.detail.startswith(f"fw-b: NIC #1 ({B_IF1}) filter {chain}"), f.detail
    assert "drops FGCP virtual MAC 00:09:0f:09:00:00" in f.detail
    assert "(rule no-mac-spoofing: drop out <mac/> (priority 500))" in f.detail
    assert "on an Open vSwitch port the filter does not protect" in f.detail
    assert f.remediation == f"virsh edit fw-b  # NIC {B_IF1}: remove <filterref filter='ha-guard'/>"


def test_hb2_harmless_filter_passes(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    hb = host(d, "kvm-b")
    add_nwfilter(
        hb,
        "ha-guard",
        "a5e1f0c2-0000-4000-8000-000000000000",
        ["allow-incoming-ipv4", "no-other-rarp-traffic"],  # as the lab recorded them
    )
    for builtin in ("allow-arp", "no-ip-multicast"):
        fetch_listed_filter(hb, builtin)
    use_filter(hb, "fw-b", B_IF1, "ha-guard")
    assert statuses(run(d)) == expected("two-ok")


def test_hb2_undefined_filter_is_an_error(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    hb = host(d, "kvm-b")
    use_filter(hb, "fw-b", B_IF1, "ha-guard")
    result = run(d)
    assert statuses(result) == expected("two-ok", {(HB2, "fw-b"): "error"})
    assert (
        "nwfilter 'ha-guard' is referenced but not defined" in finding(result, HB2, "fw-b").detail
    )


def test_hb2_spoofing_filter_found_despite_an_undefined_sibling(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    hb = host(d, "kvm-b")
    add_nwfilter(
        hb, "ha-guard", "a5e1f0c2-0000-4000-8000-000000000000", ["no-mac-spoofing", "ha-site"]
    )
    use_filter(hb, "fw-b", B_IF1, "ha-guard")
    assert statuses(run(d))[(HB2, "fw-b")] == "fail"


def test_hb2_spoofing_filter_found_with_undefined_sibling_first(tmp_path: Path) -> None:
    """The mirror of the test above: the undefined reference first, the spoofing filter after
    it; it fails as well."""
    d = copy_scenario("two-ok", tmp_path)
    hb = host(d, "kvm-b")
    add_nwfilter(
        hb, "ha-guard", "a5e1f0c2-0000-4000-8000-000000000000", ["ha-site", "no-mac-spoofing"]
    )
    use_filter(hb, "fw-b", B_IF1, "ha-guard")
    assert statuses(run(d)) == expected("two-ok", {(HB2, "fw-b"): "fail"})


@pytest.mark.parametrize(
    ("standard", "dropped"),
    [
        ("no-arp-mac-spoofing", "FGCP virtual MAC 00:09:0f:09:00:00"),
        ("no-other-l2-traffic", "FGCP heartbeat 0x8890 broadcast from"),
    ],
)
def test_hb2_standard_filters_judged_by_what_they_drop(
    tmp_path: Path, standard: str, dropped: str
) -> None:
    d = copy_scenario("two-ok", tmp_path)
    hb = host(d, "kvm-b")
    _custom(hb, f"  <filterref filter='{standard}'/>\n")  # nothing accepted before it
    recorded_filter(hb, standard)
    result = run(d)
    assert statuses(result) == expected("two-ok", {(HB2, "fw-b"): "fail"})
    detail = finding(result, HB2, "fw-b").detail
    assert f"filter site -> {standard} drops {dropped}" in detail, detail


def _custom(hb: HostBundle, rules: str) -> None:
    uuid = "a5e1f0c2-0000-4000-8000-0000000000aa"
    add_section(
        hb,
        f"nwfilter/{uuid}",
        f"<filter name='site' chain='root'>\n  <uuid>{uuid}</uuid>\n{rules}</filter>\n",
    )
    hb.edit("virsh-nwfilters", lambda t: t + f" {uuid}   site\n")
    hb.edit("nwfilter-fetched", lambda t: t + f"{uuid}\n")
    use_filter(hb, "fw-b", B_IF1, "site")


@pytest.mark.parametrize(
    ("rules", "status"),
    [
        # drops IPv6 only: none of the HA frames
        ("  <rule action='drop' direction='out'><mac protocolid='ipv6'/></rule>\n", "pass"),
        # drops everything, but only towards the VM
        ("  <rule action='drop' direction='in' priority='1000'/>\n", "pass"),
        # the documentation's form: drop what is not from $MAC (match='no')
        (
            "  <rule action='drop' direction='out'><mac match='no' srcmacaddr='$MAC'/></rule>\n",
            "fail",
        ),
        # FGCP's Ethertype by number
        ("  <rule action='drop' direction='inout'><mac protocolid='0x8893'/></rule>\n", "fail"),
        # accepted first (lower priority), then a catch-all drop: nothing reaches the drop
        (
            "  <rule action='accept' direction='out' priority='100'/>\n"
            "  <rule action='drop' direction='out' priority='1000'/>\n",
            "pass",
        ),
        # RARP only (0x8035): no HA frame is one, not even the virtual MAC's ARP (0x0806)
        ("  <rule action='drop' direction='out'><rarp/></rule>\n", "pass"),
        # an accept that applies to no HA frame (STP, RARP) does not save them from the drop
        (
            "  <rule action='accept' direction='out' priority='100'><stp/></rule>\n"
            "  <rule action='drop' direction='out' priority='1000'/>\n",
            "fail",
        ),
        (
            "  <rule action='accept' direction='out' priority='100'><rarp/></rule>\n"
            "  <rule action='drop' direction='out' priority='1000'/>\n",
            "fail",
        ),
        # the gratuitous ARP's sender hardware address is the virtual MAC (group-id 0)
        (
            "  <rule action='drop' direction='out'>"
            "<arp arpsrcmacaddr='00:09:0f:09:00:00'/></rule>\n",
            "fail",
        ),
    ],
    ids=[
        "ipv6-only",
        "inbound-only",
        "match-no-mac",
        "fgcp-ethertype",
        "accept-first",
        "rarp-only",
        "accept-stp-only",
        "accept-rarp-only",
        "arp-sender-vmac",
    ],
)
def test_hb2_custom_filter_semantics(tmp_path: Path, rules: str, status: str) -> None:
    d = copy_scenario("two-ok", tmp_path)
    _custom(host(d, "kvm-b"), rules)
    result = run(d)
    assert statuses(result)[(HB2, "fw-b")] == status
    if "match='no'" in rules:  # only the frames from another MAC: the virtual MAC's
        detail = finding(result, HB2, "fw-b").detail
        assert "drops FGCP virtual MAC" in detail and "FGCP heartbeat" not in detail, detail


# --- KVMHA-HB-003 ----------------------------------------------------------------------------


@pytest.mark.parametrize(("heartbeat", "hb3"), [("unicast", "fail"), ("broadcast", "skip")])
def test_hb3_unicast_three_members(tmp_path: Path, heartbeat: str, hb3: str) -> None:
    d = copy_scenario("two-ok", tmp_path)
    add_third_member(d, heartbeat=heartbeat)
    result = run(d)
    changes: dict[Key, str] = {(TOPO1, "edge-fw"): "fail", (HB3, "edge-fw"): hb3, **FW_C_PASSES}
    if heartbeat == "unicast":
        changes.update({(HB1, "kvm-a"): "skip", (HB1, "kvm-b"): "skip"})
        changes.update({(HB2, m): "skip" for m in ("fw-a", "fw-b", "fw-c")})
    assert statuses(result) == expected("two-ok", changes)
    if heartbeat == "unicast":
        assert finding(result, HB3, "edge-fw").detail == "unicast heartbeat with 3 members"


def _drop_all_chain(hb: HostBundle, name: str, chain: str, uuid: str) -> None:
    """A fetched filter ``name`` in ``chain`` that drops every outgoing frame."""
    add_section(
        hb,
        f"nwfilter/{uuid}",
        f"<filter name='{name}' chain='{chain}'>\n  <uuid>{uuid}</uuid>\n"
        "  <rule action='drop' direction='out' priority='500'/>\n</filter>\n",
    )
    hb.edit("virsh-nwfilters", lambda t: t + f" {uuid}   {name}\n")
    hb.edit("nwfilter-fetched", lambda t: t + f"{uuid}\n")


def test_hb2_arp_chain_runs_before_root_rules(tmp_path: Path) -> None:
    """libvirt orders the root chain's rules and its sub-chains by priority, the arp chain at
    -500 by default (libvirt formatnwfilter, "Filter chain priorities"): its drop decides the
    virtual MAC's gratuitous ARP before a root rule of priority 0 could accept it."""
    d = copy_scenario("two-ok", tmp_path)
    hb = host(d, "kvm-b")
    _drop_all_chain(hb, "site-arp", "arp", "a5e1f0c2-0000-4000-8000-0000000000ab")
    _custom(
        hb,
        "  <filterref filter='site-arp'/>\n"
        "  <rule action='accept' direction='out' priority='0'/>\n",
    )
    result = run(d)
    assert statuses(result)[(HB2, "fw-b")] == "fail"
    detail = finding(result, HB2, "fw-b").detail
    assert "site -> site-arp drops FGCP virtual MAC" in detail, detail
    assert "FGCP heartbeat" not in detail, detail


def test_hb2_ipv4_chain_drop_loses_the_cos_core_heartbeat(tmp_path: Path) -> None:
    """cOS Core's heartbeats are IPv4 (UDP 999): a filter in the ipv4 chain that drops them
    fails HB-002 (libvirt formatnwfilter: a chain named ipv4 sees the Ethertype 0x0800 frames)."""
    d = copy_scenario("two-ok", tmp_path)
    edit_toml(d, lambda t: t.replace('vendor = "fortigate"', 'vendor = "cos-core"'))
    hb = host(d, "kvm-b")
    _drop_all_chain(hb, "site-ip", "ipv4", "a5e1f0c2-0000-4000-8000-0000000000ac")
    _custom(hb, "  <filterref filter='site-ip'/>\n")
    result = run(d)
    assert statuses(result)[(HB2, "fw-b")] == "fail"
    assert "site -> site-ip drops " in finding(result, HB2, "fw-b").detail
