"""Hostile or broken evidence: XML never resolves entities or touches the network."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_kvmha import remediation
from pytest_kvmha.config.inventory import InventoryError, load_inventory
from pytest_kvmha.config.names import CONTROL, has_control
from pytest_kvmha.parse.evidence import FactError
from pytest_kvmha.parse.libvirt import parse_domain, parse_xml
from pytest_kvmha.parse.links import parse_links
from pytest_kvmha.parse.ovsdb import parse_ovs_table

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


@pytest.mark.parametrize("char", ["\n", "\x85", "\u2028", "\u2029"])
def test_domain_name_with_a_line_break_is_refused(char: str) -> None:
    xml = DOMAIN.replace("<name>fw</name>", f"<name>fw{char}evil</name>").format(extra="")
    with pytest.raises(FactError, match="domain name .* contains control characters"):
        parse_domain(xml, source="live", what="domain-live/abc")


def test_one_control_character_rule() -> None:
    # one rule: the remediation quoting and every name check share the same object
    assert remediation.CONTROL is CONTROL
    assert all(has_control(c) for c in "\x00\n\x1f\x7f\x85\x9f\u2028\u2029")
    assert not any(has_control(c) for c in " ~\xa0é\u2027\u202a")


@pytest.mark.parametrize("escape", ["\\n", "\\u0085", "\\u2028"])
def test_cluster_name_with_a_line_break_is_refused(tmp_path: Path, escape: str) -> None:
    path = tmp_path / "inv.toml"
    path.write_text(
        '[hosts.h]\nspec = "local://"\n'
        f'[clusters."c{escape}x"]\nvendor = "fortigate"\nmembers = [{{ host = "h", domain = "fw" }}]\n'
    )
    with pytest.raises(InventoryError, match="cluster name .* contains control characters"):
        load_inventory(path)
