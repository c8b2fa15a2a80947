"""FortiOS configuration text (a backup, or ``show`` output) and the FGCP facts in it. Pure.

:func:`parse_fortios` reads FortiOS's nested ``config``/``edit``/``set``/``unset``/``next``/
``end`` blocks into a tree of :class:`FortiBlock`, as the CLI reads them (abbreviations, ``end``
closing an ``edit``, any line ending; the tokenizer is :mod:`~pytest_kvmha.parse.fortios_syntax`);
:func:`fgcp_facts` takes the FGCP facts out. Malformed text raises
:class:`~pytest_kvmha.parse.evidence.ConfigParseError` naming the line.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from pytest_kvmha.facts.firewall import FgcpFacts, HbDev
from pytest_kvmha.parse.evidence import ConfigParseError
from pytest_kvmha.parse.fortios_syntax import (
    CLI_PROMPT,
    normalize,
    resolve,
    resolve_path,
    statements,
)
from pytest_kvmha.parse.fortios_syntax import _Statement as _Statement
from pytest_kvmha.vendors import fortigate

__all__ = [
    "CLI_PROMPT",
    "statements",
    "FortiBlock",
    "Setting",
    "fgcp_facts",
    "find_block",
    "parse_fortios",
]


@dataclass(frozen=True, slots=True)
class Setting:
    values: tuple[str, ...]
    line: int


@dataclass(frozen=True, slots=True)
class FortiBlock:
    """A ``config <path>`` block or one ``edit <name>`` entry of a table.

    ``blocks``: nested ``config`` blocks by path ("system ha"); ``entries``: the ``edit`` entries
    of a table block, in text order."""

    name: str
    line: int
    settings: Mapping[str, Setting]
    unset: frozenset[str]
    blocks: Mapping[str, FortiBlock]
    entries: Mapping[str, FortiBlock]

    def value(self, key: str) -> tuple[str, ...] | None:
        s = self.settings.get(key)
        return s.values if s is not None else None


@dataclass
class _Builder:
    name: str
    line: int
    kind: str  # root | config | edit
    # whether a "config" inside it starts a top-level path: the root, "config global", and an
    # "edit <vdom>" entry of "config vdom" (multi-VDOM backups)
    top_paths: bool = False
    settings: dict[str, Setting] = field(default_factory=dict)
    unset: set[str] = field(default_factory=set)
    blocks: dict[str, _Builder] = field(default_factory=dict)
    entries: dict[str, _Builder] = field(default_factory=dict)

    def freeze(self) -> FortiBlock:
        return FortiBlock(
            self.name,
            self.line,
            MappingProxyType(dict(self.settings)),
            frozenset(self.unset),
            MappingProxyType({k: b.freeze() for k, b in self.blocks.items()}),
            MappingProxyType({k: b.freeze() for k, b in self.entries.items()}),
        )


def _refused(stmt: _Statement, text: str) -> None:
    """A console answer in which the CLI refused a command: say so instead of "unknown
    statement" (a FortiGate in multi-VDOM mode refuses "show system ha" at the top level)."""
    if stmt.tokens[0].value not in ("Command", "command"):
        return
    words = text[stmt.tokens[0].start : stmt.end].strip()
    if words.startswith(fortigate.CLI_REFUSED):
        raise ConfigParseError(
            stmt.line,
            f"the FortiGate refused a command ({words!r:.70}): a unit in multi-VDOM mode "
            "answers so at the top level, where 'system ha' is not visible, and inside 'config "
            "global' when the account may not enter global scope; give the console account "
            "global read access, or read a backup (config = PATH)",
        )


