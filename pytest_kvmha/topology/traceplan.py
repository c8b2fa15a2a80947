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
from collections.abc import Sequence
from dataclasses import dataclass

from pytest_kvmha.bundle.contract import BRIDGE_NAME, FLOW
from pytest_kvmha.config.inventory import ClusterSpec, PairSpec
from pytest_kvmha.facts import HostFacts, OvsBridge, OvsPort
from pytest_kvmha.model import MissingFacts
from pytest_kvmha.topology import Cluster, Member, Placement, cluster_views, uplinks
from pytest_kvmha.topology.bonds import entry_ofport
from pytest_kvmha.topology.traffic import BROADCAST, Frame, member_frames

__all__ = ["BROADCAST", "Frame", "Leg", "NotTraceable", "TraceSpec", "member_legs", "plan_traces"]


@dataclass(frozen=True, slots=True)
class TraceSpec:
    """One ``ovs-appctl ofproto/trace BRIDGE FLOW`` on one host."""

    bridge: str
    flow: str

    @property
    def key(self) -> str:
        """A safe, stable section name for this trace (``trace/<key>`` in the bundle): host text
        never names a file."""
        digest = hashlib.sha256(f"{self.bridge}\0{self.flow}".encode()).hexdigest()
        return "t" + digest[:20]


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
                spec = TraceSpec(_bridge(host, mine.bridge), flow(_ofport(host, mine.port), fr))
                legs.append(Leg("peer", host, spec, fr, None, qp.port.name, q.label))
                continue
            ups = uplinks(host, mine.bridge)
            carry = [(u, b) for u, b in ups if vlan is None or u.carries_vlan(vlan)] or ups
            spec = TraceSpec(_bridge(host, mine.bridge), flow(_ofport(host, mine.port), fr))
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
                spec = TraceSpec(_bridge(q.host, ub), flow(_ofport(q.host, u), fr, vlan))
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
