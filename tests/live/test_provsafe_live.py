"""Provisioning never loses data, on the real lab: secure domain XML (console
passwords) through plan, backup and restore; a failed step undoes itself; SIGKILL at every step
then ``restore`` gives back the exact prior state; steps are bounded and refuse option-like names.

"Exactly as before" is always checked against a snapshot taken with the secure XML, so a lost
console password counts as a difference."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from pytest_kvmha.fixtures.__main__ import main as restore_main
from pytest_kvmha.fixtures.actions import (
    AddBridge,
    AddPort,
    DefineDomain,
    SetPortVlans,
    SetPromisc,
    Step,
)
from pytest_kvmha.fixtures.apply import (
    CRASH_HOOK,
    Plan,
    StepFailed,
    make_plan,
)
from pytest_kvmha.fixtures.plan import PlanRefused
from pytest_kvmha.fixtures.verify import state_differences

from pytest_kvmha.collect.host import collect
from pytest_kvmha.config.inventory import load_inventory
from pytest_kvmha.config.target import CollectOptions
from pytest_kvmha.facts import HostFacts
from pytest_kvmha.parse.host import parse_bundle
from pytest_kvmha.testing import Lab
from pytest_kvmha.testing.domains import CONSOLE_PASSWORD
from tests.scenarios import SCENARIOS, build_scenario

from .test_provision_live import INNER_TEST, provision_run

pytestmark = pytest.mark.live

PASSWD = f"passwd='{CONSOLE_PASSWORD}'"


def build(lab: Lab, name: str, tmp_path: Path) -> Path:
    inventory = build_scenario(lab, SCENARIOS[name], tmp_path)
    return inventory


def secure_snapshot(lab: Lab, inventory: Path) -> dict[str, HostFacts]:
    options = CollectOptions(str(lab.ssh_config), secure=True)
    return {h.name: parse_bundle(collect(h, options)) for h in load_inventory(inventory).hosts}


def differences(before: dict[str, HostFacts], after: dict[str, HostFacts]) -> list[str]:
    return [d for name in before for d in state_differences(before[name], after[name])]


def new_plan(lab: Lab, inventory: Path, backups: Path, timeout: float = 300.0) -> Plan:
    inv = load_inventory(inventory)
    return make_plan(
        inv.clusters[0],
        {h.name: h for h in inv.hosts},
        CollectOptions(str(lab.ssh_config), timeout=timeout),
        backups,
        datapath_type="netdev",
    )


def restore_cli(lab: Lab, directory: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest_kvmha.fixtures",
            "restore",
            str(directory),
            f"--ssh-config={lab.ssh_config}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


# --- secure XML ---------------------------------------------------------------------------


def test_console_password_survives_provision_and_restore(lab: Lab, tmp_path: Path) -> None:
    """slot-mismatch realigns fw-slave's NIC (define + restart): its VNC password must be in
    the plan's XML, the backup and the restored domain; never in the audit or the output."""
    inventory = build(lab, "slot-mismatch", tmp_path)
    before = secure_snapshot(lab, inventory)
    assert PASSWD in before["kvm-a"].domains["fw-slave"].inactive_xml  # type: ignore[index]
    # An audit (not secure) does not see it: audits and recorded bundles store no password.
    audit = parse_bundle(
        collect(load_inventory(inventory).hosts[0], CollectOptions(str(lab.ssh_config)))
    )
    assert "passwd=" not in audit.domains["fw-slave"].inactive_xml  # type: ignore[index]

    (tmp_path / "test_inner.py").write_text(INNER_TEST)
    out = tmp_path / "inner.json"
    backups = tmp_path / "backups"
    proc = provision_run(
        lab,
        tmp_path,
        "test_inner.py",
        inventory,
        "--kvmha-datapath=netdev",
        f"--kvmha-backup-dir={backups}",
        out=out,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads(out.read_text())["applied"] == [0]
    assert CONSOLE_PASSWORD not in proc.stdout + proc.stderr

    after = secure_snapshot(lab, inventory)
    assert differences(before, after) == []
    assert PASSWD in after["kvm-a"].domains["fw-slave"].inactive_xml  # type: ignore[index]

    # The backup holds the secret: a 0700 directory of 0600 files, no temporaries left.
    (backup,) = backups.glob("edge-fw-*")
    assert stat.S_IMODE(backup.stat().st_mode) == 0o700
    files = [p for p in backup.rglob("*") if p.is_file()]
    assert files and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in files)
    dirs = [p for p in backup.rglob("*") if p.is_dir()]
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o700 for p in dirs)
    assert not [p for p in backup.rglob("*.tmp")]
    assert any(PASSWD in p.read_text() for p in backup.glob("hosts/kvm-a/sections/domain-*/*"))
    assert PASSWD in (backup / "plan.json").read_text()
    assert (backup / "journal").read_text().splitlines()[-1] == "verified"


# --- a failed step undoes itself ------------------------------------------------------------


