"""Progress while hosts are collected: collect_all reports each host as it is done (the plugin
shows it in place on a terminal only; a log, such as pytester's or CI's, gets nothing)."""

from __future__ import annotations

import os
import pty
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from pytest_kvmha.bundle.store import EvidenceBundle
from pytest_kvmha.collect.pool import collect_all
from pytest_kvmha.config.target import CollectOptions, HostTarget

EXAMPLES = Path(__file__).parents[2] / "examples"
PROGRESS = "kvmha: collecting hosts"


def test_collect_all_reports_each_host_once_with_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    import pytest_kvmha.collect.pool as collect_pool

    monkeypatch.setattr(collect_pool, "KILL_AFTER", 0)
    release = threading.Event()
    order = ["fast", "down", "slow"]
    gates = {name: threading.Event() for name in order}

    def collect_one(target: HostTarget, options: CollectOptions) -> EvidenceBundle:
        if target.name == "stuck":
            release.wait(30)  # never answers within the timeout
        else:
            gates[target.name].wait(10)  # finish in a known order
        status = "unreachable" if target.name == "down" else "ok"
        return EvidenceBundle(target.name, "local://", "local", "t", status=status)

    calls: list[tuple[int, int, int]] = []

    def progress(done: int, total: int, unreachable: int) -> None:
        calls.append((done, total, unreachable))
        nxt = order[len(calls)] if len(calls) < len(order) else None
        if nxt:
            gates[nxt].set()

    targets = [HostTarget(n, "local://") for n in ("slow", "stuck", "down", "fast")]
    gates["fast"].set()
    try:
        # (3 s: the others finish in a known order well inside it even on a loaded runner)
        bundles = collect_all(targets, CollectOptions(timeout=3), collect_one, progress)
    finally:
        release.set()
    assert [b.host for b in bundles] == ["slow", "stuck", "down", "fast"]
    # fast, down (unreachable), slow, then the stuck host at the timeout (unreachable)
    assert calls == [(1, 4, 0), (2, 4, 1), (3, 4, 1), (4, 4, 2)]


def test_collect_all_without_progress_is_unchanged() -> None:
    def collect_one(target: HostTarget, options: CollectOptions) -> EvidenceBundle:
        return EvidenceBundle(target.name, "local://", "local", "t")

    out = collect_all([HostTarget("a", "local://")], CollectOptions(timeout=1), collect_one)
    assert [b.host for b in out] == ["a"]


def demo(directory: Path) -> None:
    shutil.copytree(EXAMPLES / "bundles", directory / "bundles")
    shutil.copy(EXAMPLES / "clusters.toml", directory / "clusters.toml")


def test_no_progress_in_a_log(pytester: pytest.Pytester) -> None:
    demo(pytester.path)
    result = pytester.runpytest("--kvmha-inventory=clusters.toml")
    assert result.ret == 1
    assert PROGRESS not in result.stdout.str() + result.stderr.str()


def test_progress_on_a_terminal(tmp_path: Path) -> None:
    """A real pseudo-terminal: the progress line is rewritten in place (carriage returns)."""
    demo(tmp_path)
    leader, follower = pty.openpty()
    env = {**os.environ, "TERM": "xterm", "COLUMNS": "120"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "--kvmha-inventory=clusters.toml",
        ],
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=follower,
        env=env,
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert proc.wait(60) == 1
    out = b"".join(chunks).decode("utf-8", "replace")
    assert f"\r{PROGRESS} 0/2, 0 unreachable" in out, out[:2000]
    assert f"\r{PROGRESS} 2/2, 0 unreachable" in out
