"""An evidence bundle's raw sections assembled into :class:`HostFacts`. Pure: no I/O.

A section that is missing or malformed does not raise: its facts become ``None`` and the reason
goes into ``HostFacts.problems`` under the section's name, so checks report ``error`` with it.
The sections themselves are read by :mod:`~pytest_kvmha.parse.libvirt`,
:mod:`~pytest_kvmha.parse.ovsdb`, :mod:`~pytest_kvmha.parse.links`,
:mod:`~pytest_kvmha.parse.firewall` and :mod:`~pytest_kvmha.parse.trace`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from types import MappingProxyType
from typing import Any, TypeVar

from pytest_kvmha.bundle.contract import OVS_BONDS, OVS_LACP
from pytest_kvmha.bundle.store import EvidenceBundle, Section
from pytest_kvmha.facts.firewall import FirewallConfig
from pytest_kvmha.facts.ha_status import HaStatusRead
from pytest_kvmha.facts.host import Domain, HostFacts, LibvirtNetwork, NwFilter
from pytest_kvmha.facts.trace import TraceEvidence
from pytest_kvmha.parse.evidence import FactError, present, section_ok, show
from pytest_kvmha.parse.firewall import parse_firewall_section
from pytest_kvmha.parse.ha_status import parse_ha_status_section
from pytest_kvmha.parse.libvirt import parse_domain, parse_network, parse_nwfilter
from pytest_kvmha.parse.links import parse_links, parse_packages
from pytest_kvmha.parse.ovsdb import build_ovs
from pytest_kvmha.parse.trace import TraceDamaged, parse_trace_sections


def _uuid_list(text: str) -> list[str]:
    return [line.split()[0].lower() for line in text.splitlines() if line.strip()]


def parse_bundle(bundle: EvidenceBundle) -> HostFacts:
    """Evidence bundle -> HostFacts. Never raises for bad evidence; records problems instead."""
    firewalls = _firewalls(bundle)  # read from files or consoles: known even without the host
    ha_status = _ha_status(bundle)
    if bundle.status != "ok":
        return HostFacts(
            bundle.host,
            bundle.spec,
            bundle.status,
            bundle.error or bundle.status,
            firewalls=firewalls,
            ha_status=ha_status,
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
        lines = section_ok(s, name).stdout.strip().splitlines()
        return lines[0].strip() if lines else None

    identity = attempt("identity", lambda: first_line("identity"))

    def packages_section() -> str:
        sec = present(s, "packages")
        if sec is not None and sec.stdout.startswith("manager=none"):
            return sec.stdout  # older collectors exited 3 there: still a clear answer
        return section_ok(s, "packages").stdout

    packages = attempt("packages", lambda: parse_packages(packages_section()))
    ovs = attempt("ovs", lambda: build_ovs(s))
    # collected, but damaged; not when OVS itself is absent or its database does not answer
    # (build_ovs returns before reading the bonds then, and KVMHA-OVS-001 fails instead)
    if (
        ovs is not None
        and ovs.bonds_problem is not None
        and any(n in s for n in (OVS_BONDS, OVS_LACP))
    ):
        problems[OVS_BONDS] = f"{bundle.host}: {ovs.bonds_problem}"
    links = attempt("links", lambda: parse_links(section_ok(s, "links").stdout))
    domains: dict[str, Domain] | None = attempt(
        "libvirt", lambda: _domains(s, problems, bundle.host)
    )
    networks = attempt("networks", lambda: _networks(s))
    nwfilters = attempt("nwfilters", lambda: _nwfilters(s))
    if nwfilters is None and _no_nwfilter_driver(s):
        nwfilters = _without_nwfilter_driver(bundle.host, domains, problems)
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
        ha_status=ha_status,
        traces=attempt("traces", lambda: _traces(s)),
    )


_Member = TypeVar("_Member", FirewallConfig, HaStatusRead)


def _members(
    bundle: EvidenceBundle, parse: Callable[[str, str, str, str, int], _Member | None]
) -> Mapping[str, _Member]:
    """The members' sections that ``parse`` reads (None: not its kind), by the key after the
    vendor (``fwconfig/fortigate.fw-a`` -> ``fw-a``)."""
    out: dict[str, _Member] = {}
    for name, sec in bundle.sections.items():
        parsed = parse(bundle.host, name, sec.stdout, sec.stderr, sec.rc)
        if parsed is not None:
            out[name.partition(".")[2]] = parsed
    return MappingProxyType(out)


def _firewalls(bundle: EvidenceBundle) -> Mapping[str, FirewallConfig]:
    """The firewall sections, parsed by :mod:`pytest_kvmha.parse.firewall`, by key."""
    return _members(bundle, parse_firewall_section)


def _ha_status(bundle: EvidenceBundle) -> Mapping[str, HaStatusRead]:
    """The HA status sections (:mod:`pytest_kvmha.parse.ha_status`), by the same key."""
    return _members(bundle, parse_ha_status_section)


def _traces(s: Mapping[str, Section]) -> TraceEvidence | None:
    try:
        return parse_trace_sections(s)
    except TraceDamaged as exc:  # damaged evidence, not a failed trace: a problem of the host
        raise FactError(str(exc)) from None


def _libvirt_uri(s: Mapping[str, Section]) -> tuple[str, str] | None:
    """(where from, URI) of the ``libvirt-uri`` section; None in bundles older than it."""
    if "libvirt-uri" not in s:
        return None
    lines = section_ok(s, "libvirt-uri").stdout.rstrip("\n").split("\n")
    source, uri = lines[0], "\n".join(lines[1:])
    if source not in ("inventory", "env", "libvirt.conf", "default"):
        raise FactError(f"libvirt-uri: unknown origin {source[:40]!r}")
    if not uri or not uri.isprintable() or any(c.isspace() for c in uri) or len(uri) > 512:
        # The host's own LIBVIRT_DEFAULT_URI is host data: never shown raw.
        raise FactError(f"libvirt-uri: not a libvirt URI ({source}): {uri[:80]!r}")
    return source, uri


def _domains(s: Mapping[str, Section], problems: dict[str, str], host: str) -> dict[str, Domain]:
    uuids = _uuid_list(section_ok(s, "virsh-domains").stdout)
    active = set(_uuid_list(section_ok(s, "virsh-active").stdout))
    # virsh-paused came later than bundle schema 1: older recordings lack it
    paused = set(_uuid_list(section_ok(s, "virsh-paused").stdout)) if "virsh-paused" in s else set()
    named: dict[str, list[Domain]] = {}
    for uuid in dict.fromkeys(uuids):  # a repeated line still names one domain
        live_name = f"domain-live/{uuid}"
        inactive_name = f"domain-inactive/{uuid}"
        try:
            inactive_text = section_ok(s, inactive_name).stdout
            inactive = parse_domain(inactive_text, source="inactive", what=inactive_name)
            _same_domain(inactive, uuid, None, inactive_name)
            dom = replace(inactive, inactive_xml=inactive_text)
            if uuid in active:
                live = parse_domain(section_ok(s, live_name).stdout, source="live", what=live_name)
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
                f"{host}: {len(doms)} domains are named {show(name)} "
                f"({', '.join(d.uuid for d in doms)}): cannot tell which one is meant"
            )
            continue
        domains[name] = doms[0]
    return domains


def _same_domain(dom: Domain, uuid: str, name: str | None, what: str) -> None:
    """The XML describes the domain it was listed as (and live agrees with persistent)."""
    if dom.uuid != uuid:
        raise FactError(f"{what}: <uuid> is {show(dom.uuid)}, but the domain was listed as {uuid}")
    if name is not None and dom.name != name:
        raise FactError(
            f"{what}: <name> is {show(dom.name)}, but the inactive XML says {show(name)}"
        )


def _networks(s: Mapping[str, Section]) -> dict[str, LibvirtNetwork]:
    if "virsh-networks" not in s:  # bundles older than it
        return {}
    uuids = _uuid_list(section_ok(s, "virsh-networks").stdout)
    return _by_name(s, "network", uuids, parse_network)


def _nwfilters(s: Mapping[str, Section]) -> dict[str, NwFilter]:
    if "virsh-nwfilters" not in s:
        return {}
    uuids = _uuid_list(section_ok(s, "virsh-nwfilters").stdout)
    if "nwfilter-fetched" in s:
        # The collector fetched only the filters domain NICs reference (and theirs): the
        # others are absent on purpose, and a check that needs one reports an error.
        fetched = {u.lower() for u in _uuid_list(section_ok(s, "nwfilter-fetched").stdout)}
        uuids = [u for u in uuids if u.lower() in fetched]
    uuids = [u for u in uuids if not u.startswith("uuid")]  # table heading when not run with -q
    return _by_name(s, "nwfilter", uuids, parse_nwfilter)


# libvirt's message for VIR_ERR_NO_SUPPORT (src/util/virerror.c), which virsh prints when the
# connection's driver has no nwfilter support (a qemu:///session connection, a build or install
# without the nwfilter driver: common on minimal hosts).
NO_DRIVER = "this function is not supported by the connection driver"


def _no_nwfilter_driver(s: Mapping[str, Section]) -> bool:
    try:
        sec = present(s, "virsh-nwfilters")
    except FactError:  # the file is unreadable: the nwfilters problem says so, no driver verdict
        return False
    return sec is not None and sec.rc != 0 and NO_DRIVER in sec.stderr


def _without_nwfilter_driver(
    host: str, domains: Mapping[str, Domain] | None, problems: dict[str, str]
) -> dict[str, NwFilter] | None:
    """No filter can apply without the driver: no filters, unless a NIC references one (then the
    problem stays, naming it) or the domains were not all read (then no one knows)."""
    if domains is None or any(k.startswith("domain:") for k in problems):
        return None
    for dom in domains.values():
        for nic in (*dom.nics, *(dom.inactive_nics or ())):
            if nic.filterref:
                problems["nwfilters"] = (
                    f"{host}: libvirt has no nwfilter driver ({NO_DRIVER}), but domain "
                    f"{show(dom.name)} NIC {nic.index + 1} references filter {show(nic.filterref)}"
                )
                return None
    problems.pop("nwfilters", None)
    return {}


_Named = TypeVar("_Named", LibvirtNetwork, NwFilter)


def _by_name(
    s: Mapping[str, Section], kind: str, uuids: list[str], parse: Callable[[str, str], _Named]
) -> dict[str, _Named]:
    """Each listed object's ``<kind>/<uuid>`` section parsed, by its name (unique per host)."""
    out: dict[str, _Named] = {}
    for uuid in dict.fromkeys(uuids):  # a repeated line still names one object
        name = f"{kind}/{uuid}"
        obj = parse(section_ok(s, name).stdout, name)
        if obj.name in out:
            raise FactError(f"{name}: {kind} name {show(obj.name)} is used twice")
        out[obj.name] = obj
    return out
