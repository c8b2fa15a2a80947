"""FGCP's other links and primary selection (checks/fgcp_links.py) and the firewalls' MTU in
KVMHA-OVS-005, offline: recorded lab scenarios with FortiOS / cOS Core configurations written
here (shaped like the CLI reference's `config system ha` and `config system interface`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pytest_kvmha.model import Severity
from pytest_kvmha.parse.cos_core import cos_ha_facts, parse_cos_show
from pytest_kvmha.parse.evidence import ConfigParseError
from pytest_kvmha.parse.fortios import fgcp_facts, parse_fortios

from ..bundlekit import copy_scenario, declare_configs, finding, host, run

SYNC, MGMT, HBS, OVERRIDE = "KVMHA-FGCP-001", "KVMHA-FGCP-002", "KVMHA-FGCP-003", "KVMHA-FGCP-004"
FW5, MTU, TRACE, HB2 = "KVMHA-FW-005", "KVMHA-OVS-005", "KVMHA-TRACE-001", "KVMHA-HB-002"
DATA = Path(__file__).parent.parent / "data" / "fwconfig"


def fortios(
    ha: str = "", port1: str = "", port2: str = "", hbdev: str = '"port1" 50 "port2" 40'
) -> str:
    """A broadcast-heartbeat FGCP member: ``ha`` lines go into ``config system ha``, ``portN``
    lines into that interface's entry."""
    return (
        "config system ha\n"
        "    set group-id 10\n"
        '    set group-name "kvm-ha"\n'
        "    set mode a-p\n"
        f"    set hbdev {hbdev}\n"
        f"{ha}"
        "end\n"
        "config system interface\n"
        '    edit "port1"\n'
        '        set vdom "root"\n'
        f"{port1}"
        "    next\n"
        '    edit "port2"\n'
        '        set vdom "root"\n'
        f"{port2}"
        "    next\n"
        "end\n"
    )


def audit(tmp_path: Path, a: str, b: str | None = None, scenario: str = "two-ok") -> Any:
    d = copy_scenario(scenario, tmp_path)
    declare_configs(d, {"fw-a": a, "fw-b": a if b is None else b})
    return run(d)


def edge(check: str, tmp_path: Path, a: str, b: str | None = None, scenario: str = "two-ok") -> Any:
    """The cluster's finding of ``check`` with configurations ``a`` (and ``b``)."""
    return finding(audit(tmp_path, a, b, scenario), check, "edge-fw")


def cos_cluster(tmp_path: Path, master: str, slave: str) -> Path:
    """two-ok as a cOS Core cluster with these ``show`` outputs."""
    c = copy_scenario("two-ok", tmp_path)
    inventory = c / "clusters.toml"
    inventory.write_text(inventory.read_text().replace('"fortigate"', '"cos-core"'))
    declare_configs(c, {"fw-a": master, "fw-b": slave}, ".txt")
    return c


# --- parsing ------------------------------------------------------------------------------------


def test_the_new_keys_are_read() -> None:
    f = fgcp_facts(
        parse_fortios(
            fortios(
                '    set monitor "port1" ""\n    set override enable\n    set priority 200\n',
                port1="        set mtu-override enable\n        set mtu 9000\n",
                port2="        set mtu-override disable\n        set mtu 1500\n",
            )
        )
    )
    assert (f.monitor, f.override, f.priority) == (("port1",), True, 200)
    assert dict(f.mtu) == {"port1": 9000}  # port2: no override, the default MTU
    plain = fgcp_facts(parse_fortios(fortios()))
    assert (plain.monitor, plain.override, plain.priority, dict(plain.mtu)) == ((), None, None, {})
    # mtu-override without "set mtu": the default MTU, carried as a number
    bare = fortios(port1="        set mtu-override enable\n")
    assert dict(fgcp_facts(parse_fortios(bare)).mtu) == {"port1": 1500}
    # without a "config system ha" the MTUs are still read
    alone = fgcp_facts(
        parse_fortios("config system interface\n" + bare.split("config system interface\n")[1])
    )
    assert not alone.ha_section and dict(alone.mtu) == {"port1": 1500}


