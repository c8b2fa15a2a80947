"""The live layer cannot skip silently: a missing binary or OVS schema skips a live test on a
developer's machine and FAILS it under CI=true; the lab and the fleet look binaries up alike
(PATH, then sbin)."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest

from pytest_kvmha.testing import requirements
from pytest_kvmha.testing.requirements import find_binary, missing_requirements

LIVE_CONFTEST = Path(__file__).parent / "live" / "conftest.py"
LAB_TEST = "def test_needs_the_lab(lab):\n    raise AssertionError('the lab started')\n"


def _tool(d: Path, name: str) -> Path:
    path = d / name
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_find_binary_falls_back_to_sbin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sbin, bindir = tmp_path / "sbin", tmp_path / "bin"
    sbin.mkdir()
    bindir.mkdir()
    monkeypatch.setattr(requirements, "SBIN_DIRS", (sbin,))
    monkeypatch.setenv("PATH", str(bindir))
    assert find_binary("kvmha-daemon") is None
    daemon = _tool(sbin, "kvmha-daemon")
    assert find_binary("kvmha-daemon") == str(daemon)
    on_path = _tool(bindir, "kvmha-daemon")
    assert find_binary("kvmha-daemon") == str(on_path)  # PATH first


def test_missing_binary_and_schema_are_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(requirements, "SBIN_DIRS", ())
    monkeypatch.setattr(requirements, "OVS_SCHEMA", tmp_path / "vswitch.ovsschema")
    monkeypatch.setenv("PATH", str(tmp_path))
    reasons = missing_requirements(("virsh",))
    assert "binary 'virsh' not found" in reasons
    assert f"{tmp_path / 'vswitch.ovsschema'} not found" in reasons
    assert "binary 'virsh' not found" in missing_requirements(("virsh",), schema=False)


@pytest.mark.parametrize(
    ("ci", "outcome"), [("true", "failed"), ("", "skipped"), ("false", "skipped")]
)
def test_live_lab_fixture_without_a_binary(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ci: str, outcome: str
) -> None:
    """tests/live/conftest.py's lab fixture, with virsh hidden (PATH without it, and virsh is
    in no sbin directory): skipped on a developer's machine, failed under CI=true."""
    if find_binary("virsh") is not None:
        assert not Path("/usr/sbin/virsh").exists() and not Path("/sbin/virsh").exists()
    empty = pytester.path / "empty-path"
    empty.mkdir()
    shutil.copy(LIVE_CONFTEST, pytester.path / "conftest.py")
    pytester.makepyfile(test_live=LAB_TEST)
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setenv("CI", ci)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rs")
    if outcome == "failed":
        result.assert_outcomes(errors=1)
        result.stdout.fnmatch_lines(
            ["*CI must run the live tests: the namespace lab needs:*virsh*"]
        )
    else:
        result.assert_outcomes(skipped=1)
        result.stdout.fnmatch_lines(["*the namespace lab needs:*binary 'virsh' not found*"])
    assert "the lab started" not in result.stdout.str()


@pytest.mark.parametrize(("ci", "outcome"), [("true", "errors"), ("", "skipped")])
def test_fleet_fixture_uses_the_same_lookup(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ci: str, outcome: str
) -> None:
    """The fleet fixture (tests/test_bench_fleet.py) asks the lab's helper: with virsh hidden
    it skips, or fails under CI=true, before any fleet starts."""
    empty = pytester.path / "empty-path"
    empty.mkdir()
    pytester.makepyfile(
        test_fleetreq=(
            "import sys\n"
            f"sys.path.insert(0, {str(Path(__file__).parents[1])!r})\n"
            "from tests.test_bench_fleet import fleet  # noqa: F401\n"
            "def test_needs_the_fleet(fleet):\n"
            "    raise AssertionError('the fleet started')\n"
        )
    )
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setenv("CI", ci)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rs")
    result.assert_outcomes(**{outcome: 1})
    result.stdout.fnmatch_lines(["*the fleet needs:*binary 'virsh' not found*"])
    assert "the fleet started" not in result.stdout.str()


def test_fleet_requirements_are_the_labs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A binary only in sbin (as sshd and ovs-vswitchd are) counts as found for the fleet too."""
    import tests.test_bench_fleet as tbf

    sbin = tmp_path / "sbin"
    sbin.mkdir()
    for b in tbf.FLEET_BINARIES:
        _tool(sbin, b)
    monkeypatch.setattr(requirements, "SBIN_DIRS", (sbin,))
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    assert [r for r in tbf._fleet_requirements() if "binary" in r] == []
    os.remove(sbin / "virsh")
    assert "binary 'virsh' not found" in tbf._fleet_requirements()
