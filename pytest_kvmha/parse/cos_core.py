"""cOS Core ``show`` output (property tables) and the HA facts in it. Pure: no I/O.

:func:`parse_cos_show` reads cOS Core's ``show`` property tables (Property/Value columns,
continuation lines) into :class:`CosObject`; :func:`cos_ha_facts` takes the HA facts out.
Malformed text raises :class:`~pytest_kvmha.parse.evidence.ConfigParseError` naming the line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from pytest_kvmha.facts.firewall import CosHaFacts
from pytest_kvmha.parse.evidence import ConfigParseError
from pytest_kvmha.vendors import cos_core


@dataclass(frozen=True, slots=True)
class CosObject:
    """One object shown by cOS Core's ``show``: its type (from the command or its properties),
    its properties in order (``<empty>`` read as ""), and the line its table starts on."""

    type: str | None
    properties: Mapping[str, str]
    line: int


# A property name: letters, digits, '_', '.', and '-' (``PreShared-Key``): a secret row with a
# '-' in its name must be a row to the secret stripper, which shares this rule.
PROPERTY_ROW = re.compile(
    r"^(?P<indent>\s*)(?P<key>[A-Za-z][A-Za-z0-9_.-]*):(?P<sep>\s?)(?P<value>.*)$"
)
TABLE_HEADER = re.compile(r"^\s*Property\s+Value\s*$")
_TABLE_RULE = re.compile(r"^\s*-+\s+-+\s*$")
SHOW_COMMAND = re.compile(r"^\s*(?:\S*>\s*)?show\s+(?P<args>.+?)\s*$")
CLI_PROMPT = re.compile(r"^\s*\S*:/\S*>\s*$")
_CATEGORIES = {"Interface", "Address", "Interfaces"}  # "show Interface EthernetInterface"


def value_column(row: re.Match[str]) -> int:
    """The column a property row's value starts in: a later line indented at least this far
    continues that value (:func:`is_continuation`). The parser and the secret stripper share it."""
    return len(row.group("indent")) + len(row.group("key")) + 1 + max(1, len(row.group("sep")))


def is_continuation(line: str, column: int) -> bool:
    """Whether ``line`` continues the value of a row whose value starts at ``column``."""
    return bool(line.strip()) and len(line) - len(line.lstrip(" ")) >= column


def _cos_type(args: str) -> str | None:
    words = [w for w in args.split() if not w.startswith("-")]
    if words and words[0] in _CATEGORIES:
        words = words[1:]
    return words[0] if words else None


def _infer_type(props: Mapping[str, str]) -> str | None:
    if "ClusterID" in props or any(k in props for k in cos_core.HA_SYNC_PROPERTIES):
        return "HighAvailability"
    if "EthernetDevice" in props or any(k in props for k in cos_core.PCI_PROPERTIES["bus"]):
        return "EthernetInterface"
    return None


def parse_cos_show(text: str) -> tuple[CosObject, ...]:
    """cOS Core ``show`` output -> its objects. Each object is a table::

                 Property  Value
        -----------------  ----------------
                     Name: If3
                       IP: If3_ip
                 Comments: a value that goes on
                           over a continuation line

    A command echo (``Device:/> show HighAvailability``) names the type of the tables after it.
    """
    objects: list[CosObject] = []
    kind: str | None = None
    props: dict[str, str] | None = None
    start = 0
    value_col = 0
    last: str | None = None
    lines = text.split("\n")

    def close() -> None:
        nonlocal props
        if props is not None:
            objects.append(CosObject(kind or _infer_type(props), MappingProxyType(props), start))
        props = None

    i = 0
    while i < len(lines):
        number, line = i + 1, lines[i].rstrip("\r")
        i += 1
        if props is None:
            if not line.strip() or CLI_PROMPT.match(line):
                continue
            if TABLE_HEADER.match(line):
                if i >= len(lines) or not _TABLE_RULE.match(lines[i]):
                    raise ConfigParseError(
                        number + 1, "property table header without its rule line"
                    )
                i += 1
                props, start, last = {}, number, None
                continue
            if m := SHOW_COMMAND.match(line):
                kind = _cos_type(m.group("args"))
                continue
            raise ConfigParseError(
                number, f"unexpected text outside a property table: {line.strip()!r:.60}"
            )
        if not line.strip():
            close()
            continue
        if last is not None and is_continuation(line, value_col):
            props[last] += "\n" + line.strip()
            continue
        row = PROPERTY_ROW.match(line)
        if row is None:
            raise ConfigParseError(number, f"not a 'Property: value' row: {line.strip()!r:.60}")
        key, value = row.group("key"), row.group("value").strip()
        if key in props:
            raise ConfigParseError(number, f"property {key!r} shown twice in one object")
        props[key] = "" if value == "<empty>" else value
        last = key
        value_col = value_column(row)
    close()
    return tuple(objects)


_ROLE_KEYS = cos_core.HA_ROLE_PROPERTIES
_SYNC_KEYS = cos_core.HA_SYNC_PROPERTIES


def _pci(o: CosObject) -> tuple[int, int, int] | None:
    """(bus, slot, port) of an EthernetInterface that shows all three; None: not shown."""
    got: dict[str, int] = {}
    for part, names in cos_core.PCI_PROPERTIES.items():
        value = next((o.properties[k] for k in names if o.properties.get(k)), None)
        if value is None:
            continue
        try:
            got[part] = int(value, 16) if value.lower().startswith("0x") else int(value, 10)
        except ValueError:
            raise ConfigParseError(o.line, f"PCI {part} {value!r:.20} is not a number") from None
    if not got:
        return None
    if len(got) != 3:
        missing = ", ".join(p for p in cos_core.PCI_PROPERTIES if p not in got)
        raise ConfigParseError(
            o.line, f"EthernetInterface shows a PCI address without its {missing}"
        )
    return got["bus"], got["slot"], got["port"]


def cos_ha_facts(objects: tuple[CosObject, ...]) -> CosHaFacts:
    """The HA facts of cOS Core objects: its HighAvailability object and EthernetInterfaces."""
    has = [o for o in objects if o.type == "HighAvailability"]
    if len(has) != 1:
        raise ConfigParseError(0, f"{len(has)} HighAvailability objects shown (expected one)")
    ha = has[0].properties
    cluster_id = None
    if ha.get("ClusterID"):
        if not ha["ClusterID"].isdigit():
            raise ConfigParseError(has[0].line, "ClusterID is not a number")
        cluster_id = int(ha["ClusterID"])
    role = next((ha[k] for k in _ROLE_KEYS if ha.get(k)), None)
    if role is not None:
        role = role.strip().lower()
        if role not in ("master", "slave"):
            raise ConfigParseError(has[0].line, f"HA role {role!r:.30} is neither Master nor Slave")
    sync = next((ha[k] for k in _SYNC_KEYS if ha.get(k)), None)
    enabled = ha.get("Enabled")
    names = []
    pci: dict[str, tuple[int, int, int]] = {}
    mtu: dict[str, int] = {}
    for o in objects:
        if o.type == "EthernetInterface":
            if not o.properties.get("Name"):
                raise ConfigParseError(o.line, "EthernetInterface without a Name")
            names.append(o.properties["Name"])
            if (address := _pci(o)) is not None:
                pci[o.properties["Name"]] = address
            if size := o.properties.get(cos_core.MTU_PROPERTY):  # <empty>: not set
                # 68: the smallest IPv4 MTU (RFC 791); 65535: the largest IPv4 datagram
                if not size.isdigit() or not 68 <= int(size) <= 65535:
                    raise ConfigParseError(o.line, f"MTU {size!r:.20} is not a number 68..65535")
                mtu[o.properties["Name"]] = int(size)
    return CosHaFacts(
        cluster_id=cluster_id,
        role=role,
        sync_interface=sync,
        ethernet=tuple(names),
        enabled=None if enabled is None else enabled.strip().lower() in ("yes", "true", "1"),
        pci=MappingProxyType(pci),
        mtu=MappingProxyType(mtu),
    )