def parse_fortios(text: str) -> FortiBlock:
    """FortiOS configuration text (a backup, a bootstrap file, or ``show`` output) -> the root
    block, read as the CLI reads it: abbreviated statements and ``config`` paths, ``end``
    closing an open ``edit`` (it saves the entry and leaves the table), any line ending."""
    text = normalize(text)
    root = _Builder("", 0, "root", top_paths=True)
    stack = [root]
    opened = [0]  # the line each open block was opened on (a path seen again adds to the first)
    for stmt in statements(text):
        if stmt.unterminated:
            raise ConfigParseError(stmt.line, "a double quote is never closed")
        head, args = stmt.tokens[0], stmt.tokens[1:]
        top = stack[-1]
        if head.quoted:
            raise ConfigParseError(
                stmt.line, f"statement starts with a quoted string {head.value!r:.60}"
            )
        _refused(stmt, text)
        word = resolve(head.value, fortigate.CLI_STATEMENTS, stmt.line, "statement")
        if word == "config":
            if not args:
                raise ConfigParseError(stmt.line, "'config' without a path")
            if top.kind == "config" and top.entries:
                raise ConfigParseError(stmt.line, "'config' inside a table after its entries")
            words = [t.value for t in args]
            path = " ".join(resolve_path(words, stmt.line) if top.top_paths else words)
            # A path seen again at one level adds to the first (multi-VDOM backups open
            # "config vdom" once to declare the VDOMs and again for each VDOM's tables).
            block = top.blocks.get(path) or _Builder(
                path, stmt.line, "config", top_paths=top.kind == "root" and path == "global"
            )
            top.blocks[path] = block
            stack.append(block)
            opened.append(stmt.line)
        elif word == "edit":
            if top.kind != "config":
                raise ConfigParseError(stmt.line, "'edit' outside a 'config' block")
            if len(args) != 1:
                raise ConfigParseError(stmt.line, "'edit' takes exactly one name")
            name = args[0].value
            vdom = len(stack) == 2 and top.name == "vdom"
            entry = top.entries.get(name) or _Builder(name, stmt.line, "edit", top_paths=vdom)
            top.entries[name] = entry
            stack.append(entry)
            opened.append(stmt.line)
        elif word == "next":
            if top.kind != "edit" or args:
                raise ConfigParseError(stmt.line, "'next' without an open 'edit'")
            stack.pop()
            opened.pop()
        elif word == "end":
            if args or top.kind == "root":
                raise ConfigParseError(stmt.line, "'end' with no open 'config'")
            # "end" in an entry saves it and leaves its table as well (Container FortiOS CLI
            # reference 7.2.2, "Subcommands": "Entering end will save the table entry and"
            # return to the top level)
            for _ in range(2 if top.kind == "edit" else 1):
                stack.pop()
                opened.pop()
        elif word in ("set", "unset", "append"):
            if top.kind == "root":
                raise ConfigParseError(stmt.line, f"'{word}' outside a 'config' block")
            if not args:
                raise ConfigParseError(stmt.line, f"'{word}' without a key")
            key = args[0].value
            if word == "unset":
                top.settings.pop(key, None)
                top.unset.add(key)
                continue
            if len(args) < 2:
                # a secret key (or a quoted one, which may hold its value joined to it:
                # set "password""x") is never echoed into an error that reports show
                shown = "<a secret key>" if args[0].quoted or fortigate.is_secret_key(key) else key
                raise ConfigParseError(stmt.line, f"'{word} {shown:.40}' without a value")
            values = tuple(t.value for t in args[1:])
            old = top.settings.get(key)
            if word == "append" and old is not None:
                values = old.values + values
            top.settings[key] = Setting(values, stmt.line)
            top.unset.discard(key)
        elif word in ("show", "get") and top.kind == "root":
            continue  # the echo of a console's own command, without its prompt
        elif word in fortigate.CLI_STATEMENTS:
            raise ConfigParseError(stmt.line, f"statement {word!r} is not read by this tool")
        else:
            raise ConfigParseError(stmt.line, f"unknown statement {word!r:.40}")
    if len(stack) > 1:
        block = stack[-1]
        what = f"'edit {block.name}'" if block.kind == "edit" else f"'config {block.name}'"
        raise ConfigParseError(opened[-1], f"{what:.60} is never closed")
    return root.freeze()


def find_block(root: FortiBlock, path: str) -> FortiBlock | None:
    """``config <path>`` at the top, or under ``config global`` (multi-VDOM backups)."""
    block = root.blocks.get(path)
    if block is None and "global" in root.blocks:
        block = root.blocks["global"].blocks.get(path)
    return block


def _int(block: FortiBlock, key: str, low: int, high: int) -> int | None:
    s = block.settings.get(key)
    if s is None:
        return None
    if len(s.values) != 1 or not s.values[0].isdigit() or not low <= int(s.values[0]) <= high:
        raise ConfigParseError(s.line, f"'{key}' must be one integer {low}..{high}")
    return int(s.values[0])


def _ipv4(block: FortiBlock, key: str) -> ipaddress.IPv4Address | None:
    s = block.settings.get(key)
    if s is None:
        return None
    try:
        if len(s.values) != 1:
            raise ValueError
        return ipaddress.IPv4Address(s.values[0])
    except ValueError:
        raise ConfigParseError(s.line, f"'{key}' must be one IPv4 address") from None


def _interface_address(s: Setting) -> ipaddress.IPv4Interface | None:
    """``set ip A.B.C.D M.M.M.M`` or ``set ip A.B.C.D/N``; 0.0.0.0 is "no address"."""
    try:
        if len(s.values) == 2:
            iface = ipaddress.IPv4Interface(f"{s.values[0]}/{s.values[1]}")
        elif len(s.values) == 1:
            iface = ipaddress.IPv4Interface(s.values[0])
        else:
            raise ValueError
    except ValueError:
        raise ConfigParseError(s.line, "'ip' must be an IPv4 address and netmask") from None
    return None if iface.ip == ipaddress.IPv4Address(0) else iface


