"""Where a firewall member's own HA configuration is read from: a saved file or a console."""

from __future__ import annotations

import re
from dataclasses import dataclass

from pytest_kvmha.config.redact import redact


@dataclass(frozen=True, slots=True)
class FirewallSource:
    """Where one member's configuration comes from (exactly one of ``config``, ``console``)."""

    domain: str
    vendor: str  # fortigate | cos-core
    config: str | None = None  # absolute path of a saved configuration
    console: str | None = None  # ssh://user@addr[:port]


_CONSOLE = re.compile(
    r"ssh://(?P<user>[A-Za-z0-9_][A-Za-z0-9._-]{0,63})@"
    r"(?P<addr>[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})|\[[0-9A-Fa-f:.]{2,45}\])"
    r"(?::(?P<port>[0-9]{1,5}))?/?"
)


def check_console(url: str) -> tuple[str, str, int | None]:
    """(user, address, port) of a console URL ``ssh://user@addr[:port]``; ValueError if it is
    anything else (a password, a path, options, shell characters)."""
    m = _CONSOLE.fullmatch(url) if isinstance(url, str) else None
    if m is None:
        if isinstance(url, str) and re.match(r"ssh://[^@/]*:[^@/]*@", url):
            raise ValueError(
                "no password in a console URL: the audit logs in with a key (--kvmha-ssh-identity-file)"
            )
        raise ValueError(
            f"not a console URL: {redact(str(url))!r} (expected ssh://user@addr[:port])"
        )
    port = int(m.group("port")) if m.group("port") else None
    if port is not None and not 1 <= port <= 65535:
        raise ValueError(f"port {port} is out of range (1..65535)")
    return m.group("user"), m.group("addr").strip("[]"), port
