"""The cluster as checks see it: inventory members joined to host facts and live OVS state.

Accessors raise :class:`MissingFacts` when what they need was not collected, so a check that
cannot be evaluated becomes an ``error`` finding instead of a silent pass.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from pytest_kvmha.config.inventory import ClusterSpec, MemberSpec, PairSpec
from pytest_kvmha.config.names import firewall_key
from pytest_kvmha.facts import (
    Domain,
    DomainNic,
    HostFacts,
    LibvirtNetwork,
    Link,
    OvsBridge,
    OvsPort,
    OvsState,
)
from pytest_kvmha.facts.firewall import FirewallFacts
from pytest_kvmha.model import MissingFacts, MissingSubject

PHYSICAL_TYPES = ("", "system")


def require_host(host: HostFacts) -> HostFacts:
    if host.status != "ok":
        raise MissingFacts(host.error or f"{host.name}: {host.status}")
    return host


def require_ovs(host: HostFacts) -> OvsState:
    require_host(host)
    if host.ovs is None:
        raise MissingFacts(host.problems.get("ovs", f"{host.name}: no Open vSwitch facts"))
    if not host.ovs.installed:
        raise MissingSubject(
            f"Open vSwitch on {host.name}", "which is not installed", "KVMHA-OVS-001"
        )
    if not host.ovs.db_answers:
        raise MissingSubject(
            f"Open vSwitch on {host.name}",
            f"which does not answer: {host.ovs.problem}",
            "KVMHA-OVS-001",
        )
    return host.ovs


def require_links(host: HostFacts) -> Mapping[str, Link]:
    require_host(host)
    if host.links is None:
        raise MissingFacts(host.problems.get("links", f"{host.name}: no link facts"))
    return host.links


def require_domains(host: HostFacts) -> Mapping[str, Domain]:
    require_host(host)
    if host.domains is None:
        raise MissingFacts(host.problems.get("libvirt", f"{host.name}: no libvirt facts"))
    return host.domains


@dataclass(frozen=True, slots=True)
class Member:
    spec: MemberSpec
    host: HostFacts

    @property
    def label(self) -> str:
        return self.spec.domain

    def domain_or_none(self) -> Domain | None:
        return require_domains(self.host).get(self.spec.domain)

    def domain(self) -> Domain:
        dom = self.domain_or_none()
        if dom is None:
            broken = [p for k, p in self.host.problems.items() if k.startswith("domain:")]
            if broken:  # a domain whose XML did not parse: that is the cause, not the name
                raise MissingFacts(
                    f"domain {self.spec.domain!r} not found on host {self.host.name} "
                    f"({'; '.join(broken)}) (see KVMHA-TOPO-001)"
                )
            raise MissingSubject(
                f"domain {self.spec.domain} on {self.host.name}",
                "which is missing",
                "KVMHA-TOPO-001",
            )
        return dom

    def nic(self, index: int) -> DomainNic:
        dom = self.domain()
        if index >= len(dom.nics):
            raise MissingSubject(
                f"NIC #{index + 1} of {dom.name} on {self.host.name}",
                "which is missing",
                "KVMHA-TOPO-001",
            )
        return dom.nics[index]


@dataclass(frozen=True, slots=True)
class Placement:
    """Where one domain NIC is plugged, joined from its XML and the host's OVS database."""

    nic: DomainNic
    network: LibvirtNetwork | None
    configured_bridge: str | None  # from <source bridge> or the libvirt network
    port: OvsPort | None  # the live OVS port (running domains only)
    bridge: OvsBridge | None  # the OVS bridge it sits on (live) or would sit on (stopped)
    virtualport: str | None  # effective: the NIC's own or its network's
    vlan: int | None  # access VLAN: live port tag, else XML/portgroup <vlan>, else via patch
    vlan_source: str | None

    @property
    def bridge_name(self) -> str | None:
        return self.bridge.name if self.bridge else self.configured_bridge


def xml_vlan(nic: DomainNic, network: LibvirtNetwork | None) -> int | None:
    setting = nic.vlan
    if setting is None and network is not None:
        group = nic.source_portgroup or network.default_portgroup
        setting = network.portgroups.get(group) if group else None
        setting = setting or network.vlan
    if setting and not setting.trunk and len(setting.tags) == 1:
        return setting.tags[0]
    return None


def patch_peers(ovs: OvsState, bridge: OvsBridge) -> list[tuple[OvsPort, OvsPort, OvsBridge]]:
    """(local patch port, peer port, peer bridge) for each patch port of ``bridge``."""
    out = []
    for port in bridge.ports:
        for iface in port.interfaces:
            if iface.peer:
                peer_port = ovs.port_of_interface(iface.peer)
                peer_bridge = ovs.bridge_of_port(peer_port.name) if peer_port else None
                if peer_port and peer_bridge:
                    out.append((port, peer_port, peer_bridge))
    return out


def _patch_vlan(ovs: OvsState, bridge: OvsBridge) -> int | None:
    tags = {peer.tag for _, peer, _ in patch_peers(ovs, bridge) if peer.tag is not None}
    tags |= {local.tag for local, _, _ in patch_peers(ovs, bridge) if local.tag is not None}
    return tags.pop() if len(tags) == 1 else None


