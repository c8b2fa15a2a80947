"""A FortiGate's model, firmware and VDOM mode: the ``#config-version`` header of a backup and
the ``get system status`` answer of a console. Pure.

:func:`split_status` takes the status lines out of a console answer (they are no FortiOS
statements) and leaves blank lines in their place, so the configuration parser's line numbers
stay right; :func:`firmware` reads both sources into :class:`Firmware` facts. The formats and
their documents are in :mod:`pytest_kvmha.vendors.fortigate`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType

from pytest_kvmha.facts.firewall import Firmware
from pytest_kvmha.parse.evidence import ConfigParseError
from pytest_kvmha.vendors import fortigate

# "Key: value" (or "Key:" alone) as "get system status" prints it; keys are words with spaces
# and a few marks ("Log hard disk", "FortiClient application signature package")
_STATUS_ROW = re.compile(r"^(?P<key>[A-Za-z][A-Za-z0-9 ._()/&-]*?)\s*:(?:\s+(?P<value>.*?))?\s*$")
_VERSION_ROW = re.compile(r"^Version:\s+\S+\s+v\d")


def split_status(text: str) -> tuple[Mapping[str, str], str]:
    """(the status lines as key -> value, ``text`` with them blanked). A status block starts at
    a ``Version: <model> v<n>`` line and runs over the ``Key: value`` lines after it; anything
    else is left to the configuration parser (which refuses what it cannot read)."""
    lines = text.split("\n")
    status: dict[str, str] = {}
    i = 0
    while i < len(lines):
        if not _VERSION_ROW.match(lines[i].strip()):
            i += 1
            continue
        while i < len(lines) and (row := _STATUS_ROW.match(lines[i].strip())) is not None:
            if row.group("key").split(" ", 1)[0] in fortigate.CLI_STATEMENTS:
                break  # "config system ha" has no colon, but be sure: a statement is no row
            status.setdefault(row.group("key"), row.group("value") or "")
            lines[i] = ""
            i += 1
    return MappingProxyType(status), "\n".join(lines)


def _header(text: str) -> Firmware | None:
    for number, line in enumerate(text.split("\n"), start=1):
        s = line.strip()
        if not s:
            continue
        if not s.startswith("#config-version="):
            return None  # the header is the first line of a backup, or there is none
        m = fortigate.HEADER.fullmatch(s)
        if m is None:
            raise ConfigParseError(
                number,
                f"'#config-version' header {s[:60]!r} is not <model>-<version>-FW-build<N>-<date>",
            )
        fields = dict(f.partition("=")[::2] for f in m.group("fields").split(":") if f)
        vdom = fields.get("vdom")
        return Firmware(
            "config header",
            m.group("model"),
            m.group("version"),
            int(m.group("build")),
            None if vdom is None else vdom != "0",
        )
    return None


def _status(status: Mapping[str, str]) -> Firmware | None:
    version = status.get("Version")
    if version is None:
        return None
    m = fortigate.STATUS_VERSION.match(version)
    if m is None:
        raise ConfigParseError(
            0, f"'get system status' Version {version[:60]!r} is not '<model> v<n>,build<N>,...'"
        )
    vdom = status.get(fortigate.STATUS_VDOM_KEY)
    return Firmware(
        "get system status",
        m.group("model"),
        m.group("version"),
        int(m.group("build")),
        None if vdom is None else vdom.strip().lower() != fortigate.STATUS_VDOM_OFF,
    )


def firmware(text: str, status: Mapping[str, str]) -> tuple[Firmware, ...]:
    """Every source of the firmware facts found: the header of ``text``, the ``status`` lines."""
    return tuple(f for f in (_header(text), _status(status)) if f is not None)


def vdoms_on(text: str) -> bool:
    """Whether a console's first answer says it must be read in global scope: VDOMs on in its
    status, or a refused command (multi-VDOM mode refuses ``show system ha`` at the top)."""
    if any(word in text for word in fortigate.CLI_REFUSED):
        return True
    status, _ = split_status(text)
    vdom = status.get(fortigate.STATUS_VDOM_KEY)
    return vdom is not None and vdom.strip().lower() != fortigate.STATUS_VDOM_OFF
