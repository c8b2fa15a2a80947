"""Passwords never leave the process: one redaction, applied at every exit.

A host spec may carry a password (``ssh://user:pass@host``, ``paramiko://user:pass@host``).
testinfra needs it to connect, so the collector keeps the real spec; everything that is shown
or stored (terminal lines, JSON/Markdown reports, error messages, recorded bundles, plan
backups) goes through :func:`redact` first.
"""

from __future__ import annotations

import re

__all__ = ["MASK", "redact"]

MASK = "***"
# scheme://user:password@ : the password runs to the last '@' before the host part (a password
# may itself hold an '@'; urlsplit reads it the same way).
_USERINFO = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*):(?P<pw>[^\s/]*)@")


def redact(text: str) -> str:
    """``text`` with the password of every URL in it replaced by ``***``."""
    return _USERINFO.sub(lambda m: f"{m.group('head')}:{MASK}@", text)
