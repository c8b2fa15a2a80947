"""The HA status sections of a bundle: one console answer split in two, and the facts. Pure.

A console runs the vendor's status command first and its ``show`` commands after it, in one
session (:data:`pytest_kvmha.parse.firewall.CONSOLE_COMMANDS`). :func:`split_console_answer`
cuts the answer where the configuration starts; the collector stores the status part as
``fwstatus/<vendor>.<key>`` next to ``fwconfig/<vendor>.<key>``. Status text is parsed by
:mod:`~pytest_kvmha.parse.fortios_hastatus` or :mod:`~pytest_kvmha.parse.cos_status`; what they do
not understand becomes a problem that names the member, so the check reports ``error``.
"""

from __future__ import annotations

import re

from pytest_kvmha.config.names import firewall_key
from pytest_kvmha.facts.firewall import COS_CORE, FORTIGATE
from pytest_kvmha.facts.ha_status import HaStatus, HaStatusRead
from pytest_kvmha.parse.cos_core import SHOW_COMMAND, TABLE_HEADER
from pytest_kvmha.parse.cos_status import parse_cos_status
from pytest_kvmha.parse.evidence import ConfigParseError
from pytest_kvmha.parse.firewall import MemberSection
from pytest_kvmha.parse.fortios_hastatus import parse_fortios_status
from pytest_kvmha.parse.fortios_syntax import normalize

STATUS_PREFIX = "fwstatus/"

# Where the configuration part of a console answer starts: FortiOS "show" prints "config <path>"
# (a backup starts "#config-version"), a console may echo "FGT # show ..." or "show ..." first;
# cOS Core "show" prints a "Property  Value" table, or the echo "Device:/> show ...".
_FORTI_START = re.compile(
    r"^(?:config\s+(?!global\b)\S|#config-version|\s*(?:\S+(?:\s+\([^)]*\))?\s*[#$]\s*)?show\s)"
)


def status_section_name(vendor: str, domain: str) -> str:
    return f"{STATUS_PREFIX}{vendor}.{firewall_key(domain)}"


def _config_starts(vendor: str, line: str) -> bool:
    if vendor == COS_CORE:
        return bool(SHOW_COMMAND.match(line) or TABLE_HEADER.match(line))
    return bool(_FORTI_START.match(line))


def split_console_answer(vendor: str, text: str) -> tuple[str, str]:
    """(status part, configuration part) of one console answer. Without a line where the
    configuration starts, both parts are the whole answer: a refusal (multi-VDOM mode) or a
    failure is then each part's error, named by each parser."""
    text = normalize(text)
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if _config_starts(vendor, line):
            return "\n".join(lines[:i]) + ("\n" if i else ""), "\n".join(lines[i:])
    return text, text


def parse_status_text(text: str, vendor: str) -> HaStatus:
    """One member's status text as ``vendor``'s format (raises ConfigParseError)."""
    if not text.strip():
        raise ConfigParseError(0, "no answer to the HA status command")
    if vendor == FORTIGATE:
        return parse_fortios_status(text)
    if vendor == COS_CORE:
        return parse_cos_status(text)
    raise ConfigParseError(0, f"unknown vendor {vendor!r:.30}")


# An HA status section of a bundle -> its HaStatusRead (None: not such a section).
parse_ha_status_section = MemberSection(
    STATUS_PREFIX, parse_status_text, "HA status", "is not understood", HaStatusRead
)
