"""Parsers for firewall HA configuration text: FortiOS configuration and cOS Core ``show`` output.

Pure (no I/O). Three parts:

* :func:`strip_secrets` removes passwords, keys and pre-shared secrets from the text. The
  collector calls it BEFORE the text is stored in a bundle or shown anywhere.
* :func:`parse_fortios` reads FortiOS's nested ``config``/``edit``/``set``/``unset``/``next``/
  ``end`` blocks into a tree of :class:`FortiBlock`; :func:`fgcp_facts` takes the FGCP facts out.
* :func:`parse_cos_show` reads cOS Core's ``show`` property tables (Property/Value columns,
  continuation lines) into :class:`CosObject`; :func:`cos_ha_facts` takes the HA facts out.

Malformed text raises :class:`ConfigParseError` naming the line; :func:`parse_firewall_section`
turns that into a problem that names the member, so the checks that need it report ``error``.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import NamedTuple

from pytest_kvmha.facts.firewall import (
    COS_CORE,
    FORTIGATE,
    CosHaFacts,
    FgcpFacts,
    FirewallConfig,
    HbDev,
)

VENDORS = (FORTIGATE, COS_CORE)
SECTION_PREFIX = "fwconfig/"
MARKER = "<removed-by-kvmha>"  # what a secret value becomes (one token in both formats)

# The fixed, read-only commands a console runs, per vendor (never a name from a host or an
# inventory: the answer is parsed, and names in it are only ever compared, never sent back).
CONSOLE_COMMANDS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        FORTIGATE: ("show system ha", "show system interface"),
        COS_CORE: ("show HighAvailability", "show Interface EthernetInterface"),
    }
)


class ConfigParseError(ValueError):
    """Malformed configuration text; ``line`` is 1-based (0: the text as a whole)."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}" if line else message)
        self.line = line


# --- section names ------------------------------------------------------------------------------


def firewall_key(domain: str) -> str:
    """A member's domain name as one safe bundle path component.

    Letters, digits and '-' stay; every other byte becomes ``_xx`` (hex), so the key is
    injective, has no '/', '.' or '..', and nothing a shell or terminal reads specially. A name
    too long for a file name is replaced by its SHA-256 (``~`` cannot come out of the escaping)."""
    out = []
    for byte in domain.encode("utf-8", "surrogateescape"):
        ch = chr(byte)
        out.append(ch if ch.isascii() and (ch.isalnum() or ch == "-") else f"_{byte:02x}")
    key = "".join(out)
    if not key or len(key) > 200:
        return "~" + hashlib.sha256(domain.encode("utf-8", "surrogateescape")).hexdigest()
    return key


def section_name(vendor: str, domain: str) -> str:
    return f"{SECTION_PREFIX}{vendor}.{firewall_key(domain)}"


def split_section_name(name: str) -> tuple[str, str] | None:
    """(vendor, key) of a firewall section name, or None if ``name`` is no firewall section."""
    if not name.startswith(SECTION_PREFIX):
        return None
    vendor, _, key = name[len(SECTION_PREFIX) :].partition(".")
    return (vendor, key) if key else None


# --- secrets ------------------------------------------------------------------------------------

_PEM_PRIVATE = re.compile(
    r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)", re.S
)
_FORTI_SECRET_EXACT = {"key", "private-key", "passwd", "psksecret", "ppk-secret"}
_FORTI_SECRET_PARTS = ("password", "secret", "passphrase", "psk")
# A "set <key> ..." line, whatever the quoting around it (second pass, see strip_secrets).
_SET_LINE = re.compile(r"^(?P<head>\s*set\s+(?P<key>\S+))(?P<rest>\s.*)?$")
_ENC = re.compile(r"\bENC\s+\S+")
_COS_SECRET = re.compile(r"psk|password|passphrase|secret|presharedkey|privatekey", re.I)
_COS_ROW = re.compile(r"^(?P<indent>\s*)(?P<key>[A-Za-z][A-Za-z0-9_.]*):(?P<sep>\s?)(?P<value>.*)$")
_COS_ASSIGN = re.compile(
    r"(?P<key>\b[A-Za-z]*(?:PSK|Password|Passphrase|Secret|PreSharedKey|PrivateKey)[A-Za-z]*)="
    r"(?P<value>\"(?:[^\"\\]|\\.)*\"?|\S+)",
    re.I,
)


