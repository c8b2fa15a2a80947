"""Running commands and ending processes by PID, read from ``/proc``.

Shared by the lab and the fleet benchmark (``scripts/bench_fleet.py``): both start daemons in
network namespaces and must end exactly those again, never anything found by name.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from .errors import LabError

# A lab audit run as a child pytest: this interpreter, quiet, no cache directory left behind.
PYTEST = (sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q")


def run(
    argv: Sequence[str],
    *,
    check: bool = True,
    input: str | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` (no shell), capturing text output; raise :class:`LabError` if ``check`` and
    it fails."""
    proc = subprocess.run(
        list(argv),
        check=False,
        input=input,
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        stdin=None if input is not None else subprocess.DEVNULL,
    )
    if check and proc.returncode != 0:
        raise LabError(
            f"command {list(argv)!r} failed with rc={proc.returncode}: "
            f"{(proc.stderr or proc.stdout).strip()}"
        )
    return proc


def clean_env() -> dict[str, str]:
    """This process's environment without what would point lab commands at another switch,
    libvirt or ssh agent."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OVS_", "LIBVIRT_", "VIRSH_", "SSH_AUTH"))
    }
    env["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    env["HOME"] = "/root"
    env["LC_ALL"] = "C"
    return env


def comm(pid: int) -> str | None:
    """``/proc/PID/comm`` (None: no such process)."""
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return None


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie."""
    return Path(f"/proc/{pid}").exists() and not _is_zombie(pid)


def _ppid(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


def ns_inode(pid: int | str, kind: str) -> int | None:
    """Inode of the ``kind`` namespace (``net``, ``mnt``) of ``pid`` (or ``"self"``)."""
    try:
        return os.stat(f"/proc/{pid}/ns/{kind}").st_ino
    except OSError:
        return None


def pids() -> Iterator[int]:
    """Every PID in ``/proc``."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            yield int(entry)


def pids_naming(needle: str, expected_comm: str) -> list[int]:
    """PIDs of processes named ``expected_comm`` whose command line contains ``needle``."""
    found = []
    raw = needle.encode()
    for pid in pids():
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if raw in cmdline and comm(pid) == expected_comm:
            found.append(pid)
    return found


def reap(pid: int) -> None:
    """Reap ``pid`` if it is a zombie child of this process."""
    if _ppid(pid) == os.getpid():
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass


def wait_for(condition: Callable[[], bool], timeout: float, interval: float = 0.02) -> bool:
    """Poll ``condition`` until it holds (True) or ``timeout`` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


def wait_pidfile(pidfile: Path, expected_comm: str, timeout: float) -> int | None:
    """The PID in ``pidfile`` once a process of that PID with ``expected_comm`` runs (None:
    not within ``timeout`` seconds)."""
    found: list[int] = []

    def started() -> bool:
        try:
            pid = int(pidfile.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return False
        if comm(pid) != expected_comm:
            return False
        found.append(pid)
        return True

    return found[0] if wait_for(started, timeout) else None


def _wait_gone(targets: list[int], timeout: float) -> None:
    """Reap and wait until none of ``targets`` is alive, or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pid in targets:
            reap(pid)
        if not any(alive(pid) for pid in targets):
            return
        time.sleep(0.05)


def kill_and_wait(targets: dict[int, str | None], timeout: float = 5.0) -> list[str]:
    """SIGTERM each pid whose comm still matches (None: any), wait, then SIGKILL; reap.
    Returns the processes that survived."""
    problems: list[str] = []
    signalled: list[int] = []
    for pid, expected in targets.items():
        actual = comm(pid)
        if actual is None:
            continue
        if expected is not None and actual != expected:
            continue  # PID reused by something else: not ours
        signalled.append(pid)
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    _wait_gone(signalled, timeout)
    for pid in signalled:
        if alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    _wait_gone(signalled, 3)
    for pid in signalled:
        if alive(pid):
            problems.append(f"process {pid} ({comm(pid)}) survived SIGKILL")
    return problems