@pytest.mark.parametrize(
    ("ha", "port1", "line", "words"),
    [
        ("    set priority 300\n", "", 6, "'priority' must be one integer 0..255"),
        ("    set override yes\n", "", 6, "'override' must be one of enable, disable"),
        ("    set ha-mgmt-status on\n", "", 6, "'ha-mgmt-status' must be one of enable, disable"),
        ("", "        set mtu-override enable\n        set mtu 20000\n", 11, "'mtu' must be"),
    ],
)
def test_bad_values_name_the_line(ha: str, port1: str, line: int, words: str) -> None:
    with pytest.raises(ConfigParseError) as exc:
        fgcp_facts(parse_fortios(fortios(ha, port1=port1)))
    assert exc.value.line == line and words in str(exc.value)


def test_cos_core_mtu_property() -> None:
    text = (DATA / "cos-master.txt").read_text()
    jumbo = text.replace(
        "         EthernetDevice: 0:virtio_net\n", "                    MTU: 9000\n", 1
    )
    assert dict(cos_ha_facts(parse_cos_show(jumbo)).mtu) == {"If1": 9000}
    assert dict(cos_ha_facts(parse_cos_show(text)).mtu) == {}
    bad = jumbo.replace("MTU: 9000", "MTU: big")
    with pytest.raises(ConfigParseError, match="MTU 'big' is not a number 68..65535"):
        cos_ha_facts(parse_cos_show(bad))


# --- KVMHA-FGCP-001: session-sync and monitored interfaces ---------------------------------------


def test_session_sync_on_its_own_pair_passes(tmp_path: Path) -> None:
    result = audit(tmp_path, fortios('    set session-sync-dev "port2"\n', hbdev='"port1" 50'))
    f = finding(result, SYNC, "edge-fw")
    assert f.status == "pass", f.detail
    assert f.detail == "session-sync-dev port2 = If2 on bridge br2-external VLAN 102"
    assert finding(result, FW5, "edge-fw").status == "pass"


def test_session_sync_sharing_a_vlan_fails(tmp_path: Path) -> None:
    """vlan-clash: both pairs on VLAN 101. A session-sync link must be a pair of its own."""
    result = audit(tmp_path, fortios('    set session-sync-dev "port2"\n'), scenario="vlan-clash")
    f = finding(result, SYNC, "edge-fw")
    assert f.status == "fail"
    assert "session-sync interface port2: VLAN 101 also carries If1 on kvm-a" in f.detail


def test_session_sync_on_no_nic_fails(tmp_path: Path) -> None:
    f = edge(SYNC, tmp_path, fortios('    set session-sync-dev "port3"\n'))
    assert f.status == "fail"
    assert "fw-a: port3 would be NIC #3, but fw-a has 2 NICs: no interface pair" in f.detail
    g = edge(SYNC, tmp_path / "x", fortios('    set session-sync-dev "mgmt"\n'))
    assert "fw-a: session-sync interface mgmt is not a portN interface" in g.detail


def test_monitor_needs_one_segment_not_a_bridge_of_its_own(tmp_path: Path) -> None:
    """A monitored data pair may share its VLAN across pairs (vlan-clash passes it), but its two
    NICs must be one segment: fw-b's If2 on VLAN 103 against fw-a's 102 fails."""
    ha = '    set monitor "port2"\n'
    clash = edge(SYNC, tmp_path, fortios(ha), scenario="vlan-clash")
    assert clash.status == "pass", clash.detail
    assert clash.detail == "monitor port2 = If2 on bridge br2-external VLAN 101"
    wrong = edge(SYNC, tmp_path / "w", fortios(ha), scenario="wrong-member-tag")
    assert wrong.status == "fail"
    assert (
        "monitored interface port2: If2 has no VLAN of its own between the servers: "
        "fw-a 102, fw-b 103" in wrong.detail
    )


def test_members_naming_different_monitors_fail(tmp_path: Path) -> None:
    result = audit(
        tmp_path, fortios('    set monitor "port1"\n'), fortios('    set monitor "port2"\n')
    )
    f = finding(result, SYNC, "edge-fw")
    assert (
        f.status == "fail"
        and f.detail == "the members set different monitor: fw-a port1, fw-b port2"
    )


