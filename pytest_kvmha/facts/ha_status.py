"""Frozen facts about a firewall's own view of its HA cluster at run time.

Read over the member's console (FortiOS ``get system ha status``, cOS Core ``ha``) in the same
session as its configuration, parsed by :mod:`pytest_kvmha.parse.ha_status`; read by
``checks/ha_status.py``. The configuration says what the cluster should be; this says whether it
formed: who sees whom, who is primary, whether the configuration is in sync. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


@dataclass(frozen=True, slots=True)
class FgcpUnit:
    """One FortiGate as ``get system ha status`` lists it."""

    serial: str
    role: str  # "primary" | "secondary" (6.x "Master"/"Slave" read as these)
    hostname: str | None = None  # the cluster-index list names it; the operating list does not


@dataclass(frozen=True, slots=True)
class FgcpStatus:
    """``get system ha status`` of one FortiGate: the cluster as this unit sees it."""

    # "OK", or what follows "HA Health Status:" ("ERROR <serial> is lost @ ..."); None: no such
    # line
    health: str | None
    mode: str  # as shown: "HA A-P", "HA A-A", "a-p", "standalone"
    group_id: int | None
    # the units this one knows: the operating list under "vcluster 1" (this unit first), else
    # the cluster-index list
    units: tuple[FgcpUnit, ...]
    this_serial: str | None  # the unit logged into (the first under "vcluster 1"); None: no list
    this_state: str | None  # "hello" | "work" | "standby" ("vcluster 1: <state> <address>")
    # serial -> the word of its "Configuration Status" line ("in-sync", ...); empty: not shown
    config_status: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def standalone(self) -> bool:
        return "standalone" in self.mode.lower()

    @property
    def primaries(self) -> tuple[str, ...]:
        return tuple(u.serial for u in self.units if u.role == "primary")


@dataclass(frozen=True, slots=True)
class CosStatus:
    """The ``ha`` command of one cOS Core firewall: its role, its state, its peer."""

    ha_enabled: bool  # False: "This device is a standalone system (HA not configured)"
    role: str | None  # "master" | "slave" (None when standalone)
    active: bool | None  # "currently ACTIVE" / "INACTIVE" (None when standalone)
    peer_alive: bool | None  # "HA cluster peer is ALIVE" (None when standalone)
    object_sync: int | None = None  # "HA object sync: N%"; None: not shown (older builds)


HaStatus = FgcpStatus | CosStatus


@dataclass(frozen=True, slots=True)
class HaStatusRead:
    """One member's HA status as collected: the parsed status, or why there is none."""

    domain: str
    vendor: str
    status: HaStatus | None
    problem: str | None  # unreadable or not understood (names the member and the line)
