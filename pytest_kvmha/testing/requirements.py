"""What the namespace lab needs on the machine, and the slots that keep concurrent runs apart."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from .errors import LabError

#: Binaries the lab needs on the machine.
REQUIRED_BINARIES: tuple[str, ...] = (
    "ip",
    "nsenter",
    "unshare",
    "ovsdb-server",
    "ovsdb-tool",
    "ovs-vswitchd",
    "ovs-vsctl",
    "ovs-appctl",
    "libvirtd",
    "virtlogd",
    "virsh",
    "sshd",
    "ssh",
    "ssh-keygen",
    "qemu-system-x86_64",
)

OVS_SCHEMA = Path("/usr/share/openvswitch/vswitch.ovsschema")

SLOT_WIDTH = 16  # host indices per lab slot: slot k uses 10.250.(16k+1 .. 16k+15)


def lab_slot() -> int:
    """Which slot of host indices and prefixes this process's labs use (``KVMHA_LAB_SLOT``,
    default 0), so that several test runs on one machine never share a namespace or address."""
    raw = os.environ.get("KVMHA_LAB_SLOT", "0") or "0"
    if not raw.isdigit() or not 0 <= int(raw) <= 14:
        raise LabError(f"KVMHA_LAB_SLOT must be 0..14, not {raw!r}")
    return int(raw)


def slot_prefix(prefix: str) -> str:
    """``prefix`` made distinct per slot (slot 0 keeps it as it is)."""
    slot = lab_slot()
    return f"{prefix}{slot}" if slot else prefix


def slot_index(n: int) -> int:
    """Host index ``n`` (1..15) within this process's slot."""
    if not 1 <= n < SLOT_WIDTH:
        raise ValueError(f"host index {n} must be 1..{SLOT_WIDTH - 1} within a slot")
    return lab_slot() * SLOT_WIDTH + n


def missing_requirements() -> list[str]:
    """Return human-readable reasons why a lab cannot run here (empty list: it can)."""
    reasons: list[str] = []
    if os.geteuid() != 0:
        reasons.append("the namespace lab needs root")
    for binary in REQUIRED_BINARIES:
        if shutil.which(binary) is None and not Path("/usr/sbin", binary).exists():
            reasons.append(f"binary {binary!r} not found")
    if not OVS_SCHEMA.exists():
        reasons.append(f"{OVS_SCHEMA} not found")
    return reasons
