"""Parse an evidence bundle's raw sections into frozen facts. Pure: no I/O.

A section that is missing or malformed does not raise: its facts become ``None`` and the reason
goes into ``HostFacts.problems`` under the section's name, so checks report ``error`` with it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import fields, is_dataclass, replace
from types import MappingProxyType
from typing import Any

from lxml import etree

from pytest_kvmha.bundle.contract import OVS_COLUMNS
from pytest_kvmha.bundle.store import MISSING_RC, EvidenceBundle, Section
from pytest_kvmha.facts import (
    Domain,
    DomainNic,
    HostFacts,
    LibvirtNetwork,
    Link,
    NwFilter,
    OvsBridge,
    OvsInterface,
    OvsPort,
    OvsState,
    PackageState,
    PciAddress,
    PciController,
    VlanSetting,
)
from pytest_kvmha.facts.firewall import FirewallConfig
from pytest_kvmha.parse.firewall import parse_firewall_section
from pytest_kvmha.parse.trace import TraceDamaged, TraceEvidence, parse_trace_sections


class FactError(ValueError):
    """Raw evidence is malformed; the message says what and where."""


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
        raise FactError(f"{what}: malformed XML: {_show(str(exc), 300)}") from None
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
        raise FactError(f"{what}: not a number: {_show(value)}") from None


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


def parse_domain(xml: str, *, source: str, what: str) -> Domain:
    root = parse_xml(xml, what)
    if root.tag != "domain":
        raise FactError(f"{what}: root element is <{root.tag}>, expected <domain>")
    name = root.findtext("name")
    uuid = root.findtext("uuid")
    if not name or not uuid:
        raise FactError(f"{what}: <domain> without <name> or <uuid>")
    if any(ord(c) < 32 or c == "\x7f" for c in name):
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
    _refuse_control_chars(what, uuid=uuid, machine=os_type, interface=nics, controller=controllers)
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
    _refuse_control_chars(what, name=name, bridge=bridge, portgroup=portgroups, default=default)
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
    _refuse_control_chars(what, name=root.get("name"), filterref=refs)
    return NwFilter(root.get("name", ""), refs)


# --- Open vSwitch JSON (ovs-vsctl --format=json list TABLE) ---------------------------------
#
# Cells follow RFC 7047: an atom (string, integer, real, boolean, ["uuid", x]), ["set", [atoms]]
# (a one-member set may be the bare atom) or ["map", [[atom, atom], ...]]. Anything else, and any
# column of the wrong type for its schema (ovs-vswitchd.conf.db(5)), is damaged evidence: the
# whole OVS section becomes a problem naming table, row and column, never a silently empty value.

VLAN_MODES = frozenset({"access", "trunk", "native-tagged", "native-untagged", "dot1q-tunnel"})


class _Uuid(str):
    """A uuid atom (``["uuid", x]``), told apart from a plain string of the same text."""

    __slots__ = ()


class _CellError(ValueError):
    """A cell that is not OVSDB JSON; the caller names table, row and column."""


def _show(value: Any, limit: int = 80) -> str:
    """A short, escaped rendering of a value from a host (repr escapes control characters)."""
    try:
        text = repr(value)
    except ValueError:  # an int past Python's digit limit
        text = f"<{type(value).__name__} too large to show>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _scalar(cell: Any) -> Any:
    if isinstance(cell, (str, int, float)):  # bool is an int: the typed getters tell them apart
        return cell
    if (
        isinstance(cell, list)
        and len(cell) == 2
        and cell[0] in ("uuid", "named-uuid")
        and isinstance(cell[1], str)
    ):
        return _Uuid(cell[1])
    raise _CellError(f"not an OVSDB atom: {_show(cell)}")


def _atom(cell: Any) -> Any:
    """Decode an OVSDB JSON cell: ["uuid", x] -> x, ["set", [...]] -> list, ["map", ...] -> dict."""
    if isinstance(cell, list) and len(cell) == 2 and cell[0] == "set":
        if not isinstance(cell[1], list):
            raise _CellError(f"malformed set: {_show(cell)}")
        return [_scalar(v) for v in cell[1]]
    if isinstance(cell, list) and len(cell) == 2 and cell[0] == "map":
        pairs = cell[1]
        if not isinstance(pairs, list) or not all(
            isinstance(p, list) and len(p) == 2 for p in pairs
        ):
            raise _CellError(f"malformed map: {_show(cell)}")
        out: dict[Any, Any] = {}
        for key, value in pairs:
            k = _scalar(key)
            if k in out:
                raise _CellError(f"map key {_show(k)} appears twice")
            out[k] = _scalar(value)
        return out
    return _scalar(cell)


def _load_json(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, digit limit, deep nesting
        raise FactError(f"{what}: malformed JSON: {_show(str(exc), 200)}") from None


def _ovs_rows(
    text: str, what: str
) -> tuple[list[str], list[tuple[dict[str, Any], dict[str, Any]]]]:
    """The headings, and the (decoded, raw) cells of each row by heading."""
    doc = _load_json(text, what)
    if (
        not isinstance(doc, dict)
        or not isinstance(doc.get("headings"), list)
        or not isinstance(doc.get("data"), list)
    ):
        raise FactError(f"{what}: expected {{'headings': [...], 'data': [...]}}")
    headings = doc["headings"]
    if not all(isinstance(h, str) for h in headings) or len(set(headings)) != len(headings):
        raise FactError(f"{what}: headings must be distinct column names: {_show(headings)}")
    rows = []
    for number, row in enumerate(doc["data"], 1):
        if not isinstance(row, list) or len(row) != len(headings):
            raise FactError(f"{what}: row {number} does not match headings")
        raw = dict(zip(headings, row, strict=True))
        decoded = {}
        for h, cell in raw.items():
            try:
                decoded[h] = _atom(cell)
            except _CellError as exc:
                raise FactError(f"{what}: row {number}, column {h!r}: {exc}") from None
        rows.append((decoded, raw))
    return headings, rows


def parse_ovs_table(text: str, what: str) -> list[dict[str, Any]]:
    return [decoded for decoded, _ in _ovs_rows(text, what)[1]]


class _OvsRow:
    """One row of an OVS table; each getter checks its column's type and names where it broke."""

    def __init__(self, what: str, number: int, cells: dict[str, Any], raw: dict[str, Any]) -> None:
        self.what, self.number, self.cells, self.raw = what, number, cells, raw

    def error(self, column: str, problem: str) -> FactError:
        name = self.cells.get("name")
        label = f" ({_show(name)})" if type(name) is str else ""
        return FactError(f"{self.what}: row {self.number}{label}: column {column!r}: {problem}")

    def _get(self, column: str) -> Any:
        if column not in self.cells:
            raise self.error(column, "missing")
        return self.cells[column]

    def _bad(self, column: str, expected: str) -> FactError:
        return self.error(column, f"expected {expected}, found {_show(self.raw[column])}")

    def _optional(self, column: str) -> Any:
        value = self._get(column)
        if isinstance(value, list):
            if len(value) > 1:
                raise self._bad(column, "at most one value")
            return value[0] if value else None
        return value

    def uuid(self, column: str = "_uuid") -> str:
        value = self._get(column)
        if not isinstance(value, _Uuid) or not value:
            raise self._bad(column, "a uuid")
        return str(value)

    def string(self, column: str) -> str:
        value = self._get(column)
        if type(value) is not str:
            raise self._bad(column, "a string")
        return value

    def optional_string(self, column: str) -> str | None:
        value = self._optional(column)
        if value is not None and type(value) is not str:
            raise self._bad(column, "a string or nothing")
        return value

    def optional_int(self, column: str, low: int, high: int) -> int | None:
        value = self._optional(column)
        if value is not None and (type(value) is not int or not low <= value <= high):
            raise self._bad(column, f"an integer {low}..{high} or nothing")
        return value

    def integer(self, column: str, low: int, high: int) -> int:
        value = self._get(column)
        if type(value) is not int or not low <= value <= high:
            raise self._bad(column, f"an integer {low}..{high}")
        return value

    def int_set(self, column: str, low: int, high: int) -> tuple[int, ...]:
        value = self._get(column)
        values = value if isinstance(value, list) else [value]
        if any(type(v) is not int or not low <= v <= high for v in values):
            raise self._bad(column, f"a set of integers {low}..{high}")
        return tuple(sorted(set(values)))

    def uuid_set(self, column: str) -> tuple[str, ...]:
        value = self._get(column)
        values = value if isinstance(value, list) else [value]
        if not all(isinstance(v, _Uuid) and v for v in values):
            raise self._bad(column, "a set of uuids")
        return tuple(str(v) for v in values)

    def str_map(self, column: str) -> Mapping[str, str]:
        value = self._get(column)
        if not isinstance(value, dict) or not all(
            type(k) is str and type(v) is str for k, v in value.items()
        ):
            raise self._bad(column, "a map of strings")
        return MappingProxyType(dict(value))


