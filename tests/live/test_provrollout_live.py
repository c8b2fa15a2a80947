"""Clusters one after another on the real lab: three clusters on two servers, the second one's
data pair's virtual-MAC traffic dropped by an OpenFlow rule the what-if cannot see. The rollout verifies the first and
keeps it, rolls the second back after its audit and trace, and never touches the third."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
from pytest_kvmha.fixtures.__main__ import main as restore_main
from pytest_kvmha.fixtures.apply import Plan, make_plan, restore
from pytest_kvmha.fixtures.rollout import RolloutStopped, make_rollout

from pytest_kvmha.collect.pool import collect_all
from pytest_kvmha.config.inventory import load_inventory
from pytest_kvmha.config.target import CollectOptions
from pytest_kvmha.parse.host import parse_bundle
from pytest_kvmha.testing import Lab, LabNic, firewall_domain_xml
from tests.scenarios import HOSTS, TRUNK_BRIDGE, UPLINK, reset

from .test_provsafe_live import differences, secure_snapshot

pytestmark = pytest.mark.live

CLUSTERS = ("c1", "c2", "c3")


def vlan(k: int, j: int, wrong: bool = False) -> int:
    return 100 * k + 50 * wrong + j


def build(lab: Lab, tmp_path: Path) -> Path:
    """Three clusters: cK = fw-a-K (kvm-a) + fw-b-K (kvm-b), pairs If1 (heartbeat) and If2 on
    bridges cK-if1 / cK-if2 patched to one trunk bridge; every cluster's If2 runs on the wrong
    VLAN (100K+52 instead of 100K+2) on both sides; c2's If2 drops the cluster's virtual-MAC traffic on kvm-b."""
    reset(lab)
    a, b = lab.hosts[0], lab.hosts[1]
    lab.wire(a, UPLINK[0], b, UPLINK[1])
    for host, up in ((a, UPLINK[0]), (b, UPLINK[1])):
        host.add_bridge(TRUNK_BRIDGE)
        host.add_port(TRUNK_BRIDGE, up)  # trunks every VLAN
        for k in range(1, 4):
            for j in (1, 2):
                br = f"c{k}-if{j}"
                host.add_bridge(br)
                inner, outer = f"c{k}p{j}-in", f"c{k}p{j}-out"
                host.patch(br, inner, TRUNK_BRIDGE, outer)
    lines = []
    for i, name in enumerate(HOSTS):
        lines += [f"[hosts.{name}]", f"spec = {json.dumps(lab.hosts[i].spec)}", ""]
    for k in range(1, 4):
        for host, side in ((a, "a"), (b, "b")):
            nics = tuple(
                LabNic(bridge=f"c{k}-if{j}", slot=2 + j, vlan=vlan(k, j, wrong=j == 2))
                for j in (1, 2)
            )
            host.define_domain(firewall_domain_xml(f"fw-{side}-{k}", nics))
        lines += [
            f"[clusters.c{k}]",
            'vendor = "fortigate"',
            'heartbeat = "broadcast"',
            "members = [",
            f'  {{ host = "kvm-a", domain = "fw-a-{k}", role = "master" }},',
            f'  {{ host = "kvm-b", domain = "fw-b-{k}", role = "slave" }},',
            "]",
        ]
        for j in (1, 2):
            lines += [
                f"[[clusters.c{k}.pairs]]",
                f'name = "If{j}"',
                f'bridge = "c{k}-if{j}"',
                f"vlan = {vlan(k, j)}",
                f"heartbeat = {'true' if j == 1 else 'false'}",
                "",
            ]
    # If2 is a data pair: what crosses it is the active member's traffic from the cluster's
    # virtual MACs (group-id 0: 00:09:0f:09:00:xx), which this rule drops
    b.run(
        [
            "ovs-ofctl",
            "add-flow",
            "c2-if2",
            "priority=100,dl_src=00:09:0f:09:00:00/ff:ff:ff:ff:ff:00,actions=drop",
        ]
    )
    inventory = tmp_path / "clusters.toml"
    inventory.write_text("\n".join(lines) + "\n")
    return inventory


def test_second_cluster_fails_verification_first_kept_third_untouched(
    lab: Lab, tmp_path: Path
) -> None:
    inventory = build(lab, tmp_path)
    inv = load_inventory(inventory)
    options = CollectOptions(str(lab.ssh_config))
    before = secure_snapshot(lab, inventory)
    targets = {h.name: h for h in inv.hosts}
    plans = [
        make_plan(c, targets, options, tmp_path / "p", datapath_type="netdev") for c in inv.clusters
    ]
    assert [p.cluster.name for p in plans] == list(CLUSTERS) and all(p.steps for p in plans)
    hosts = {b.host: parse_bundle(b) for b in collect_all(list(inv.hosts), options)}
    ran: dict[str, int] = dict.fromkeys(CLUSTERS, 0)
    for p in plans:
        inner = p.run
        assert inner is not None

        def run(target, command, inner=inner, name=p.cluster.name):  # type: ignore[no-untyped-def]
            ran[name] += 1
            return inner(target, command)

        p.run = run
    rollout = make_rollout(plans, hosts, tmp_path / "rollout")
    with pytest.raises(RolloutStopped) as exc:
        rollout.apply()
    assert exc.value.cluster == "c2" and exc.value.verified == ["c1"], exc.value
    assert exc.value.untouched == ["c3"] and "KVMHA-TRACE-001" in exc.value.reason
    assert ran["c3"] == 0 and ran["c1"] > 0 and ran["c2"] > 0
    now = secure_snapshot(lab, inventory)
    # c1 repaired and kept; c2 and c3 as before (c2 rolled back, c3 never touched)
    c1, c2, _ = plans
    changed = differences(before, now)
    assert changed and all("fw-a-1" in d or "fw-b-1" in d or "c1-" in d for d in changed), changed
    j2 = c2.journal.read()
    assert j2.verified and j2.undone == set(j2.intended)
    lines = (tmp_path / "rollout" / "rollout").read_text().split()
    assert "verified" in lines and "stopped" in lines
    # restore of the rollout leaves c1 (verified) alone
    assert restore(tmp_path / "rollout", options) == []
    assert differences(now, secure_snapshot(lab, inventory)) == []
    assert c1.rollback() == []  # and c1 itself can still be undone exactly
    assert differences(before, secure_snapshot(lab, inventory)) == []


def _killed_rollout(
    lab: Lab, inventory: Path, work: Path, victim: int, n: int, when: str
) -> list[Plan]:
    """Plan every cluster afresh under ``work`` and roll them out in a forked child that
    SIGKILLs itself ``when`` ("before" or "after") the ``n``-th command cluster ``victim``'s
    plan runs (its steps, then its rollback's undos; the file staging around them not counted),
    then ``kvmha restore`` the rollout directory. Returns the plans (the parent's copies)."""
    inv = load_inventory(inventory)
    options = CollectOptions(str(lab.ssh_config))
    targets = {h.name: h for h in inv.hosts}
    plans = [make_plan(c, targets, options, work, datapath_type="netdev") for c in inv.clusters]
    hosts = {b.host: parse_bundle(b) for b in collect_all(list(inv.hosts), options)}
    inner = plans[victim].run
    assert inner is not None
    calls = {"n": 0}

    def run(target, command):  # type: ignore[no-untyped-def]
        counted = not command.startswith(("umask", "printf"))
        calls["n"] += counted
        if counted and calls["n"] == n and when == "before":
            os.kill(os.getpid(), signal.SIGKILL)
        result = inner(target, command)
        if counted and calls["n"] == n and when == "after":
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    plans[victim].run = run
    rollout = make_rollout(plans, hosts, work / "rollout")
    pid = os.fork()
    if pid == 0:
        try:
            rollout.apply()
        finally:
            os._exit(3)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, (n, when, status)
    lines = (work / "rollout" / "rollout").read_text().split()
    victim_plan = plans[victim]
    assert lines[-3:] == ["plan", victim_plan.cluster.name, victim_plan.backup_dir.name], lines
    return plans


def _restore(lab: Lab, directory: Path) -> None:
    assert restore_main(["restore", str(directory), f"--ssh-config={lab.ssh_config}"]) == 0


def _step_count(lab: Lab, inventory: Path, cluster: int, unused: Path) -> int:
    """How many steps the cluster's plan has on the lab as it is (planning changes nothing)."""
    inv = load_inventory(inventory)
    plan = make_plan(
        inv.clusters[cluster],
        {h.name: h for h in inv.hosts},
        CollectOptions(str(lab.ssh_config)),
        unused,
        datapath_type="netdev",
    )
    assert plan.steps and not plan.gates  # c1, c2: only the data pair If2 is retagged
    return len(plan.steps)


def test_sigkill_at_every_step_of_the_first_cluster_then_exact_restore(
    lab: Lab, tmp_path: Path
) -> None:
    """SIGKILL before and after each command of c1's plan (nothing verified yet): ``restore``
    of the rollout directory returns every host exactly to its state before the rollout."""
    inventory = build(lab, tmp_path)
    before = secure_snapshot(lab, inventory)
    steps = _step_count(lab, inventory, 0, tmp_path / "unused")
    for n in range(1, steps + 1):
        for when in ("before", "after"):
            work = tmp_path / f"r{n}{when}"
            plans = _killed_rollout(lab, inventory, work, 0, n, when)
            assert len(plans[0].steps) == steps
            # the kill comes before the step's "done" is recorded, whether before or after its
            # command ran
            assert len(plans[0].journal.read().done) == n - 1, (n, when)
            # c2 and c3 were never touched (no backup of theirs exists)
            assert not plans[1].backup_dir.exists() and not plans[2].backup_dir.exists()
            _restore(lab, work / "rollout")
            assert differences(before, secure_snapshot(lab, inventory)) == [], (n, when)
    print(f"\n{2 * steps} SIGKILL rounds in c1, each restored exactly")


def test_sigkill_in_the_failing_cluster_and_its_rollback_then_restore_of_the_rollout(
    lab: Lab, tmp_path: Path
) -> None:
    """SIGKILL before and after each command of c2's plan (c1 verified by then) and of the
    rollback that c2's failed verification starts: ``restore`` of the rollout directory
    restores c2 exactly and keeps c1 as the rollout left it."""
    inventory = build(lab, tmp_path)
    options = CollectOptions(str(lab.ssh_config))
    before = secure_snapshot(lab, inventory)
    steps = _step_count(lab, inventory, 1, tmp_path / "unused")
    for n in range(1, 2 * steps + 1):  # each step, then each undo of the rollback
        for when in ("before", "after"):
            work = tmp_path / f"r{n}{when}"
            plans = _killed_rollout(lab, inventory, work, 1, n, when)
            c1, c2, c3 = plans
            assert len(c2.steps) == steps
            lines = (work / "rollout" / "rollout").read_text().split()
            assert lines[:4] == ["plan", "c1", c1.backup_dir.name, "verified"], lines
            assert not c3.backup_dir.exists()
            journal = c2.journal.read()
            if n > steps:  # in the rollback: every step done, the undos before the n-th recorded
                assert journal.done == set(range(steps)), (n, when)
                assert len(journal.undone) == n - steps - 1, (n, when)
            else:
                assert len(journal.done) == n - 1 and not journal.undone, (n, when)
            _restore(lab, work / "rollout")
            now = secure_snapshot(lab, inventory)
            changed = differences(before, now)
            assert changed and all("-1" in d or "c1-" in d for d in changed), changed
            assert restore(c1.backup_dir, options) == []  # c1 back too, for the next round
            assert differences(before, secure_snapshot(lab, inventory)) == []
    print(f"\n{4 * steps} SIGKILL rounds in c2 (half of them in its rollback), each restored")
