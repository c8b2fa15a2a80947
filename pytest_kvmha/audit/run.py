"""One audit run: collect every host, parse, trace the heartbeat paths, run the checks.

The trace phase comes after discovery: only hosts with ports of audited clusters are asked,
each in ONE more round trip (all of that host's traces); replayed bundles are never asked
again: their recorded traces (or the lack of them) are the evidence.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit

from pytest_kvmha.audit.engine import Audit, audit, resolve_clusters
from pytest_kvmha.bundle.store import EvidenceBundle
from pytest_kvmha.collect.host import collect
from pytest_kvmha.collect.pool import Collect, Progress, collect_all
from pytest_kvmha.collect.traces import collect_traces
from pytest_kvmha.config.inventory import ClusterSpec, Inventory
from pytest_kvmha.config.target import CollectOptions, HostTarget
from pytest_kvmha.facts import HostFacts
from pytest_kvmha.model import Check, discover_checks
from pytest_kvmha.parse.host import parse_bundle
from pytest_kvmha.topology.traceplan import plan_traces

# Told the bundles and their facts once every host is collected and traced, before the checks
# run (to record them, or refuse the run).
Collected = Callable[[list[EvidenceBundle], list[HostFacts]], None]


@dataclass
class AuditRun:
    audit: Audit
    checks: Sequence[Check]
    hosts: list[HostFacts]
    bundles: list[EvidenceBundle]


def run_audit(
    inventory: Inventory,
    options: CollectOptions,
    *,
    checks: Callable[[], Sequence[Check]] = discover_checks,
    collect_one: Collect = collect,
    progress: Progress | None = None,
    trace: bool = True,
    collected: Collected | None = None,
) -> AuditRun:
    """Collect the inventory's hosts (each parsed as its bundle arrives, while the others are
    still being collected), trace the heartbeat paths of the audited clusters (``trace``: not
    for bundles read back, whose traces are evidence), then audit."""
    targets = list(inventory.hosts)
    parsed: list[HostFacts | None] = [None] * len(targets)
    arrived: list[EvidenceBundle | None] = [None] * len(targets)

    def on_bundle(i: int, b: EvidenceBundle) -> None:
        parsed[i] = parse_bundle(b)
        arrived[i] = b

    collect_all(targets, options, collect_one, progress=progress, on_bundle=on_bundle)
    hosts = cast(list[HostFacts], parsed)  # every target's bundle has arrived
    bundles = [b for b in arrived if b is not None]
    if trace:
        before = {b.host: b.round_trips for b in bundles}
        trace_phase(bundles, list(hosts), resolve_clusters(inventory, hosts), targets, options)
        for i, b in enumerate(arrived):
            if b is not None and b.round_trips != before[b.host]:
                hosts[i] = parse_bundle(b)
    if collected is not None:
        collected(bundles, list(hosts))
    found = checks()
    return AuditRun(audit(found, inventory, hosts), found, list(hosts), bundles)


def trace_phase(
    bundles: Sequence[EvidenceBundle],
    hosts: Sequence[HostFacts],
    clusters: Sequence[ClusterSpec],
    targets: Sequence[HostTarget],
    options: CollectOptions,
) -> list[EvidenceBundle]:
    """``bundles`` with the planned traces collected into them (concurrently, one thread and
    one round trip per host that has traces to run)."""
    plans = plan_traces(hosts, clusters)
    by_name = {t.name: t for t in targets}
    work = [
        (b, by_name[b.host], [(s.key, s.bridge, s.flow) for s in plans[b.host]])
        for b in bundles
        if b.status == "ok" and plans.get(b.host) and _live(by_name.get(b.host))
    ]
    pending = {b.host: (b, specs) for b, _, specs in work}

    def one(target: HostTarget, options: CollectOptions) -> EvidenceBundle:
        bundle, specs = pending[target.name]
        collect_traces(bundle, target, options, specs)
        return bundle

    # Bounded like the first round trip (--kvmha-max-parallel); a host that does not answer in
    # time keeps no trace sections, and the trace check reports that as an error.
    collect_all([t for _, t, _ in work], options, one)
    return list(bundles)


def _live(target: HostTarget | None) -> bool:
    """A host read now, not a recording (a replayed bundle keeps its recorded collector name:
    the spec tells)."""
    return target is not None and urlsplit(target.spec).scheme != "replay"


def traced(
    bundles: Sequence[EvidenceBundle], inventory: Inventory, options: CollectOptions
) -> list[EvidenceBundle]:
    """Parse, resolve the clusters (declared or discovered), then :func:`trace_phase`."""
    targets = {t.name: t for t in inventory.hosts}
    if not any(b.status == "ok" and _live(targets.get(b.host)) for b in bundles):
        return list(bundles)
    hosts = [parse_bundle(b) for b in bundles]
    return trace_phase(bundles, hosts, resolve_clusters(inventory, hosts), inventory.hosts, options)
