"""What the collectors are given: a host to read, and how (shared by the host collector,
:mod:`pytest_kvmha.collect.host`, and the firewall console collector,
:mod:`pytest_kvmha.collect.firewall`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class HostTarget:
    """Where and how to collect one host (from an inventory or a ``--kvmha-host`` spec)."""

    name: str
    spec: str
    libvirt_uri: str | None = None  # read libvirt here through libvirt-python, not virsh
    virsh_uri: str | None = None  # pin the URI of the host's virsh (else: the host's own)
    firewalls: tuple[Any, ...] = ()  # config.firewalls.FirewallSource of its members


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
