"""Clusters one after another: a rollout stops at the first cluster that ends worse than
predicted, rolls it back, keeps the verified ones and never touches the rest; ``restore`` of
the rollout directory undoes exactly the clusters that were not verified."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from pytest_kvmha.fixtures import apply as apply_module
from pytest_kvmha.fixtures.apply import Plan
from pytest_kvmha.fixtures.plan import plan_cluster
from pytest_kvmha.fixtures.rollout import RolloutStopped, make_rollout, restore_rollout

from pytest_kvmha.config.target import CollectOptions, HostTarget
from pytest_kvmha.model import Key

from .test_heartbeat import _plan, mistagged

BAD_KEY: Key = ("KVMHA-TRACE-001", "kvm-b", "c2", "fw-b:If1")


def three(tmp_path: Path, ran: dict[str, list[str]]) -> list[Plan]:
    spec, hosts = mistagged((0, 1))
    plans = []
    for name in ("c1", "c2", "c3"):
        c = replace(spec, name=name)
        ran[name] = []

        def run(target: HostTarget, command: str, name: str = name) -> tuple[int, str, str]:
            ran[name].append(command)
            return 0, "", ""

        plan = _plan(c, plan_cluster(c, hosts), tmp_path / "x" / name, run=run, prove=lambda *a: [])
        plans.append(plan)
    return plans


def test_second_cluster_worse_than_predicted_stops_the_rollout(tmp_path: Path) -> None:
    ran: dict[str, list[str]] = {}
    plans = three(tmp_path, ran)
    _, hosts = mistagged((0, 1))
    verified: list[str] = []

    def verify(plan: Plan) -> dict[Key, str]:
        verified.append(plan.cluster.name)
        return {BAD_KEY: "fail"} if plan.cluster.name == "c2" else {}

    rollout = make_rollout(plans, hosts, tmp_path / "r", verify=verify, checks=[])
    with pytest.raises(RolloutStopped) as exc:
        rollout.apply()
    assert exc.value.cluster == "c2" and exc.value.verified == ["c1"]
    assert exc.value.untouched == ["c3"] and "KVMHA-TRACE-001[fw-b:If1]" in str(exc.value)
    assert verified == ["c1", "c2"]
    assert ran["c3"] == []  # never touched
    c1, c2, _ = plans
    j1, j2 = c1.journal.read(), c2.journal.read()
    assert j1.done == set(range(len(c1.steps))) and not j1.undone  # kept
    assert j2.undone == set(range(len(c2.steps))) and j2.verified  # rolled back, verified
    lines = (tmp_path / "r" / "rollout").read_text().splitlines()
    assert [line.split()[0] + " " + line.split()[1] for line in lines] == [
        "plan c1",
        "verified c1",
        "plan c2",
        "stopped c2",
    ]
    # restore of the rollout: c1 stays, c2 (not verified) is restored, c3 has no backup
    restored: list[str] = []
    real = apply_module.restore

    def spy(directory: Path, options: CollectOptions) -> list[str]:
        restored.append(directory.name)
        return []

    apply_module.restore = spy  # type: ignore[assignment]
    try:
        assert restore_rollout(tmp_path / "r", CollectOptions()) == []
    finally:
        apply_module.restore = real  # type: ignore[assignment]
    assert restored == [c2.backup_dir.name]


def test_canary_order(tmp_path: Path) -> None:
    ran: dict[str, list[str]] = {}
    plans = three(tmp_path, ran)
    _, hosts = mistagged((0, 1))
    order: list[str] = []

    def verify(plan: Plan) -> dict[Key, str]:
        order.append(plan.cluster.name)
        return {}

    rollout = make_rollout(
        plans, hosts, tmp_path / "r", order=["c3", "c1", "c2"], verify=verify, checks=[]
    )
    rollout.apply()
    assert order == ["c3", "c1", "c2"] and rollout.verified == order
    with pytest.raises(ValueError, match="must name every cluster once"):
        make_rollout(plans, hosts, tmp_path / "r2", order=["c1", "c1", "c2"], checks=[])


def test_a_predicted_error_excuses_only_the_same_error() -> None:
    from pytest_kvmha.fixtures.rollout import _worse

    assert _worse({BAD_KEY: "error"}, {BAD_KEY: "error"}) == []
    assert _worse({BAD_KEY: "fail"}, {BAD_KEY: "error"}) == [BAD_KEY]
    assert _worse({BAD_KEY: "error"}, {BAD_KEY: "fail"}) == []
    assert _worse({BAD_KEY: "fail"}, {}) == [BAD_KEY]
