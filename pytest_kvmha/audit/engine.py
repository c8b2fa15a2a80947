"""Run the catalogue over host facts and clusters: pure, no I/O."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from pytest_kvmha.config.inventory import ClusterSpec, Inventory
from pytest_kvmha.facts import HostFacts
from pytest_kvmha.model import (
    ERROR,
    STATUSES,
    Check,
    Finding,
    MissingFacts,
    MissingSubject,
    Scope,
    Severity,
    Verdict,
)
from pytest_kvmha.topology import Cluster, cluster_views
from pytest_kvmha.topology.discovery import Discovery, discover
from pytest_kvmha.topology.segments import segments


@dataclass(frozen=True, slots=True)
class Audit:
    """The outcome of one audit: what was looked at and every finding."""

    hosts: tuple[HostFacts, ...]
    clusters: tuple[ClusterSpec, ...]
    findings: tuple[Finding, ...]
    discovery: Discovery | None = None  # set when no cluster was declared


def _not_a_check(*args: Any) -> Verdict:
    raise AssertionError("KVMHA-DISC-001 is decided by the engine, never run as a check")


# Not in the catalogue (it has no subject that could pass): the engine adds its one finding, an
# error, when discovery was asked for and found no cluster, so that an audit that looked at no
# cluster is never green. Its node id is ``kvmha/discovery/KVMHA-DISC-001[clusters]``.
NO_CLUSTER_FOUND = Check(
    "KVMHA-DISC-001",
    "Discovery finds an HA cluster",
    Severity.CRITICAL,
    Scope.CLUSTER,
    "Without an inventory the clusters are discovered. If none is found, no cluster check ran: "
    "a run with host checks only would look green while it audited no firewall at all.",
    "Write an inventory (--kvmha-inventory) that names each cluster's two member domains and "
    "their hosts, or fix what kept a host from being read.",
    "pytest-kvmha README (Discovery without an inventory)",
    _not_a_check,
)
DISCOVERY_SUBJECT = "clusters"


def resolve_clusters(inventory: Inventory, hosts: Sequence[HostFacts]) -> tuple[ClusterSpec, ...]:
    if inventory.clusters:
        return inventory.clusters
    return discover(h for h in hosts if h.status == "ok").clusters


def same_hosts(hosts: Sequence[HostFacts]) -> list[tuple[HostFacts, HostFacts]]:
    """Pairs of audited hosts that are one machine given twice (two specs or two names).

    Same machine identity (/etc/machine-id) and the same libvirt domain (by UUID) seen on both:
    then every domain would be audited twice and discovery would pair each domain with itself.
    The identity alone is not enough: cloned hypervisors can share a machine-id (KVMHA-TOPO-002
    reports that), and bundles recorded at different times from one lab host share it too.
    """
    uuids = [{d.uuid.lower() for d in (h.domains or {}).values() if d.uuid} for h in hosts]
    out = []
    for i, a in enumerate(hosts):
        for j in range(i + 1, len(hosts)):
            b = hosts[j]
            if a.identity is None or a.identity != b.identity:
                continue
            if uuids[i] & uuids[j] or a.spec == b.spec:
                out.append((a, b))
    return out


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
    if check.scope is Scope.SEGMENT:
        # Across every cluster: evaluated once per audit, with every cluster's facts (an xdist
        # worker replays every host's bundle, so it sees them all too).
        for segment in segments(clusters)[0]:
            yield None, None, segment.name, (segment,)
        return
    for c in clusters:
        if check.scope is Scope.CLUSTER:
            yield None, c.name, c.name, (c,)
        elif check.scope is Scope.CLUSTER_HOST:
            for h in c.hosts():
                yield h.name, c.name, h.name, (c, h)
        elif check.scope is Scope.MEMBER:
            for m in c.members:
                yield m.host.name, c.name, c.spec.label(m.spec), (c, m)
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
                        subject = f"{c.spec.label(m.spec)}:{pair.name}"
                        yield m.host.name, c.name, subject, (c, m, k, pair)


def finding_hosts(clusters: Sequence[ClusterSpec], f: Finding) -> set[str]:
    """The hosts a finding is about: its own, else its cluster's member hosts, else (a segment's
    finding, decided across every cluster) every audited cluster's member hosts."""
    if f.host:
        return {f.host}
    if f.check.scope is Scope.SEGMENT:
        return {m.host for c in clusters for m in c.members}
    return {m.host for c in clusters if c.name == f.cluster for m in c.members}


