"""``restore`` proves it talks to the machines that were backed up before the first undo:
offline, with recorded bundles as the hosts (replay://) and a command recorder as the runner."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType

import pytest
from pytest_kvmha.fixtures.actions import SetPromisc, action_json
from pytest_kvmha.fixtures.apply import restore
from pytest_kvmha.fixtures.backup import BackupError
from pytest_kvmha.fixtures.identity import identity_differences

from pytest_kvmha.bundle.store import EvidenceBundle
from pytest_kvmha.config.target import CollectOptions, HostTarget
from pytest_kvmha.parse.host import parse_bundle

BUNDLES = Path(__file__).parent.parent / "bundles"


class Recorder:
    def __init__(self) -> None:
        self.commands: list[str] = []

    def __call__(self, target: HostTarget, command: str) -> tuple[int, str, str]:
        self.commands.append(command)
        return 0, "", ""


def backup_of(tmp_path: Path) -> tuple[Path, Path]:
    """A backup of kvm-a (two-ok) with one applied step, and the live host it names: a copy
    of the same recording, replayed."""
    live = tmp_path / "live" / "kvm-a"
    shutil.copytree(BUNDLES / "two-ok" / "kvm-a", live)
    backup = tmp_path / "backup"
    (backup / "hosts").mkdir(parents=True)
    shutil.copytree(BUNDLES / "two-ok" / "kvm-a", backup / "hosts" / "kvm-a")
    plan = {
        "schema": "kvmha-backup/1",
        "cluster": {"name": "edge", "vendor": "fortigate", "heartbeat": "broadcast"},
        "targets": {"kvm-a": {"spec": f"replay://{live}", "libvirt_uri": None}},
        "steps": [{"host": "kvm-a", "reason": "r", "action": action_json(SetPromisc("up-a"))}],
    }
    (backup / "plan.json").write_text(json.dumps(plan))
    (backup / "journal").write_text("intent 0\ndone 0\n")
    return backup, live


def test_the_same_machine_is_restored(tmp_path: Path) -> None:
    backup, _ = backup_of(tmp_path)
    rec = Recorder()
    assert restore(backup, CollectOptions(), run=rec) == []
    assert rec.commands and "promisc off" in rec.commands[0]
    assert (backup / "journal").read_text().splitlines()[-1] == "verified"


def test_another_machine_at_that_address_gets_no_undo(tmp_path: Path) -> None:
    backup, live = backup_of(tmp_path)
    (live / "sections" / "identity").write_text("0123456789abcdef0123456789abcdef\nother-host\n")
    rec = Recorder()
    with pytest.raises(BackupError, match="not the machines backed up, nothing undone") as info:
        restore(backup, CollectOptions(), run=rec)
    assert "kvm-a: machine identity differs: backed up " in str(info.value)
    assert "now '0123456789abcdef0123456789abcdef'" in str(info.value)
    assert rec.commands == []
    assert "undone" not in (backup / "journal").read_text()


def test_a_host_that_cannot_be_read_keeps_its_steps_for_the_next_run(tmp_path: Path) -> None:
    backup, live = backup_of(tmp_path)
    shutil.rmtree(live)
    rec = Recorder()
    problems = restore(backup, CollectOptions(), run=rec)
    assert rec.commands == []
    assert any("cannot prove it is the host backed up" in p for p in problems)
    assert "undone" not in (backup / "journal").read_text()


def test_domain_uuids_tell_machines_apart() -> None:
    facts = parse_bundle(EvidenceBundle.read(BUNDLES / "two-ok" / "kvm-a"))
    assert facts.domains is not None
    name, dom = next(iter(facts.domains.items()))
    recreated = replace(
        facts,
        domains=MappingProxyType(
            {**facts.domains, name: replace(dom, uuid="00000000-0000-0000-0000-000000000001")}
        ),
    )
    assert identity_differences("kvm-a", facts, facts, {name}) == []
    assert identity_differences("kvm-a", facts, recreated, set()) == [
        f"kvm-a: domain {name!r} has UUID 00000000-0000-0000-0000-000000000001, "
        f"backed up {dom.uuid}"
    ]
    gone = replace(facts, domains=MappingProxyType({}))
    assert identity_differences("kvm-a", facts, gone, {name}) == [
        f"kvm-a: domain {name!r} (UUID {dom.uuid}) is not defined there now"
    ]