def _ovs_table(sec: Section, table: str) -> list[_OvsRow]:
    """A table's rows, each with a distinct ``_uuid`` and (where it has one) a distinct name."""
    what = f"ovs-{table}"
    headings, cells = _ovs_rows(sec.stdout, what)
    missing = [c for c in OVS_COLUMNS[table] if c not in headings]
    if missing:  # even in an empty table: the output is not what was asked for
        raise FactError(f"{what}: column {', '.join(map(repr, missing))} missing from the headings")
    rows = [_OvsRow(what, n, c, r) for n, (c, r) in enumerate(cells, 1)]
    seen: dict[str, int] = {}
    names: dict[str, int] = {}
    for row in rows:
        uuid = row.uuid()
        if uuid in seen:
            raise row.error("_uuid", f"{uuid} is also row {seen[uuid]}")
        seen[uuid] = row.number
        if table != "Open_vSwitch":
            name = row.string("name")
            if name in names:  # OVS keeps names unique per table
                raise row.error("name", f"{_show(name)} is also row {names[name]}")
            names[name] = row.number
    return rows


def _present(sections: Mapping[str, Section], name: str) -> Section | None:
    """A section, or None if it was not collected; raises if the bundle lost its file."""
    sec = sections.get(name)
    if sec is not None and sec.rc == MISSING_RC:
        raise FactError(f"{name}: {sec.stderr}")
    return sec