def _failing_define(plan: Plan) -> Step:
    """fw-master redefined onto a bridge that does not exist: define succeeds, start fails."""
    dom = parse_bundle(plan.before["kvm-a"]).domains["fw-master"]  # type: ignore[index]
    assert dom.active and PASSWD in dom.inactive_xml
    bad = re.sub(r"<source bridge='[^']*'/>", "<source bridge='kvmha-nobr'/>", dom.inactive_xml)
    return Step("kvm-a", DefineDomain("fw-master", dom.inactive_xml, bad, True, dom.paused), "fail")


FAILING: dict[str, tuple[str, int, Callable[[Plan], Step]]] = {
    # kind: (scenario, where to insert it, the step). Each fails for real, most with a partial
    # effect: a bridge left in OVSDB ("failed to open datapath", exit status 0), a port whose
    # interface is in error (exit status 0), a member redefined and left shut off.
    "AddBridge": ("two-bare", 4, lambda p: Step("kvm-a", AddBridge("kvmha-bad", "system"), "f")),
    # (on a bridge the plan did not create: undoing the plan's add-br would hide the port)
    "AddPort": (
        "slot-mismatch",
        1,
        lambda p: Step("kvm-a", AddPort("br1-internal", "kvmha-nodev"), "f"),
    ),
    "SetPortVlans": (
        "two-bare",
        4,
        lambda p: Step("kvm-a", SetPortVlans("kvmha-noport", 5, (), None, (101, 102)), "f"),
    ),
    "SetPromisc": ("two-bare", 18, lambda p: Step("kvm-b", SetPromisc("kvmha-nolink"), "f")),
    "DefineDomain": ("slot-mismatch", 1, _failing_define),
}


@pytest.mark.parametrize("kind", sorted(FAILING))
def test_failed_step_undoes_itself(lab: Lab, kind: str, tmp_path: Path) -> None:
    scenario, where, make = FAILING[kind]
    inventory = build(lab, scenario, tmp_path)
    before = secure_snapshot(lab, inventory)
    plan = new_plan(lab, inventory, tmp_path / "backups")
    plan.steps.insert(where, make(plan))
    with pytest.raises(StepFailed) as failure:
        plan.apply()
    assert failure.value.index == where and failure.value.rollback_problems == []
    assert "it and the steps before it were rolled back" in str(failure.value)
    assert plan.applied == []
    assert differences(before, secure_snapshot(lab, inventory)) == []
    journal = (plan.backup_dir / "journal").read_text().splitlines()
    assert journal[-1] == "verified" and f"undone {where}" in journal


# --- crash anywhere, restore exactly --------------------------------------------------------


