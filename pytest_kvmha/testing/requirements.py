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


#: Where a binary is looked for when PATH misses it: the daemons live in sbin, which a
#: non-login root shell's PATH may leave out (the lab runs them with a full PATH).
SBIN_DIRS: tuple[Path, ...] = (Path("/usr/sbin"), Path("/sbin"))


def find_binary(binary: str) -> str | None:
    """The path of ``binary``: on PATH, else in an sbin directory; None when it is in neither."""
    found = shutil.which(binary)
    if found is not None:
        return found
    for d in SBIN_DIRS:
        path = d / binary
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
    return None


def missing_requirements(
    binaries: tuple[str, ...] = REQUIRED_BINARIES, *, schema: bool = True
) -> list[str]:
    """Return human-readable reasons why a lab cannot run here (empty list: it can)."""
    reasons: list[str] = []
    if os.geteuid() != 0:
        reasons.append("the namespace lab needs root")
    for binary in binaries:
        if find_binary(binary) is None:
            reasons.append(f"binary {binary!r} not found")
    if schema and not OVS_SCHEMA.exists():
        reasons.append(f"{OVS_SCHEMA} not found")
    return reasons


def under_ci() -> bool:
    """Whether this run is CI's (``CI`` set and not false): there the live layer must run."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def require(reasons: list[str], what: str) -> None:
    """Skip a live test whose requirements are missing, on a developer's machine; FAIL it under
    CI, which installs them (scripts/setup-system): a package split or a renamed binary must
    not turn the whole live layer into skips while CI stays green."""
    if not reasons:
        return
    import pytest  # the lab's test-support side only; no runtime module imports this one

    message = f"{what} needs: " + ", ".join(reasons)
    if under_ci():
        pytest.fail(f"CI must run the live tests: {message}", pytrace=False)
    pytest.skip(message)
