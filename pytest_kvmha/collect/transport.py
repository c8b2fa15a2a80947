"""How a command reaches a host: over testinfra (ssh, local and the other backends), retried
while the SSH handshake is refused, and stopped at its deadline, on our side and on the host's."""

from __future__ import annotations

import math
import os
import secrets
import shlex
import signal
import subprocess
import time
from typing import Any

import testinfra

from pytest_kvmha.bundle.store import EvidenceBundle
from pytest_kvmha.collect.framing import host_text
from pytest_kvmha.config.redact import redact
from pytest_kvmha.config.target import CollectOptions

UNREACHABLE_RC = 255  # what ssh returns when it cannot connect


def testinfra_host(spec: str, options: CollectOptions) -> Any:
    # testinfra passes this as ssh ConnectTimeout; the whole collection has options.timeout
    kwargs: dict[str, Any] = {"timeout": int(min(options.timeout, 30))}
    if options.ssh_config:
        kwargs["ssh_config"] = options.ssh_config
    if options.ssh_identity_file:
        kwargs["ssh_identity_file"] = options.ssh_identity_file
    return testinfra.get_host(spec, **kwargs)


def run_retrying(
    host: Any, command: str, bundle: EvidenceBundle, deadline: float
) -> tuple[Any, str | None]:
    """``command`` on ``host`` by :func:`run_with_deadline`, tried again with backoff while the
    SSH handshake is refused (then nothing ran on the host); bytes and retries are counted in
    ``bundle``. Returns the last result and its refusal reason (None: it was not refused)."""
    attempt = 0
    while True:
        result = run_with_deadline(host, command, max(0.1, deadline - time.monotonic()))
        bundle.bytes_sent += len(command.encode("utf-8", "surrogateescape"))
        bundle.bytes_received += len(result.stdout_bytes) + len(result.stderr_bytes)
        refused = handshake_refused(result.rc, result.stdout_bytes, result.stderr_bytes)
        delay = backoff(attempt)
        if refused is None or attempt >= MAX_RETRIES or time.monotonic() + delay >= deadline:
            return result, refused
        # Refused before login (sshd MaxStartups, a busy bastion): nothing ran on the host, so
        # trying again is safe; the bundle keeps each refusal and the wait before the next try.
        bundle.retries.append({"reason": redact(refused), "delay": round(delay, 3)})
        attempt += 1
        time.sleep(delay)


# ssh's words for a connection dropped before authentication: sshd over its MaxStartups, a
# bastion too busy to take another, a daemon restarting. Nothing ran on the host: retry.
_HANDSHAKE = (
    "connection refused",
    "connection reset by peer",
    "kex_exchange_identification",
    "ssh_exchange_identification",
    "connection closed by remote host",
)
# ...but never an answer that another try cannot change (and that must not look like a flood).
_FINAL = (
    "permission denied",
    "host key verification failed",
    "remote host identification has changed",
    "too many authentication failures",
    "could not resolve hostname",
)
MAX_RETRIES = 5
BACKOFF_BASE = 0.25  # seconds before the first retry; doubled each time, plus jitter
BACKOFF_CAP = 8.0


def handshake_refused(rc: int, stdout: bytes, stderr: bytes) -> str | None:
    """ssh's last words if the connection was refused or reset during the handshake (exit 255,
    nothing on stdout, a handshake message); None for anything else (authentication failures
    and host key mismatches included: those are final)."""
    if rc != UNREACHABLE_RC or stdout.strip():
        return None
    text = host_text(stderr)
    low = text.lower()
    if any(word in low for word in _FINAL) or not any(word in low for word in _HANDSHAKE):
        return None
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:500] if lines else "connection refused"


def backoff(attempt: int) -> float:
    """Exponential backoff with full jitter on top: retries of many hosts refused at once by
    one sshd must not arrive at once again."""
    base = min(BACKOFF_CAP, BACKOFF_BASE * (2**attempt))
    return base + secrets.SystemRandom().uniform(0, base)


# After the deadline the host's work must stop too, not only our wait for it: the script runs
# under the host's `timeout` (coreutils/busybox), which signals the script's whole process group
# (virsh, ovs-vsctl ...) and KILLs it KILL_AFTER seconds later. Hosts without `timeout` still get
# the batch; killing our ssh client then ends it at its next write (SIGPIPE).
KILL_AFTER = 5
_WRAPPER = (
    "s=$1; shift; if timeout -k {k} 1 true >/dev/null 2>&1; "
    'then exec timeout -k {k} {t} sh -c "$s" kvmha "$@"; else exec sh -c "$s" kvmha "$@"; fi'
)


def remote_command(script: str, timeout: float, *args: str) -> str:
    """The command line a host runs: ``script`` (with ``args`` as $1...) under ``timeout``
    when the host has one."""
    quoted = "".join(" " + shlex.quote(a) for a in args)
    seconds = max(1, math.ceil(timeout)) if math.isfinite(timeout) else 0
    if seconds == 0:
        return "sh -c " + shlex.quote(script) + (" kvmha" + quoted if args else "")
    wrapper = _WRAPPER.format(k=KILL_AFTER, t=seconds)
    return f"sh -c {shlex.quote(wrapper)} kvmha-collect {shlex.quote(script)}{quoted}"


class CollectTimeout(Exception):
    """The host did not finish within the deadline; our side of the connection was killed."""


def run_with_deadline(host: Any, command: str, timeout: float) -> Any:
    """``host.run(command)``, but stopped at ``timeout``: for the ssh and local backends the
    command runs as our own subprocess (in its own session) so that the ssh client and all it
    started can be killed; other backends run through testinfra and rely on the host's
    `timeout` (see remote_command)."""
    backend: Any = getattr(host, "backend", None)
    name = getattr(backend, "NAME", None)
    if name == "ssh" and hasattr(backend, "_build_ssh_command"):
        cmd, args = backend._build_ssh_command(backend.get_command(command))
        line = backend.quote(" ".join(cmd), *args)
    elif name == "local":
        line = backend.get_command(command)
    else:
        return host.run(command)
    proc = subprocess.Popen(
        ["/bin/sh", "-c", line],  # testinfra builds a shell command line (quoted by shlex)
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout if math.isfinite(timeout) else None)
    except subprocess.TimeoutExpired:
        kill_session(proc)
        raise CollectTimeout(
            f"no answer within {timeout:g} s: collection stopped (our command and connection "
            "killed; the host's `timeout` ends the commands still running there)"
        ) from None
    return backend.result(proc.returncode, backend.encode(line), stdout, stderr)


def failure_reason(exc: Exception) -> str:
    """A one-line reason. testinfra raises RuntimeError(CommandResult) on ssh exit 255, whose
    repr carries the whole batch script: keep only ssh's own last words."""
    result = exc.args[0] if exc.args else None
    stderr = getattr(result, "stderr", None)
    if isinstance(stderr, str):
        lines = [line.strip() for line in stderr.strip().splitlines() if line.strip()]
        rc = getattr(result, "rc", "?")
        return f"{lines[-1] if lines else 'no output'} (exit status {rc})"
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:500]


def kill_session(proc: subprocess.Popen[bytes]) -> None:
    """TERM, then KILL, the process group we started (the shell, ssh/sshpass, local children)."""
    for sig, wait in ((signal.SIGTERM, 2.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.communicate(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue
