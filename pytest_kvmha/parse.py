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

from .bundle import MISSING_RC, EvidenceBundle, Section
from .facts import (
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
    except etree.XMLSyntaxError as exc:
        raise FactError(f"{what}: malformed XML: {exc}") from None
    if root is None:
        raise FactError(f"{what}: empty XML document")
    return root


def _int(value: str | None, what: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value, 0)
    except ValueError:
        raise FactError(f"{what}: not a number: {value!r}") from None


def _pci(el: etree._Element | None, what: str) -> PciAddress | None:
    if el is None or el.get("type") != "pci":
        return None
    return PciAddress(
        _int(el.get("domain"), what) or 0,
        _int(el.get("bus"), what) or 0,
        _int(el.get("slot"), what) or 0,
        _int(el.get("function"), what) or 0,
    )


def _vlan(el: etree._Element | None, what: str) -> VlanSetting | None:
    if el is None:
        return None
    tags: list[int] = []
    native = None
    for tag in el.findall("tag"):
        tid = _int(tag.get("id"), what)
        if tid is None:
            raise FactError(f"{what}: <vlan><tag> without id")
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


def _atom(cell: Any) -> Any:
    """Decode an OVSDB JSON cell: ["uuid", x] -> x, ["set", [...]] -> list, ["map", ...] -> dict."""
    if isinstance(cell, list) and len(cell) == 2 and isinstance(cell[0], str):
        kind, value = cell
        if kind in ("uuid", "named-uuid"):
            return value
        if kind == "set":
            return [_atom(v) for v in value]
        if kind == "map":
            return {_atom(k): _atom(v) for k, v in value}
    return cell


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _optional(value: Any) -> Any:
    """An optional column: empty set -> None, bare atom -> itself."""
    if isinstance(value, list):
        return value[0] if value else None
    return value


def parse_ovs_table(text: str, what: str) -> list[dict[str, Any]]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FactError(f"{what}: malformed JSON: {exc}") from None
    if (
        not isinstance(doc, dict)
        or not isinstance(doc.get("headings"), list)
        or not isinstance(doc.get("data"), list)
    ):
        raise FactError(f"{what}: expected {{'headings': [...], 'data': [...]}}")
    headings = doc["headings"]
    rows = []
    for row in doc["data"]:
        if not isinstance(row, list) or len(row) != len(headings):
            raise FactError(f"{what}: row does not match headings")
        rows.append({h: _atom(c) for h, c in zip(headings, row, strict=False)})
    return rows


def _str_map(value: Any) -> Mapping[str, str]:
    if isinstance(value, dict):
        return MappingProxyType({str(k): str(v) for k, v in value.items()})
    return MappingProxyType({})


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
    tables: dict[str, list[dict[str, Any]]] = {}
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
        tables[table] = parse_ovs_table(sec.stdout, f"ovs-{table}")
    ifaces = {}
    for row in tables["Interface"]:
        ofport = _optional(row.get("ofport"))
        ifaces[row["_uuid"]] = OvsInterface(
            name=str(row.get("name")),
            uuid=str(row["_uuid"]),
            type=str(row.get("type") or ""),
            options=_str_map(row.get("options")),
            external_ids=_str_map(row.get("external_ids")),
            ofport=int(ofport) if isinstance(ofport, int) else None,
            error=_optional(row.get("error")),
        )
    ports = {}
    for row in tables["Port"]:
        tag = _optional(row.get("tag"))
        trunks = row.get("trunks")
        members = [ifaces[u] for u in _as_list(row.get("interfaces")) if u in ifaces]
        ports[row["_uuid"]] = (row, tag, trunks, members)
    bridges = []
    for row in tables["Bridge"]:
        bports = []
        for u in _as_list(row.get("ports")):
            if u not in ports:
                raise FactError(f"ovs-Bridge: bridge {row.get('name')} names unknown port {u}")
            prow, tag, trunks, members = ports[u]
            bports.append(
                OvsPort(
                    name=str(prow.get("name")),
                    uuid=str(u),
                    bridge=str(row.get("name")),
                    tag=int(tag) if isinstance(tag, int) else None,
                    trunks=tuple(sorted(int(t) for t in _as_list(trunks) if isinstance(t, int))),
                    vlan_mode=_optional(prow.get("vlan_mode")) or None,
                    interfaces=tuple(members),
                )
            )
        bridges.append(
            OvsBridge(
                name=str(row.get("name")),
                uuid=str(row["_uuid"]),
                datapath_type=str(row.get("datapath_type") or "system"),
                ports=tuple(sorted(bports, key=lambda p: p.name)),
            )
        )
    _refuse_control_chars("ovs", bridge=bridges)
    db_ok = True
    problem = None
    if not vswitchd_ok:
        detail = vswitchd.stderr.strip() if vswitchd is not None else "section missing"
        problem = f"ovs-vswitchd does not answer: {detail}"
    else:
        cfg = tables["Open_vSwitch"][0] if tables["Open_vSwitch"] else {}
        if cfg and cfg.get("cur_cfg") != cfg.get("next_cfg"):
            problem = (
                f"ovs-vswitchd has not applied the database (cur_cfg {cfg.get('cur_cfg')} "
                f"!= next_cfg {cfg.get('next_cfg')})"
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
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FactError(f"links: malformed JSON from 'ip -d -j link': {exc}") from None
    if not isinstance(doc, list):
        raise FactError("links: expected a JSON list from 'ip -d -j link'")
    links = {}
    for entry in doc:
        if not isinstance(entry, dict) or not entry.get("ifname"):
            raise FactError("links: entry without ifname")
        info = entry.get("linkinfo") or {}
        promiscuity = entry.get("promiscuity")
        links[entry["ifname"]] = Link(
            name=entry["ifname"],
            flags=frozenset(str(f) for f in entry.get("flags") or ()),
            promiscuity=int(promiscuity) if isinstance(promiscuity, int) else None,
            kind=info.get("info_kind") if isinstance(info, dict) else None,
            mac=entry.get("address"),
        )
    _refuse_control_chars("links", link=list(links.values()))
    return links


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
        if len(parts) < 2:
            continue
        name, rc, status = parts[0], parts[1], parts[2] if len(parts) > 2 else ""
        if manager == "dpkg":
            # 'install ok installed' vs e.g. 'deinstall ok config-files' (removed, not purged)
            # 'install ok installed'; also unpacked/half-* states: brctl is on disk then.
            # 'deinstall ok config-files' (removed, not purged) and 'not-installed' are absent.
            state = status.split()[-1] if status.split() else ""
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
    if bundle.status != "ok":
        return HostFacts(bundle.host, bundle.spec, bundle.status, bundle.error or bundle.status)
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
    )


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
    domains: dict[str, Domain] = {}
    for uuid in uuids:
        live_name = f"domain-live/{uuid}"
        inactive_name = f"domain-inactive/{uuid}"
        try:
            inactive_text = _section_ok(s, inactive_name).stdout
            inactive = parse_domain(inactive_text, source="inactive", what=inactive_name)
            dom = replace(inactive, inactive_xml=inactive_text)
            if uuid in active:
                live = parse_domain(_section_ok(s, live_name).stdout, source="live", what=live_name)
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
        domains[dom.name] = dom
    return domains


def _networks(s: Mapping[str, Section]) -> dict[str, LibvirtNetwork]:
    if "virsh-networks" not in s:
        return {}
    nets = {}
    for uuid in _uuid_list(_section_ok(s, "virsh-networks").stdout):
        name = f"network/{uuid}"
        net = parse_network(_section_ok(s, name).stdout, name)
        nets[net.name] = net
    return nets


def _nwfilters(s: Mapping[str, Section]) -> dict[str, NwFilter]:
    if "virsh-nwfilters" not in s:
        return {}
    filters = {}
    for uuid in _uuid_list(_section_ok(s, "virsh-nwfilters").stdout):
        if uuid.startswith("uuid"):  # table heading when not run with -q
            continue
        name = f"nwfilter/{uuid}"
        flt = parse_nwfilter(_section_ok(s, name).stdout, name)
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
