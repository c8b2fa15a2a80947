"""A backup's plan.json is data from disk: a tampered one is refused before anything runs, and
no value of a step can become more than one word of the command it builds."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import pytest
from pytest_kvmha.fixtures.actions import (
    AddBridge,
    AddPort,
    SetPortVlans,
    SetPromisc,
    Step,
    action_json,
)
from pytest_kvmha.fixtures.apply import Plan, restore
from pytest_kvmha.fixtures.backup import BackupError

from pytest_kvmha.config.target import CollectOptions, HostTarget

INJECTED = "0 -- ; touch /tmp/x ; true"


def _backup(directory: Path, steps: list[dict[str, Any]], **targets: dict[str, Any]) -> Path:
    plan = {
        "schema": "kvmha-backup/1",
        "cluster": {"name": "edge", "vendor": "fortigate", "heartbeat": "broadcast"},
        "targets": targets or {"kvm-a": {"spec": "ssh://root@10.0.0.1", "libvirt_uri": None}},
        "steps": steps,
    }
    (directory / "plan.json").write_text(json.dumps(plan))
    (directory / "journal").write_text(
        "".join(f"intent {i}\ndone {i}\n" for i in range(len(steps)))
    )
    return directory


def _step(action: dict[str, Any], host: str = "kvm-a") -> dict[str, Any]:
    return {"host": host, "reason": "r", "action": action}


class Recorder:
    def __init__(self) -> None:
        self.commands: list[str] = []

    def __call__(self, target: HostTarget, command: str) -> tuple[int, str, str]:
        self.commands.append(command)
        return 0, "", ""


def _restore_with(directory: Path) -> Recorder:
    """restore's own path (from_backup, then the undo), with commands recorded, not run."""
    rec = Recorder()
    plan = Plan.from_backup(directory, CollectOptions())
    plan.run = rec
    plan._undo_applied()
    return rec


def test_a_tampered_old_tag_never_reaches_a_command(tmp_path: Path) -> None:
    vlans = action_json(SetPortVlans("up-a", 101, (), 100, ()))
    vlans["old_tag"] = INJECTED
    _backup(tmp_path, [_step(vlans)])
    with pytest.raises(BackupError, match=r"steps\[0\]\.action\.old_tag: must be a VLAN id"):
        _restore_with(tmp_path)
    with pytest.raises(BackupError, match="old_tag"):
        restore(tmp_path, CollectOptions())


def test_tampered_old_trunks_are_refused(tmp_path: Path) -> None:
    vlans = action_json(SetPortVlans("up-a", 101, (), 100, ()))
    vlans["old_trunks"] = ["1];touch /tmp/x;echo [", True]
    _backup(tmp_path, [_step(vlans)])
    with pytest.raises(BackupError, match=r"old_trunks\[0\]: must be a VLAN id"):
        _restore_with(tmp_path)


def test_an_option_like_bridge_in_a_backup_is_refused(tmp_path: Path) -> None:
    _backup(tmp_path, [_step(action_json(AddBridge("--help", "netdev")))])
    with pytest.raises(BackupError, match=r"'--help' starts with '-'"):
        _restore_with(tmp_path)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d["targets"].update({"../x": d["targets"].pop("kvm-a")}), "path separator"),
        (lambda d: d["targets"]["kvm-a"].update(spec="-oProxyCommand=x"), "starts with '-'"),
        (lambda d: d["targets"]["kvm-a"].update(spec="kvm-a"), "is not a host spec"),
        (lambda d: d["targets"]["kvm-a"].update(libvirt_uri="qemu:///s;id"), "not a virsh URI"),
        (lambda d: d["steps"][0].update(host="kvm-z"), "not one of the backup's targets"),
        (lambda d: d["steps"][0].update(reason="\x1b[2J"), "control characters"),
        (lambda d: d["steps"][0]["action"].update(bridge="br\nrm"), "control characters"),
        (lambda d: d["steps"][0]["action"].update(bridge=["br"]), "must be a string"),
        (lambda d: d["steps"][0]["action"].update(extra=1), "unknown fields"),
        (lambda d: d["cluster"].update(vendor="x"), "cluster.vendor"),
    ],
)
def test_every_field_is_checked(tmp_path: Path, edit: Any, message: str) -> None:
    _backup(tmp_path, [_step(action_json(AddBridge("br1", "netdev")))])
    data = json.loads((tmp_path / "plan.json").read_text())
    edit(data)
    (tmp_path / "plan.json").write_text(json.dumps(data))
    with pytest.raises(BackupError, match="damaged") as info:
        _restore_with(tmp_path)
    assert message in str(info.value)