def is_secret_key(key: str) -> bool:
    """Whether a FortiOS ``set`` key holds a secret (``password``, ``ha-password``,
    ``psksecret``, ``private-key``, ``key``, anything with ``secret``...)."""
    k = key.lower()
    return k in _FORTI_SECRET_EXACT or any(part in k for part in _FORTI_SECRET_PARTS)


def strip_secrets(text: str) -> str:
    """``text`` with every secret value replaced by :data:`MARKER`, in either vendor's format.

    Fail closed: the statement-aware pass handles quoted multi-line values (a private key in
    ``set private-key "..."``); a line-based pass then catches ``set <secret> ...`` lines that
    malformed quoting hid from the first; PEM private-key blocks go wherever they are (an
    unterminated one to the end of the text); ``ENC <ciphertext>`` anywhere; cOS Core property
    rows and ``Name=value`` assignments whose name says PSK, password or secret."""
    text = _PEM_PRIVATE.sub(MARKER, text)
    text = _strip_forti_statements(text)
    lines = []
    skip_continuation: int | None = None  # value column of a removed cOS row
    for line in text.split("\n"):
        if skip_continuation is not None:
            indent = len(line) - len(line.lstrip(" "))
            if line.strip() and indent >= skip_continuation and not _COS_ROW.match(line):
                continue  # the rest of a multi-line secret value
            skip_continuation = None
        # (cheap substring tests first: a backup has 100k lines and few of them matter)
        m = _SET_LINE.match(line) if "set" in line else None
        if m and is_secret_key(m.group("key").strip('"')) and m.group("rest"):
            line = f"{m.group('head')} {MARKER}"
        row = _COS_ROW.match(line) if ":" in line else None
        if row and _COS_SECRET.search(row.group("key")) and row.group("value").strip():
            value_col = len(row.group("indent")) + len(row.group("key")) + 1 + len(row.group("sep"))
            line = f"{row.group('indent')}{row.group('key')}:{row.group('sep') or ' '}{MARKER}"
            skip_continuation = value_col
        if "=" in line:
            line = _COS_ASSIGN.sub(lambda a: f"{a.group('key')}={MARKER}", line)
        if "ENC" in line:
            line = _ENC.sub(f"ENC {MARKER}", line)
        lines.append(line)
    return "\n".join(lines)


def _strip_forti_statements(text: str) -> str:
    """Replace the value of every ``set <secret-key> ...`` statement, quoted newlines included."""
    out: list[str] = []
    pos = 0
    for stmt in _statements(text):
        tokens = stmt.tokens
        if len(tokens) >= 3 and tokens[0].value == "set" and is_secret_key(tokens[1].value):
            out.append(text[pos : tokens[2].start])
            out.append(MARKER)
            pos = stmt.end
    out.append(text[pos:])
    return "".join(out)


# --- FortiOS ------------------------------------------------------------------------------------


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
_PROMPT = re.compile(r"^\s*\S+(?:\s+\([^)]*\))?\s*[#$]\s*(?:(?:show|get)\b.*)?$")


_WORD = re.compile(r'(?:"[^"]*"|[^ \t\r"])+')


def _statements(text: str) -> Iterator[_Statement]:
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
            or (("#" in first or "$" in first) and _PROMPT.match(first))
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
    for stmt in _statements(text):
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
    )


# --- cOS Core -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CosObject:
    """One object shown by cOS Core's ``show``: its type (from the command or its properties),
    its properties in order (``<empty>`` read as ""), and the line its table starts on."""

    type: str | None
    properties: Mapping[str, str]
    line: int


_COS_HEADER = re.compile(r"^\s*Property\s+Value\s*$")
_COS_RULE = re.compile(r"^\s*-+\s+-+\s*$")
_COS_COMMAND = re.compile(r"^\s*(?:\S*>\s*)?show\s+(?P<args>.+?)\s*$")
_COS_PROMPT = re.compile(r"^\s*\S*:/\S*>\s*$")
_COS_CATEGORIES = {"Interface", "Address", "Interfaces"}  # "show Interface EthernetInterface"


def _cos_type(args: str) -> str | None:
    words = [w for w in args.split() if not w.startswith("-")]
    if words and words[0] in _COS_CATEGORIES:
        words = words[1:]
    return words[0] if words else None


