"""Checks that do not apply to a cluster at all: their findings are no pytest items.

A check declares what it needs that an inventory may not declare at all (``Check.needs``: the
firewalls' own configuration). Where a cluster declares none of it, every finding of such a
check is a skip that says the same thing; they become one line per cluster instead of one
skipped item per check and subject.

It fails closed: a finding is left out only when *all* of these hold, so no check that ran
(pass, fail, error) and no skip of another kind is ever hidden:

- the finding is a skip;
- its check declares the need, and its cluster declares nothing of it (for the firewall
  configuration: no member has ``config`` or ``console``; one member with one makes every
  firewall-config finding of the cluster an item, the others' missing ones errors);
- no node id given as an argument names its check (``kvmha/edge-fw/KVMHA-FW-002[edge-fw]``,
  ``kvmha/edge-fw/KVMHA-FW-002``): asked for by name, it is an item.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pytest_kvmha.config.inventory import ClusterSpec
from pytest_kvmha.model import FIREWALL_CONFIG, SKIP, Finding

# need -> (what the checks are called, why they do not apply, what would make them apply)
WHY = {
    FIREWALL_CONFIG: (
        "firewall-config checks",
        "no configs declared",
        "no member declares 'config' or 'console' in the inventory",
    ),
}


@dataclass(frozen=True, slots=True)
class NotApplicable:
    """The checks of one need that do not apply to one cluster, and the findings left out."""

    cluster: str
    need: str
    checks: tuple[str, ...]  # check ids, sorted
    nodeids: tuple[str, ...]  # the findings that are no items

    @property
    def line(self) -> str:
        """``firewall-config checks: not applicable, no configs declared (11 checks)``."""
        what, why, _ = WHY[self.need]
        n = len(self.checks)
        return f"{what}: not applicable, {why} ({n} check{'' if n == 1 else 's'})"

    def as_json(self) -> dict[str, object]:
        what, why, how = WHY[self.need]
        return {
            "cluster": self.cluster,
            "needs": self.need,
            "reason": f"{what}: not applicable, {why} ({how})",
            "checks": list(self.checks),
            "nodeids": list(self.nodeids),
        }


def declares(cluster: ClusterSpec, need: str) -> bool:
    """Whether the cluster declares anything of ``need`` (an unknown need: yes, so its
    findings stay items)."""
    if need == FIREWALL_CONFIG:
        return any(m.config is not None or m.console is not None for m in cluster.members)
    return True


def _named(f: Finding, nodeids: Iterable[str], root: str) -> bool:
    """A node id given as an argument names this finding's check (with or without subject)."""
    for n in nodeids:
        parts = n.split("/", 2)
        if len(parts) == 3 and parts[0] == root and parts[1] == f.cluster:
            if parts[2].split("[", 1)[0] == f.check.id:
                return True
    return False


def split_not_applicable(
    findings: Sequence[Finding],
    clusters: Iterable[ClusterSpec],
    nodeids: Sequence[str] = (),
    *,
    root: str = "kvmha",
) -> tuple[list[Finding], list[NotApplicable]]:
    """The findings that become items, and per cluster and need the checks that do not apply
    (in the order of the clusters, then of :data:`WHY`). ``root``: the node ids' first part
    (``kvmha``; ``kvmha-whatif`` for the what-if's findings)."""
    specs = {c.name: c for c in clusters}
    left_out: dict[tuple[str, str], list[Finding]] = {}
    kept: list[Finding] = []
    for f in findings:
        spec = specs.get(f.cluster) if f.cluster is not None else None
        need = next(
            (
                n
                for n in sorted(f.check.needs)
                if f.status == SKIP and spec is not None and not declares(spec, n)
            ),
            None,
        )
        if need is None or need not in WHY or _named(f, nodeids, root):
            kept.append(f)
        else:
            left_out.setdefault((str(f.cluster), need), []).append(f)
    out = [
        NotApplicable(
            cluster,
            need,
            tuple(sorted({f.check.id for f in found})),
            tuple(root + "/" + f.nodeid.split("/", 1)[1] for f in found),
        )
        for name in specs
        for need in WHY
        for (cluster, n), found in left_out.items()
        if cluster == name and n == need
    ]
    return kept, out