WORDY = "a b;$(id)`x`'\"\\ -- c"


@pytest.mark.parametrize(
    "make",
    [
        lambda n: AddBridge(n, n),
        lambda n: AddPort(n, n, (1, 2), 3, n),
        lambda n: SetPortVlans(n, 1, (2,), None, ()),
        lambda n: SetPromisc(n),
    ],
    ids=["AddBridge", "AddPort", "SetPortVlans", "SetPromisc"],
)
def test_every_value_stays_one_word(make: Any) -> None:
    """The commands of a step holding a hostile name split into the same words as those of a
    step holding a plain one, the name in place of the plain one: it is one word, always."""
    hostile, plain = make(WORDY), make("X")
    for build in ("command", "undo", "execute", "undo_execute"):
        words = shlex.split(getattr(hostile, build)())
        expected = [w.replace("X", WORDY) for w in shlex.split(getattr(plain, build)())]
        assert words == expected, build


def test_a_vlan_that_is_not_an_int_fails_to_build() -> None:
    with pytest.raises(ValueError, match="not a VLAN id"):
        SetPortVlans("p", 1, (), INJECTED, ()).undo_execute()  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not a VLAN id"):
        AddPort("b", "p", tag=True).command()


def test_a_good_backup_still_loads(tmp_path: Path) -> None:
    step = Step("kvm-a", SetPortVlans("up-a", 101, (1, 2), 100, ()), "r")
    _backup(tmp_path, [_step(action_json(step.action))])
    (tmp_path / "hosts").mkdir()
    with pytest.raises(BackupError, match="host kvm-a"):  # validated, then the bundle is read
        Plan.from_backup(tmp_path, CollectOptions())


def test_a_plan_marks_what_it_creates_and_undoes_only_that() -> None:
    from pytest_kvmha.fixtures.apply import mark_steps, plan_id

    steps = mark_steps(
        [
            Step("kvm-a", AddBridge("br1", "netdev"), "r"),
            Step("kvm-a", AddPort("br1", "up"), "r"),
            Step("kvm-a", SetPromisc("up"), "r"),
        ],
        plan_id(Path("/b/edge fw-20261203T141000-ab12")),
    )
    bridge, port, _ = (s.action for s in steps)
    assert isinstance(bridge, AddBridge) and bridge.mark == "edge_fw-20261203T141000-ab12"
    assert "external_ids:kvmha-plan=edge_fw-20261203T141000-ab12" in shlex.split(bridge.command())
    assert "--may-exist" not in bridge.command()  # a namesake made since is not taken over
    undo = bridge.undo_execute()
    assert undo.startswith("m=$(ovs-vsctl --if-exists get bridge br1 external_ids:kvmha-plan)")
    assert undo.endswith(") ovs-vsctl --if-exists del-br br1 ;; esac")
    assert isinstance(port, AddPort) and "get port up" in port.undo_execute()


def test_an_unmarked_or_badly_marked_step_from_a_backup(tmp_path: Path) -> None:
    old = action_json(AddBridge("br1", "netdev"))
    del old["mark"]  # a backup from before marks: nothing proves the bridge is the plan's
    _backup(tmp_path, [_step(old)])
    (tmp_path / "hosts").mkdir()
    with pytest.raises(BackupError, match="host kvm-a"):  # it loads (up to the bundles)
        Plan.from_backup(tmp_path, CollectOptions())
    assert AddBridge("br1", "netdev").undo_execute() == "true"  # so its undo leaves it alone
    bad = action_json(AddBridge("br1", "netdev", "x"))
    bad["mark"] = "x) rm -rf / ;;"
    _backup(tmp_path, [_step(bad)])
    with pytest.raises(BackupError, match="is not a plan id"):
        Plan.from_backup(tmp_path, CollectOptions())


def test_a_step_that_cannot_be_built_is_refused_before_any_runs() -> None:
    from pytest_kvmha.fixtures.apply import refuse_option_like_names

    bad = Step("kvm-a", SetPortVlans("up-a", 5000, (), None, ()), "r")
    assert refuse_option_like_names([bad]) == ["step 1 on kvm-a: not a VLAN id (0-4095): 5000"]
