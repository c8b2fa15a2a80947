"""``kvmha audit``: pytest in-process with the plugin's options, isolated from the directory
it starts in, with the plugin's reports and exit statuses."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from pytest_kvmha.cli import main
from pytest_kvmha.cli.audit import audit_options, pytest_args
from pytest_kvmha.config.options import BY_NAME

ROOT = Path(__file__).parents[2]
EXAMPLE = ROOT / "examples" / "clusters.toml"


@pytest.fixture
def hostile_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project directory whose ini, conftest and tests would each change or break an audit."""
    (tmp_path / "pytest.ini").write_text(
        "[pytest]\ntestpaths = tests\naddopts = -x --kvmha-fail-on=critical\n"
        "kvmha_report = ini-report.json\n"
    )
    (tmp_path / "conftest.py").write_text("raise SystemExit('the project conftest was loaded')\n")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_project.py").write_text("def test_project():\n    assert 0\n")
    monkeypatch.chdir(tmp_path)
    # The worst case: the audit's own directory under the project (TMPDIR inside it).
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def test_audit_of_the_example_exits_1_with_the_report(hostile_cwd: Path) -> None:
    assert main(["audit", "--inventory", str(EXAMPLE), "--report", "a.json"]) == 1
    report = json.loads((hostile_cwd / "a.json").read_text())
    assert report["fail_on"] == "medium"  # the project's addopts did not apply
    failed = {f["nodeid"] for f in report["findings"] if f["status"] == "fail"}
    assert "kvmha/dmz-fw/KVMHA-VIRT-002[Dmz1]" in failed
    assert not any("test_project" in f["nodeid"] for f in report["findings"])
    assert not (hostile_cwd / "ini-report.json").exists()  # nor its kvmha_ keys


def test_audit_options_reach_pytest(hostile_cwd: Path) -> None:
    rc = main(["audit", "--inventory", str(EXAMPLE), "--fail-on", "critical", "--report", "c.json"])
    assert rc == 0  # nothing critical fails in the example
    assert json.loads((hostile_cwd / "c.json").read_text())["fail_on"] == "critical"


def test_hosts_as_arguments_and_pytest_args_after_dashes(hostile_cwd: Path) -> None:
    bundle = ROOT / "examples" / "bundles" / "kvm-b"
    rc = main(["audit", f"replay://{bundle}", "--report", "h.json", "--", "-q", "-k", "PKG"])
    assert rc == 1  # bridge-utils is installed on kvm-b
    report = json.loads((hostile_cwd / "h.json").read_text())
    assert [h["name"] for h in report["hosts"]] == ["kvm-b"]
    assert {f["check"] for f in report["findings"]} == {"KVMHA-PKG-001"}


def test_a_node_id_after_dashes_selects_its_item(hostile_cwd: Path) -> None:
    nodeid = "kvmha/dmz-fw/KVMHA-VIRT-002[Dmz1]"
    rc = main(["audit", "--inventory", str(EXAMPLE), "--report", "n.json", "--", nodeid])
    assert rc == 1
    findings = json.loads((hostile_cwd / "n.json").read_text())["findings"]
    assert [f["nodeid"] for f in findings] == [nodeid]


@pytest.mark.parametrize(
    "argv",
    [
        ["audit"],  # nothing to audit
        ["audit", "--no-such-option"],
        ["audit", "--inventory", str(EXAMPLE), "--fail-on", "nope"],
        ["audit", "--inventory", "missing.toml"],
        ["checks", "--", "-k", "x"],  # pytest arguments only for audit
    ],
)
def test_usage_errors_exit_4(hostile_cwd: Path, argv: list[str]) -> None:
    assert main(argv) == pytest.ExitCode.USAGE_ERROR


def test_every_audit_option_maps_to_the_plugin_option(tmp_path: Path) -> None:
    import argparse

    ns = argparse.Namespace(hosts=["local://"], junitxml="j.xml")
    for o in audit_options():
        setattr(ns, o.name, True if o.action == "store_true" else "V")
    args = pytest_args(ns, tmp_path, ["-x"])
    for o in audit_options():
        assert (o.flag if o.action == "store_true" else f"{o.flag}=V") in args, o.name
    assert "--kvmha-host=local://" in args and args[-1] == "-x"
    assert "--junitxml=j.xml" in args
    assert {"--kvmha-report", "--kvmha-waivers", "--kvmha-baseline"} <= {
        BY_NAME[o.name].flag for o in audit_options()
    }


def test_console_script_and_python_dash_m(hostile_cwd: Path) -> None:
    script = Path(sys.executable).with_name("kvmha")
    for cmd in ([str(script), "--help"], [sys.executable, "-m", "pytest_kvmha", "--help"]):
        out = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=60)
        assert out.returncode == 0, out.stderr
        for command in ("audit", "checks", "discover", "restore"):
            assert command in out.stdout


def test_restore_help_and_a_missing_backup(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["restore", "--help"]) == 0
    assert "backup_dir" in capsys.readouterr().out
    assert main(["restore", str(tmp_path / "nothing")]) == 2
    assert "no such backup directory" in capsys.readouterr().err
    assert main(["restore", str(tmp_path), "--timeout", "0"]) == pytest.ExitCode.USAGE_ERROR
