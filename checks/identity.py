"""Across clusters: two clusters on one layer-2 segment must not share a cluster identity."""

from __future__ import annotations

from itertools import combinations

from pytest_kvmha.model import DEPENDS_ON, ERROR, Scope, Verdict, check, failed, passed
from pytest_kvmha.remediation import comment
from pytest_kvmha.topology.identity import FGCP, Identity, Unknown, identities
from pytest_kvmha.topology.segments import Segment

SOURCES = (
    "FortiOS 7.4.3 Administration Guide, 'Cluster virtual MAC addresses' (unique group ID per "
    "broadcast domain); FortiOS 6.0 Handbook, 'Layer-2 switches'; D-Link NetDefendOS (OEM cOS "
    "Core) manual §11.3 'HA Setup' (a unique Cluster ID per network); cOS Core 15.00 "
    "Administration Guide 13.7 'HA Advanced Settings' (Use Unique Shared Mac)"
)


@check(
    "KVMHA-ID-001",
    title="Clusters sharing a layer-2 segment have different cluster identities",
    severity="high",
    scope=Scope.SEGMENT,
    rationale="""
        FGCP makes its virtual MACs from the group-id, and cOS Core its shared MACs from the
        cluster ID. Two clusters whose pairs meet on one bridge and VLAN (on one host, or carried
        between servers on one VLAN) with the same group-id or cluster ID answer with the same
        MACs: the switch sends each cluster's traffic to whichever announced last, and both lose
        frames intermittently. Every check of a single cluster passes meanwhile.""",
    remediation="Give one of the clusters another identity on both of its members: FortiOS "
    "'config system ha / set group-id N / end' (the virtual MACs change: expect a short "
    "interruption), cOS Core the HighAvailability object's cluster ID; or move its pairs to "
    "another VLAN. Declare group_id in the inventory for clusters whose configurations are not read.",
    source=SOURCES,
)
def segment_identities(segment: Segment) -> Verdict:
    clusters = segment.clusters()
    where = segment.where() or "none"
    on_it = {c.name for c in clusters}
    causes = [why for _, why in segment.unknown]
    if causes and all(why.startswith(DEPENDS_ON) for why in causes):
        # a domain, NIC or Open vSwitch is missing: another finding's cause, said in one line
        # (for a cluster not on this segment: which one it cannot rule out)
        others = [c for c, _ in segment.unknown if c not in on_it]
        if not others:
            return Verdict(ERROR, causes[0])
        return Verdict(
            ERROR,
            f"{causes[0]}: cannot rule out another cluster on it: cluster {', '.join(others)}",
        )
    if not segment.attachments:
        return Verdict(
            ERROR,
            "cannot tell which segments the clusters are on: "
            + "; ".join(f"{c}: {why}" for c, why in segment.unknown),
        )
    ids = {c.name: identities(c) for c in clusters}
    collisions: list[str] = []
    unknown: list[str] = []
    involved: dict[str, None] = {}
    for a, b in combinations(clusters, 2):
        # (what collides) -> the members of a and of b it collides for
        hits: dict[str, tuple[dict[str, None], dict[str, None]]] = {}
        for ma, ia in ids[a.name].items():
            for mb, ib in ids[b.name].items():
                for what in _collide(ia, ib, unknown):
                    left, right = hits.setdefault(what, ({}, {}))
                    left[ma] = right[mb] = None
        for what, (left, right) in hits.items():
            involved.update({a.name: None, b.name: None})
            collisions.append(
                f"{a.name} ({', '.join(left)}) and {b.name} ({', '.join(right)}) both use {what}"
            )
    shown = "; ".join(f"{c.name}: {_shown(ids[c.name])}" for c in clusters)
    if collisions:
        names = " and ".join(involved)
        return failed(
            f"segment {segment.name} ({where}): clusters {names} share a cluster identity: "
            + "; ".join(dict.fromkeys(collisions))
            + (f" (and cannot tell: {'; '.join(dict.fromkeys(unknown))})" if unknown else ""),
            expected="a different group-id / cluster ID for each cluster on one segment",
            found=shown,
            remediation=comment(
                f"segment {segment.name}: give "
                + " or ".join(list(involved)[1:])
                + " another group-id / cluster ID on both members (FortiOS: config system ha / "
                "set group-id N / end), or move its pairs to another VLAN"
            ),
        )
    if unknown:
        return Verdict(
            ERROR,
            f"segment {segment.name} ({where}): cannot evaluate: "
            + "; ".join(dict.fromkeys(unknown)),
        )
    if segment.unknown:
        return Verdict(
            ERROR,
            f"segment {segment.name} ({where}): cannot rule out another cluster on it: "
            + "; ".join(f"cluster {c}: {why}" for c, why in segment.unknown),
        )
    if len(clusters) == 1:
        return passed(f"segment {segment.name} ({where}): only cluster {clusters[0].name} is on it")
    return passed(f"segment {segment.name} ({where}): identities differ ({shown})")


def _collide(
    ia: tuple[Identity, ...] | Unknown, ib: tuple[Identity, ...] | Unknown, unknown: list[str]
) -> list[str]:
    """What collides between two members' identities; an unknown one that could collide goes to
    ``unknown`` (then nothing can pass)."""
    if isinstance(ia, Unknown) or isinstance(ib, Unknown):
        known = ib if isinstance(ia, Unknown) else ia
        miss = ia if isinstance(ia, Unknown) else ib
        assert isinstance(miss, Unknown)
        kinds = set(miss.kinds)
        if isinstance(known, Unknown):
            if kinds & set(known.kinds):
                unknown += [miss.why, known.why]
        elif any(i.kind in kinds for i in known):
            unknown.append(miss.why)
        return []
    out = []
    for x in ia:
        for y in ib:
            if x.collides(y):
                same = x.value == y.value
                what = f"{x.kind} {x.value}" if same else f"{x.kind} {x.value} and {y.value}"
                how = "" if same or x.kind != FGCP else ": the same virtual MACs"
                out.append(f"{what} ({x.source}; {y.source}{how})")
    return out


def _shown(found: dict[str, tuple[Identity, ...] | Unknown]) -> str:
    parts = []
    for member, ident in found.items():
        if isinstance(ident, Unknown):
            parts.append(f"{member} unknown")
        elif not ident:
            parts.append(f"{member} none (no shared or virtual MAC)")
        else:
            parts.append(f"{member} " + ", ".join(f"{i.kind} {i.value}" for i in ident))
    return ", ".join(parts)
