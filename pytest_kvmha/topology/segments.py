"""The layer-2 segments the audited clusters' pairs are on, across every cluster and host: pure.

A member NIC on an OVS bridge sits on one broadcast domain: its host, the bridges patched to its
bridge (one switch), and its access VLAN there (``Placement.vlan``: the port's tag, the XML's
``<vlan>``, or the tag of the patch port that carries it). Two NICs on the same host, switch and
VLAN share a segment. Between servers a segment continues over the uplinks: frames of VLAN N that
an uplink carries tagged (``OvsPort.carries_vlan``) meet every other server's VLAN N on the same
physical network. Which servers share a physical network is not in any host's facts; two servers
are taken as joined when an audited cluster has members on both (its pairs' VLANs cross between
them), and servers joined so, directly or through others, form one fabric. A pair that leaves
both servers untagged (no VLAN between them) joins its two members' segments as the cluster is
wired to.

A cluster whose NICs cannot all be placed (a host unreachable, a NIC on no OVS bridge) may sit on
any segment: every other segment's finding then cannot pass (see :func:`segments`).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

from pytest_kvmha.config.inventory import PairSpec
from pytest_kvmha.facts import HostFacts, OvsBridge, OvsPort
from pytest_kvmha.model import MissingFacts
from pytest_kvmha.topology.cluster import Cluster, Member, patch_peers, require_ovs, uplinks

# How many servers a fabric's name lists before it counts the rest.
_NAMED_HOSTS = 3


@dataclass(frozen=True, slots=True)
class Attachment:
    """One member NIC of one pair on a segment."""

    cluster: Cluster
    member: Member
    index: int  # the pair's index
    pair: PairSpec
    bridge: str  # the bridge its port is (or, stopped, will be) on
    switch: str  # the first bridge of the patch-connected bridges it is on (one switch)
    vlan: int | None  # its access VLAN on that switch; None: untagged
    wire_vlans: tuple[int, ...]  # the VLANs its frames leave the host with, tagged

    @property
    def host(self) -> str:
        return self.member.host.name

    def where(self) -> str:
        vlan = f"VLAN {self.vlan}" if self.vlan is not None else "untagged"
        return f"{escape(self.host)} {escape(self.bridge)} {vlan}"


@dataclass(frozen=True, slots=True)
class Segment:
    """One broadcast domain and every audited member NIC on it."""

    name: str  # readable and stable: the subject (and node id) of its findings
    attachments: tuple[Attachment, ...]
    # (cluster, why) for each cluster whose NICs could not all be placed and that has none on
    # this segment: it may be on it, so a verdict without collision cannot pass
    unknown: tuple[tuple[str, str], ...] = ()

    def clusters(self) -> list[Cluster]:
        """The distinct clusters on the segment, in audit order (one Cluster object each)."""
        return list({a.cluster.name: a.cluster for a in self.attachments}.values())

    def where(self) -> str:
        """The hosts, bridges and VLANs of the segment, for findings."""
        return ", ".join(dict.fromkeys(a.where() for a in self.attachments))


def escape(name: str) -> str:
    """A host or bridge name as it appears in a segment name: letters, digits and ``._-`` stay,
    every other byte becomes ``\\xNN`` (so ``:``, ``+``, ``@``, brackets, blanks and control
    characters, which the name uses as separators or which a node id and a ``-k`` word cannot
    hold, never appear in it)."""
    out = []
    for byte in name.encode("utf-8", "surrogateescape"):
        ch = chr(byte)
        out.append(ch if ch.isascii() and (ch.isalnum() or ch in "._-") else f"\\x{byte:02x}")
    return "".join(out) or "\\x00"


def _switch(host: HostFacts, bridge: OvsBridge) -> str:
    """The patch-connected set of bridges ``bridge`` belongs to, named by its first bridge."""
    ovs = require_ovs(host)
    seen = {bridge.name}
    todo = [bridge]
    while todo:
        for _, _, peer in patch_peers(ovs, todo.pop()):
            if peer.name not in seen:
                seen.add(peer.name)
                todo.append(peer)
    return min(seen)


def _untagged_out(port: OvsPort, vlan: int | None) -> bool:
    """Whether frames of ``vlan`` (None: untagged) leave ``port`` untagged
    (ovs-vswitchd.conf.db(5), Port: vlan_mode, tag, trunks)."""
    mode = port.effective_vlan_mode
    if mode in ("access", "native-untagged"):
        return port.tag == vlan if vlan is not None else port.tag is None
    return vlan is None and mode == "trunk" and (not port.trunks or 0 in port.trunks)


class _Joins:
    """Union-find over segment keys."""

    def __init__(self) -> None:
        self.parent: dict[Hashable, Hashable] = {}

    def find(self, key: Hashable) -> Hashable:
        self.parent.setdefault(key, key)
        while self.parent[key] != key:
            self.parent[key] = self.parent[self.parent[key]]
            key = self.parent[key]
        return key

    def join(self, a: Hashable, b: Hashable) -> None:
        self.parent[self.find(a)] = self.find(b)


def _fabrics(clusters: Sequence[Cluster]) -> dict[str, str]:
    """{host: the name of its fabric}: servers joined by a cluster with members on both."""
    joins = _Joins()
    for c in clusters:
        names = [m.host.name for m in c.members]
        for h in names:
            joins.find(h)
        for h in names[1:]:
            joins.join(names[0], h)
    groups: dict[Hashable, list[str]] = {}
    for h in {m.host.name for c in clusters for m in c.members}:
        groups.setdefault(joins.find(h), []).append(h)
    out = {}
    for hosts in groups.values():
        ordered = sorted(hosts)
        shown = "+".join(escape(h) for h in ordered[:_NAMED_HOSTS])
        if len(ordered) > _NAMED_HOSTS:
            shown += f"+{len(ordered) - _NAMED_HOSTS}more"
        for h in hosts:
            out[h] = shown
    return out


def _attach(cluster: Cluster, member: Member, index: int, pair: PairSpec) -> Attachment:
    placement = cluster.placement(member, index)
    bridge = placement.bridge
    if bridge is None:
        raise MissingFacts(
            f"{member.label} NIC #{index + 1} on {member.host.name} is on no OVS bridge "
            f"({placement.bridge_name or 'no bridge'}): its segment is not audited"
        )
    vlan = placement.vlan
    wire = sorted(
        {vlan for port, _ in uplinks(member.host, bridge) if vlan and port.carries_vlan(vlan)}
    )
    switch = _switch(member.host, bridge)
    return Attachment(cluster, member, index, pair, bridge.name, switch, vlan, tuple(wire))


def _leaves_untagged(a: Attachment) -> bool:
    host = a.member.host
    bridge = require_ovs(host).bridge(a.bridge)
    return bridge is not None and any(
        _untagged_out(port, a.vlan) for port, _ in uplinks(host, bridge)
    )


def segments(clusters: Sequence[Cluster]) -> tuple[list[Segment], dict[str, str]]:
    """Every segment an audited member NIC is on, sorted by name, and {cluster: why} for each
    cluster with a NIC that could not be placed."""
    fabric = _fabrics(clusters)
    joins = _Joins()
    found: list[tuple[Hashable, Attachment]] = []
    unknown: dict[str, str] = {}
    for c in clusters:
        if not c.pairs():
            unknown[c.name] = "cannot tell its interface pairs (no member facts, no declared pairs)"
        for k, pair in enumerate(c.pairs()):
            legs: list[tuple[Hashable, Attachment]] = []
            for m in c.members:
                try:
                    a = _attach(c, m, k, pair)
                except MissingFacts as exc:
                    unknown.setdefault(c.name, str(exc))
                    continue
                node: Hashable = ("node", a.host, a.switch, a.vlan)
                for v in a.wire_vlans:
                    joins.join(node, ("wire", fabric[a.host], v))
                joins.find(node)
                found.append((node, a))
                legs.append((node, a))
            untagged = [n for n, a in legs if not a.wire_vlans and _leaves_untagged(a)]
            if len(untagged) == len(legs) > 1 and len({a.host for _, a in legs}) > 1:
                for n in untagged[1:]:
                    joins.join(untagged[0], n)
    groups: dict[Hashable, list[tuple[Hashable, Attachment]]] = {}
    for node, a in found:
        groups.setdefault(joins.find(node), []).append((node, a))
    out = []
    for members in groups.values():
        attachments = tuple(a for _, a in members)
        on = {a.cluster.name for a in attachments}
        out.append(
            Segment(
                _name(attachments, fabric),
                attachments,
                tuple((c, why) for c, why in unknown.items() if c not in on),
            )
        )
    if not out and unknown and len(clusters) > 1:
        # no segment known at all: one finding says why, so the run cannot look complete
        out.append(Segment("segments", (), tuple(unknown.items())))
    return sorted(out, key=lambda s: s.name), unknown


def _name(attachments: Sequence[Attachment], fabric: dict[str, str]) -> str:
    wire = sorted({v for a in attachments for v in a.wire_vlans})
    if wire:
        fabrics = sorted({fabric[a.host] for a in attachments if a.wire_vlans})
        return "+".join(f"vlan{v}" for v in wire) + "@" + "+".join(fabrics)
    nodes = {
        f"{escape(a.host)}:{escape(a.bridge)}:"
        + (f"vlan{a.vlan}" if a.vlan is not None else "untagged")
        for a in attachments
    }
    return "+".join(sorted(nodes))
