"""cOS Core ``ha`` command output and the HA run-time facts in it. Pure: no I/O.

The lines, as the documents show them (see :mod:`pytest_kvmha.vendors.cos_core`)::

    Device:/> ha
    This device is an HA MASTER
    This device is currently ACTIVE (will forward traffic)
    HA cluster peer is ALIVE
    HA object sync: 100%

or ``This device is a standalone system (HA not configured)``. Any other line, a line shown
twice, or a cluster node without its role, state and peer line raises
:class:`~pytest_kvmha.parse.evidence.ConfigParseError` naming the line.
"""

from __future__ import annotations

import re

from pytest_kvmha.facts.ha_status import CosStatus
from pytest_kvmha.parse.cos_core import CLI_PROMPT
from pytest_kvmha.parse.evidence import ConfigParseError
from pytest_kvmha.vendors import cos_core

_ECHO = re.compile(r"^\s*\S*:/\S*>\s*" + re.escape(cos_core.HA_STATUS_COMMAND) + r"\s*$")
_LINES = {
    "standalone": re.compile(r"^This device is a standalone system\b.*$", re.I),
    "role": re.compile(r"^This device is an? HA (?P<v>MASTER|SLAVE)$", re.I),
    "state": re.compile(r"^This device is currently (?P<v>ACTIVE|INACTIVE)(?:\s*\(.*\))?$", re.I),
    "peer": re.compile(r"^HA cluster peer is (?P<v>.+?)$", re.I),
    "sync": re.compile(r"^HA object sync:\s*(?P<v>\d{1,3})\s*%$", re.I),
}


def parse_cos_status(text: str) -> CosStatus:
    """``ha`` output -> what this node reports (raises ConfigParseError)."""
    got: dict[str, str] = {}
    for number, raw in enumerate(text.replace("\r\n", "\n").split("\n"), start=1):
        s = " ".join(raw.split())
        if not s or CLI_PROMPT.match(raw) or _ECHO.match(raw):
            continue
        for name, pattern in _LINES.items():
            if m := pattern.match(s):
                if name in got:
                    raise ConfigParseError(number, f"the {name} line is shown twice")
                got[name] = m.groupdict().get("v") or s
                break
        else:
            raise ConfigParseError(number, f"not a line of the 'ha' command: {s!r:.70}")
    if "standalone" in got:
        if len(got) > 1:
            raise ConfigParseError(0, "a standalone system that also shows HA state lines")
        return CosStatus(ha_enabled=False, role=None, active=None, peer_alive=None)
    missing = [name for name in ("role", "state", "peer") if name not in got]
    if missing:
        raise ConfigParseError(
            0, "no " + ", ".join(missing) + " line: not the output of the cOS Core 'ha' command"
        )
    peer = got["peer"].upper()
    if peer == cos_core.HA_PEER_ALIVE:
        alive = True
    elif peer in cos_core.HA_PEER_NOT_ALIVE:
        alive = False
    else:
        raise ConfigParseError(0, f"peer state {got['peer']!r:.30} is not understood")
    sync = int(got["sync"]) if "sync" in got else None
    if sync is not None and sync > 100:
        raise ConfigParseError(0, f"HA object sync {sync}% is over 100%")
    return CosStatus(
        ha_enabled=True,
        role=got["role"].lower(),
        active=got["state"].upper() == "ACTIVE",
        peer_alive=alive,
        object_sync=sync,
    )