def build_ovs(sections: Mapping[str, Section]) -> OvsState:
    version_sec = _present(sections, "ovs-version")
    if version_sec is None:
        raise FactError("ovs-version: section missing from bundle")
    if version_sec.rc == 127 or (version_sec.rc != 0 and "not found" in version_sec.stderr):
        return OvsState(False, False, False, None, (), problem="ovs-vsctl: command not found")
    version = version_sec.stdout.strip().splitlines()[0] if version_sec.stdout.strip() else None
    vswitchd = _present(sections, "ovs-vswitchd")
    vswitchd_ok = vswitchd is not None and vswitchd.rc == 0
    tables: dict[str, list[_OvsRow]] = {}
    for table in ("Open_vSwitch", "Bridge", "Port", "Interface"):
        sec = _present(sections, f"ovs-{table}")
        if sec is None:
            raise FactError(f"ovs-{table}: section missing from bundle")
        if sec.rc != 0:
            return OvsState(
                True,
                False,
                vswitchd_ok,
                version,
                (),
                problem=f"ovs-vsctl list {table} failed (rc {sec.rc}): {sec.stderr.strip()}",
            )
        tables[table] = _ovs_table(sec, table)
    ifaces = {}
    for row in tables["Interface"]:
        row.optional_string("mac_in_use")  # not used, but a damaged row is damaged evidence
        uuid = row.uuid()
        ifaces[uuid] = OvsInterface(
            name=row.string("name"),
            uuid=uuid,
            type=row.string("type"),
            options=row.str_map("options"),
            external_ids=row.str_map("external_ids"),
            ofport=row.optional_int("ofport", -1, 65535),
            error=row.optional_string("error"),
        )
    ports: dict[str, OvsPort] = {}
    for row in tables["Port"]:
        members = []
        for u in row.uuid_set("interfaces"):
            if u not in ifaces:
                raise row.error("interfaces", f"names unknown interface {u}")
            members.append(ifaces[u])
        vlan_mode = row.optional_string("vlan_mode")
        if vlan_mode is not None and vlan_mode not in VLAN_MODES:
            raise row.error("vlan_mode", f"unknown VLAN mode {_show(vlan_mode)}")
        uuid = row.uuid()
        ports[uuid] = OvsPort(
            name=row.string("name"),
            uuid=uuid,
            bridge=None,  # set below, from the bridge that lists it
            tag=row.optional_int("tag", 0, 4095),
            trunks=row.int_set("trunks", 0, 4095),
            vlan_mode=vlan_mode,
            interfaces=tuple(members),
        )
    bridges = []
    for row in tables["Bridge"]:
        name = row.string("name")
        bports = []
        for u in row.uuid_set("ports"):
            if u not in ports:
                raise row.error("ports", f"names unknown port {u}")
            bports.append(replace(ports[u], bridge=name))
        bridges.append(
            OvsBridge(
                name=name,
                uuid=row.uuid(),
                datapath_type=row.string("datapath_type") or "system",
                ports=tuple(sorted(bports, key=lambda p: p.name)),
            )
        )
    _refuse_control_chars("ovs", bridge=bridges)
    if len(tables["Open_vSwitch"]) > 1:
        raise FactError("ovs-Open_vSwitch: more than one row in a table that has one")
    cfg = tables["Open_vSwitch"][0] if tables["Open_vSwitch"] else None
    if cfg is not None:
        cfg.optional_string("ovs_version")
        cur_cfg = cfg.integer("cur_cfg", 0, 2**63 - 1)
        next_cfg = cfg.integer("next_cfg", 0, 2**63 - 1)
    db_ok = True
    problem = None
    if not vswitchd_ok:
        detail = vswitchd.stderr.strip() if vswitchd is not None else "section missing"
        problem = f"ovs-vswitchd does not answer: {detail}"
    elif cfg is not None and cur_cfg != next_cfg:
        problem = (
            f"ovs-vswitchd has not applied the database (cur_cfg {cur_cfg} != next_cfg {next_cfg})"
        )
    return OvsState(
        True,
        db_ok,
        vswitchd_ok,
        version,
        tuple(sorted(bridges, key=lambda b: b.name)),
        problem=problem,
    )