def place(host: HostFacts, domain: Domain, nic: DomainNic) -> Placement:
    ovs = require_ovs(host)
    network = None
    configured = nic.source_bridge
    if nic.type == "network":
        if host.networks is None:
            raise MissingFacts(
                host.problems.get("networks", f"{host.name}: no libvirt network facts")
            )
        network = host.networks.get(nic.source_network or "")
        if network is None:
            raise MissingFacts(
                f"{domain.name}: NIC #{nic.index + 1} uses libvirt network "
                f"{nic.source_network!r}, which is not defined on {host.name}"
            )
        configured = network.bridge
    port = None
    if domain.active:
        if nic.target_dev:
            port = ovs.port_of_interface(nic.target_dev)
        if port is None and nic.mac:
            port = ovs.port_by_mac(nic.mac, domain.uuid)
    bridge = (
        ovs.bridge_of_port(port.name) if port else (ovs.bridge(configured) if configured else None)
    )
    vlan, source = None, None
    if port is not None and port.tag is not None and port.effective_vlan_mode == "access":
        vlan, source = port.tag, f"OVS access tag on port {port.name}"
    elif port is None and xml_vlan(nic, network) is not None:
        vlan, source = xml_vlan(nic, network), "<vlan> in the domain XML"
    elif bridge is not None and (pv := _patch_vlan(ovs, bridge)) is not None:
        vlan, source = pv, f"patch port tag on bridge {bridge.name}"
    return Placement(
        nic=nic,
        network=network,
        configured_bridge=configured,
        port=port,
        bridge=bridge,
        virtualport=nic.virtualport or (network.virtualport if network else None),
        vlan=vlan,
        vlan_source=source,
    )


def uplinks(host: HostFacts, bridge: OvsBridge) -> list[tuple[OvsPort, OvsBridge]]:
    """Physical ports reachable from ``bridge``: on it, or on bridges joined to it by patches."""
    ovs = require_ovs(host)
    seen = {bridge.name}
    todo = [bridge]
    out: list[tuple[OvsPort, OvsBridge]] = []
    while todo:
        br = todo.pop()
        for port in br.ports:
            if port.name == br.name:
                continue
            if all(
                i.type in PHYSICAL_TYPES and not i.attached_mac and "vm-id" not in i.external_ids
                for i in port.interfaces
            ):
                out.append((port, br))
        for _, _, peer_bridge in patch_peers(ovs, br):
            if peer_bridge.name not in seen:
                seen.add(peer_bridge.name)
                todo.append(peer_bridge)
    return out


def persistent(
    host: HostFacts, domain: Domain, index: int
) -> tuple[DomainNic, LibvirtNetwork | None] | None:
    """A running domain's NIC as its persistent (inactive) XML defines it, with its network;
    None for a stopped domain (its facts are the persistent ones already)."""
    if not domain.active or domain.inactive_nics is None or index >= len(domain.inactive_nics):
        return None
    nic = domain.inactive_nics[index]
    if nic.type != "network":
        return nic, None
    if host.networks is None:  # unknown is not "no such network": that would fail, not err
        raise MissingFacts(host.problems.get("networks", f"{host.name}: no libvirt network facts"))
    return nic, host.networks.get(nic.source_network or "")


@dataclass(frozen=True, slots=True)
class Cluster:
    spec: ClusterSpec
    members: tuple[Member, ...]
    _placed: dict[tuple[int, int], Placement | MissingFacts] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def placement(self, member: Member, index: int) -> Placement:
        """Where ``member``'s NIC of pair ``index`` is plugged (computed once per audit)."""
        key = (self.members.index(member), index)
        if key not in self._placed:
            try:
                self._placed[key] = place(member.host, member.domain(), member.nic(index))
            except MissingFacts as exc:
                self._placed[key] = exc
        result = self._placed[key]
        if isinstance(result, MissingFacts):
            raise type(result)(*result.args)  # a fresh one per check: no shared traceback
        return result

    @property
    def name(self) -> str:
        return self.spec.name

    def pairs(self) -> tuple[PairSpec, ...]:
        """Declared pairs, else one per NIC of the member with the most NICs."""
        if self.spec.pairs:
            return self.spec.pairs
        counts = []
        for m in self.members:
            try:
                dom = m.domain_or_none()
            except MissingFacts:
                continue
            if dom is not None:
                counts.append(len(dom.nics))
        return tuple(PairSpec(f"If{k + 1}") for k in range(max(counts, default=0)))

    def hosts(self) -> list[HostFacts]:
        seen: dict[str, HostFacts] = {}
        for m in self.members:
            seen.setdefault(m.host.name, m.host)
        return list(seen.values())

    def two_servers(self) -> bool:
        """Whether the members run on different physical servers (by machine identity)."""
        hosts = self.hosts()
        for h in hosts:
            require_host(h)
            if h.identity is None:
                raise MissingFacts(
                    h.problems.get("identity", f"{h.name}: machine identity unknown")
                )
        return len({h.identity for h in hosts}) > 1

    def placements(self, index: int) -> list[tuple[Member, Placement]]:
        return [(m, self.placement(m, index)) for m in self.members]


