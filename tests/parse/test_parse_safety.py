"""Hostile or broken evidence: XML never resolves entities or touches the network."""

from __future__ import annotations

import pytest

from pytest_kvmha.parse.host import FactError, parse_domain, parse_links, parse_ovs_table, parse_xml

DOMAIN = """<domain type='kvm'><name>fw</name><uuid>00000000-0000-0000-0000-000000000001</uuid>
<devices><interface type='bridge'><source bridge='br1'/>{extra}</interface></devices></domain>"""


@pytest.mark.parametrize(
    "xml",
    [
        '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/shadow">]><domain>&x;</domain>',
        '<!DOCTYPE d [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]><domain>&b;</domain>',
        '<!DOCTYPE d SYSTEM "http://127.0.0.1:9/evil.dtd"><domain/>',
    ],
)
def test_dtds_and_entities_are_refused(xml: str) -> None:
    with pytest.raises(FactError, match="DTDs and entities"):
        parse_xml(xml, "domain-live/x")


def test_xinclude_is_not_processed() -> None:
    xml = DOMAIN.format(
        extra='<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="/etc/passwd" parse="text"/>'
    )
    dom = parse_domain(xml, source="live", what="t")
    assert dom.nics[0].source_bridge == "br1"


@pytest.mark.parametrize(
    ("xml", "message"),
    [
        ("<domain><name>fw", "malformed XML"),
        ("<network/>", "expected <domain>"),
        ("<domain><name>x</name></domain>", "without <name> or <uuid>"),
        (DOMAIN.format(extra="<address type='pci' slot='zz'/>"), "not a number"),
        (DOMAIN.format(extra="<vlan><tag/></vlan>"), "without id"),
    ],
)
def test_malformed_domains_name_what_is_wrong(xml: str, message: str) -> None:
    with pytest.raises(FactError, match=message):
        parse_domain(xml, source="live", what="domain-live/abc")


@pytest.mark.parametrize(
    "text", ["", "{", '{"headings": ["a"]}', '{"headings": ["a"], "data": [[1, 2]]}', "[]"]
)
def test_malformed_ovs_json(text: str) -> None:
    with pytest.raises(FactError):
        parse_ovs_table(text, "ovs-Port")


def test_ovs_cells_decode() -> None:
    rows = parse_ovs_table(
        '{"headings": ["_uuid", "tag", "trunks", "external_ids"], "data": ['
        '[["uuid", "u1"], ["set", []], ["set", [101, 102]], ["map", [["attached-mac", "52:54:00:00:00:01"]]]],'
        '[["uuid", "u2"], 7, 101, ["map", []]]]}',
        "ovs-Port",
    )
    assert rows[0] == {
        "_uuid": "u1",
        "tag": [],
        "trunks": [101, 102],
        "external_ids": {"attached-mac": "52:54:00:00:00:01"},
    }
    assert rows[1]["tag"] == 7 and rows[1]["trunks"] == 101


def test_links_promiscuity_flag_or_counter() -> None:
    links = parse_links(
        '[{"ifname": "eth0", "flags": ["UP", "PROMISC"], "promiscuity": 0},'
        ' {"ifname": "eth1", "flags": ["UP"], "promiscuity": 1},'
        ' {"ifname": "eth2", "flags": ["UP"], "promiscuity": 0}]'
    )
    assert [links[n].promiscuous for n in ("eth0", "eth1", "eth2")] == [True, True, False]