# --- links and packages ----------------------------------------------------------------------


def parse_links(text: str) -> dict[str, Link]:
    """``ip -d -j link`` (or the same shape from netlink). Every field read is type-checked: a
    wrongly typed one makes the whole section a problem, never a default value."""
    doc = _load_json(text, "links: output of 'ip -d -j link'")
    if not isinstance(doc, list):
        raise FactError("links: expected a JSON list from 'ip -d -j link'")
    links: dict[str, Link] = {}
    for number, entry in enumerate(doc, 1):
        if not isinstance(entry, dict):
            raise FactError(f"links: entry {number}: expected a JSON object, found {_show(entry)}")
        name = entry.get("ifname")
        if type(name) is not str or not name:
            raise FactError(f"links: entry {number}: 'ifname' must be a name, found {_show(name)}")
        where = f"links: entry {number} ({_show(name)})"
        if name in links:
            raise FactError(f"{where}: interface listed twice")
        flags = entry.get("flags")
        if not isinstance(flags, list) or not all(type(f) is str for f in flags):
            raise FactError(f"{where}: 'flags' must be a list of names, found {_show(flags)}")
        promiscuity = entry.get("promiscuity")  # netlink may not report it: None, not 0
        if promiscuity is not None and (
            type(promiscuity) is not int or not 0 <= promiscuity < 2**32
        ):
            raise FactError(f"{where}: 'promiscuity' must be a counter, found {_show(promiscuity)}")
        info = entry.get("linkinfo")
        if info is not None and not isinstance(info, dict):
            raise FactError(f"{where}: 'linkinfo' must be an object, found {_show(info)}")
        kind = info.get("info_kind") if info else None
        if kind is not None and type(kind) is not str:
            raise FactError(f"{where}: 'info_kind' must be a string, found {_show(kind)}")
        mac = entry.get("address")
        if mac is not None and type(mac) is not str:
            raise FactError(f"{where}: 'address' must be a string, found {_show(mac)}")
        links[name] = Link(
            name=name, flags=frozenset(flags), promiscuity=promiscuity, kind=kind, mac=mac
        )
    _refuse_control_chars("links", link=list(links.values()))
    return links


