"""Host pruning under -k never makes a run greener: every check, every recorded bundle, with and
without -k host exclusions. A pruned host's bundle is "not contacted" exactly as the plugin
makes it (plugin.run), and the -k expression is evaluated on each item of the full run with
the names pytest matches (node name, "kvmha", check id, severity, the item's hosts)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import pytest

from pytest_kvmha.audit.engine import Audit, audit
from pytest_kvmha.audit.selection import evaluate, unneeded_hosts
from pytest_kvmha.bundle.store import EvidenceBundle
from pytest_kvmha.collect.pool import collect_all
from pytest_kvmha.config.inventory import Inventory, load_inventory
from pytest_kvmha.config.target import CollectOptions
from pytest_kvmha.model import ERROR, FAIL, Finding
from pytest_kvmha.parse.host import parse_bundle

from ..bundlekit import BUNDLES, CHECKS, host

EXAMPLES = Path(__file__).parents[2] / "examples"
DATA = Path(__file__).parents[1] / "data"
RED = (FAIL, ERROR)


def _third_nic_on_fw_b(dest: Path) -> Path:
    """The issue's first form: fw-b (kvm-b) has a NIC fw-a lacks, no pairs declared."""
    from .test_unique_ids import third_nic

    d = dest / "third-nic"
    shutil.copytree(BUNDLES / "two-ok", d)
    host(d, "kvm-b").edit_domain("fw-b", third_nic)
    text = (d / "clusters.toml").read_text()
    (d / "clusters.toml").write_text(text.split("[[clusters.")[0])  # no declared pairs
    return d / "clusters.toml"


def _unicast_inventory_broadcast_configs(dest: Path) -> Path:
    """The issue's second form: the inventory says unicast, both firewall configs broadcast."""
    from ..checks.test_firewall import cos, write_inventory

    d = dest / "unicast"
    d.mkdir()
    return write_inventory(d, "cos-core", cos(), heartbeat="unicast")


def inventories(tmp: Path) -> list[Path]:
    recorded = sorted(p for p in BUNDLES.glob("*/clusters.toml"))
    return [
        *recorded,
        EXAMPLES / "clusters.toml",
        _third_nic_on_fw_b(tmp),
        _unicast_inventory_broadcast_configs(tmp),
    ]


def _not_contacted(b: EvidenceBundle) -> EvidenceBundle:
    return EvidenceBundle(
        b.host, b.spec, "replay", "", status="not-contacted", error=f"{b.host}: not contacted"
    )


def _audit(inv: Inventory, bundles: Sequence[EvidenceBundle], pruned: frozenset[str]) -> Audit:
    facts = [parse_bundle(_not_contacted(b) if b.host in pruned else b) for b in bundles]
    return audit(CHECKS, inv, facts)


def _names(f: Finding, result: Audit) -> list[str]:
    """What pytest's -k matches for the item of ``f`` (plugin.items: node name and keywords)."""
    hosts = {f.host} if f.host else set()
    if not f.host:
        for c in result.clusters:
            if c.name == f.cluster:
                hosts = {m.host for m in c.members}
    return [f.nodeid.split("/", 1)[1], "kvmha", f.check.id, str(f.check.severity), *hosts]


def _selected(expression: str, f: Finding, result: Audit) -> bool:
    names = [n.lower() for n in _names(f, result)]
    return bool(evaluate(expression, lambda word: any(word.lower() in n for n in names)))


def expressions(inv: Inventory) -> list[str]:
    families = sorted({c.id.split("-")[1] for c in CHECKS} | {c.id for c in CHECKS})
    out = []
    for h in (t.name for t in inv.hosts):
        out += [f"not {h}", h]
        out += [f"{fam} and not {h}" for fam in families]
    return out


def greener(full: Audit, pruned: Audit, expression: str) -> list[str]:
    """The items the -k keeps that the pruned run lost or turned from red to green."""
    after = {f.nodeid: f for f in pruned.findings}
    out = []
    for f in full.findings:
        if not _selected(expression, f, full):
            continue
        p = after.get(f.nodeid)
        if p is None:
            out.append(f"{f.nodeid}: {f.status} in the full run, missing when pruned")
        elif f.status in RED and p.status not in RED:
            out.append(f"{f.nodeid}: {f.status} in the full run, {p.status} when pruned")
    return out


def test_no_pruned_run_is_greener_than_the_full_run(tmp_path: Path) -> None:
    problems: list[str] = []
    pruned_runs = 0
    for path in inventories(tmp_path):
        inv = load_inventory(path)
        bundles = collect_all(list(inv.hosts), CollectOptions())
        full = _audit(inv, bundles, frozenset())
        by_pruned: dict[frozenset[str], Audit] = {}
        for expression in expressions(inv):
            pruned = frozenset(unneeded_hosts(CHECKS, inv, keyword=expression))
            if not pruned:
                continue
            pruned_runs += 1
            if pruned not in by_pruned:
                by_pruned[pruned] = _audit(inv, bundles, pruned)
            for p in greener(full, by_pruned[pruned], expression):
                problems.append(
                    f"{path.parent.name}: -k {expression!r} pruned {sorted(pruned)}: {p}"
                )
    assert not problems, "\n".join(problems[:20])
    assert pruned_runs > 0  # the pruning is exercised, not switched off


def test_the_issues_two_forms_keep_the_other_host(tmp_path: Path) -> None:
    inv = load_inventory(_third_nic_on_fw_b(tmp_path))
    assert unneeded_hosts(CHECKS, inv, keyword="VIRT and not kvm-b") == {}
    inv = load_inventory(_unicast_inventory_broadcast_configs(tmp_path))
    assert unneeded_hosts(CHECKS, inv, keyword="HB and not kvm-b") == {}
    # a host no selected item can read is still left out
    assert "kvm-b" in unneeded_hosts(CHECKS, inv, keyword="PKG and not kvm-b")


def test_plugin_run_under_k_host_exclusion_fails_like_the_full_run(
    pytester: pytest.Pytester,
) -> None:
    inv = _third_nic_on_fw_b(pytester.path)
    full = pytester.runpytest(f"--kvmha-inventory={inv}", "-k", "VIRT", "-rA")
    pruned = pytester.runpytest(
        f"--kvmha-inventory={inv}", "-k", "VIRT and not kvm-b", "-rA", "--kvmha-report=r.json"
    )
    assert full.ret == 1
    assert pruned.ret == 1, pruned.stdout.str()
    pruned.stdout.fnmatch_lines(["ERROR kvmha/edge-fw/KVMHA-VIRT-001[[]fw-a:If3[]]*"])
    assert "not_contacted" not in json.loads((pytester.path / "r.json").read_text())
