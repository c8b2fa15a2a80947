"""Hosts are left as found: a collection killed past its deadline leaves its directory, and the
next run removes it: this collector's own (marker name, owner, age), never anything else. The
fixed scripts run here under /bin/sh (dash on Debian), as a host runs them."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from pytest_kvmha.collect.script import batch_script, stale_minutes, trace_script

BOUNDARY = "0123456789abcdef01234567"


def _env(tmp: Path, bin_dir: Path) -> dict[str, str]:
    return {"PATH": f"{bin_dir}:/usr/bin:/bin", "TMPDIR": str(tmp), "HOME": str(tmp)}


def _fake_appctl(bin_dir: Path, body: str) -> None:
    bin_dir.mkdir(exist_ok=True)
    path = bin_dir / "ovs-appctl"
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


def _age(path: Path, minutes: float) -> None:
    then = time.time() - minutes * 60
    os.utime(path, (then, then), follow_symlinks=False)


def _ours(tmp: Path) -> list[str]:
    return sorted(p.name for p in tmp.iterdir() if p.name.startswith("kvmha-collect."))


def _trace_run(tmp: Path, bin_dir: Path, stale: float) -> None:
    """One trace collection (sweeping leftovers older than ``stale`` minutes) that succeeds."""
    done = subprocess.run(
        ["/bin/sh", "-c", trace_script(BOUNDARY, stale)],
        env=_env(tmp, bin_dir),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_a_killed_collection_is_swept_by_the_next_run(tmp_path: Path) -> None:
    tmp, bin_dir = tmp_path / "tmp", tmp_path / "bin"
    tmp.mkdir()
    _fake_appctl(bin_dir, "sleep 30")
    proc = subprocess.Popen(
        ["/bin/sh", "-c", trace_script(BOUNDARY, 60.0)],
        env=_env(tmp, bin_dir),
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 20
    while not _ours(tmp) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    os.killpg(proc.pid, signal.SIGKILL)  # past the deadline: no trap runs
    proc.wait()
    (left,) = _ours(tmp)  # the directory a killed run leaves
    _age(tmp / left, stale_minutes(60.0) + 1)
    _fake_appctl(bin_dir, "echo ok")
    _trace_run(tmp, bin_dir, 60.0)
    assert _ours(tmp) == []  # the leftover swept, the run's own removed by its trap


def test_only_this_collectors_own_stale_directories_are_swept(tmp_path: Path) -> None:
    tmp, bin_dir = tmp_path / "tmp", tmp_path / "bin"
    tmp.mkdir()
    _fake_appctl(bin_dir, "echo ok")
    target = tmp_path / "precious"
    target.mkdir()
    (target / "data").write_text("keep")
    made = {
        "kvmha-collect.aaaaaa": "stale",  # removed
        "kvmha-collect.bbbbbb": "fresh",  # a run still going: kept
        "kvmha-collect.toolong1": "stale",  # not the marker's shape: kept
        "kvmha-collectXcccccc": "stale",
        "tmp.dddddd": "stale",
        "other": "stale",
    }
    for name, age in made.items():
        (tmp / name).mkdir()
        (tmp / name / "f").write_text("x")
        _age(tmp / name, 0 if age == "fresh" else stale_minutes(300.0) + 5)
    (tmp / "kvmha-collect.eeeeee").symlink_to(target)  # a link is never followed or removed
    _age(tmp / "kvmha-collect.eeeeee", 600)
    (tmp / "kvmha-collect.ffffff").write_text("a file")
    _age(tmp / "kvmha-collect.ffffff", 600)
    _trace_run(tmp, bin_dir, 300.0)
    left = sorted(p.name for p in tmp.iterdir())
    assert left == sorted(set(made) - {"kvmha-collect.aaaaaa"} | {
        "kvmha-collect.eeeeee", "kvmha-collect.ffffff"
    })  # fmt: skip
    assert (target / "data").read_text() == "keep"


@pytest.mark.parametrize("timeout", [1.0, 60.0, 61.0, 300.0, float("inf")])
def test_stale_means_older_than_any_run(timeout: float) -> None:
    if timeout != float("inf"):  # (no deadline: a day)
        assert stale_minutes(timeout) * 60 > timeout + 5  # the kill grace (-k 5) included
    assert f"-mmin +{stale_minutes(timeout)} " in batch_script(BOUNDARY, timeout=timeout)
