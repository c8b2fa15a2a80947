"""Cluster discovery without an inventory: HA pairs among the domains the hosts run. Pure."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from pytest_kvmha.config.inventory import ClusterSpec, MemberSpec, PairSpec
from pytest_kvmha.facts.host import HostFacts


def _nic_bridge(host: HostFacts, nic: Any) -> str | None:
    if nic.source_bridge:
        return str(nic.source_bridge)
    if nic.source_network and host.networks and nic.source_network in host.networks:
        return host.networks[nic.source_network].bridge
    return None


def _on_ovs(host: HostFacts, nic: Any, bridge: str) -> bool:
    """Whether the NIC sits on an Open vSwitch bridge: one the host's OVS knows, or bound to OVS
    by its own or its network's ``<virtualport type='openvswitch'/>`` (OVS facts may be missing)."""
    if host.ovs is not None and host.ovs.bridge(bridge) is not None:
        return True
    if nic.virtualport == "openvswitch":
        return True
    network = (host.networks or {}).get(nic.source_network or "")
    return network is not None and network.virtualport == "openvswitch"


# Why a domain is no pairing candidate (counted per host in the discovery outcome).
FEW_NICS = "fewer than 2 NICs"
NO_BRIDGE = "a NIC on no bridge"
NO_OVS = "no NIC on an OVS bridge"
MAX_NAMES = 10  # domain names listed in one line of text; the JSON report lists them all


def name_list(names: Iterable[str]) -> str:
    """Names for a message, the first few only: a host with hundreds of VMs must stay readable."""
    names = list(names)
    shown = ", ".join(names[:MAX_NAMES])
    return shown + (f" and {len(names) - MAX_NAMES} more" if len(names) > MAX_NAMES else "")


@dataclass(frozen=True, slots=True)
class AmbiguousLayout:
    """A NIC-to-bridge layout shared by three or more domains: no pair can be told apart."""

    members: tuple[tuple[str, str], ...]  # (host, domain), sorted by domain
    layout: tuple[str, ...]  # the bridge of each NIC, in NIC order
    reason: str

    def as_json(self) -> dict[str, Any]:
        return {
            "domains": [d for _, d in self.members],
            "hosts": sorted({h for h, _ in self.members}),
            "members": [{"host": h, "domain": d} for h, d in self.members],
            "layout": list(self.layout),
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class Discovery:
    """What discovery saw: the pairs it formed, the layouts it would not guess, and per host how
    many domains it read (``None``: libvirt was not read) and why the others are no candidates."""

    clusters: tuple[ClusterSpec, ...]
    ambiguous: tuple[AmbiguousLayout, ...]
    domains: Mapping[str, int | None]
    skipped: Mapping[str, Mapping[str, int]]  # host -> reason -> domains

    def describe(self) -> str:
        """One sentence for the "no HA cluster found" error."""
        parts = []
        for host, n in self.domains.items():
            if n is None:
                parts.append(f"domains of {host} not read")
                continue
            why = ", ".join(f"{k} {r}" for r, k in self.skipped.get(host, {}).items())
            noun = "domain" if n == 1 else "domains"
            parts.append(f"{n} {noun} read on {host}" + (f" ({why})" if why else ""))
        text = "; ".join(parts) or "no host was read"
        text += ", none pair up"
        for a in self.ambiguous:
            text += (
                f"; {len(a.members)} domains share one layout ({', '.join(a.layout)}): "
                + name_list(f"{d}@{h}" for h, d in a.members)
            )
        return text

    def as_json(self) -> dict[str, Any]:
        return {
            "clusters": [c.name for c in self.clusters],
            "ambiguous": [a.as_json() for a in self.ambiguous],
            "domains": dict(self.domains),
            "skipped": {h: dict(r) for h, r in self.skipped.items()},
        }


def _layout(host: HostFacts, dom: Any) -> tuple[tuple[str, ...] | None, str | None]:
    """A domain's NIC-to-bridge layout, or why the domain cannot be an HA member."""
    if len(dom.nics) < 2:
        return None, FEW_NICS
    bridges = tuple(_nic_bridge(host, nic) or "" for nic in dom.nics)
    if not all(bridges):
        return None, NO_BRIDGE
    if not any(_on_ovs(host, nic, b) for nic, b in zip(dom.nics, bridges, strict=True)):
        return None, NO_OVS
    return bridges, None


def discover(hosts: Iterable[HostFacts]) -> Discovery:
    """Find HA pairs among the domains of ``hosts`` (on one server or across servers).

    A domain is a candidate when it has at least two NICs, each on a bridge, at least one of them
    an Open vSwitch bridge: a firewall joins networks, and the pairs of an HA cluster sit on OVS.
    Single-NIC VMs (dozens on ``virbr0`` or a LAN bridge) never are. Two candidates whose whole
    NIC-to-bridge layout (the bridge of NIC 1, NIC 2, ...) is the same form a cluster named
    ``<domA>+<domB>``. A layout shared by three or more domains is ambiguous: no cluster is
    guessed; it is reported so that the user can write an inventory. A server on one of the
    pair's bridges has another layout, so it never joins.
    """
    groups: dict[tuple[str, ...], list[tuple[str, str]]] = defaultdict(list)
    counts: dict[str, int | None] = {}
    skipped: dict[str, dict[str, int]] = {}
    for host in hosts:
        if host.status != "ok" or host.domains is None:
            counts[host.name] = None  # said in the error items of that host
            continue
        counts[host.name] = len(host.domains)
        for dom in host.domains.values():
            bridges, why = _layout(host, dom)
            if bridges is None:
                reasons = skipped.setdefault(host.name, {})
                reasons[str(why)] = reasons.get(str(why), 0) + 1
            else:
                groups[bridges].append((dom.name, host.name))
    clusters: list[ClusterSpec] = []
    ambiguous: list[AmbiguousLayout] = []
    for bridges, members in groups.items():
        members.sort()
        if len(members) > 2:
            ambiguous.append(
                AmbiguousLayout(
                    tuple((h, d) for d, h in members),
                    bridges,
                    f"{len(members)} domains share this NIC-to-bridge layout and an HA cluster "
                    "is exactly two: name the pair in an inventory (--kvmha-inventory)",
                )
            )
            continue
        if len(members) < 2:
            continue
        pair_names: list[str] = []
        for b in bridges:
            name = (
                b
                if b not in pair_names
                else f"{b}#{sum(1 for n in pair_names if n.split('#')[0] == b) + 1}"
            )
            pair_names.append(name)
        clusters.append(
            ClusterSpec(
                name="+".join(d for d, _ in members),
                vendor="unknown",
                heartbeat="broadcast",
                members=tuple(
                    MemberSpec(h, d, "master" if i == 0 else "slave")
                    for i, (d, h) in enumerate(members)
                ),
                pairs=tuple(PairSpec(n, b) for n, b in zip(pair_names, bridges, strict=False)),
                discovered=True,
            )
        )
    # Names must be unique (they are node ids): one domain name on two hosts gets its host.
    names = [c.name for c in clusters]
    clusters = [
        c
        if names.count(c.name) == 1 and len({m.domain for m in c.members}) == 2
        else replace(c, name="+".join(f"{m.domain}@{m.host}" for m in c.members))
        for c in clusters
    ]
    return Discovery(
        tuple(sorted(clusters, key=lambda c: c.name)),
        tuple(sorted(ambiguous, key=lambda a: a.members)),
        counts,
        skipped,
    )