# --- the firewalls' own HA configuration ------------------------------------------------------


def cluster_views(hosts: Sequence[HostFacts], clusters: Sequence[ClusterSpec]) -> list[Cluster]:
    """The clusters as the checks see them: each member with its host's facts (an error host
    for a member whose host was not audited: only possible for hand-built specs, inventories
    are validated)."""
    by_name = {h.name: h for h in hosts}
    views = []
    for spec in clusters:
        members = []
        for m in spec.members:
            facts = by_name.get(m.host)
            if facts is None:
                facts = HostFacts(m.host, "", "error", f"host {m.host!r} was not audited")
            members.append(Member(m, facts))
        views.append(Cluster(spec, tuple(members)))
    return views


class _Read(Protocol):
    @property
    def problem(self) -> str | None: ...


_R = TypeVar("_R", bound=_Read)
_F = TypeVar("_F")


def require_read(member: Member, found: _R | None, what: str, facts: Callable[[_R], _F]) -> _F:
    """The ``facts`` of ``found``, what the member's declared ``what`` gave; raises MissingFacts
    when it was not collected (the host's own error when the host was not read), has a problem,
    or holds no facts."""
    if found is None:
        if member.host.status != "ok":
            raise MissingFacts(member.host.error or f"{member.host.name}: {member.host.status}")
        raise MissingFacts(
            f"{member.spec.domain} on {member.host.name}: {what} is not in the evidence bundle"
        )
    if found.problem is not None:
        raise MissingFacts(found.problem)
    got = facts(found)
    if got is None:
        raise MissingFacts(f"{member.spec.domain}: no {what.partition(' (')[0]} facts")
    return got


def member_firewall(member: Member) -> FirewallFacts | None:
    """The member's firewall HA facts; None when the inventory declares no ``config``/``console``
    for it. Raises MissingFacts when one is declared but could not be read or parsed."""
    spec = member.spec
    if spec.config is None and spec.console is None:
        return None
    source = f"config {spec.config}" if spec.config else f"console {spec.console}"
    found = member.host.firewalls.get(firewall_key(spec.domain))
    return require_read(member, found, f"firewall configuration ({source})", lambda f: f.facts)


def member_firewalls(cluster: Cluster) -> dict[str, FirewallFacts] | None:
    """Every member's firewall facts by member label, when every member's configuration is
    declared and readable (then the configurations decide); None otherwise."""
    out: dict[str, FirewallFacts] = {}
    for m in cluster.members:
        try:
            facts = member_firewall(m)
        except MissingFacts:
            return None
        if facts is None:
            return None
        out[m.label] = facts
    return out


def config_heartbeat(cluster: Cluster) -> str | None:
    """The heartbeat mode the members' own configuration uses, when every member's configuration
    is known and they agree; None otherwise (then the inventory's declaration is used)."""
    found = member_firewalls(cluster)
    modes = {f.heartbeat for f in found.values()} if found else set()
    return modes.pop() if len(modes) == 1 else None


def heartbeat_mode(cluster: Cluster) -> str:
    """The heartbeat the host side is judged for: the firewalls' configuration decides when it is
    known (KVMHA-FW-003 reports a contradicting inventory), else the inventory's declaration."""
    return config_heartbeat(cluster) or cluster.spec.heartbeat


def pci_ordered(nics: Sequence[DomainNic]) -> list[DomainNic]:
    """The NICs in PCI address order (domain, bus, slot, function): the order the guest numbers
    its interfaces in. A NIC without an address sorts first."""
    return sorted(
        nics,
        key=lambda nic: (
            (nic.address.domain, nic.address.bus, nic.address.slot, nic.address.function)
            if nic.address
            else (0, 0, 0, 0)
        ),
    )


def nic_in_pci_order(member: Member, n: int) -> int:
    """Index (document order, = pair index) of the member's ``n``-th NIC (1-based) in PCI order:
    FortiGate-VM's ``portN`` and cOS Core's N-th Ethernet interface."""
    dom = member.domain()
    nics = dom.nics
    missing = [nic.index + 1 for nic in nics if nic.address is None]
    if missing:
        raise MissingFacts(
            f"{dom.name} on {member.host.name}: NIC #{missing[0]} has no PCI address "
            "(cannot tell the guest's interface order)"
        )
    ordered = pci_ordered(nics)
    if not 1 <= n <= len(ordered):
        raise IndexError(n)
    return ordered[n - 1].index


def nic_at_pci(member: Member, bus: int, slot: int, function: int) -> int:
    """Index (document order, = pair index) of the member's NIC at PCI ``bus:slot.function``
    (any PCI domain), for a firewall that shows its interfaces' PCI addresses (cOS Core's
    bus, slot, port). Raises IndexError when no NIC, or more than one, is there."""
    dom = member.domain()
    found = [
        nic.index
        for nic in dom.nics
        if nic.address is not None
        and (nic.address.bus, nic.address.slot, nic.address.function) == (bus, slot, function)
    ]
    if len(found) != 1:
        raise IndexError((bus, slot, function))
    return found[0]
