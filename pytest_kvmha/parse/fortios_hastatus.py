"""FortiOS ``get system ha status`` output and the FGCP run-time facts in it. Pure: no I/O.

The layout (FortiOS 6.0 CLI Reference "system ha status", 6.0 Handbook "CLI HA status", the
6.2-6.4 FortiGate-6000/7000 Handbooks "Confirming that the ... HA cluster is synchronized"; the
vendor facts are in :mod:`pytest_kvmha.vendors.fortigate`)::

    HA Health Status: OK
    Mode: HA A-P
    Group: 10
    ...
    Configuration Status:
        <serial>(updated 2 seconds ago): in-sync
    ...
    Primary     : <hostname>, <serial>, HA cluster index = 0      (6.x: "Master")
    Secondary   : <hostname>, <serial>, HA cluster index = 1      (6.x: "Slave")
    number of vcluster: 1
    vcluster 1: work 169.254.0.2
    Primary: <serial>, HA operating index = 0                     (6.x: "operating cluster index")
    Secondary: <serial>, HA operating index = 1

Top-level lines are ``Key: value`` (or a heading ``Key:`` whose body is indented, or a
``<date> ...`` line of "Primary selected using:"); anything else, a missing ``Mode:`` line, or
a cluster without its unit lists raises :class:`~pytest_kvmha.parse.evidence.ConfigParseError`
naming the line: output this parser does not understand is an error, never a pass.
"""

from __future__ import annotations

import re
from types import MappingProxyType

from pytest_kvmha.facts.ha_status import FgcpStatus, FgcpUnit
from pytest_kvmha.parse.evidence import ConfigParseError
from pytest_kvmha.parse.fortios_syntax import CLI_PROMPT, normalize
from pytest_kvmha.vendors import fortigate

_KEY = re.compile(r"^(?P<key>[A-Za-z][^:]*?)\s*:\s*(?P<value>.*?)\s*$")
_LOG = re.compile(r"^<\d{4}/\d{2}/\d{2} [0-9:]+>")  # a "... selected using:" entry
_UNIT = re.compile(r"^(?P<role>master|slave|primary|secondary)\s*:\s*(?P<rest>.*?)\s*$", re.I)
_SERIAL = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{3,31}")
_CLUSTER_INDEX = re.compile(r"HA cluster index\s*=\s*\d+", re.I)
_OPERATING_INDEX = re.compile(r"(?:HA operating index|operating cluster index)\s*=\s*\d+", re.I)
_VCLUSTER = re.compile(r"^vcluster\s+(?P<n>\d+)\s*:\s*(?P<state>\S+)(?:\s+(?P<addr>\S+))?\s*$")
_SYNC = re.compile(r"^(?P<serial>[A-Za-z0-9-]+)\s*\(updated [^)]*\)\s*:\s*(?P<word>\S+)\s*$")
_CHKSUM = re.compile(r"^[A-Za-z0-9-]+\s*chksum dump:")


def _unit(line: int, role: str, rest: str, index: re.Pattern[str]) -> FgcpUnit:
    parts = [p.strip() for p in rest.split(",")]
    if len(parts) < 2 or not index.fullmatch(parts[-1]):
        raise ConfigParseError(line, f"unit line not understood: {role}: {rest!r:.70}")
    serial, hostname = parts[-2], ",".join(parts[:-2]).strip() or None
    if not _SERIAL.fullmatch(serial):
        raise ConfigParseError(line, f"{serial!r:.40} is not a serial number")
    return FgcpUnit(serial, fortigate.HA_ROLES[role.lower()], hostname)


def parse_fortios_status(text: str) -> FgcpStatus:
    """``get system ha status`` output -> what this unit reports (raises ConfigParseError)."""
    health: str | None = None
    mode: str | None = None
    group: int | None = None
    by_index: list[FgcpUnit] = []
    operating: list[FgcpUnit] = []
    sync: dict[str, str] = {}
    vcluster: int | None = None  # the "vcluster N:" block the lines are in
    state: str | None = None
    in_sync_block = False
    seen: set[str] = set()
    for number, raw in enumerate(normalize(text).split("\n"), start=1):
        line = raw.rstrip()
        s = line.strip()
        if not s or CLI_PROMPT.match(line):
            continue  # a blank line, a prompt, or the echo of the command
        if fortigate.CLI_PAGER in s:
            raise ConfigParseError(
                number,
                f"the console paged its output ({fortigate.CLI_PAGER!r}): set the console output "
                "to standard (config system console / set output standard)",
            )
        if s.startswith(fortigate.CLI_REFUSED):
            raise ConfigParseError(number, f"the FortiGate refused the command ({s!r:.70})")
        if in_sync_block:
            if m := _SYNC.match(s):
                sync[m.group("serial")] = m.group("word").lower()
                continue
            if _CHKSUM.match(s):
                continue
            in_sync_block = False
        if line[0].isspace() or _LOG.match(s):
            continue  # the body of a heading ("System Usage stats:", "HBDEV stats:", ...)
        if m := _UNIT.match(s):
            if vcluster is None:
                by_index.append(_unit(number, m.group("role"), m.group("rest"), _CLUSTER_INDEX))
            elif vcluster == 1:
                operating.append(_unit(number, m.group("role"), m.group("rest"), _OPERATING_INDEX))
            continue
        if m := _VCLUSTER.match(s):
            vcluster = int(m.group("n"))
            if vcluster == 1:
                if m.group("state").lower() not in fortigate.HA_STATES:
                    raise ConfigParseError(number, f"unknown HA state {m.group('state')!r:.30}")
                state = m.group("state").lower()
            continue
        m = _KEY.match(s)
        if m is None:
            raise ConfigParseError(number, f"not a 'Key: value' line: {s!r:.70}")
        key, value = m.group("key"), m.group("value")
        if key in ("HA Health Status", "Mode", "Group", "Group ID"):
            if key in seen:
                raise ConfigParseError(number, f"{key!r} shown twice")
            seen.add(key)
        if key == "HA Health Status":
            health = value
        elif key == "Mode":
            mode = value
        elif key in ("Group", "Group ID"):
            if not value.isdigit():
                raise ConfigParseError(number, f"group id {value!r:.20} is not a number")
            group = int(value)
        elif key == "Configuration Status":
            in_sync_block = True
        # any other "Key: value" line (Model, Debug, Cluster Uptime, ses_pickup, override,
        # number of vcluster, ...) says nothing about who sees whom
    if mode is None:
        raise ConfigParseError(0, "no 'Mode:' line: not the output of 'get system ha status'")
    names = {u.serial: u.hostname for u in by_index}
    units = [FgcpUnit(u.serial, u.role, names.get(u.serial)) for u in operating] or by_index
    if "standalone" not in mode.lower():
        if not units:
            raise ConfigParseError(0, "a cluster mode but no Primary/Secondary unit lines")
        if state is None:
            raise ConfigParseError(0, "no 'vcluster 1: <state> <address>' line")
    serials = [u.serial for u in units]
    if len(set(serials)) != len(serials):
        raise ConfigParseError(0, "a serial number is listed twice in one unit list")
    return FgcpStatus(
        health=health,
        mode=mode,
        group_id=group,
        units=tuple(units),
        this_serial=operating[0].serial if operating else None,
        this_state=state,
        config_status=MappingProxyType(sync),
    )