def _infer_type(props: Mapping[str, str]) -> str | None:
    if "ClusterID" in props or "SyncIface" in props or "SyncInterface" in props:
        return "HighAvailability"
    if "EthernetDevice" in props or "PCIBus" in props:
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
            if not line.strip() or _COS_PROMPT.match(line):
                continue
            if _COS_HEADER.match(line):
                if i >= len(lines) or not _COS_RULE.match(lines[i]):
                    raise ConfigParseError(
                        number + 1, "property table header without its rule line"
                    )
                i += 1
                props, start, last = {}, number, None
                continue
            if m := _COS_COMMAND.match(line):
                kind = _cos_type(m.group("args"))
                continue
            raise ConfigParseError(
                number, f"unexpected text outside a property table: {line.strip()!r:.60}"
            )
        if not line.strip():
            close()
            continue
        indent = len(line) - len(line.lstrip(" "))
        if last is not None and indent >= value_col:
            props[last] += "\n" + line.strip()
            continue
        row = _COS_ROW.match(line)
        if row is None:
            raise ConfigParseError(number, f"not a 'Property: value' row: {line.strip()!r:.60}")
        key, value = row.group("key"), row.group("value").strip()
        if key in props:
            raise ConfigParseError(number, f"property {key!r} shown twice in one object")
        props[key] = "" if value == "<empty>" else value
        last = key
        value_col = len(row.group("indent")) + len(key) + 1 + max(1, len(row.group("sep")))
    close()
    return tuple(objects)


_ROLE_KEYS = ("NodeID", "Role", "NodeType", "HANodeType")
_SYNC_KEYS = ("SyncIface", "SyncInterface", "SyncIf")


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
    for o in objects:
        if o.type == "EthernetInterface":
            if not o.properties.get("Name"):
                raise ConfigParseError(o.line, "EthernetInterface without a Name")
            names.append(o.properties["Name"])
    return CosHaFacts(
        cluster_id=cluster_id,
        role=role,
        sync_interface=sync,
        ethernet=tuple(names),
        enabled=None if enabled is None else enabled.strip().lower() in ("yes", "true", "1"),
    )


# --- one member's section -----------------------------------------------------------------------


def looks_like(text: str) -> str | None:
    """Which vendor's format ``text`` is in, from its first meaningful line (None: neither)."""
    for line in text.split("\n"):
        s = line.strip()
        if not s or _COS_PROMPT.match(line):
            continue
        if s.startswith("#config-version") or s.startswith("config ") or _PROMPT.match(line):
            return FORTIGATE
        if _COS_HEADER.match(line) or _COS_COMMAND.match(line):
            return COS_CORE
        if s.startswith("#"):
            continue
        return None
    return None


def parse_firewall_config(text: str, vendor: str) -> CosHaFacts | FgcpFacts:
    """Parse one firewall's text as ``vendor``'s format (raises ConfigParseError)."""
    seen = looks_like(text)
    if not text.strip():
        raise ConfigParseError(0, "the configuration text is empty")
    if seen is not None and seen != vendor:
        raise ConfigParseError(
            0, f"the text is {_LABEL[seen]}, but the member's vendor is {vendor}"
        )
    if vendor == FORTIGATE:
        return fgcp_facts(parse_fortios(text))
    if vendor == COS_CORE:
        return cos_ha_facts(parse_cos_show(text))
    raise ConfigParseError(0, f"unknown vendor {vendor!r:.30}")


_LABEL = {FORTIGATE: "a FortiOS configuration", COS_CORE: "cOS Core show output"}


def parse_firewall_section(
    host: str, name: str, stdout: str, stderr: str, rc: int
) -> FirewallConfig | None:
    """A firewall section of ``host``'s bundle -> its FirewallConfig (None: not such a section)."""
    split = split_section_name(name)
    if split is None:
        return None
    vendor, key = split
    domain = _unescape(key)
    where = f"{host}: firewall configuration of {domain}"
    if rc != 0:
        why = stderr.strip().splitlines()
        return FirewallConfig(
            domain, vendor, None, f"{where} could not be read: {why[-1] if why else f'rc {rc}'}"
        )
    try:
        facts = parse_firewall_config(stdout, vendor)
    except ConfigParseError as exc:
        return FirewallConfig(domain, vendor, None, f"{where} is malformed: {exc}")
    return FirewallConfig(domain, vendor, facts, None)


def _unescape(key: str) -> str:
    """The domain name of a key (a hashed key stays as it is)."""
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