_PACKAGE_NAME = re.compile(r"[a-z0-9][a-z0-9.+_-]*")

DPKG_PRESENT = frozenset(
    {
        "installed",
        "unpacked",
        "half-installed",
        "half-configured",
        "triggers-awaited",
        "triggers-pending",
    }
)


DPKG_STATES = DPKG_PRESENT | {"not-installed", "config-files"}


def parse_packages(text: str) -> PackageState:
    lines = text.splitlines()
    if not lines or not lines[0].startswith("manager="):
        raise FactError("packages: first line must be manager=<name>")
    manager = lines[0].split("=", 1)[1].strip() or None
    if manager == "none":
        return PackageState(None, MappingProxyType({}))
    installed: dict[str, bool] = {}
    for line in lines[1:]:
        parts = line.split("\t", 2)
        if len(parts) < 2 or not _PACKAGE_NAME.fullmatch(parts[0]):
            continue  # a further line of a query's multi-line message
        name, rc, status = parts[0], parts[1], parts[2] if len(parts) > 2 else ""
        if not re.fullmatch(r"-?[0-9]{1,4}", rc):
            raise FactError(f"packages: {name}: exit status is not a number: {_show(rc)}")
        if name in installed:
            raise FactError(f"packages: {name}: reported twice")
        if manager == "dpkg":
            # 'install ok installed' vs e.g. 'deinstall ok config-files' (removed, not purged)
            # 'install ok installed'; also unpacked/half-* states: brctl is on disk then.
            # 'deinstall ok config-files' (removed, not purged) and 'not-installed' are absent.
            state = status.split()[-1] if status.split() else ""
            if rc == "0" and (len(status.split()) != 3 or state not in DPKG_STATES):
                raise FactError(f"packages: {name}: not a dpkg status: {_show(status)}")
            installed[name] = rc == "0" and state in DPKG_PRESENT
        else:
            installed[name] = rc == "0"
    return PackageState(manager, MappingProxyType(installed))


# --- the whole bundle ------------------------------------------------------------------------


def _section_ok(sections: Mapping[str, Section], name: str) -> Section:
    sec = _present(sections, name)
    if sec is None:
        raise FactError(f"{name}: section missing from bundle")
    if sec.rc != 0:
        err = sec.stderr.strip().splitlines()
        raise FactError(f"{name}: command failed (rc {sec.rc}): {err[-1] if err else ''}")
    return sec


def _uuid_list(text: str) -> list[str]:
    return [line.split()[0].lower() for line in text.splitlines() if line.strip()]


def parse_bundle(bundle: EvidenceBundle) -> HostFacts:
    """Evidence bundle -> HostFacts. Never raises for bad evidence; records problems instead."""
    firewalls = _firewalls(bundle)  # read from files or consoles: known even without the host
    if bundle.status != "ok":
        return HostFacts(
            bundle.host,
            bundle.spec,
            bundle.status,
            bundle.error or bundle.status,
            firewalls=firewalls,
        )
    problems: dict[str, str] = {}
    s = bundle.sections

    def attempt(name: str, fn: Any) -> Any:
        try:
            return fn()
        except FactError as exc:
            problems[name] = f"{bundle.host}: {exc}"
            return None

    def first_line(name: str) -> str | None:
        lines = _section_ok(s, name).stdout.strip().splitlines()
        return lines[0].strip() if lines else None

    identity = attempt("identity", lambda: first_line("identity"))

    def packages_section() -> str:
        sec = _present(s, "packages")
        if sec is not None and sec.stdout.startswith("manager=none"):
            return sec.stdout  # older collectors exited 3 there: still a clear answer
        return _section_ok(s, "packages").stdout

    packages = attempt("packages", lambda: parse_packages(packages_section()))
    ovs = attempt("ovs", lambda: build_ovs(s))
    links = attempt("links", lambda: parse_links(_section_ok(s, "links").stdout))
    domains: dict[str, Domain] | None = attempt(
        "libvirt", lambda: _domains(s, problems, bundle.host)
    )
    networks = attempt("networks", lambda: _networks(s))
    nwfilters = attempt("nwfilters", lambda: _nwfilters(s))
    uri = attempt("libvirt-uri", lambda: _libvirt_uri(s))
    return HostFacts(
        name=bundle.host,
        spec=bundle.spec,
        status="ok",
        error=None,
        identity=identity,
        packages=packages,
        ovs=ovs,
        links=MappingProxyType(links) if links is not None else None,
        domains=MappingProxyType(domains) if domains is not None else None,
        networks=MappingProxyType(networks) if networks is not None else None,
        nwfilters=MappingProxyType(nwfilters) if nwfilters is not None else None,
        problems=MappingProxyType(problems),
        libvirt_uri=uri[1] if uri else None,
        libvirt_uri_from=uri[0] if uri else None,
        firewalls=firewalls,
        traces=attempt("traces", lambda: _traces(s)),
    )


