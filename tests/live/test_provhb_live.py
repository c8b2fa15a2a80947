"""Provisioning that keeps the cluster up, on the real lab: two mis-tagged heartbeat pairs are
repaired one at a time with a heartbeat path working (traced on the switches) after every
step; a single mis-tagged heartbeat pair is refused without the maintenance flag and repaired
with it; SIGKILL at any step of these plans is followed by an exact restore."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import replace
from pathlib import Path

import pytest
from pytest_kvmha.fixtures.__main__ import main as restore_main
from pytest_kvmha.fixtures.apply import Plan, make_plan
from pytest_kvmha.fixtures.heartbeat import ALLOW_CUT_FLAG, Gate
from pytest_kvmha.fixtures.plan import PlanRefused
from pytest_kvmha.fixtures.prove import trace_pairs

from pytest_kvmha.config.inventory import load_inventory
from pytest_kvmha.config.target import CollectOptions, HostTarget
from pytest_kvmha.testing import Lab
from tests.scenarios import _TWO, UPLINK, Scenario, _nics, reset

from .test_provsafe_live import crash_at, differences, secure_snapshot

pytestmark = pytest.mark.live

# Both pairs on the wrong VLANs (201, 202) on both servers, consistently, and the uplinks
# trunking those too: the links work, on VLANs the inventory does not want.
BOTH = Scenario(
    "hb-both-mistagged",
    "two-ok, but both pairs run on VLANs 201/202 instead of 101/102",
    tuple(replace(m, nics=_nics((201, 202))) for m in _TWO),  # type: ignore[arg-type]
    vendor="fortigate",
    trunks=((0, UPLINK[0], "[101,102,201,202]"), (1, UPLINK[1], "[101,102,201,202]")),
)
# Only If1 carries heartbeat (inventory), and it is the one mis-tagged.
ONE = Scenario(
    "hb-one-mistagged",
    "two-ok, but If1 (the only heartbeat pair) runs on VLAN 201 instead of 101",
    tuple(replace(m, nics=_nics((201, 102))) for m in _TWO),  # type: ignore[arg-type]
    vendor="fortigate",
    trunks=((0, UPLINK[0], "[101,102,201]"), (1, UPLINK[1], "[101,102,201]")),
)


def build(lab: Lab, scenario: Scenario, tmp_path: Path, *, only_if1: bool = False) -> Path:
    reset(lab)
    scenario.build(lab)
    text = scenario.inventory(lab)
    if only_if1:
        text = text.replace('name = "If1"\n', 'name = "If1"\nheartbeat = true\n')
        text = text.replace('name = "If2"\n', 'name = "If2"\nheartbeat = false\n')
    inventory = tmp_path / "clusters.toml"
    inventory.write_text(text)
    return inventory


def plan_of(lab: Lab, inventory: Path, backups: Path, **kw: object) -> Plan:
    inv = load_inventory(inventory)
    return make_plan(
        inv.clusters[0],
        {h.name: h for h in inv.hosts},
        CollectOptions(str(lab.ssh_config)),
        backups,
        datapath_type="netdev",
        **kw,  # type: ignore[arg-type]
    )


def working_pairs(plan: Plan) -> tuple[str, ...]:
    """The heartbeat pairs whose path the switches of both servers forward now (traced on
    whatever VLAN the pair runs: mid-change that is not yet the declared one)."""
    hb = plan.heartbeat
    assert hb is not None
    now = replace(plan.cluster, pairs=tuple(replace(p, vlan=None) for p in plan.cluster.pairs))
    up = []
    for k, name in zip(hb.pairs, hb.names, strict=True):
        gate = Gate(0, 0, (k,), (name,), tuple(plan.targets))
        if not trace_pairs(now, plan.targets, plan.options, gate):
            up.append(name)
    return tuple(up)


def sampled(plan: Plan) -> list[tuple[str, tuple[str, ...]]]:
    """Wrap the plan's runner: after every command that changes a host, trace every
    heartbeat pair from both servers and record which work."""
    samples: list[tuple[str, tuple[str, ...]]] = []
    inner = plan.run
    assert inner is not None

    def run(target: HostTarget, command: str) -> tuple[int, str, str]:
        result = inner(target, command)
        if command.startswith(("ovs-vsctl", "virsh", "ip link")):
            samples.append((f"[{target.name}] {command.splitlines()[0][:60]}", working_pairs(plan)))
        return result

    plan.run = run
    return samples


def test_two_mistagged_heartbeat_pairs_keep_one_link_up(lab: Lab, tmp_path: Path) -> None:
    inventory = build(lab, BOTH, tmp_path)
    before = secure_snapshot(lab, inventory)
    plan = plan_of(lab, inventory, tmp_path / "b")
    assert [g.names for g in plan.gates] == [("If1",), ("If2",)]
    assert working_pairs(plan) == ("If1", "If2")
    samples = sampled(plan)
    plan.apply()
    down = [(cmd, up) for cmd, up in samples if not up]
    assert samples and not down, samples
    # at most one heartbeat link down at any moment, and both work at the end
    assert all(len(up) >= 1 for _, up in samples)
    assert samples[-1][1] == ("If1", "If2")
    assert working_pairs(plan) == ("If1", "If2")
    print("\nsamples:", *[f"{c} -> {', '.join(u)}" for c, u in samples], sep="\n  ")
    assert plan.rollback() == []
    assert differences(before, secure_snapshot(lab, inventory)) == []


def test_single_heartbeat_pair_refused_then_repaired_in_maintenance_window(
    lab: Lab, tmp_path: Path
) -> None:
    inventory = build(lab, ONE, tmp_path, only_if1=True)
    before = secure_snapshot(lab, inventory)
    with pytest.raises(PlanRefused, match=ALLOW_CUT_FLAG):
        plan_of(lab, inventory, tmp_path / "refused")
    assert not (tmp_path / "refused").exists()  # nothing ran, nothing backed up
    plan = plan_of(lab, inventory, tmp_path / "b", allow_heartbeat_cut=True)
    assert plan.cut and "!! heartbeat cut" in plan.render()
    samples = sampled(plan)
    plan.apply()
    assert any(not up for _, up in samples)  # the cut the plan announced happened ...
    assert samples[-1][1] == ("If1",)  # ... and ended with the pair repaired
    assert plan.rollback() == []
    assert differences(before, secure_snapshot(lab, inventory)) == []


@pytest.mark.parametrize("which", ["both", "one"])
def test_sigkill_at_every_step_then_restore(lab: Lab, which: str, tmp_path: Path) -> None:
    scenario = BOTH if which == "both" else ONE
    inventory = build(lab, scenario, tmp_path, only_if1=which == "one")
    before = secure_snapshot(lab, inventory)
    plan = plan_of(lab, inventory, tmp_path / "unused", allow_heartbeat_cut=which == "one")
    started = time.monotonic()
    for n in range(1, len(plan.steps) + 1):
        for when in ("before", "after"):
            backup = tmp_path / f"crash-{n}-{when}"
            crash_at(dataclasses.replace(plan, backup_dir=backup, applied=[]), n, when)
            assert restore_main(["restore", str(backup), f"--ssh-config={lab.ssh_config}"]) == 0
            assert (backup / "journal").read_text().splitlines()[-1] == "verified"
    assert differences(before, secure_snapshot(lab, inventory)) == []
    print(
        f"\n{which}: {2 * len(plan.steps)} SIGKILL+restore rounds in {time.monotonic() - started:.1f} s"
    )
