"""libvirt XML (domains, networks, nwfilters) as frozen facts. Pure: no I/O.

The XML comes from hosts we audit, not trust: no DTDs or entities, and every name in it is
refused when it holds a control character (:func:`pytest_kvmha.parse.evidence.refuse_control_chars`).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from lxml import etree

from pytest_kvmha.config.names import has_control
from pytest_kvmha.facts.host import (
    Domain,
    DomainNic,
    LibvirtNetwork,
    NwFilter,
    NwRule,
    PciAddress,
    PciController,
    VlanSetting,
)
from pytest_kvmha.parse.evidence import FactError, refuse_control_chars, show

# No entities, no DTD, no network, no huge trees: XML comes from hosts we audit, not trust.
_XML_PARSER = etree.XMLParser(
    resolve_entities=False,
    no_network=True,
    load_dtd=False,
    dtd_validation=False,
    huge_tree=False,
    remove_comments=True,
)


def parse_xml(text: str, what: str) -> etree._Element:
    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        raise FactError(f"{what}: DTDs and entities are not accepted in libvirt XML")
    try:
        root = etree.fromstring(text.encode("utf-8"), _XML_PARSER)
    except (etree.XMLSyntaxError, ValueError) as exc:  # ValueError: lone surrogates
        raise FactError(f"{what}: malformed XML: {show(str(exc), 300)}") from None
    if root is None:
        raise FactError(f"{what}: empty XML document")
    return root


def _int(value: str | None, what: str) -> int | None:
    """An absent attribute is None; an empty or garbled one is damage, not a default."""
    if value is None:
        return None
    try:
        return int(value, 0)
    except ValueError:
        raise FactError(f"{what}: not a number: {show(value)}") from None


_PCI_LIMITS = (("domain", 0xFFFF), ("bus", 0xFF), ("slot", 0x1F), ("function", 0x7))


def _pci(el: etree._Element | None, what: str) -> PciAddress | None:
    if el is None or el.get("type") != "pci":
        return None
    parts = []
    for part, high in _PCI_LIMITS:
        value = _int(el.get(part), what) or 0
        if not 0 <= value <= high:
            raise FactError(f"{what}: PCI {part} {value:#x} is out of range (0..{high:#x})")
        parts.append(value)
    return PciAddress(*parts)


def _vlan(el: etree._Element | None, what: str) -> VlanSetting | None:
    if el is None:
        return None
    tags: list[int] = []
    native = None
    for tag in el.findall("tag"):
        tid = _int(tag.get("id"), what)
        if tid is None:
            raise FactError(f"{what}: <vlan><tag> without id")
        if not 0 <= tid <= 4095:
            raise FactError(f"{what}: VLAN tag {tid} is out of range (0..4095)")
        tags.append(tid)
        if tag.get("nativeMode"):
            native = tid
    return VlanSetting(tuple(tags), el.get("trunk") == "yes", native)


def _mtu(el: etree._Element | None, what: str) -> int | None:
    if el is None:
        return None
    size = el.get("size", "")
    if not size.isdigit() or not 0 < int(size) < 2**31:
        raise FactError(f"{what}: <mtu size={size!r}> is not a byte count")
    return int(size)


def parse_domain(xml: str, *, source: str, what: str) -> Domain:
    root = parse_xml(xml, what)
    if root.tag != "domain":
        raise FactError(f"{what}: root element is <{root.tag}>, expected <domain>")
    name = root.findtext("name")
    uuid = root.findtext("uuid")
    if not name or not uuid:
        raise FactError(f"{what}: <domain> without <name> or <uuid>")
    if has_control(name):
        raise FactError(f"{what}: domain name {name!r} contains control characters")
    os_type = root.find("os/type")
    nics: list[DomainNic] = []
    for index, el in enumerate(root.findall("devices/interface")):
        nwhat = f"{what}: interface {index}"
        src = el.find("source")
        vport = el.find("virtualport")
        model = el.find("model")
        target = el.find("target")
        filt = el.find("filterref")
        mac = el.find("mac")
        nics.append(
            DomainNic(
                index=index,
                type=el.get("type", ""),
                mac=(mac.get("address") or "").lower() or None if mac is not None else None,
                model=model.get("type") if model is not None else None,
                source_bridge=src.get("bridge") if src is not None else None,
                source_network=src.get("network") if src is not None else None,
                source_portgroup=src.get("portgroup") if src is not None else None,
                source_dev=src.get("dev") if src is not None else None,
                source_mode=src.get("mode") if src is not None else None,
                virtualport=vport.get("type") if vport is not None else None,
                vlan=_vlan(el.find("vlan"), nwhat),
                target_dev=target.get("dev") if target is not None else None,
                filterref=filt.get("filter") if filt is not None else None,
                trust_guest_rx_filters=el.get("trustGuestRxFilters") == "yes",
                address=_pci(el.find("address"), nwhat),
                mtu=_mtu(el.find("mtu"), nwhat),
                source_address=_pci(src.find("address"), nwhat) if src is not None else None,
            )
        )
    controllers = []
    for el in root.findall("devices/controller[@type='pci']"):
        cwhat = f"{what}: pci controller"
        target = el.find("target")
        index_or_none = _int(el.get("index"), cwhat)
        if index_or_none is None:
            raise FactError(f"{cwhat}: without index")
        controllers.append(
            PciController(
                index=index_or_none,
                model=el.get("model", ""),
                chassis=_int(target.get("chassis"), cwhat) if target is not None else None,
                port=_int(target.get("port"), cwhat) if target is not None else None,
                address=_pci(el.find("address"), cwhat),
            )
        )
    refuse_control_chars(what, uuid=uuid, machine=os_type, interface=nics, controller=controllers)
    return Domain(
        name=name,
        uuid=uuid.lower(),
        active=root.get("id") not in (None, "-1"),
        machine=os_type.get("machine") if os_type is not None else None,
        nics=tuple(nics),
        controllers=tuple(controllers),
        source=source,
    )


def parse_network(xml: str, what: str) -> LibvirtNetwork:
    root = parse_xml(xml, what)
    if root.tag != "network":
        raise FactError(f"{what}: root element is <{root.tag}>, expected <network>")
    name = root.findtext("name")
    if not name:
        raise FactError(f"{what}: <network> without <name>")
    forward = root.find("forward")
    bridge = root.find("bridge")
    vport = root.find("virtualport")
    portgroups: dict[str, VlanSetting | None] = {}
    default = None
    for pg in root.findall("portgroup"):
        pname = pg.get("name", "")
        portgroups[pname] = _vlan(pg.find("vlan"), f"{what}: portgroup {pname}")
        if pg.get("default") == "yes":
            default = pname
    refuse_control_chars(what, name=name, bridge=bridge, portgroup=portgroups, default=default)
    return LibvirtNetwork(
        name=name,
        uuid=(root.findtext("uuid") or "").lower(),
        forward_mode=forward.get("mode") if forward is not None else None,
        bridge=bridge.get("name") if bridge is not None else None,
        virtualport=vport.get("type") if vport is not None else None,
        portgroups=MappingProxyType(portgroups),
        default_portgroup=default,
        vlan=_vlan(root.find("vlan"), what),
    )


def parse_nwfilter(xml: str, what: str) -> NwFilter:
    root = parse_xml(xml, what)
    if root.tag != "filter" or not root.get("name"):
        raise FactError(f"{what}: expected <filter name=...>")
    refs = tuple(r.get("filter", "") for r in root.findall("filterref") if r.get("filter"))
    refuse_control_chars(what, name=root.get("name"), filterref=refs)
    entries: list[NwRule | tuple[str, int]] = []
    for el in root:
        if el.tag == "filterref" and el.get("filter"):
            entries.append((el.get("filter", ""), _nw_priority(el, what, 500) or 0))
        elif el.tag == "rule":
            entries.append(_nw_rule(el, what))
    return NwFilter(
        root.get("name", ""),
        refs,
        chain=root.get("chain") or "root",
        priority=_nw_priority(root, what, None),
        entries=tuple(entries),
    )


def _nw_priority(el: Any, what: str, default: int | None) -> int | None:
    text = el.get("priority")
    if text is None:
        return default
    try:
        return int(text)
    except ValueError:
        raise FactError(f"{what}: priority {text!r:.40} is not an integer") from None


def _nw_rule(el: Any, what: str) -> NwRule:
    action, direction = el.get("action", ""), el.get("direction", "")
    if action not in ("drop", "reject", "accept", "return", "continue"):
        raise FactError(f"{what}: rule action {action!r:.40} is not one libvirt knows")
    if direction not in ("in", "out", "inout"):
        raise FactError(f"{what}: rule direction {direction!r:.40} is not in, out or inout")
    child = next((c for c in el if isinstance(c.tag, str)), None)
    attrs = {} if child is None else {k: v for k, v in child.attrib.items() if k != "match"}
    refuse_control_chars(what, **attrs)
    priority = _nw_priority(el, what, 500)
    assert priority is not None
    return NwRule(
        action,
        direction,
        priority,
        None if child is None else child.tag,
        MappingProxyType(attrs),
        child is not None and child.get("match") == "no",
    )