def _firewalls(bundle: EvidenceBundle) -> Mapping[str, FirewallConfig]:
    """The firewall sections (issue 10), parsed by :mod:`pytest_kvmha.parse.firewall`, by key."""
    out: dict[str, FirewallConfig] = {}
    for name, sec in bundle.sections.items():
        parsed = parse_firewall_section(bundle.host, name, sec.stdout, sec.stderr, sec.rc)
        if parsed is not None:
            out[name.partition(".")[2]] = parsed
    return MappingProxyType(out)


def _traces(s: Mapping[str, Section]) -> TraceEvidence | None:
    try:
        return parse_trace_sections(s)
    except TraceDamaged as exc:  # damaged evidence, not a failed trace: a problem of the host
        raise FactError(str(exc)) from None


def _libvirt_uri(s: Mapping[str, Section]) -> tuple[str, str] | None:
    """(where from, URI) of the ``libvirt-uri`` section; None in bundles older than it."""
    if "libvirt-uri" not in s:
        return None
    lines = _section_ok(s, "libvirt-uri").stdout.rstrip("\n").split("\n")
    source, uri = lines[0], "\n".join(lines[1:])
    if source not in ("inventory", "env", "libvirt.conf", "default"):
        raise FactError(f"libvirt-uri: unknown origin {source[:40]!r}")
    if not uri or not uri.isprintable() or any(c.isspace() for c in uri) or len(uri) > 512:
        # The host's own LIBVIRT_DEFAULT_URI is host data: never shown raw.
        raise FactError(f"libvirt-uri: not a libvirt URI ({source}): {uri[:80]!r}")
    return source, uri


def _domains(s: Mapping[str, Section], problems: dict[str, str], host: str) -> dict[str, Domain]:
    uuids = _uuid_list(_section_ok(s, "virsh-domains").stdout)
    active = set(_uuid_list(_section_ok(s, "virsh-active").stdout))
    # virsh-paused came later than bundle schema 1: older recordings lack it
    paused = (
        set(_uuid_list(_section_ok(s, "virsh-paused").stdout)) if "virsh-paused" in s else set()
    )
    named: dict[str, list[Domain]] = {}
    for uuid in dict.fromkeys(uuids):  # a repeated line still names one domain
        live_name = f"domain-live/{uuid}"
        inactive_name = f"domain-inactive/{uuid}"
        try:
            inactive_text = _section_ok(s, inactive_name).stdout
            inactive = parse_domain(inactive_text, source="inactive", what=inactive_name)
            _same_domain(inactive, uuid, None, inactive_name)
            dom = replace(inactive, inactive_xml=inactive_text)
            if uuid in active:
                live = parse_domain(_section_ok(s, live_name).stdout, source="live", what=live_name)
                _same_domain(live, uuid, inactive.name, live_name)
                dom = Domain(
                    live.name,
                    live.uuid,
                    True,
                    live.machine,
                    live.nics,
                    live.controllers,
                    "live",
                    inactive_nics=inactive.nics,
                    paused=uuid in paused,
                    inactive_xml=inactive_text,
                )
        except FactError as exc:
            # A broken domain is reported under its UUID; the others are still audited.
            problems[f"domain:{uuid}"] = f"{host}: {exc}"
            continue
        named.setdefault(dom.name, []).append(dom)
    domains: dict[str, Domain] = {}
    for name, doms in named.items():
        if len(doms) > 1:
            # libvirt keeps names unique: which of them is the cluster member cannot be told,
            # so neither is audited (its checks are errors naming this), not the last one read.
            problems[f"domain:{name}"] = (
                f"{host}: {len(doms)} domains are named {_show(name)} "
                f"({', '.join(d.uuid for d in doms)}): cannot tell which one is meant"
            )
            continue
        domains[name] = doms[0]
    return domains


