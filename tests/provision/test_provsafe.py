"""Provisioning safety without the lab: the restore command's errors, the journal, the backup
format, secure collection only when asked, passwords kept out of what people read."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from pytest_kvmha.fixtures.__main__ import main
from pytest_kvmha.fixtures.actions import (
    AddBridge,
    AddPort,
    DefineDomain,
    SetPortVlans,
    SetPromisc,
    Step,
    action_from_json,
    action_json,
)
from pytest_kvmha.fixtures.apply import refuse_option_like_names, restore
from pytest_kvmha.fixtures.backup import BackupError, Journal, write_private

from pytest_kvmha.collect.script import batch_script
from pytest_kvmha.config.target import CollectOptions

XML = "<domain>\n  <graphics type='vnc' passwd='s3cret'/>\n  <source bridge='a'/>\n</domain>\n"
ACTIONS = [
    AddBridge("br1", "netdev"),
    AddPort("br-trunk", "up-a", (101, 102)),
    AddPort("br1", "br1-up", peer="br1-dn"),
    SetPortVlans("vnet0", 102, (), 101, (1, 2)),
    DefineDomain("fw", XML, XML.replace("'a'", "'b'"), True, True),
    SetPromisc("up-a"),
]


def test_restore_names_a_missing_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["restore", str(tmp_path / "nope")]) == 2
    assert (
        f"cannot restore: {tmp_path / 'nope'}: no such backup directory" in capsys.readouterr().err
    )


def test_restore_refuses_a_directory_that_is_not_a_backup(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["restore", str(tmp_path)]) == 2
    assert "not a kvmha provisioning backup (no plan.json)" in capsys.readouterr().err
    (tmp_path / "plan.json").write_text('{"schema": "other"}')
    with pytest.raises(BackupError, match="field 'schema' must be 'kvmha-backup/1'"):
        restore(tmp_path, CollectOptions())
    (tmp_path / "plan.json").write_text('{"schema": "kvmha-backup/1", "cluster": {}}')
    with pytest.raises(BackupError, match=r"plan.json: damaged: cluster.name: must be a string"):
        restore(tmp_path, CollectOptions())


def test_restore_refuses_a_journal_naming_steps_not_in_the_plan(tmp_path: Path) -> None:
    plan = {
        "schema": "kvmha-backup/1",
        "cluster": {"name": "c", "vendor": "fortigate", "heartbeat": "broadcast"},
        "targets": {},
        "steps": [],
    }
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    (tmp_path / "journal").write_text("intent 0\n")
    with pytest.raises(BackupError, match=r"steps \[1\] are not in the plan"):
        restore(tmp_path, CollectOptions())


def test_journal_events_and_a_torn_last_line(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal")
    journal.create()
    assert stat.S_IMODE(journal.path.stat().st_mode) == 0o600
    for event, index in [("intent", 0), ("done", 0), ("intent", 1), ("undone", 1)]:
        journal.record(event, index)
    state = journal.read()
    assert (state.intended, state.done, state.undone, state.verified) == ([0, 1], {0}, {1}, False)
    with open(journal.path, "a") as f:
        f.write("inte")  # killed while appending: not an event
    assert journal.read().intended == [0, 1]
    journal.path.write_text("intent 0\nrm -rf /\nverified\n")
    with pytest.raises(BackupError, match=r"journal:2: not a journal line"):
        journal.read()


def test_write_private_is_0600_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "plan.json"
    target.write_text("old")
    target.chmod(0o644)
    write_private(target, "new")
    assert target.read_text() == "new" and stat.S_IMODE(target.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["plan.json"]


@pytest.mark.parametrize("action", ACTIONS, ids=lambda a: type(a).__name__)
def test_actions_round_trip_through_the_backup(action: object) -> None:
    data = json.loads(json.dumps(action_json(action)))  # type: ignore[arg-type]
    assert action_from_json(data) == action


def test_unknown_action_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown action kind 'Rm'"):
        action_from_json({"kind": "Rm"})
    with pytest.raises(ValueError, match="field 'datapath_type' missing"):
        action_from_json({"kind": "AddBridge", "bridge": "b"})


def test_define_is_staged_never_in_the_command_line() -> None:
    define = ACTIONS[4]
    assert isinstance(define, DefineDomain)
    command = define.execute("/tmp/kvmha-x.xml") + define.undo_execute("/tmp/kvmha-y.xml")
    assert "s3cret" not in command and "<domain" not in command
    assert "define /tmp/kvmha-x.xml" in command and "start --paused fw" in command
    assert define.payload() == define.new_xml and define.undo_payload() == define.old_xml


def test_console_passwords_are_redacted_in_what_people_read() -> None:
    step = Step("kvm-a", ACTIONS[4], "rebind")
    text = step.describe() + json.dumps(step.as_json())
    assert "s3cret" not in text and "passwd='***'" in text


def test_undo_tolerates_what_is_already_undone() -> None:
    assert "--if-exists del-br" in AddBridge("b", "netdev", "p1").undo_execute()
    assert "--if-exists del-port" in AddPort("b", "p", mark="p1").undo_execute()
    vlans = SetPortVlans("vnet0", 102, (), 101, (1, 2)).undo_execute()
    assert vlans == (
        "ovs-vsctl --if-exists set port vnet0 tag=101 -- --if-exists set port vnet0 'trunks=[1,2]'"
    )
    assert SetPromisc("up-a").undo_execute().startswith("if ip link show dev up-a ")


def test_names_starting_with_a_dash_are_named() -> None:
    steps = [
        Step("kvm-a", AddPort("br1", "-p"), "r"),
        Step("kvm-a", DefineDomain("--help", "", "", False, False), "r"),
        Step("kvm-a", AddBridge("br-ok", "netdev"), "r"),
    ]
    assert refuse_option_like_names(steps) == [
        "step 1 on kvm-a: name '-p' starts with '-'",
        "step 2 on kvm-a: name '--help' starts with '-'",
    ]


def test_secure_xml_only_when_asked() -> None:
    boundary = "ab" * 12
    assert "--security-info" not in batch_script(boundary)
    secure = batch_script(boundary, secure=True)
    assert 'dumpxml --inactive --security-info"' in secure
    assert 'vb domain-live "dumpxml --security-info"' in secure


NODE = """<node>
  <domain type='test'>
    <name>fw</name>
    <memory>65536</memory>
    <os><type>hvm</type></os>
    <devices><graphics type='vnc' port='-1' passwd='s3cret'/></devices>
  </domain>
