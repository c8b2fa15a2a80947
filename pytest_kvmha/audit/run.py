"""The trace phase: after discovery, trace the heartbeat paths of audited clusters (issue 11).

A function of bundles, host facts and clusters that returns the bundles with their trace
sections added, so that the audit run can place it wherever parsing and discovery are done.
Only hosts with ports of audited clusters are asked, each in ONE more round trip (all of that
host's traces); replayed bundles are never asked again: their recorded traces (or the lack of
them) are the evidence.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

from pytest_kvmha.bundle.store import EvidenceBundle
from pytest_kvmha.collect.pool import collect_all
from pytest_kvmha.collect.traces import collect_traces
from pytest_kvmha.config.inventory import ClusterSpec, Inventory
from pytest_kvmha.config.target import CollectOptions, HostTarget
from pytest_kvmha.facts import HostFacts
from pytest_kvmha.topology.traceplan import plan_traces


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
    from pytest_kvmha.audit.engine import resolve_clusters
    from pytest_kvmha.parse.host import parse_bundle

    targets = {t.name: t for t in inventory.hosts}
    if not any(b.status == "ok" and _live(targets.get(b.host)) for b in bundles):
        return list(bundles)
    hosts = [parse_bundle(b) for b in bundles]
    return trace_phase(bundles, hosts, resolve_clusters(inventory, hosts), inventory.hosts, options)