def test_neither_set_skips(tmp_path: Path) -> None:
    f = edge(SYNC, tmp_path, fortios('    set monitor ""\n    set session-sync-dev ""\n'))
    assert f.status == "skip" and "runs over the heartbeat links" in f.detail


# --- KVMHA-FGCP-002: a reserved management interface ---------------------------------------------

MGMT_PORT1 = (
    "    set ha-mgmt-status enable\n"
    "    config ha-mgmt-interfaces\n"
    "        edit 1\n"
    '            set interface "port1"\n'
    "            set gateway 192.0.2.1\n"
    "        next\n"
    "    end\n"
)


def test_reserved_management_needs_no_pair_and_no_heartbeat(tmp_path: Path) -> None:
    result = audit(tmp_path, fortios(MGMT_PORT1, hbdev='"port2" 50'))
    f = finding(result, MGMT, "edge-fw")
    assert f.status == "pass", f.detail
    assert f.detail.startswith("reserved for management: fw-a port1, fw-b port1; no HA link")
    assert finding(result, FW5, "edge-fw").status == "pass"
    assert finding(result, SYNC, "edge-fw").status == "skip"
    # no HA frame is asked of its NIC: nothing to trace, nothing a filter could drop
    for member in ("fw-a", "fw-b"):
        t = finding(result, TRACE, f"{member}:If1")
        assert t.status == "skip", t.detail
        assert finding(result, HB2, member).status == "pass"


def test_reserved_management_as_heartbeat_fails(tmp_path: Path) -> None:
    result = audit(tmp_path, fortios(MGMT_PORT1 + '    set monitor "port1"\n'))
    f = finding(result, MGMT, "edge-fw")
    assert f.status == "fail"
    assert "fw-a: port1 is reserved for management and also in hbdev, monitor" in f.detail
    assert "fw-b: port1 is reserved" in f.detail


def test_management_table_without_status_reserves_nothing(tmp_path: Path) -> None:
    ha = MGMT_PORT1.replace("    set ha-mgmt-status enable\n", "")
    f = edge(MGMT, tmp_path, fortios(ha))
    assert f.status == "skip" and "no reserved management interface" in f.detail


# --- KVMHA-FGCP-003: two heartbeat links -----------------------------------------------------------


def test_one_heartbeat_link_is_a_low_finding(tmp_path: Path) -> None:
    f = edge(HBS, tmp_path, fortios(hbdev='"port2" 50'))
    assert f.status == "fail" and f.check.severity is Severity.LOW
    assert f.detail == "fewer than 2 heartbeat interfaces (hbdev): fw-a port2, fw-b port2"
    one_side = audit(tmp_path / "b", fortios(), fortios(hbdev='"port1" 50'))
    assert finding(one_side, HBS, "edge-fw").status == "fail"


def test_two_heartbeat_links_pass(tmp_path: Path) -> None:
    f = edge(HBS, tmp_path, fortios())
    assert (
        f.status == "pass"
        and f.detail == "heartbeat interfaces: fw-a port1 port2, fw-b port1 port2"
    )


def test_unicast_heartbeat_and_cos_core_skip(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    declare_configs(
        d, {"fw-a": (DATA / "fgt-a.conf").read_text(), "fw-b": (DATA / "fgt-b.conf").read_text()}
    )
    result = run(d)
    assert finding(result, HBS, "edge-fw").status == "skip"
    assert "unicast heartbeat" in finding(result, HBS, "edge-fw").detail
    c = cos_cluster(
        tmp_path / "cos",
        (DATA / "cos-master.txt").read_text(),
        (DATA / "cos-slave.txt").read_text(),
    )
    cos = run(c)
    for check in (SYNC, MGMT, HBS, OVERRIDE):
        assert finding(cos, check, "edge-fw").status == "skip"
        assert "cOS Core" in finding(cos, check, "edge-fw").detail


# --- KVMHA-FGCP-004: override and priorities ----------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "status", "words"),
    [
        ("200", "200", "fail", "fw-a and fw-b share the highest priority (fw-a 200, fw-b 200)"),
        (None, None, "fail", "(fw-a 128 (default), fw-b 128 (default))"),
        (None, "128", "fail", "share the highest priority (fw-a 128 (default), fw-b 128)"),
        ("200", "100", "pass", "fw-a has the highest priority (fw-a 200, fw-b 100)"),
        ("100", None, "pass", "fw-b has the highest priority (fw-a 100, fw-b 128 (default))"),
    ],
)
def test_override_needs_one_highest_priority(
    tmp_path: Path, a: str | None, b: str | None, status: str, words: str
) -> None:
    def member(p: str | None) -> str:
        return fortios("    set override enable\n" + (f"    set priority {p}\n" if p else ""))

    f = edge(OVERRIDE, tmp_path, member(a), member(b))
    assert f.status == status and words in f.detail, f.detail


