"""KVMHA-TRACE-001 traces the frames the vendors document, offline: the vendor facts, the
configuration keys that change them, the inventory keys for clusters without configurations,
and the flows the planner writes from them (read back from recorded lab bundles)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pytest_kvmha.collect.pool import collect_all
from pytest_kvmha.config.inventory import InventoryError, load_inventory
from pytest_kvmha.config.target import CollectOptions
from pytest_kvmha.facts.firewall import FgcpFacts
from pytest_kvmha.parse.evidence import ConfigParseError
from pytest_kvmha.parse.fortios import fgcp_facts, parse_fortios
from pytest_kvmha.parse.host import parse_bundle
from pytest_kvmha.topology.traceplan import plan_traces
from pytest_kvmha.vendors import fortigate

from ..bundlekit import BUNDLES, copy_scenario, edit_toml, failing, run


def test_virtual_macs_follow_the_documented_ranges() -> None:
    # FortiOS 6.0 Cookbook: group id 88 -> 00:09:0f:09:58:00, :01, :02
    assert [fortigate.virtual_mac(88, i) for i in range(3)] == [
        "00:09:0f:09:58:00",
        "00:09:0f:09:58:01",
        "00:09:0f:09:58:02",
    ]
    # 7.0.2 New Features: 255 on index 2 -> 00:09:0f:09:ff:02; 256 -> e0:23:ff:fc:00:02
    assert fortigate.virtual_mac(255, 2) == "00:09:0f:09:ff:02"
    assert fortigate.virtual_macs(256, 2) == ("e0:23:ff:fc:00:02",)
    # 512-1023: the community tip (fd/fe) and the 7.0.2 page (fc) disagree: both are traced
    assert fortigate.virtual_macs(600, 1) == ("e0:23:ff:fd:58:01", "e0:23:ff:fc:58:01")
    assert fortigate.virtual_macs(1023, 0) == ("e0:23:ff:fe:ff:00", "e0:23:ff:fc:ff:00")
    with pytest.raises(ValueError):
        fortigate.virtual_mac(1024, 0)


HA = """config system ha
    set group-id 300
    set mode a-p
    set hbdev "port3" 50
    set session-sync-dev "port4"
    set ha-eth-type "8895"
    set l2ep-eth-type 889a
    set ha-mgmt-status enable
    config ha-mgmt-interfaces
        edit 1
            set interface "port5"
        next
    end
end
"""


def test_config_keys_that_change_the_frames_are_read() -> None:
    f = fgcp_facts(parse_fortios(HA))
    assert (f.ha_eth_type, f.hc_eth_type, f.l2ep_eth_type) == (0x8895, None, 0x889A)
    assert f.session_sync_dev == ("port4",)
    assert f.mgmt_interfaces == ("port5",)
    # without "ha-mgmt-status enable" (default disable) the table reserves nothing
    plain = HA.replace("    set ha-mgmt-status enable\n", "")
    assert fgcp_facts(parse_fortios(plain)).mgmt_interfaces == ()
    assert f.group_id == 300
    with pytest.raises(ConfigParseError, match="'hc-eth-type' must be 4 hex digits"):
        fgcp_facts(parse_fortios(HA.replace("set mode a-p", 'set hc-eth-type "0x8891"')))
    assert isinstance(f, FgcpFacts)


def _inventory(tmp: Path, name: str, fn: object) -> Path:
    d = copy_scenario(name, tmp / name)
    edit_toml(d, fn)  # type: ignore[arg-type]
    return d


def _flows(d: Path) -> dict[str, list[str]]:
    """bridge -> the planned flows on every host of the copied scenario."""
    inventory = load_inventory(d / "clusters.toml")
    hosts = [parse_bundle(b) for b in collect_all(list(inventory.hosts), CollectOptions())]
    out: dict[str, list[str]] = {}
    for specs in plan_traces(hosts, inventory.clusters).values():
        for s in specs:
            out.setdefault(s.bridge, []).append(s.flow)
    return out


def test_fgcp_heartbeat_pair_traces_all_four_ethertypes_from_the_member_mac(
    tmp_path: Path,
) -> None:
    flows = _flows(copy_scenario("two-ok", tmp_path / "two"))
    both = [f for fl in flows.values() for f in fl]
    for et in ("0x8890", "0x8891", "0x8892", "0x8893"):
        assert any(f"dl_type={et}" in f for f in both), et
    # no heartbeat Ethertype from a virtual MAC any more (FGCP puts them on data interfaces)
    assert not [f for f in both if "dl_src=00:09:0f:09" in f and "dl_type=0x889" in f]


def _declare(text: str) -> str:
    text = text.replace('vendor = "fortigate"', 'vendor = "fortigate"\ngroup_id = 10', 1)
    return text.replace('name = "If1"', 'name = "If1"\nheartbeat = true', 1)


def test_inventory_group_id_and_heartbeat_pairs_decide_without_configs(tmp_path: Path) -> None:
    flows = _flows(_inventory(tmp_path, "two-ok", _declare))
    # If2 (port2, a data pair): the group-id 10 virtual MAC of interface index 1, ARP only
    data = flows["br2-external"]
    assert data and all("dl_type=0x0806" in f for f in data), data
    assert {re.search(r"arp_sha=([0-9a-f:]+)", f).group(1) for f in data} == {  # type: ignore[union-attr]
        "00:09:0f:09:0a:01"
    }
    # If1 (the heartbeat pair): the member's own MAC, no virtual MAC
    hb = flows["br1-internal"]
    assert hb and not [f for f in hb if "00:09:0f:09" in f], hb


def test_unknown_inventory_keys_are_refused(tmp_path: Path) -> None:
    for bad, message in (
        ("group_id = 1024", "'group_id' must be an integer 0..1023"),
        ('group_id = "10"', "'group_id' must be an integer 0..1023"),
    ):
        d = _inventory(
            tmp_path / bad.replace(" ", "").replace('"', ""),
            "two-ok",
            lambda t, bad=bad: t.replace('vendor = "fortigate"', f'vendor = "fortigate"\n{bad}', 1),
        )
        with pytest.raises(InventoryError, match=re.escape(message)):
            load_inventory(d / "clusters.toml")
    d = _inventory(
        tmp_path / "hb",
        "two-ok",
        lambda t: t.replace('name = "If1"', 'name = "If1"\nheartbeat = 1'),
    )
    with pytest.raises(InventoryError, match="pair 1 .*: key 'heartbeat' must be true or false"):
        load_inventory(d / "clusters.toml")


def test_cos_core_heartbeat_is_udp_999_ttl_255_to_broadcast(tmp_path: Path) -> None:
    d = _inventory(
        tmp_path, "two-ok", lambda t: t.replace('vendor = "fortigate"', 'vendor = "cos-core"')
    )
    both = [f for fl in _flows(d).values() for f in fl]
    udp = [f for f in both if "udp_dst=999" in f]
    assert udp and all(
        "dl_dst=ff:ff:ff:ff:ff:ff,dl_type=0x0800,nw_proto=17,nw_ttl=255,udp_src=999,udp_dst=999"
        in f
        for f in udp
    )
    assert not [f for f in both if "dl_type=0x889" in f]  # no FGCP frames for cOS Core


def test_recorded_drop_names_the_frame_and_the_rule() -> None:
    f = failing(run(BUNDLES / "trace-drop"), "KVMHA-TRACE-001", "fw-b:If1")
    assert "FGCP heartbeat 0x8890 broadcast from" in f.detail
    assert "dropped by rule bridge br1-internal table 0 priority 100 match dl_type=0x8890" in (
        f.detail
    )