def crash_at(plan: Plan, n: int, when: str) -> None:
    """Apply ``plan`` in a forked child that SIGKILLs itself at step ``n`` (1-based): right
    after the intent is journaled ("before") or right after the step ran ("after")."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            os.environ[CRASH_HOOK] = f"{when}:{n}"
            plan.apply()
        finally:
            os._exit(3)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, (n, when, status)


@pytest.mark.parametrize("scenario", ["two-bare", "vlan-clash"])
def test_sigkill_at_every_step_then_restore(
    lab: Lab, scenario: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """two-bare: 20 steps of every kind but SetPortVlans, members shut off; vlan-clash: running
    members redefined and restarted, live ports retagged. SIGKILL right after the intent of
    step N is journaled, and right after step N ran (its completion not journaled); then
    ``restore`` (the command's main()) must give back the exact prior state.

    One plan, applied afresh in every round with a backup directory of its own: its backed-up
    hosts are the snapshot taken before (asserted), and ``restore`` exits 0 only once every
    host was collected again and found identical to that backup."""
    inventory = build(lab, scenario, tmp_path)
    before = secure_snapshot(lab, inventory)
    plan = new_plan(lab, inventory, tmp_path / "unused")
    assert differences(before, {n: parse_bundle(b) for n, b in plan.before.items()}) == []
    assert len(plan.steps) >= 4
    started = time.monotonic()
    for n in range(1, len(plan.steps) + 1):
        for when in ("before", "after"):
            backup = tmp_path / f"crash-{n}-{when}"
            crash_at(dataclasses.replace(plan, backup_dir=backup, applied=[]), n, when)
            journal = (backup / "journal").read_text().splitlines()
            assert journal[-1] == f"intent {n - 1}", (n, when, journal)
            rc = restore_main(["restore", str(backup), f"--ssh-config={lab.ssh_config}"])
            assert rc == 0, (n, when, capsys.readouterr())
            assert (backup / "journal").read_text().splitlines()[-1] == "verified"
    elapsed = time.monotonic() - started
    assert differences(before, secure_snapshot(lab, inventory)) == []
    with capsys.disabled():
        print(f"\n{scenario}: {2 * len(plan.steps)} SIGKILL+restore rounds in {elapsed:.1f} s")


def test_restore_is_retriable_and_idempotent(lab: Lab, tmp_path: Path) -> None:
    inventory = build(lab, "two-bare", tmp_path)
    before = secure_snapshot(lab, inventory)
    plan = new_plan(lab, inventory, tmp_path / "backups")
    plan.apply()
    lab.stop_sshd(lab.hosts[1])
    try:
        failed = restore_cli(lab, plan.backup_dir)
        assert failed.returncode == 1, failed.stdout + failed.stderr
        assert "run the same command again to retry" in failed.stdout
    finally:
        lab.start_sshd(lab.hosts[1])
    # nothing of kvm-b's steps is marked undone: the retry does them
    for attempt in range(2):  # retry, then once more on a restored host (only verifies)
        again = restore_cli(lab, plan.backup_dir)
        assert again.returncode == 0, (attempt, again.stdout + again.stderr)
        assert "restored: every host verified" in again.stdout
    assert differences(before, secure_snapshot(lab, inventory)) == []


# --- bounded and safe -----------------------------------------------------------------------


def test_every_step_honours_the_timeout(lab: Lab, tmp_path: Path) -> None:
    """A switch that stops answering (ovsdb-server stopped): ovs-vsctl waits forever unless
    the step is bounded by --kvmha-timeout."""
    inventory = build(lab, "two-bare", tmp_path)
    before = secure_snapshot(lab, inventory)
    plan = new_plan(lab, inventory, tmp_path / "backups", timeout=3)
    ovsdb = lab.hosts[0].pids["ovsdb-server"]
    outcome: list[BaseException | None] = []

    def apply() -> None:
        try:
            plan.apply()
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            outcome.append(exc)

    os.kill(ovsdb, signal.SIGSTOP)
    try:
        started = time.monotonic()
        worker = threading.Thread(target=apply, daemon=True)
        worker.start()
        worker.join(60)
        elapsed = time.monotonic() - started
    finally:
        os.kill(ovsdb, signal.SIGCONT)
    worker.join(120)
    assert outcome, "the step was still running 60 s after it started with --kvmha-timeout=3"
    (error,) = outcome
    assert isinstance(error, StepFailed), error
    assert "timed out after 3 s (--kvmha-timeout)" in str(error)
    assert elapsed < 45
    # its undo timed out as well while the switch was stopped: the journal lets us finish now
    assert plan.rollback() == []
    assert differences(before, secure_snapshot(lab, inventory)) == []


def test_domain_xml_over_128k_is_defined(lab: Lab, tmp_path: Path) -> None:
    inventory = build(lab, "slot-mismatch", tmp_path)
    host = lab.hosts[0]
    xml = host.virsh("dumpxml", "--inactive", "--security-info", "fw-slave")
    big = "long description " * 12000  # about 200 KiB
    host.virsh("destroy", "fw-slave")
    host.define_domain(xml.replace("</name>", f"</name>\n  <description>{big}</description>", 1))
    before = secure_snapshot(lab, inventory)
    assert len(before["kvm-a"].domains["fw-slave"].inactive_xml) > 200_000  # type: ignore[index]
    plan = new_plan(lab, inventory, tmp_path / "backups")
    (step,) = plan.steps
    assert isinstance(step.action, DefineDomain) and step.action.restart
    plan.apply()
    now = secure_snapshot(lab, inventory)["kvm-a"].domains["fw-slave"]  # type: ignore[index]
    assert now.inactive_xml == step.action.new_xml and big in now.inactive_xml
    assert now.paused
    assert plan.rollback() == []
    assert differences(before, secure_snapshot(lab, inventory)) == []


def test_two_plans_in_one_second_get_their_own_backup(
    lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inventory = build(lab, "promisc-off", tmp_path)
    before = secure_snapshot(lab, inventory)
    monkeypatch.setattr(time, "strftime", lambda fmt, *a: "20260101T000000")
    first = new_plan(lab, inventory, tmp_path / "backups")
    second = new_plan(lab, inventory, tmp_path / "backups")
    assert first.backup_dir != second.backup_dir
    first.apply()
    second.apply()
    assert second.rollback() == [] and first.rollback() == []
    for plan in (first, second):
        assert (plan.backup_dir / "journal").read_text().splitlines() == [
            "intent 0",
            "done 0",
            "undone 0",
            "verified",
        ]
    assert differences(before, secure_snapshot(lab, inventory)) == []


def test_names_starting_with_a_dash_are_refused(lab: Lab, tmp_path: Path) -> None:
    inventory = build(lab, "two-bare", tmp_path)
    inventory.write_text(inventory.read_text().replace('"br1-internal"', '"-br1"'))
    with pytest.raises(PlanRefused, match=r"name '-br1' starts with '-'"):
        new_plan(lab, inventory, tmp_path / "backups")
    # A plan whose steps were changed after planning is refused before the first change too.
    good = build(lab, "promisc-off", tmp_path)
    before = secure_snapshot(lab, good)
    plan = new_plan(lab, good, tmp_path / "backups")
    plan.steps.append(Step("kvm-a", SetPromisc("--help"), "evil"))
    with pytest.raises(PlanRefused, match=r"name '--help' starts with '-'"):
        plan.apply()
    assert not plan.backup_dir.exists()
    assert differences(before, secure_snapshot(lab, good)) == []
