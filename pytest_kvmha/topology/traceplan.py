"""Which heartbeat frames to trace through Open vSwitch, per host: pure, no I/O.

For every interface pair of an audited cluster and every member (both directions):

- one server: from the member's port, to each peer's port on the same host;
- two servers: on the member's host, from its port out of an uplink with the pair's VLAN; on
  the peer's host, from that host's uplink with the pair's VLAN into the peer's port.

The frames are the HA frames the vendor model says the member sends on the pair
(:func:`pytest_kvmha.topology.traffic.member_frames`). The collector runs the planned traces
(:func:`plan_traces`) and the check (``checks/trace.py``) plans again from the same facts
(:func:`member_legs`) and reads each trace back by its key, so that a live audit and the replay
of its recording evaluate the very same traces.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pytest_kvmha.bundle.contract import BRIDGE_NAME, FLOW
from pytest_kvmha.config.inventory import ClusterSpec, PairSpec
from pytest_kvmha.facts import HostFacts, OvsBridge, OvsPort, OvsState
from pytest_kvmha.model import MissingFacts
from pytest_kvmha.topology import Cluster, Member, Placement, cluster_views, uplinks
from pytest_kvmha.topology.bonds import entry_ofport
from pytest_kvmha.topology.traffic import BROADCAST, Frame, member_frames

__all__ = [
    "BROADCAST",
    "Frame",
    "Leg",
    "NotTraceable",
    "TraceSpec",
    "member_legs",
    "plan_traces",
    "switch_state",
]


@dataclass(frozen=True, slots=True)
class TraceSpec:
    """One ``ovs-appctl ofproto/trace BRIDGE FLOW`` on one host.

    ``switch`` is what the frame meets there besides the OpenFlow tables: the configuration of
    ``bridge`` and every bridge patched to it (:func:`switch_state`)."""

    bridge: str
    flow: str
    switch: str = ""

    @property
    def key(self) -> str:
        """A safe, stable section name for this trace (``trace/<key>`` in the bundle): host text
        never names a file. It covers the switch configuration the trace was planned on, so a
        recorded trace is read back only against that configuration: evidence whose ports,
        VLANs, patches or bonds differ (reconfigured, or edited after the recording) finds no
        trace under its key, and the check errs instead of judging a trace of other facts."""
        text = f"{self.bridge}\0{self.flow}\0{self.switch}"
        return "t" + hashlib.sha256(text.encode()).hexdigest()[:20]


def switch_state(host: HostFacts, bridge: str) -> str:
    """A digest of what decides where a frame entering ``bridge`` on ``host`` goes, apart from
    the OpenFlow tables (which the trace itself shows): of that bridge and every bridge reached
    from it by patch ports, the STP/RSTP settings and other_config; of each port, its VLAN
    settings (tag, trunks, vlan_mode), other_config and bond settings; of each interface, its
    type, options (a patch's peer) and OpenFlow port number; and the bond state (bond/show:
    which member is active). ovs-vswitchd.conf.db(5): Bridge, Port (VLAN Configuration, Bonding
    Configuration), Interface; ovs-vswitchd(8), bond/show."""
    ovs = host.ovs
    if ovs is None:
        return ""
    cached = _STATES.get((id(ovs), bridge))
    if cached is not None and cached[0] is ovs:
        return cached[1]
    if len(_STATES) > 4096:
        _STATES.clear()
    digest = _digest(ovs, bridge)
    _STATES[(id(ovs), bridge)] = (ovs, digest)  # holds ovs: its id is not reused meanwhile
    return digest


# (id(OvsState), bridge) -> (that OvsState, its digest): a fleet plans many legs per bridge
_STATES: dict[tuple[int, str], tuple[OvsState, str]] = {}


def _digest(ovs: OvsState, bridge: str) -> str:
    seen: list[str] = []
    todo = [bridge]
    while todo:
        name = todo.pop()
        br = ovs.bridge(name)
        if br is None or name in seen:
            continue
        seen.append(name)
        for port in br.ports:
            for iface in port.interfaces:
                peer_port = ovs.port_of_interface(iface.peer) if iface.peer else None
                peer_bridge = ovs.bridge_of_port(peer_port.name) if peer_port else None
                if peer_bridge is not None:
                    todo.append(peer_bridge.name)
    parts = []
    for name in sorted(seen):
        br = ovs.bridge(name)
        assert br is not None
        parts.append(repr((br.name, br.stp_enable, br.rstp_enable, _items(br.other_config))))
        for port in sorted(br.ports, key=lambda p: p.name):
            bond = ovs.bonds.get(port.name) if ovs.bonds is not None else None
            ifaces = tuple(
                (i.name, i.type, _items(i.options), i.ofport)
                for i in sorted(port.interfaces, key=lambda i: i.name)
            )
            parts.append(
                repr(
                    (port.name, port.tag, port.trunks, port.vlan_mode, _items(port.other_config))
                    + (port.bond_mode, port.lacp, ifaces, bond)
                )
            )
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _items(m: Mapping[str, str] | None) -> tuple[tuple[str, str], ...] | None:
    return None if m is None else tuple(sorted(m.items()))


@dataclass(frozen=True, slots=True)
class Leg:
    """One trace and what it must show.

    ``kind``: ``peer`` (same host: delivered untagged to ``target``), ``uplink`` (leaves by one
    of ``uplinks`` carrying ``vlan``), ``from-uplink`` (entering by ``uplink`` with ``vlan``,
    delivered untagged to ``target``), ``no-uplink`` (the peer's bridge has no uplink at all:
    no frame can enter there, nothing to trace)."""

    kind: str
    host: HostFacts
    spec: TraceSpec | None  # None for kind no-uplink: there is nothing to trace
    frame: Frame
    vlan: int | None  # the pair's VLAN between the servers (None: untagged / single server)
    target: str | None = None  # the peer's port name
    peer: str | None = None  # the peer domain
    uplinks: tuple[str, ...] = ()  # kind uplink: the uplinks that may carry the pair
    uplink: str | None = None  # kind from-uplink: the port the frame enters by


class NotTraceable(Exception):
    """The heartbeat path does not exist to be traced (a member is not running): a skip."""


def flow(ofport: int, frame: Frame, vlan: int | None = None) -> str:
    tag = f",dl_vlan={vlan}" if vlan is not None else ""
    text = (
        f"in_port={ofport}{tag},dl_src={frame.src.lower()},dl_dst={frame.dst.lower()},"
        f"dl_type={frame.ethertype:#06x}"
    ) + "".join(f",{k}={v.lower()}" for k, v in frame.fields)
    if not FLOW.fullmatch(text):  # MACs from the domain XML are parsed, but fail closed
        raise MissingFacts(f"cannot write a safe trace flow for {frame.label}")
    return text


def _ofport(host: HostFacts, port: OvsPort) -> int:
    if (entry := entry_ofport(host, port)) is not None:
        return entry
    for iface in port.interfaces:
        if iface.ofport is not None and 0 < iface.ofport < 0xFF00:
            return iface.ofport
    raise MissingFacts(f"{host.name}: port {port.name!r} has no OpenFlow port number (ofport)")


def _bridge(host: HostFacts, bridge: OvsBridge) -> str:
    if not BRIDGE_NAME.fullmatch(bridge.name):
        raise MissingFacts(
            f"{host.name}: bridge name {bridge.name!r} is not a plain name: not traced "
            "(it would reach a shell and ovs-appctl as an argument)"
        )
    return bridge.name


def _spec(host: HostFacts, bridge: OvsBridge, flow: str) -> TraceSpec:
    name = _bridge(host, bridge)
    return TraceSpec(name, flow, switch_state(host, name))


def pair_vlan(cluster: Cluster, index: int, pair: PairSpec) -> int | None:
    """The pair's VLAN between the servers: declared, else the first member's."""
    if pair.vlan is not None:
        return pair.vlan
    return next((p.vlan for _, p in cluster.placements(index) if p.vlan is not None), None)


def _placed(cluster: Cluster, member: Member, index: int) -> Placement:
    p = cluster.placement(member, index)
    if not member.domain().active:
        raise NotTraceable(f"{member.label} is not running: it has no OVS port to trace")
    if p.port is None or p.bridge is None:
        raise MissingFacts(
            f"{member.label}'s NIC #{index + 1} has no OVS port on {member.host.name} "
            "(see KVMHA-VIRT-001): nothing to trace"
        )
    if not p.nic.mac:
        raise MissingFacts(f"{member.label}'s NIC #{index + 1} has no MAC address")
    return p


def member_legs(cluster: Cluster, member: Member, index: int, pair: PairSpec) -> list[Leg]:
    """Every trace that proves ``member``'s heartbeat on pair ``index`` reaches its peers.

    Raises :class:`NotTraceable` (skip) or :class:`MissingFacts` (error)."""
    peers = [m for m in cluster.members if m is not member]
    if not peers:
        raise MissingFacts(f"cluster {cluster.name} has no peer for {member.label}")
    mine = _placed(cluster, member, index)
    placed = [(q, _placed(cluster, q, index)) for q in peers]
    assert mine.port is not None and mine.bridge is not None and mine.nic.mac
    two = cluster.two_servers()
    vlan = pair_vlan(cluster, index, pair) if two else None
    legs: list[Leg] = []
    host = member.host
    for q, qp in placed:
        assert qp.port is not None and qp.bridge is not None and qp.nic.mac
        sent = member_frames(cluster, member, index, pair, mine.nic.mac.lower(), qp.nic.mac.lower())
        for fr in sent:
            if q.host.identity == host.identity and q.host.name == host.name:
                spec = _spec(host, mine.bridge, flow(_ofport(host, mine.port), fr))
                legs.append(Leg("peer", host, spec, fr, None, qp.port.name, q.label))
                continue
            ups = uplinks(host, mine.bridge)
            carry = [(u, b) for u, b in ups if vlan is None or u.carries_vlan(vlan)] or ups
            spec = _spec(host, mine.bridge, flow(_ofport(host, mine.port), fr))
            legs.append(
                Leg(
                    "uplink",
                    host,
                    spec,
                    fr,
                    vlan,
                    peer=q.label,
                    uplinks=tuple(u.name for u, _ in carry),
                )
            )
            peer_ups = uplinks(q.host, qp.bridge)
            if not peer_ups:  # nothing to trace from: the check fails this leg as it is
                legs.append(Leg("no-uplink", q.host, None, fr, vlan, qp.port.name, q.label))
            for u, ub in peer_ups:
                spec = _spec(q.host, ub, flow(_ofport(q.host, u), fr, vlan))
                legs.append(
                    Leg("from-uplink", q.host, spec, fr, vlan, qp.port.name, q.label, uplink=u.name)
                )
    return legs


def plan_traces(
    hosts: Sequence[HostFacts], clusters: Sequence[ClusterSpec]
) -> dict[str, tuple[TraceSpec, ...]]:
    """host name -> the traces to run there (each once), for the ports of ``clusters``.

    A member whose legs cannot be planned (stopped, facts missing) adds nothing: the check says
    why when it plans the same legs again."""
    plans: dict[str, dict[str, TraceSpec]] = {}
    for cluster in cluster_views(hosts, clusters):
        for index, pair in enumerate(cluster.pairs()):
            for member in cluster.members:
                try:
                    legs = member_legs(cluster, member, index, pair)
                except (MissingFacts, NotTraceable):
                    legs = []
                for leg in legs:
                    if leg.spec is None:
                        continue
                    plans.setdefault(leg.host.name, {})[leg.spec.key] = leg.spec
    return {h: tuple(specs.values()) for h, specs in plans.items()}
