"""The fleet's HA checks as a plain pytest-testinfra user writes them (the comparison of
``scripts/bench.py --fleet``; not part of the test suite).

    KVMHA_FLEET_VARS=fleet-vars.json pytest --hosts=ssh://root@10.251.0.6,... \
        --ssh-config=ssh_config scripts/bench_fleet_testinfra.py

Host tests use testinfra's ``host`` fixture (parametrized by ``--hosts``); cluster tests reach
both members' hosts with ``testinfra.get_host``. One remote command per property, as testinfra
modules do: ``host.package(...)``, ``host.run("ovs-vsctl ...")``, ``host.interface(...)``,
``virsh dumpxml`` per domain, parsed in the test. The checks are those of the kvmha catalogue
for these clusters (TOPO-001/002, OVS-001/002, PKG-001, VIRT-001/002/003, VLAN-001/002,
HB-001/002).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from xml.etree import ElementTree

import pytest
import testinfra

VARS = json.loads(Path(os.environ["KVMHA_FLEET_VARS"]).read_text())
CLUSTERS = {c["name"]: c for c in VARS["clusters"]}
SPOOFING = ("no-mac-spoofing", "clean-traffic")


def on(spec: str):  # type: ignore[no-untyped-def]
    return testinfra.get_host(spec, ssh_config=VARS["ssh_config"])


def host_vars(host) -> dict:  # type: ignore[no-untyped-def]
    return VARS["hosts"][host.backend.get_hostname()]


def domain_xml(host, name: str, *, inactive: bool = False) -> ElementTree.Element:  # type: ignore[no-untyped-def]
    flag = " --inactive" if inactive else ""
    return ElementTree.fromstring(host.check_output(f"virsh dumpxml{flag} {name}"))


def interfaces(xml: ElementTree.Element) -> list[ElementTree.Element]:
    return xml.findall("./devices/interface")


def members(cluster: dict) -> list[tuple[object, str, ElementTree.Element]]:
    return [
        (on(m["spec"]), m["domain"], domain_xml(on(m["spec"]), m["domain"]))
        for m in cluster["members"]
    ]


# ---- per host -----------------------------------------------------------------------------


def test_bridge_utils_not_installed(host) -> None:  # type: ignore[no-untyped-def]
    assert not host.package("bridge-utils").is_installed


def test_openvswitch_installed(host) -> None:  # type: ignore[no-untyped-def]
    assert host.package("openvswitch-switch").is_installed


def test_ovsdb_answers(host) -> None:  # type: ignore[no-untyped-def]
    assert host.run("ovs-vsctl show").rc == 0


def test_vswitchd_answers(host) -> None:  # type: ignore[no-untyped-def]
    assert "Open vSwitch" in host.check_output("ovs-appctl version")


def test_uplinks_promiscuous(host) -> None:  # type: ignore[no-untyped-def]
    for up in host_vars(host)["uplinks"]:
        assert host.interface(up["name"]).exists
        flags = int(host.file(f"/sys/class/net/{up['name']}/flags").content_string, 16)
        assert flags & 0x100, f"{up['name']} is not promiscuous"


def test_uplinks_trunk_pair_vlans(host) -> None:  # type: ignore[no-untyped-def]
    for up in host_vars(host)["uplinks"]:
        trunks = json.loads(host.check_output(f"ovs-vsctl get Port {up['name']} trunks"))
        assert not trunks or set(up["vlans"]) <= set(trunks)


# ---- per cluster --------------------------------------------------------------------------


@pytest.fixture(params=sorted(CLUSTERS))
def cluster(request: pytest.FixtureRequest) -> dict:
    return CLUSTERS[request.param]


def test_two_members_same_nic_count(cluster: dict) -> None:
    counts = [len(interfaces(xml)) for _, _, xml in members(cluster)]
    assert len(counts) == 2 and counts[0] == counts[1] >= len(cluster["pairs"])


def test_members_on_different_servers(cluster: dict) -> None:
    ids = {on(m["spec"]).file("/etc/machine-id").content_string for m in cluster["members"]}
    assert len(ids) == 2


def test_pair_bridges(cluster: dict) -> None:
    seen = set()
    for k, pair in enumerate(cluster["pairs"]):
        for host, _, xml in members(cluster):
            nic = interfaces(xml)[k]
            assert nic.find("source").get("bridge") == pair["bridge"]
            assert host.run(f"ovs-vsctl br-exists {pair['bridge']}").rc == 0
        assert pair["bridge"] not in seen
        seen.add(pair["bridge"])


def test_nics_on_ovs(cluster: dict) -> None:
    for host, _, xml in members(cluster):
        for k, nic in enumerate(interfaces(xml)[: len(cluster["pairs"])]):
            assert nic.find("virtualport").get("type") == "openvswitch"
            dev = nic.find("target").get("dev")
            assert (
                host.check_output(f"ovs-vsctl iface-to-br {dev}") == cluster["pairs"][k]["bridge"]
            )


def test_pci_addresses_match(cluster: dict) -> None:
    addrs = [
        [dict(nic.find("address").attrib) for nic in interfaces(xml)]
        for _, _, xml in members(cluster)
    ]
    assert addrs[0] == addrs[1]


def test_nic_models_match(cluster: dict) -> None:
    models = [
        [nic.find("model").get("type") for nic in interfaces(xml)] for _, _, xml in members(cluster)
    ]
    assert models[0] == models[1]


def test_pair_vlans(cluster: dict) -> None:
    if len({m["spec"] for m in cluster["members"]}) < 2:
        pytest.skip("single-server cluster")
    for host, name, xml in members(cluster):
        saved = interfaces(domain_xml(host, name, inactive=True))
        for k, nic in enumerate(interfaces(xml)[: len(cluster["pairs"])]):
            want = cluster["pairs"][k]["vlan"]
            dev = nic.find("target").get("dev")
            assert host.check_output(f"ovs-vsctl get Port {dev} tag") == str(want)
            assert saved[k].find("vlan/tag").get("id") == str(want)


def test_no_mac_spoofing_filter(cluster: dict) -> None:
    for _, name, xml in members(cluster):
        for nic in interfaces(xml):
            ref = nic.find("filterref")
            assert ref is None or ref.get("filter") not in SPOOFING, name
