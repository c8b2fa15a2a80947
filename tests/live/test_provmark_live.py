"""What a plan creates carries its id, and an undo removes only what carries it: on the real
lab, a namesake bridge someone made between plan and apply survives the rollback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pytest_kvmha.fixtures.actions import MARK_KEY, AddBridge
from pytest_kvmha.fixtures.apply import StepFailed, plan_id

from pytest_kvmha.testing import Lab

from .test_provsafe_live import build, differences, new_plan, restore_cli, secure_snapshot

pytestmark = pytest.mark.live


def test_a_namesake_bridge_made_after_planning_is_left_alone(lab: Lab, tmp_path: Path) -> None:
    inventory = build(lab, "two-bare", tmp_path)
    before = secure_snapshot(lab, inventory)
    plan = new_plan(lab, inventory, tmp_path / "backups")
    index, step = next((i, s) for i, s in enumerate(plan.steps) if isinstance(s.action, AddBridge))
    assert isinstance(step.action, AddBridge) and step.action.mark == plan_id(plan.backup_dir)
    name = step.action.bridge
    host = lab.hosts[["kvm-a", "kvm-b"].index(step.host)]
    # someone else makes a bridge of that name, with a port on it, after the plan was made
    host.ovs_vsctl("add-br", name, "--", "set", "bridge", name, "datapath_type=netdev")
    host.ovs_vsctl("add-port", name, "theirs", "--", "set", "interface", "theirs", "type=internal")
    try:
        with pytest.raises(StepFailed) as failure:
            plan.apply()
        assert failure.value.index == index and "already exists" in failure.value.reason
        assert host.ovs_vsctl("list-ports", name).split() == ["theirs"]  # left alone
        assert host.ovs_vsctl("get", "bridge", name, "external_ids").strip() == "{}"
        journal = (plan.backup_dir / "journal").read_text().splitlines()
        assert f"undone {index}" in journal  # its undo ran, and found nothing of this plan's
        # the rollback says what differs from the backup: that bridge
        assert any(name in p for p in failure.value.rollback_problems)
    finally:
        host.ovs_vsctl("--if-exists", "del-br", name)
    assert differences(before, secure_snapshot(lab, inventory)) == []


def test_what_a_plan_creates_is_marked_and_removed(lab: Lab, tmp_path: Path) -> None:
    inventory = build(lab, "two-bare", tmp_path)
    before = secure_snapshot(lab, inventory)
    plan = new_plan(lab, inventory, tmp_path / "backups")
    plan.apply()
    mark = plan_id(plan.backup_dir)
    for step in plan.steps:
        if isinstance(step.action, AddBridge):
            host = lab.hosts[["kvm-a", "kvm-b"].index(step.host)]
            got = host.ovs_vsctl("get", "bridge", step.action.bridge, f"external_ids:{MARK_KEY}")
            assert got.strip().strip('"') == mark
    assert plan.rollback() == []
    assert differences(before, secure_snapshot(lab, inventory)) == []


def test_restore_refuses_hosts_that_swapped_addresses(lab: Lab, tmp_path: Path) -> None:
    """The two servers' addresses swapped since the backup (a re-addressed host, an ssh alias
    pointing elsewhere): restore undoes nothing and names both; with the addresses back, it
    restores exactly."""
    inventory = build(lab, "two-bare", tmp_path)
    before = secure_snapshot(lab, inventory)
    plan = new_plan(lab, inventory, tmp_path / "backups")
    plan.apply()
    plan_file = plan.backup_dir / "plan.json"
    original = plan_file.read_text()
    data = json.loads(original)
    t = data["targets"]
    t["kvm-a"]["spec"], t["kvm-b"]["spec"] = t["kvm-b"]["spec"], t["kvm-a"]["spec"]
    plan_file.write_text(json.dumps(data))
    refused = restore_cli(lab, plan.backup_dir)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "not the machines backed up, nothing undone" in refused.stderr
    assert "kvm-a: machine identity differs" in refused.stderr
    assert "kvm-b: machine identity differs" in refused.stderr
    assert "undone" not in (plan.backup_dir / "journal").read_text()
    plan_file.write_text(original)
    again = restore_cli(lab, plan.backup_dir)
    assert again.returncode == 0, again.stdout + again.stderr
    assert differences(before, secure_snapshot(lab, inventory)) == []
