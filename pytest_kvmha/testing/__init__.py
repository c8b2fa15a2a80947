"""Test support: the namespace lab, simulated KVM + Open vSwitch hosts on one machine.

Opt-in (like pytest's ``pytester``): the plugin never imports it. It needs root, Open vSwitch,
libvirtd, qemu and sshd (:func:`missing_requirements` says what is missing). Modules, by job:
:mod:`.lab` (the :class:`Lab`), :mod:`.host` (one :class:`LabHost`), :mod:`.domains` (firewall
domain XML), :mod:`.requirements` (what the machine needs, lab slots), :mod:`.daemons`,
:mod:`.keeper` and :mod:`.sshd` (booting a host), :mod:`.cleanup` (ending one, and leftovers),
:mod:`.processes` (commands and PIDs), :mod:`.cli` (``python -m pytest_kvmha.testing up|down``).

The names below are imported on first use, so that ``python -m pytest_kvmha.testing.lab`` does
not find its own module imported already by this package.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .domains import LabNic, firewall_domain_xml
    from .errors import LabError
    from .host import LabHost
    from .lab import Lab, cleanup_stale
    from .requirements import lab_slot, missing_requirements, slot_index, slot_prefix

__all__ = [
    "Lab",
    "LabError",
    "LabHost",
    "LabNic",
    "cleanup_stale",
    "firewall_domain_xml",
    "lab_slot",
    "missing_requirements",
    "slot_index",
    "slot_prefix",
]

_DEFINED_IN = {
    "Lab": "lab",
    "LabError": "errors",
    "LabHost": "host",
    "LabNic": "domains",
    "cleanup_stale": "lab",
    "firewall_domain_xml": "domains",
    "lab_slot": "requirements",
    "missing_requirements": "requirements",
    "slot_index": "requirements",
    "slot_prefix": "requirements",
}


def __getattr__(name: str) -> Any:
    module = _DEFINED_IN.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
