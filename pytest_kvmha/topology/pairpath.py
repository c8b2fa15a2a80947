"""The switch path one member's NIC of a pair takes on its host: its port, the pair bridge, the
bridges patched to it and the uplinks on them (what spanning tree and MTU are judged along)."""

from __future__ import annotations

from dataclasses import dataclass

from pytest_kvmha.facts import HostFacts, OvsBridge, OvsPort
from pytest_kvmha.topology.cluster import (
    Cluster,
    Member,
    Placement,
    patch_peers,
    require_ovs,
    uplinks,
)


@dataclass(frozen=True, slots=True)
class PairPath:
    member: Member
    placement: Placement
    bridges: tuple[OvsBridge, ...]  # the pair bridge first, then those patched to it
    patches: tuple[tuple[OvsPort, OvsBridge], ...]  # patch ports on those bridges
    uplinks: tuple[tuple[OvsPort, OvsBridge], ...]  # physical ports (a bond is one)

    @property
    def host(self) -> HostFacts:
        return self.member.host

    def ports(self) -> list[tuple[OvsPort, OvsBridge]]:
        """Every port the pair's frames cross on this host: member port, patches, uplinks."""
        own = [(self.placement.port, self.bridges[0])] if self.placement.port else []
        return own + list(self.patches) + list(self.uplinks)


def _route(
    host: HostFacts, bridge: OvsBridge
) -> tuple[list[OvsBridge], list[tuple[OvsPort, OvsBridge]], list[tuple[OvsPort, OvsBridge]]]:
    """(bridges, patch ports, uplinks) from ``bridge`` to the uplinks patched to it: only the
    bridges and patches that lead to an uplink (another pair's bridge behind a shared trunk
    bridge is not on this pair's way out)."""
    ovs = require_ovs(host)
    parent: dict[str, tuple[str, OvsPort, OvsPort] | None] = {bridge.name: None}
    by_name = {bridge.name: bridge}
    todo = [bridge]
    while todo:
        br = todo.pop(0)
        for local, peer, peer_bridge in patch_peers(ovs, br):
            if peer_bridge.name not in parent:
                parent[peer_bridge.name] = (br.name, local, peer)
                by_name[peer_bridge.name] = peer_bridge
                todo.append(peer_bridge)
    ups = uplinks(host, bridge)
    keep = [bridge.name]
    patches: list[tuple[OvsPort, OvsBridge]] = []
    for _, on in ups:
        name = on.name
        while (step := parent.get(name)) is not None:
            prev, local, peer = step
            for pair in ((local, by_name[prev]), (peer, by_name[name])):
                if pair not in patches:
                    patches.append(pair)
            if name not in keep:
                keep.append(name)
            name = prev
    return [by_name[n] for n in keep], patches, ups


def pair_paths(cluster: Cluster, index: int, host: HostFacts | None = None) -> list[PairPath]:
    """One path per member (on ``host`` only, when given) whose NIC is on an OVS bridge; a NIC
    on none has no switch path (KVMHA-OVS-002 fails it)."""
    out = []
    for member in cluster.members:
        if host is not None and member.host.name != host.name:
            continue
        placement = cluster.placement(member, index)
        if placement.bridge is None:
            continue
        bridges, patches, ups = _route(member.host, placement.bridge)
        out.append(PairPath(member, placement, tuple(bridges), tuple(patches), tuple(ups)))
    return out
