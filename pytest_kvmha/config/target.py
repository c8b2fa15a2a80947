"""What the collectors are given (a host to read and how), shared by the host collector
(:mod:`pytest_kvmha.collect.host`) and the firewall console collector (:mod:`pytest_kvmha.collect.firewall`),
and how both stop what they started."""

from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class HostTarget:
    """Where and how to collect one host (from an inventory or a ``--kvmha-host`` spec)."""

    name: str
    spec: str
    libvirt_uri: str | None = None  # read libvirt here through libvirt-python, not virsh
    virsh_uri: str | None = None  # pin the URI of the host's virsh (else: the host's own)
    firewalls: tuple[Any, ...] = ()  # fwcollect.FirewallSource of its members (issue 10)


@dataclass(frozen=True)
class CollectOptions:
    ssh_config: str | None = None
    ssh_identity_file: str | None = None
    timeout: float = 300.0
    # Provisioning only: domain XML with its secure attributes (console passwords), which
    # needs a read-write libvirt connection. Audits and recorded bundles never store them.
    secure: bool = False
    # At most this many hosts are collected at once: 2,000 hosts must not open 2,000 SSH
    # connections at once (nor knock over a bastion that sees every one of them).
    max_parallel: int = 32


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
