"""The plugin's audit: the inventory from the options, every host collected (hosts no selected
item needs are not contacted; an xdist worker reads the controller's bundles back), the
bundles recorded, the checks run, and the what-if of ``--kvmha-plan``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from pytest_kvmha.audit.engine import same_hosts
from pytest_kvmha.audit.run import run_audit
from pytest_kvmha.bundle.store import BundleError, EvidenceBundle, host_dir
from pytest_kvmha.collect.pool import Collect, Progress
from pytest_kvmha.config.inventory import (
    Inventory,
    InventoryError,
    inventory_from_specs,
    load_inventory,
)
from pytest_kvmha.config.options import datapath, hosts, option, timeout
from pytest_kvmha.config.redact import redact
from pytest_kvmha.config.target import CollectOptions, HostTarget
from pytest_kvmha.facts import HostFacts
from pytest_kvmha.model import Check, CheckDiscoveryError, discover_checks
from pytest_kvmha.plugin.selection import NODEIDS
from pytest_kvmha.plugin.state import KvmhaState
from pytest_kvmha.plugin.xdist import wait_for_controller

NOT_CONTACTED = "not-contacted"  # bundle/host status of a host no selected item needs


def run(config: pytest.Config, state: KvmhaState) -> None:
    inventory, wanted = _inventories(config, state)
    options = CollectOptions(
        option(config, "ssh_config"),
        option(config, "ssh_identity_file"),
        timeout(config),
        max_parallel=state.max_parallel,
    )
    if state.replay_from is None and wanted is None:
        state.not_contacted = _not_contacted(config, inventory)
    if state.replay_from is None:  # a worker reads the controller's copies, not the specs
        _check_replays(inventory, state)
    # Workers replay the controller's bundles (no host contact); their reports are not written.
    record = config.getoption("kvmha_record") if state.replay_from is None else None

    def collected(bundles: list[EvidenceBundle], facts: list[HostFacts]) -> None:
        for b in bundles:
            state.rounds[b.host] = b.round_trips
            state.digests[b.host] = b.sha256()
            state.metrics[b.host] = _metrics(b)
            if record and b.status != NOT_CONTACTED:
                try:
                    b.write(host_dir(Path(record), b.host))
                except Exception as exc:  # recording must not cost the audit
                    state.errors.append(f"--kvmha-record: {b.host}: {exc}")
            if state.rundir is not None:  # xdist: every worker must see exactly these facts
                b.write(host_dir(state.rundir, b.host))
        twice = [
            f"hosts {a.name} ({a.spec}) and {b.name} ({b.spec}) are one machine "
            f"(machine-id {a.identity}, same libvirt domains): give each host once"
            for a, b in same_hosts(facts)
        ]
        if twice:  # every domain would be audited twice, and paired with itself by discovery
            state.errors += twice
            raise pytest.UsageError("; ".join(twice))

    if state.replay_from is not None:
        wait_for_controller(state.replay_from)
    done = run_audit(
        inventory,
        options,
        checks=_checks,
        collect_one=_collector(state),
        # not while xdist writes its own start-up lines (the controller collects meanwhile)
        progress=_progress(config, inventory) if state.rundir is None else None,
        # never on workers: the controller traced, and the bundles hold its traces
        trace=state.replay_from is None,
        collected=collected,
    )
    state.audit = done.audit
    if wanted is not None:
        from pytest_kvmha.fixtures.whatif import what_if

        state.whatif = what_if(
            done.checks,
            done.hosts,
            wanted.clusters,
            state.audit.findings,
            current=state.audit.clusters,
            datapath_type=datapath(config),
            allow_heartbeat_cut=bool(config.getoption("kvmha_allow_heartbeat_cut")),
        )


def _inventories(config: pytest.Config, state: KvmhaState) -> tuple[Inventory, Inventory | None]:
    """The inventory audited and the wanted one of --kvmha-plan (the audited one when no
    other is given); the inventory's table lines go to the state for the items' locations."""
    inv_path = option(config, "inventory")
    wanted_path = config.getoption("kvmha_plan")
    try:
        wanted = load_inventory(wanted_path) if wanted_path else None
        if inv_path:
            inventory = load_inventory(inv_path)
        elif hosts(config) or wanted is None:
            inventory = inventory_from_specs(hosts(config))
        else:
            inventory, inv_path = wanted, wanted_path
    except InventoryError as exc:
        state.errors.append(redact(str(exc)))
        raise pytest.UsageError(redact(str(exc))) from None
    state.wanted = wanted
    state.inventory = inventory
    if inv_path:
        state.inventory_path = inv_path
        text = Path(inv_path).read_text(encoding="utf-8")
        for number, line in enumerate(text.splitlines()):
            table = line.strip()
            if table.startswith("[") and not table.startswith("[["):
                state.lines.setdefault(table.strip("[] ").replace('"', ""), number)
    return inventory, wanted


def _check_replays(inventory: Inventory, state: KvmhaState) -> None:
    """A ``replay://`` path that is not a recorded bundle is a usage error saying so, before
    any host is contacted (the parent folder of bundles: one spec per host)."""
    for target in inventory.hosts:
        parts = urlsplit(target.spec)
        if parts.scheme != "replay" or target.name in state.not_contacted:
            continue  # a host no selected item needs is not read, nor its recording
        directory = Path(parts.netloc + parts.path)
        if (directory / "bundle.json").is_file():
            continue
        why = "no such directory" if not directory.exists() else "not a recorded bundle"
        hosts = sorted(p.parent.name for p in directory.glob("*/bundle.json"))
        if directory.is_dir() and hosts:
            why += (
                f" (no bundle.json); it holds the bundles of {', '.join(hosts)}: "
                "give one replay:// spec per host, e.g. replay://"
                f"{directory / hosts[0]}"
            )
        elif directory.is_dir():
            why += " (no bundle.json)"
        message = f"host {target.name}: {redact(target.spec)}: {why}"
        state.errors.append(message)
        raise pytest.UsageError(message)


def _checks() -> Sequence[Check]:
    try:
        return discover_checks()
    except CheckDiscoveryError as exc:
        raise pytest.UsageError(str(exc)) from None


def _progress(config: pytest.Config, inventory: Inventory) -> Progress | None:
    """Hosts done / total (and unreachable so far) rewritten in place on a terminal while the
    hosts are collected; None (nothing printed) when the output is a log, not a terminal."""
    tr = config.pluginmanager.get_plugin("terminalreporter")
    total = len(inventory.hosts)
    if tr is None or not getattr(tr, "isatty", False) or total == 0:
        return None

    def show(done: int, total: int, unreachable: int) -> None:
        tr.rewrite(f"kvmha: collecting hosts {done}/{total}, {unreachable} unreachable", erase=True)

    show(0, total, 0)
    return show


def _collector(state: KvmhaState) -> Collect:
    """How each host's bundle is had: collected (hosts no selected item needs are not
    contacted), or on an xdist worker read back from the controller's run directory."""
    # Looked up now, not at import: a conftest may wrap pytest_kvmha.collect.host.collect.
    from pytest_kvmha.collect.host import collect

    def one(target: HostTarget, options: CollectOptions) -> EvidenceBundle:
        if state.replay_from is not None:
            try:
                return EvidenceBundle.read(host_dir(state.replay_from, target.name))
            except BundleError as exc:  # the controller wrote it: a broken run directory
                return EvidenceBundle(
                    target.name, redact(target.spec), "replay", "", status="error", error=str(exc)
                )
        why = state.not_contacted.get(target.name)
        if why is not None:
            return EvidenceBundle(
                target.name,
                redact(target.spec),
                urlsplit(target.spec).scheme or "local",
                "",
                status=NOT_CONTACTED,
                error=f"{target.name}: not contacted: {why}",
            )
        return collect(target, options)

    return one


def _metrics(b: EvidenceBundle) -> dict[str, Any]:
    return {
        "round_trips": b.round_trips,
        "collect_seconds": round(b.seconds, 3),
        "bytes_received": b.bytes_received,
        "bytes_sent": b.bytes_sent,
        "retries": len(b.retries),
        "retry_reasons": [str(r.get("reason", "")) for r in b.retries],
    }


def _not_contacted(config: pytest.Config, inventory: Inventory) -> dict[str, str]:
    """Hosts no item the run selects can need (node ids, --deselect, -k): not contacted."""
    from pytest_kvmha.audit.selection import unneeded_hosts

    try:
        checks = discover_checks()
    except CheckDiscoveryError:
        return {}  # reported where the audit discovers them
    nodeids: list[str] = config.stash.get(NODEIDS, [])
    return unneeded_hosts(
        checks,
        inventory,
        nodeids=nodeids,
        deselect=list(config.getoption("deselect", None) or []),
        keyword=str(config.getoption("keyword", "") or ""),
    )