def _run(check: Check, args: tuple[Any, ...]) -> Verdict:
    if not args:
        return Verdict(
            ERROR,
            "cannot tell the cluster's interface pairs: no member facts and no declared pairs",
        )
    try:
        v = check.func(*args)
    except MissingSubject as exc:  # the cause is another check's finding: one line
        return Verdict(ERROR, str(exc))
    except MissingFacts as exc:
        return Verdict(ERROR, f"cannot evaluate: {exc}")
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # noqa: BLE001 - pytest.skip()/fail() inside a check too
        # a bug, unforeseen evidence or a test-outcome exception must not stop the audit
        return Verdict(
            ERROR, f"check {check.id} ({_origin(check)}) crashed: {type(exc).__name__}: {exc}"
        )
    problem = _bad_verdict(v)
    if problem is not None:  # a site check's "failed" or None must never read as a pass
        return Verdict(ERROR, f"check {check.id} ({_origin(check)}) {problem}")
    return v


def _bad_verdict(v: object) -> str | None:
    """Why a check's return value is not a verdict the gate can judge, or None."""
    if not isinstance(v, Verdict):
        return f"returned {type(v).__name__}, not a Verdict"
    if not isinstance(v.status, str) or v.status not in STATUSES:
        return f"returned status {v.status!r} (expected one of {', '.join(STATUSES)})"
    if not isinstance(v.detail, str):
        return f"returned a detail of type {type(v.detail).__name__}, not a string"
    for name in ("expected", "found", "remediation"):
        value = getattr(v, name)
        if value is not None and not isinstance(value, str):
            return f"returned {name} of type {type(value).__name__}, not a string"
    return None


def _origin(check: Check) -> str:
    """The module of a check's function and the distribution that ships it, if known."""
    module = str(getattr(check.func, "__module__", None) or "unknown module")
    try:
        dists = metadata.packages_distributions().get(module.split(".")[0], [])
    except Exception:  # noqa: BLE001 - naming the package is a courtesy, never a failure
        dists = []
    return f"module {module}" + (f", package {', '.join(sorted(set(dists)))}" if dists else "")


def run_checks(
    checks: Sequence[Check], hosts: Sequence[HostFacts], clusters: Sequence[ClusterSpec]
) -> tuple[Finding, ...]:
    views = cluster_views(hosts, clusters)
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
    if inventory.clusters:
        return Audit(
            tuple(hosts), inventory.clusters, run_checks(checks, hosts, inventory.clusters)
        )
    found = discover(hosts)
    findings = run_checks(checks, hosts, found.clusters)
    if not found.clusters:
        findings += (_no_cluster_found(found, hosts),)
    return Audit(tuple(hosts), found.clusters, findings, found)


def _no_cluster_found(found: Discovery, hosts: Sequence[HostFacts]) -> Finding:
    """KVMHA-DISC-001. When no host answered, an inventory would not help: it says so and
    gives each host's reason instead."""
    if hosts and all(h.status != "ok" for h in hosts):
        reasons = "; ".join(h.error or f"{h.name}: {h.status}" for h in hosts)
        return Finding(
            NO_CLUSTER_FOUND,
            ERROR,
            DISCOVERY_SUBJECT,
            f"no host answered, so no cluster could be discovered: {reasons}",
            None,
            None,
            expected="at least one host read",
            found="no host read",
            remediation="# make the hosts reachable (the detail gives each one's reason), then audit again",
        )
    return Finding(
        NO_CLUSTER_FOUND,
        ERROR,
        DISCOVERY_SUBJECT,
        f"no HA cluster found: {found.describe()}; write an inventory",
        None,
        None,
        expected="two domains with one NIC-to-bridge layout (at least 2 NICs, on OVS)",
        found="no cluster",
    )
