"""The keeper: the process that holds a lab host's private mount namespace.

Trap: PID 1 on some CI machines does not reap orphans. Each host's keeper is therefore a *child
subreaper* (``prctl(PR_SET_CHILD_SUBREAPER)``, option 36; ``PR_SET_NAME`` is 15) that launches the
host's daemons and reaps every orphan below them (daemonized libvirtd/ovs/sshd, qemu). Without an
active reaper, libvirt waits for its (zombie) qemu capability probe to vanish: ~80 s instead of
~1 s.

Protocol: one JSON line per command on stdin ``{"id", "argv", "env", "out", "err"}``; one JSON
line ``{"id", "rc"}`` on stdout when the command exits. EOF on stdin: keep reaping until SIGTERM.
"""

from __future__ import annotations

import subprocess
import sys
import time

from .errors import LabError
from .processes import comm, ns_inode

KEEPER_COMM = "kvmha-keeper"

KEEPER_SCRIPT = r"""
import ctypes, json, os, sys, threading, time
libc = ctypes.CDLL(None)
libc.prctl(36, 1, 0, 0, 0)
libc.prctl(15, b"kvmha-keeper", 0, 0, 0)
lock = threading.Lock()
pending = {}
out = os.fdopen(1, "w", buffering=1)
def reply(cid, rc):
    out.write(json.dumps({"id": cid, "rc": rc}) + "\n")
def reader():
    for line in sys.stdin:
        if not line.strip():
            continue
        cmd = json.loads(line)
        with lock:
            try:
                fa = [(os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
                      (os.POSIX_SPAWN_OPEN, 1, cmd["out"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644),
                      (os.POSIX_SPAWN_OPEN, 2, cmd["err"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)]
                pid = os.posix_spawnp(cmd["argv"][0], cmd["argv"], cmd["env"], file_actions=fa)
                pending[pid] = cmd["id"]
            except OSError as exc:
                open(cmd["err"], "w").write(str(exc))
                reply(cmd["id"], 127)
threading.Thread(target=reader, daemon=True).start()
while True:
    try:
        pid, status = os.waitpid(-1, 0)
    except ChildProcessError:
        time.sleep(0.05)
        continue
    except InterruptedError:
        continue
    with lock:
        cid = pending.pop(pid, None)
        if cid is not None:
            reply(cid, os.waitstatus_to_exitcode(status))
"""


def start_keeper(netns: str) -> subprocess.Popen[str]:
    """Start a keeper in network namespace ``netns`` and a new private mount namespace. It
    returns at once: record the PID (for teardown), then :func:`wait_entered`."""
    return subprocess.Popen(
        [
            "ip",
            "netns",
            "exec",
            netns,
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "--",
            sys.executable,
            "-c",
            KEEPER_SCRIPT,
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        text=True,
        bufsize=1,
    )


def wait_entered(name: str, keeper: subprocess.Popen[str], timeout: float = 10) -> None:
    """Wait until ``keeper`` runs as the keeper inside its own mount namespace."""
    my_mnt = ns_inode("self", "mnt")
    deadline = time.monotonic() + timeout
    while True:
        if keeper.poll() is not None:
            raise LabError(f"{name}: keeper exited with rc={keeper.returncode}")
        if comm(keeper.pid) == KEEPER_COMM and ns_inode(keeper.pid, "mnt") != my_mnt:
            return
        if time.monotonic() > deadline:
            raise LabError(f"{name}: keeper did not enter its namespaces")
        time.sleep(0.01)
