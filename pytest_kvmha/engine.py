"""Run the catalogue over host facts and clusters: pure, no I/O."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from .facts import HostFacts
from .inventory import ClusterSpec, Inventory, discover_clusters
from .model import ERROR, Check, Finding, MissingFacts, Scope, Verdict
from .topology import Cluster, Member


@dataclass(frozen=True, slots=True)
class Audit:
    """The outcome of one audit: what was looked at and every finding."""

    hosts: tuple[HostFacts, ...]
    clusters: tuple[ClusterSpec, ...]
    findings: tuple[Finding, ...]


def resolve_clusters(inventory: Inventory, hosts: Sequence[HostFacts]) -> tuple[ClusterSpec, ...]:
    if inventory.clusters:
        return inventory.clusters
    return discover_clusters(h for h in hosts if h.status == "ok")


def _subjects(
    check: Check, hosts: Sequence[HostFacts], clusters: Sequence[Cluster]
) -> Iterator[tuple[str | None, str | None, str, tuple[Any, ...]]]:
    """(host, cluster, subject, args) for every subject of ``check``."""
    if check.scope is Scope.HOST:
        for h in hosts:
            yield h.name, None, h.name, (h,)
        return
    if check.scope is Scope.HOST_PROBLEM:
        for h in hosts:
            for section in sorted(h.problems):
                yield h.name, None, section, (h, section)
        return
    for c in clusters:
        if check.scope is Scope.CLUSTER:
            yield None, c.name, c.name, (c,)
        elif check.scope is Scope.CLUSTER_HOST:
            for h in c.hosts():
                yield h.name, c.name, h.name, (c, h)
        elif check.scope is Scope.MEMBER:
            for m in c.members:
                yield m.host.name, c.name, m.spec.domain, (c, m)
        else:
            pairs = c.pairs()
            if not pairs:
                # Pairs unknown (no declared pairs, no member facts): still one finding, an error.
                yield None, c.name, "pairs", ()
                continue
            for k, pair in enumerate(pairs):
                if check.scope is Scope.PAIR:
                    yield None, c.name, pair.name, (c, k, pair)
                else:
                    for m in c.members:
                        yield m.host.name, c.name, f"{m.spec.domain}:{pair.name}", (c, m, k, pair)


def _run(check: Check, args: tuple[Any, ...]) -> Verdict:
    if not args:
        return Verdict(
            ERROR,
            "cannot tell the cluster's interface pairs: no member facts and no declared pairs",
        )
    try:
        return check.func(*args)
    except MissingFacts as exc:
        return Verdict(ERROR, f"cannot evaluate: {exc}")
    except Exception as exc:  # a bug or unforeseen evidence must not stop the audit
        return Verdict(ERROR, f"check crashed: {type(exc).__name__}: {exc}")


def run_checks(
    checks: Sequence[Check], hosts: Sequence[HostFacts], clusters: Sequence[ClusterSpec]
) -> tuple[Finding, ...]:
    by_name = {h.name: h for h in hosts}
    views = []
    for spec in clusters:
        members = []
        for m in spec.members:
            facts = by_name.get(m.host)
            if facts is None:  # only possible for hand-built specs; inventories are validated
                facts = HostFacts(m.host, "", "error", f"host {m.host!r} was not audited")
            members.append(Member(m, facts))
        views.append(Cluster(spec, tuple(members)))
    findings = []
    for check in checks:
        for host, cluster, subject, args in _subjects(check, hosts, views):
            v = _run(check, args)
            findings.append(
                Finding(
                    check,
                    v.status,
                    subject,
                    v.detail,
                    host,
                    cluster,
                    v.expected,
                    v.found,
                    v.remediation,
                )
            )
    return tuple(findings)


def audit(checks: Sequence[Check], inventory: Inventory, hosts: Sequence[HostFacts]) -> Audit:
    clusters = resolve_clusters(inventory, hosts)
    return Audit(tuple(hosts), clusters, run_checks(checks, hosts, clusters))