def test_override_off_skips(tmp_path: Path) -> None:
    f = edge(OVERRIDE, tmp_path, fortios("    set override disable\n    set priority 200\n"))
    assert f.status == "skip" and "override not enabled" in f.detail


# --- KVMHA-OVS-005: the members' MTU from their configuration -----------------------------------

JUMBO = "        set mtu-override enable\n        set mtu 9000\n"


def _all_links_mtu(d: Path, mtu: int) -> None:
    for name in ("kvm-a", "kvm-b"):

        def change(doc: Any) -> None:
            for entry in doc:
                entry["mtu"] = mtu

        host(d, name).edit_json("links", change)


def test_a_configured_jumbo_mtu_needs_a_jumbo_path(tmp_path: Path) -> None:
    result = audit(tmp_path, fortios(port1=JUMBO))
    f = finding(result, MTU, "If1")
    assert f.status == "fail"
    assert (
        "smaller than 9000 (fw-a port1 9000 (mtu-override), fw-b port1 9000 (mtu-override))"
        in f.detail
    )
    assert "ip link set dev up-a mtu 9000" in (f.remediation or "")
    # If2 sets no MTU: the FortiOS default
    g = finding(result, MTU, "If2")
    assert g.status == "pass" and "fw-a port2 1500 (FortiOS default)" in g.detail


def test_a_jumbo_path_passes_the_jumbo_mtu(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    declare_configs(d, {"fw-a": fortios(port1=JUMBO), "fw-b": fortios(port1=JUMBO)})
    _all_links_mtu(d, 9000)
    f = finding(run(d), MTU, "If1")
    assert f.status == "pass", f.detail
    assert "path MTU 9000 on kvm-a, 9000 on kvm-b" in f.detail


def test_the_larger_member_mtu_decides(tmp_path: Path) -> None:
    f = finding(audit(tmp_path, fortios(), fortios(port1=JUMBO)), MTU, "If1")
    assert f.status == "fail"
    assert "smaller than 9000 (fw-a port1 1500 (FortiOS default), fw-b port1 9000" in f.detail


def test_mtu_without_override_is_the_default(tmp_path: Path) -> None:
    f = finding(audit(tmp_path, fortios(port1="        set mtu 9000\n")), MTU, "If1")
    assert f.status == "pass", f.detail


def test_cos_core_mtu_is_used(tmp_path: Path) -> None:
    def jumbo(name: str) -> str:
        text = (DATA / name).read_text()
        return text.replace(
            "         EthernetDevice: 0:virtio_net\n", "                    MTU: 9000\n", 1
        )

    c = cos_cluster(tmp_path, jumbo("cos-master.txt"), jumbo("cos-slave.txt"))
    result = run(c)
    f = finding(result, MTU, "If1")
    assert f.status == "fail" and "fw-a If1 9000 (MTU)" in f.detail
    assert "fw-a If2 1500 (cOS Core default)" in finding(result, MTU, "If2").detail


def test_an_unreadable_config_makes_the_mtu_an_error(tmp_path: Path) -> None:
    f = finding(
        audit(tmp_path, fortios(), 'config system ha\n    set group-name "open\nend\n'), MTU, "If1"
    )
    assert f.status == "error" and "fw-b is malformed" in f.detail
