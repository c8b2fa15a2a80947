"""What names a cluster on a shared layer-2 segment, per member: FGCP group-id or cOS Core
cluster ID, from the members' configurations when read, else from the inventory. Pure.

Two clusters on one segment must differ in it (vendor facts in :mod:`pytest_kvmha.vendors`):

- FortiGate FGCP: the virtual MACs are made from the group-id, so two clusters with one group-id
  on one network share virtual MACs (FortiOS 7.4.3 Administration Guide, "Cluster virtual MAC
  addresses": "A MAC address conflict can occur when two clusters are operating on the same
  network using the same group ID", each cluster in one broadcast domain should use a unique
  group ID; FortiOS 6.0 Handbook, "Layer-2 switches": two clusters with the same group ID cannot
  be on the same network unless a router separates them). ``show`` leaves a default group-id out:
  then it is 0 (``fortigate.DEFAULT_GROUP_ID``), and two clusters left at the default collide.
  Unicast heartbeat puts no virtual MAC on any interface (FortiGate-VM KVM guide, "High
  availability"): such a cluster has no identity on the segment. Group ids 256-1023 are compared
  by their virtual MACs, where the two documents disagree (``fortigate.virtual_macs``).
- cOS Core: the shared MAC is derived from the cluster ID; a cluster that is not the first one in
  a network needs a cluster ID of its own (D-Link NetDefendOS manual, an OEM build of cOS Core,
  §11.3 "HA Setup": "If this is not the first cluster in a network then the Cluster ID must be
  changed for the cluster so that it is unique (the default value is 0). The Cluster ID
  determines that the MAC address for the cluster is unique"; Clavister's own guide was not
  found saying it). The parser keeps a cluster ID the output does not show as unknown.
"""

from __future__ import annotations

from dataclasses import dataclass

from pytest_kvmha.facts.firewall import CosHaFacts, FgcpFacts
from pytest_kvmha.model import MissingFacts
from pytest_kvmha.topology.cluster import Cluster, Member, heartbeat_mode, member_firewall
from pytest_kvmha.vendors import fortigate

FGCP, COS = "FGCP group-id", "cOS Core cluster ID"


@dataclass(frozen=True, slots=True)
class Identity:
    """One member's cluster identity on a segment."""

    kind: str  # FGCP | COS
    value: int
    source: str  # where it comes from, for findings

    @property
    def macs(self) -> frozenset[str]:
        """What collides: FGCP's virtual MAC prefixes (every reading), cOS Core's cluster ID."""
        if self.kind == FGCP:
            return frozenset(m.rsplit(":", 1)[0] for m in fortigate.virtual_macs(self.value, 0))
        return frozenset({str(self.value)})

    def collides(self, other: Identity) -> bool:
        return self.kind == other.kind and bool(self.macs & other.macs)

    def describe(self) -> str:
        return f"{self.kind} {self.value} ({self.source})"


@dataclass(frozen=True, slots=True)
class Unknown:
    """A member whose identity could be either ``kinds`` and is not known."""

    kinds: tuple[str, ...]
    why: str


def member_identity(cluster: Cluster, member: Member) -> tuple[Identity, ...] | Unknown:
    """The member's identities (none: it puts no cluster MAC on the wire), or why unknown.
    Raises MissingFacts when its declared configuration could not be read."""
    facts = member_firewall(member)
    if isinstance(facts, FgcpFacts):
        if not facts.ha_section or facts.mode in (None, "standalone") or facts.unicast_hb:
            return ()  # standalone, or unicast heartbeat: no virtual MAC
        if facts.group_id is None:
            return (
                Identity(FGCP, fortigate.DEFAULT_GROUP_ID, "configuration: not shown, the default"),
            )
        return (Identity(FGCP, facts.group_id, "configuration"),)
    if isinstance(facts, CosHaFacts):
        if facts.cluster_id is None:
            return Unknown((COS,), f"{member.label}'s configuration shows no cluster ID")
        return (Identity(COS, facts.cluster_id, "configuration"),)
    vendor = cluster.spec.vendor
    kinds = {"fortigate": (FGCP,), "cos-core": (COS,)}.get(vendor, (FGCP, COS))
    if kinds == (FGCP,) and heartbeat_mode(cluster) == "unicast":
        return ()
    gid = cluster.spec.group_id
    if gid is None:
        return Unknown(
            kinds,
            f"cluster {cluster.name} declares no group_id and {member.label}'s configuration "
            "is not read (declare group_id, or its config/console)",
        )
    return tuple(Identity(k, gid, "inventory group_id") for k in kinds)


def identities(cluster: Cluster) -> dict[str, tuple[Identity, ...] | Unknown]:
    """{member label: its identities or why unknown}; MissingFacts for a member whose declared
    configuration could not be read becomes an :class:`Unknown` of both kinds."""
    out: dict[str, tuple[Identity, ...] | Unknown] = {}
    for m in cluster.members:
        try:
            out[m.label] = member_identity(cluster, m)
        except MissingFacts as exc:
            out[m.label] = Unknown((FGCP, COS), str(exc))
    return out