def fgcp_facts(root: FortiBlock) -> FgcpFacts:
    """The FGCP facts of a parsed FortiOS configuration."""
    addresses: dict[str, ipaddress.IPv4Interface] = {}
    mtu: dict[str, int] = {}
    interfaces = find_block(root, "system interface")
    for name, entry in (interfaces.entries if interfaces else {}).items():
        s = entry.settings.get("ip")
        if s is not None and (addr := _interface_address(s)) is not None:
            addresses[name] = addr
        if (size := _mtu(entry)) is not None:
            mtu[name] = size
    ha = find_block(root, "system ha")
    if ha is None:
        return FgcpFacts(
            None, None, None, (), False, None, None, None, None, MappingProxyType(addresses), False,
            mtu=MappingProxyType(mtu),
        )  # fmt: skip
    s = ha.settings.get("hbdev")
    hbdev = _hbdev(s) if s is not None else ()
    unicast = ha.settings.get("unicast-hb")
    if unicast is not None and unicast.values not in (("enable",), ("disable",)):
        raise ConfigParseError(unicast.line, "'unicast-hb' must be enable or disable")
    group_name = ha.value("group-name")
    mode = ha.value("mode")
    sync_dev = ha.value("session-sync-dev")  # a list of names (FortiOS CLI, "config system ha")
    # reserved only with "ha-mgmt-status enable" (default disable: see the vendor module)
    reserved = _choice(ha, "ha-mgmt-status", _ENABLE) == "enable"
    mgmt = [e.value("interface") for e in _mgmt_entries(ha)] if reserved else []
    single = ha.value("ha-mgmt-interface") if reserved else None  # FortiOS 5.x: one interface
    override = _choice(ha, "override", _ENABLE)
    return FgcpFacts(
        group_id=_int(ha, "group-id", 0, 1023),
        group_name=" ".join(group_name) if group_name is not None else None,
        mode=" ".join(mode) if mode is not None else None,
        hbdev=tuple(hbdev),
        unicast_hb=unicast is not None and unicast.values == ("enable",),
        unicast_hb_peerip=_ipv4(ha, "unicast-hb-peerip"),
        unicast_hb_netmask=_ipv4(ha, "unicast-hb-netmask"),
        hb_interval=_int(ha, "hb-interval", 1, 1000),
        hb_lost_threshold=_int(ha, "hb-lost-threshold", 1, 1000),
        addresses=MappingProxyType(addresses),
        hb_interval_unit=_choice(ha, "hb-interval-in-milliseconds", fortigate.HB_INTERVAL_UNITS_MS),
        ha_eth_type=_ethertype(ha, "ha-eth-type"),
        hc_eth_type=_ethertype(ha, "hc-eth-type"),
        l2ep_eth_type=_ethertype(ha, "l2ep-eth-type"),
        session_sync_dev=tuple(name for name in sync_dev or () if name),  # full-config: ""
        mgmt_interfaces=tuple(v[0] for v in [*mgmt, single] if v),
        monitor=tuple(name for name in ha.value("monitor") or () if name),  # full-config: ""
        override=None if override is None else override == "enable",
        priority=_int(ha, "priority", *fortigate.PRIORITY_RANGE),
        mtu=MappingProxyType(mtu),
    )


_ENABLE = {"enable": True, "disable": False}


def _mtu(entry: FortiBlock) -> int | None:
    """An interface's ``set mtu N`` when ``set mtu-override enable`` makes it count; None: the
    default MTU (the CLI takes ``mtu`` only after ``mtu-override enable``; a full configuration
    shows ``mtu-override disable`` with ``mtu 1500``)."""
    if _choice(entry, "mtu-override", _ENABLE) != "enable":
        return None
    return _int(entry, "mtu", *fortigate.MTU_RANGE) or fortigate.DEFAULT_MTU


def _mgmt_entries(ha: FortiBlock) -> list[FortiBlock]:
    block = ha.blocks.get("ha-mgmt-interfaces")
    return list(block.entries.values()) if block is not None else []


def _ethertype(block: FortiBlock, key: str) -> int | None:
    """An Ethertype key: 4 hex digits without ``0x`` (FortiOS API schema, system/ha)."""
    s = block.settings.get(key)
    if s is None:
        return None
    if len(s.values) != 1 or not re.fullmatch(r"[0-9a-fA-F]{4}", s.values[0]):
        raise ConfigParseError(s.line, f"'{key}' must be 4 hex digits (e.g. 8890)")
    return int(s.values[0], 16)


def _hbdev(s: Setting) -> tuple[HbDev, ...]:
    """``set hbdev "port3" 50 "port4" 40``; a name without a number after it has no priority
    given (the documents show only pairs: see the vendor module)."""
    out: list[HbDev] = []
    for value in s.values:
        if value.isdigit() and out and out[-1].priority is None:
            out[-1] = HbDev(out[-1].interface, int(value))
        elif value.isdigit():
            raise ConfigParseError(s.line, f"'hbdev' priority {value:.10} follows no interface")
        else:
            out.append(HbDev(value, None))
    return tuple(out)


def _choice(block: FortiBlock, key: str, allowed: Mapping[str, object]) -> str | None:
    s = block.settings.get(key)
    if s is None:
        return None
    if len(s.values) != 1 or s.values[0] not in allowed:
        raise ConfigParseError(s.line, f"'{key}' must be one of " + ", ".join(allowed))
    return s.values[0]
