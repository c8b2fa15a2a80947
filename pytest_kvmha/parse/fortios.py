"""FortiOS configuration text (a backup, or ``show`` output) and the FGCP facts in it. Pure.

:func:`parse_fortios` reads FortiOS's nested ``config``/``edit``/``set``/``unset``/``next``/
``end`` blocks into a tree of :class:`FortiBlock`; :func:`fgcp_facts` takes the FGCP facts out.
Malformed text raises :class:`~pytest_kvmha.parse.evidence.ConfigParseError` naming the line.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import NamedTuple

from pytest_kvmha.facts.firewall import FgcpFacts, HbDev
from pytest_kvmha.parse.evidence import ConfigParseError


class _Token(NamedTuple):  # a tuple: a backup has a million of them, made fast
    value: str
    quoted: bool
    start: int  # character offsets in the text
    end: int


class _Statement(NamedTuple):
    line: int
    tokens: tuple[_Token, ...]
    end: int  # offset just past the statement (before its newline)
    unterminated: bool = False  # a quote still open at the end of the text


# The CLI echoes "FGT-A (global) # show system ha" when a console reads commands from stdin.
CLI_PROMPT = re.compile(r"^\s*\S+(?:\s+\([^)]*\))?\s*[#$]\s*(?:(?:show|get)\b.*)?$")


_WORD = re.compile(r'(?:"[^"]*"|[^ \t\r"])+')


def statements(text: str) -> Iterator[_Statement]:
    """Split FortiOS text into statements of tokens. Never raises (the secret stripper uses it on
    anything); an open quote at the end is reported with ``unterminated``."""
    i, n, line = 0, len(text), 1
    while i < n:
        # one statement: from here to an unquoted newline
        start_line = line
        eol = text.find("\n", i)
        first = text[i : eol if eol >= 0 else n]
        stripped = first.lstrip()
        if (
            not stripped
            or stripped.startswith("#")
            or (("#" in first or "$" in first) and CLI_PROMPT.match(first))
        ):
            i = (eol + 1) if eol >= 0 else n
            line += 1
            continue
        if "\\" not in first and first.count('"') % 2 == 0:
            # fast path (most lines of a backup): no escapes and every quote closed on this
            # line, so a regular expression finds the tokens
            words = [
                _Token(m.group().replace('"', ""), '"' in m.group(), i + m.start(), i + m.end())
                for m in _WORD.finditer(first)
            ]
            end = i + len(first)
            i, line = (eol + 1, line + 1) if eol >= 0 else (n, line)
            yield _Statement(start_line, tuple(words), end)
            continue
        tokens: list[_Token] = []
        unterminated = False
        while i < n and text[i] != "\n":
            if text[i] in " \t\r":
                i += 1
                continue
            start = i
            buf: list[str] = []
            quoted = False
            while i < n and text[i] not in " \t\r\n":
                c = text[i]
                if c == '"':
                    quoted = True
                    i += 1
                    while i < n and text[i] != '"':
                        if text[i] == "\\" and i + 1 < n:
                            i += 1
                        if text[i] == "\n":
                            line += 1
                        buf.append(text[i])
                        i += 1
                    if i >= n:
                        unterminated = True
                        break
                    i += 1  # the closing quote
                elif c == "\\" and i + 1 < n and text[i + 1] != "\n":
                    buf.append(text[i + 1])
                    i += 2
                else:
                    buf.append(c)
                    i += 1
            tokens.append(_Token("".join(buf), quoted, start, i))
        end = i
        if i < n:
            i += 1
            line += 1
        if tokens:
            yield _Statement(start_line, tuple(tokens), end, unterminated)


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


def parse_fortios(text: str) -> FortiBlock:
    """FortiOS configuration text (a backup, or ``show`` output) -> the root block."""
    root = _Builder("", 0, "root")
    stack = [root]
    opened = [0]  # the line each open block was opened on (a path seen again adds to the first)
    for stmt in statements(text):
        if stmt.unterminated:
            raise ConfigParseError(stmt.line, "a double quote is never closed")
        head, args = stmt.tokens[0], stmt.tokens[1:]
        word = head.value
        top = stack[-1]
        if head.quoted:
            raise ConfigParseError(stmt.line, f"statement starts with a quoted string {word!r:.60}")
        if word == "config":
            if not args:
                raise ConfigParseError(stmt.line, "'config' without a path")
            if top.kind == "config" and top.entries:
                raise ConfigParseError(stmt.line, "'config' inside a table after its entries")
            path = " ".join(t.value for t in args)
            # A path seen again at one level (vdom-less backups never do) adds to the first.
            block = top.blocks.get(path) or _Builder(path, stmt.line, "config")
            top.blocks[path] = block
            stack.append(block)
            opened.append(stmt.line)
        elif word == "edit":
            if top.kind != "config":
                raise ConfigParseError(stmt.line, "'edit' outside a 'config' block")
            if len(args) != 1:
                raise ConfigParseError(stmt.line, "'edit' takes exactly one name")
            name = args[0].value
            entry = top.entries.get(name) or _Builder(name, stmt.line, "edit")
            top.entries[name] = entry
            stack.append(entry)
            opened.append(stmt.line)
        elif word == "next":
            if top.kind != "edit" or args:
                raise ConfigParseError(stmt.line, "'next' without an open 'edit'")
            stack.pop()
            opened.pop()
        elif word == "end":
            if top.kind != "config" or args:
                where = (
                    "an 'edit' still open (missing 'next')"
                    if top.kind == "edit"
                    else "no open 'config'"
                )
                raise ConfigParseError(stmt.line, f"'end' with {where}")
            stack.pop()
            opened.pop()
        elif word in ("set", "unset"):
            if top.kind == "root":
                raise ConfigParseError(stmt.line, f"'{word}' outside a 'config' block")
            if not args:
                raise ConfigParseError(stmt.line, f"'{word}' without a key")
            key = args[0].value
            if word == "set":
                if len(args) < 2:
                    raise ConfigParseError(stmt.line, f"'set {key:.40}' without a value")
                top.settings[key] = Setting(tuple(t.value for t in args[1:]), stmt.line)
                top.unset.discard(key)
            else:
                top.settings.pop(key, None)
                top.unset.add(key)
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
    interfaces = find_block(root, "system interface")
    for name, entry in (interfaces.entries if interfaces else {}).items():
        s = entry.settings.get("ip")
        if s is not None and (addr := _interface_address(s)) is not None:
            addresses[name] = addr
    ha = find_block(root, "system ha")
    if ha is None:
        return FgcpFacts(
            None, None, None, (), False, None, None, None, None, MappingProxyType(addresses), False
        )
    hbdev: list[HbDev] = []
    s = ha.settings.get("hbdev")
    if s is not None:
        if len(s.values) % 2:
            raise ConfigParseError(s.line, "'hbdev' must be pairs of interface and priority")
        for name, prio in zip(s.values[::2], s.values[1::2], strict=True):
            if not prio.isdigit():
                raise ConfigParseError(s.line, f"'hbdev' priority of {name!r:.40} is not a number")
            hbdev.append(HbDev(name, int(prio)))
    unicast = ha.settings.get("unicast-hb")
    if unicast is not None and unicast.values not in (("enable",), ("disable",)):
        raise ConfigParseError(unicast.line, "'unicast-hb' must be enable or disable")
    group_name = ha.value("group-name")
    mode = ha.value("mode")
    mgmt = [e.value("interface") for e in _mgmt_entries(ha)]
    single = ha.value("ha-mgmt-interface")  # FortiOS 5.x: one reserved interface
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
        ha_eth_type=_ethertype(ha, "ha-eth-type"),
        hc_eth_type=_ethertype(ha, "hc-eth-type"),
        l2ep_eth_type=_ethertype(ha, "l2ep-eth-type"),
        session_sync_dev=ha.value("session-sync-dev") or (),
        mgmt_interfaces=tuple(v[0] for v in [*mgmt, single] if v),
    )


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
