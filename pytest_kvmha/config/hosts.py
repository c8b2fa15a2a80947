"""Host specs of an inventory or the command line: what they name and what they may pin."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

# What a libvirt URI may hold (RFC 3986 characters without quotes, spaces, $, `, ;, |, ...).
# The collector passes the URI as an argument, quoted; this keeps odd ones out of reports too.
_VIRSH_URI = re.compile(r"[a-z][a-z0-9+.-]*://[A-Za-z0-9._~:@/?&=%+,\[\]-]*")


def check_virsh_uri(uri: str) -> str:
    """``uri`` if it is a plain libvirt URI (``qemu:///system``, ``qemu+ssh://u@h/system``)."""
    if not isinstance(uri, str) or len(uri) > 512 or not _VIRSH_URI.fullmatch(uri):
        raise ValueError(
            f"not a virsh URI: {uri!r} (expected driver[+transport]://[user@host]/path[?k=v], "
            "without quotes, spaces or shell characters)"
        )
    return uri


def host_name_from_spec(spec: str) -> str:
    """``ssh://root@kvm1:2222`` -> ``kvm1``; ``local://`` -> ``local``; ``replay://d/kvm-a`` -> ``kvm-a``."""
    parts = urlsplit(spec)
    if parts.scheme == "replay":
        path = (parts.netloc + parts.path).rstrip("/")
        return Path(path).name or "replay"
    if parts.scheme == "local" or not parts.scheme:
        return "local"
    return parts.hostname or parts.netloc or parts.scheme