def _same_domain(dom: Domain, uuid: str, name: str | None, what: str) -> None:
    """The XML describes the domain it was listed as (and live agrees with persistent)."""
    if dom.uuid != uuid:
        raise FactError(f"{what}: <uuid> is {_show(dom.uuid)}, but the domain was listed as {uuid}")
    if name is not None and dom.name != name:
        raise FactError(
            f"{what}: <name> is {_show(dom.name)}, but the inactive XML says {_show(name)}"
        )


def _networks(s: Mapping[str, Section]) -> dict[str, LibvirtNetwork]:
    if "virsh-networks" not in s:
        return {}
    nets: dict[str, LibvirtNetwork] = {}
    for uuid in dict.fromkeys(_uuid_list(_section_ok(s, "virsh-networks").stdout)):
        name = f"network/{uuid}"
        net = parse_network(_section_ok(s, name).stdout, name)
        if net.name in nets:
            raise FactError(f"{name}: network name {_show(net.name)} is used twice")
        nets[net.name] = net
    return nets


def _nwfilters(s: Mapping[str, Section]) -> dict[str, NwFilter]:
    if "virsh-nwfilters" not in s:
        return {}
    filters: dict[str, NwFilter] = {}
    listed = _uuid_list(_section_ok(s, "virsh-nwfilters").stdout)
    if "nwfilter-fetched" in s:
        # The collector fetched only the filters domain NICs reference (and theirs): the
        # others are absent on purpose, and a check that needs one reports an error.
        fetched = {u.lower() for u in _uuid_list(_section_ok(s, "nwfilter-fetched").stdout)}
        listed = [u for u in listed if u.lower() in fetched]
    for uuid in dict.fromkeys(listed):
        if uuid.startswith("uuid"):  # table heading when not run with -q
            continue
        name = f"nwfilter/{uuid}"
        flt = parse_nwfilter(_section_ok(s, name).stdout, name)
        if flt.name in filters:
            raise FactError(f"{name}: nwfilter name {_show(flt.name)} is used twice")
        filters[flt.name] = flt
    return filters


# --- names from hosts are data, never text that can break a line ------------------------------

# C0/C1 controls, DEL, Unicode line separators: a name holding one can end a shell comment,
# a Markdown table row or a log line, so it is malformed evidence, not a name.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# Free text (error messages, raw XML kept for restores), not names.
_FREE_TEXT = frozenset({"error", "inactive_xml", "problem", "version"})


def _refuse_control_chars(what: str, **values: object) -> None:
    """Raise FactError naming the first name (at any depth of facts) with a control character."""
    for key, value in values.items():
        for path, text in _strings(value, key):
            if _CONTROL.search(text):
                raise FactError(f"{what}: {path} {text!r} contains control characters")


def _strings(value: object, path: str) -> list[tuple[str, str]]:
    if isinstance(value, str):
        return [(path, value)]
    if isinstance(value, etree._Element):
        return [(f"{path} {k}", str(v)) for k, v in value.attrib.items()]
    out: list[tuple[str, str]] = []
    if is_dataclass(value) and not isinstance(value, type):
        for f in fields(value):
            if f.name not in _FREE_TEXT:
                out += _strings(getattr(value, f.name), f"{path}.{f.name}".lstrip("."))
    elif isinstance(value, Mapping):
        for k, v in value.items():
            out += _strings(k, f"{path} key".lstrip())
            out += _strings(v, f"{path}[{k!r}]")
    elif isinstance(value, (list, tuple, set, frozenset)):
        for i, v in enumerate(value):
            out += _strings(v, f"{path}[{i}]")
    return out
