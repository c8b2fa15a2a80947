"""Names from hosts and inventories: what may be in one, and how one becomes a path component.

Every name (a host, a domain, a bridge, a cluster, a NIC model ...) ends up in a shell comment,
a Markdown table row, a log line or a file name. A name holding a line break ends any of them,
so it is malformed evidence (or a usage error), never a name: one rule for all of them here.
"""

from __future__ import annotations

import hashlib

from pytest_kvmha.remediation import CONTROL

__all__ = ["CONTROL", "firewall_key", "has_control", "host_name_problem"]


def has_control(text: str) -> bool:
    """Whether ``text`` holds a character that can break a line (see :data:`CONTROL`)."""
    return CONTROL.search(text) is not None


def host_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a host directory (``DIR/<host>``), or None if it can.

    A host name becomes a directory name when recording and backing up: it must stay one plain
    path component (no ``/``, no ``..``, not absolute, nothing a terminal or a shell reads as
    control)."""
    if not name:
        return "is empty"
    if name in (".", ".."):
        return f"{name!r} is not a directory name"
    if "/" in name or "\\" in name:
        return f"{name!r} contains a path separator"
    if has_control(name):
        return f"{name!r} contains control characters"
    if name.startswith("-"):
        return f"{name!r} starts with '-' (read as an option by commands)"
    if len(name.encode("utf-8")) > 255:
        return "is longer than 255 bytes"
    return None


def firewall_key(domain: str) -> str:
    """A member's domain name as one safe bundle path component.

    Letters, digits and '-' stay; every other byte becomes ``_xx`` (hex), so the key is
    injective, has no '/', '.' or '..', and nothing a shell or terminal reads specially. A name
    too long for a file name is replaced by its SHA-256 (``~`` cannot come out of the escaping)."""
    out = []
    for byte in domain.encode("utf-8", "surrogateescape"):
        ch = chr(byte)
        out.append(ch if ch.isascii() and (ch.isalnum() or ch == "-") else f"_{byte:02x}")
    key = "".join(out)
    if not key or len(key) > 200:
        return "~" + hashlib.sha256(domain.encode("utf-8", "surrogateescape")).hexdigest()
    return key
