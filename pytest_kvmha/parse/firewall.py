"""Firewall HA configuration sections of a bundle: which vendor, and the facts in them. Pure.

A member's text is FortiOS configuration (:mod:`~pytest_kvmha.parse.fortios`) or cOS Core
``show`` output (:mod:`~pytest_kvmha.parse.cos_core`); its secrets were stripped by the collector
(:mod:`~pytest_kvmha.parse.secrets`) before it was stored. Malformed text raises
:class:`~pytest_kvmha.parse.evidence.ConfigParseError` naming the line;
:func:`parse_firewall_section` turns that into a problem that names the member, so the checks
that need it report ``error``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any, Generic, TypeVar

from pytest_kvmha.config.names import firewall_key
from pytest_kvmha.facts.firewall import COS_CORE, FORTIGATE, CosHaFacts, FgcpFacts, FirewallConfig
from pytest_kvmha.parse import cos_core, fortios, fortios_status
from pytest_kvmha.parse.evidence import ConfigParseError
from pytest_kvmha.parse.fortios_syntax import normalize
from pytest_kvmha.vendors import cos_core as cos_core_vendor
from pytest_kvmha.vendors import fortigate

SECTION_PREFIX = "fwconfig/"

# The fixed, read-only commands a console runs, per vendor (never a name from a host or an
# inventory: the answer is parsed, and names in it are only ever compared, never sent back).
# The HA status command comes first: its answer ends where the configuration's "show" answer
# starts (pytest_kvmha.parse.ha_status.split_console_answer), in the same session.
CONSOLE_COMMANDS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        FORTIGATE: (
            fortigate.HA_STATUS_COMMAND,
            "show system ha",
            "show system interface",
            fortigate.STATUS_COMMAND,
        ),
        COS_CORE: (
            cos_core_vendor.HA_STATUS_COMMAND,
            "show HighAvailability",
            "show Interface EthernetInterface",
        ),
    }
)
# A FortiGate whose first answer says VDOMs are on (or refused the reads) is asked again in
# global scope, where multi-VDOM mode keeps "system ha" (vendors.fortigate.CONFIG_GLOBAL): the
# only vendor with a second, conditional round trip.
CONSOLE_GLOBAL_COMMANDS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        FORTIGATE: (
            fortigate.CONFIG_GLOBAL,
            *CONSOLE_COMMANDS[FORTIGATE],
            fortigate.LEAVE_GLOBAL,
        )
    }
)


def console_needs_global(vendor: str, answer: str) -> bool:
    """Whether ``vendor``'s first console answer must be read again in global scope."""
    return vendor in CONSOLE_GLOBAL_COMMANDS and fortios_status.vdoms_on(answer)


# --- section names ------------------------------------------------------------------------------


def section_name(vendor: str, domain: str) -> str:
    return f"{SECTION_PREFIX}{vendor}.{firewall_key(domain)}"


def split_section_name(name: str, prefix: str = SECTION_PREFIX) -> tuple[str, str] | None:
    """(vendor, key) of a member's section name under ``prefix`` (a firewall configuration by
    default), or None if ``name`` is no such section."""
    if not name.startswith(prefix):
        return None
    vendor, _, key = name[len(prefix) :].partition(".")
    return (vendor, key) if key else None


# --- one member's section -----------------------------------------------------------------------


def looks_like(text: str) -> str | None:
    """Which vendor's format ``text`` is in, from its first meaningful line (None: neither)."""
    for line in text.split("\n"):
        s = line.strip()
        if not s or cos_core.CLI_PROMPT.match(line):
            continue
        first = s.split(None, 1)[0]
        if (
            s.startswith("#config-version")
            # "config" or the CLI's abbreviation of it ("conf sys ha" in bootstrap files)
            or (len(first) >= 2 and "config".startswith(first) and first != s)
            or fortios.CLI_PROMPT.match(line)
        ):
            return FORTIGATE
        if cos_core.TABLE_HEADER.match(line) or cos_core.SHOW_COMMAND.match(line):
            return COS_CORE
        if s.startswith("#"):
            continue
        return None
    return None


def parse_firewall_config(text: str, vendor: str) -> CosHaFacts | FgcpFacts:
    """Parse one firewall's text as ``vendor``'s format (raises ConfigParseError)."""
    text = normalize(text)  # a byte-order mark and CR line endings, as the CLI reads them
    seen = looks_like(text)
    if not text.strip():
        raise ConfigParseError(0, "the configuration text is empty")
    if seen is not None and seen != vendor:
        raise ConfigParseError(
            0, f"the text is {_LABEL[seen]}, but the member's vendor is {vendor}"
        )
    if vendor == FORTIGATE:
        status, rest = fortios_status.split_status(text)
        facts = fortios.fgcp_facts(fortios.parse_fortios(rest))
        return replace(facts, firmware=fortios_status.firmware(text, status))
    if vendor == COS_CORE:
        return cos_core.cos_ha_facts(cos_core.parse_cos_show(text))
    raise ConfigParseError(0, f"unknown vendor {vendor!r:.30}")


_LABEL = {FORTIGATE: "a FortiOS configuration", COS_CORE: "cOS Core show output"}


_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class MemberSection(Generic[_T]):
    """One kind of member section, and its reader: called with (host, name, stdout, stderr, rc)
    of a section of ``host``'s bundle, it gives what ``make`` builds from (domain, vendor, facts,
    problem), or None when the section is not of this kind. ``parse`` reads the text as a
    vendor's format; a problem names the section by ``what`` and says ``refused`` of text that
    ``parse`` refuses."""

    prefix: str
    parse: Callable[[str, str], object]
    what: str
    refused: str
    make: Callable[[str, str, Any, str | None], _T]

    def __call__(self, host: str, name: str, stdout: str, stderr: str, rc: int) -> _T | None:
        split = split_section_name(name, self.prefix)
        if split is None:
            return None
        vendor, key = split
        domain = domain_of_key(key)
        where = f"{host}: {self.what} of {domain}"
        if rc != 0:
            why = stderr.strip().splitlines()
            problem = f"{where} could not be read: {why[-1] if why else f'rc {rc}'}"
            return self.make(domain, vendor, None, problem)
        try:
            facts = self.parse(stdout, vendor)
        except ConfigParseError as exc:
            return self.make(domain, vendor, None, f"{where} {self.refused}: {exc}")
        return self.make(domain, vendor, facts, None)


# A firewall section of a bundle -> its FirewallConfig (None: not such a section).
parse_firewall_section = MemberSection(
    SECTION_PREFIX, parse_firewall_config, "firewall configuration", "is malformed", FirewallConfig
)


def domain_of_key(key: str) -> str:
    """The domain name of a section key (a hashed key stays as it is)."""
    if key.startswith("~"):
        return key
    data = bytearray()
    i = 0
    while i < len(key):
        if key[i] == "_" and re.fullmatch(r"[0-9a-f]{2}", key[i + 1 : i + 3]):
            data.append(int(key[i + 1 : i + 3], 16))
            i += 3
        else:
            data += key[i].encode()
            i += 1
    text = data.decode("utf-8", "replace")
    return text if text.isprintable() else repr(text)