</node>
"""


def test_libvirt_python_reads_secure_xml_only_when_asked(tmp_path: Path) -> None:
    """With ``libvirt = URI``: a read-write connection and VIR_DOMAIN_XML_SECURE for
    provisioning; the audit's read-only dump leaves the console password out."""
    pytest.importorskip("libvirt")
    from pytest_kvmha.bundle.store import EvidenceBundle
    from pytest_kvmha.collect.libvirt import collect_libvirt  # the shell half needs OVS: not here

    node = tmp_path / "node.xml"
    node.write_text(NODE)
    for secure in (False, True):
        bundle = EvidenceBundle("h", "local://", "local", "now")
        collect_libvirt(bundle, f"test://{node}", secure=secure)
        dumps = [s.stdout for k, s in bundle.sections.items() if k.startswith("domain-")]
        assert len(dumps) == 2, bundle.sections
        assert all(("passwd='s3cret'" in d) is secure for d in dumps)


def test_a_lost_host_is_a_failed_step_without_the_command_in_the_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """testinfra's error on ssh exit 255 carries the whole command: a staged piece of secure
    XML. Only ssh's last words reach the step's reason."""
    from types import SimpleNamespace

    from pytest_kvmha.fixtures import runner

    class Gone:
        def run(self, command: str) -> None:
            result = SimpleNamespace(rc=255, stdout="", stderr="ssh: connect: refused\n")
            raise RuntimeError(result, command)

    monkeypatch.setattr(runner, "testinfra_host", lambda spec, options: Gone())
    run = runner.ssh_runner(CollectOptions(timeout=5))
    rc, _, err = run(runner.HostTarget("kvm-a", "ssh://kvm-a"), "printf %s c2VjcmV0")
    assert rc == 255 and err == "cannot run commands on kvm-a: ssh: connect: refused"
