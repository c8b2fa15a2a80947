"""Secrets out of firewall configuration text, before it is stored or shown anywhere. Pure.

The collector calls :func:`strip_secrets` BEFORE the text is stored in a bundle: passwords, keys
and pre-shared secrets never reach a bundle, a terminal or a report, in either vendor's format.
"""

from __future__ import annotations

import re

from pytest_kvmha.parse.cos_core import PROPERTY_ROW, is_continuation, value_column
from pytest_kvmha.parse.firewall import looks_like
from pytest_kvmha.parse.fortios_syntax import normalize, statements
from pytest_kvmha.vendors import fortigate
from pytest_kvmha.vendors.cos_core import SECRET_PROPERTY

MARKER = "<removed-by-kvmha>"  # what a secret value becomes (one token in both formats)

# PEM ("-----BEGIN RSA PRIVATE KEY-----") and OpenPGP ("-----BEGIN PGP PRIVATE KEY BLOCK-----",
# RFC 4880 section 6.2) armour; an unterminated block goes to the end of the text.
_PRIVATE_ARMOUR = re.compile(
    r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY[A-Z ]*-----.*?"
    r"(?:-----END [A-Z0-9 ]*PRIVATE KEY[A-Z ]*-----|\Z)",
    re.S,
)
# A PuTTY key file (PuTTY User Manual, appendix C "PPK file format"): the header line, the
# public and "Private-Lines: N" parts, up to its "Private-MAC:" line (or the end of the text).
_PUTTY_KEY = re.compile(
    r"(?:PuTTY-User-Key-File-\d+:|^[ \t]*Private-Lines:).*?(?:^[ \t]*Private-MAC:[^\n]*|\Z)",
    re.S | re.M,
)
# A "set <key> ..." line, whatever the quoting around it (second pass, see strip_secrets).
_SET_LINE = re.compile(r"^(?P<pre>\s*set\s+)(?P<key>\S+)(?P<rest>\s.*)?$")
_ENC = re.compile(r"\bENC\s+\S+")
_COS_ASSIGN = re.compile(
    r"(?P<key>\b[A-Za-z0-9_-]*(?:psk|pass(?:word|phrase|wd)|pwd|secret|pre-?shared|key|community)"
    r"[A-Za-z0-9_-]*)="
    r"(?P<value>\"(?:[^\"\\]|\\.)*\"?|'(?:[^'\\]|\\.)*'?|\S+)",
    re.I,
)


def is_secret_key(key: str) -> bool:
    """Whether a FortiOS ``set`` key holds a secret (``password``, ``ha-password``,
    ``psksecret``, ``private-key``, ``auth-pwd``, ``api-key``, ``key-string``...)."""
    return fortigate.is_secret_key(key)


def strip_secrets(text: str) -> str:
    """``text`` with every secret value replaced by :data:`MARKER`, in either vendor's format.

    Fail closed: the statement-aware pass handles quoted multi-line values (a private key in
    ``set private-key "..."``) and SNMP community names; a line-based pass then catches
    ``set <secret> ...`` lines that malformed quoting hid from the first (a secret key joined to
    its value, ``set "password""x"``, loses both); PEM, OpenPGP and PuTTY private keys go
    wherever they are (an unterminated one to the end of the text); ``ENC <ciphertext>``
    anywhere; cOS Core property rows whose name says PSK, password, secret, key or community,
    with every continuation line of their value (by the parser's own row/continuation rule,
    also when the value starts on the next line), and ``Name=value`` assignments of such names,
    double- or single-quoted."""
    # one line ending first: a CR-only file would otherwise be a single "line" to both passes
    text = _PRIVATE_ARMOUR.sub(MARKER, normalize(text))
    text = _PUTTY_KEY.sub(MARKER, text)
    text = _strip_forti_statements(text)
    # Continuation lines are a cOS Core rule; in FortiOS text an indented "set" line after a
    # "Key: ..." line inside a comment is no part of a value.
    continuations = looks_like(text) != "fortigate"
    lines = []
    skip_from: int | None = None  # value column of a removed cOS row
    for line in text.split("\n"):
        if skip_from is not None:
            if is_continuation(line.rstrip("\r"), skip_from):
                continue  # the rest of a multi-line secret value
            skip_from = None
        # (cheap substring tests first: a backup has 100k lines and few of them matter)
        m = _SET_LINE.match(line) if "set" in line else None
        if m and is_secret_key(m.group("key").strip('"')):
            if m.group("rest"):
                line = f"{m.group('pre')}{m.group('key')} {MARKER}"
            elif '"' in m.group("key"):  # set "password""value": the key token holds the value
                line = f"{m.group('pre')}{MARKER}"
        row = PROPERTY_ROW.match(line) if ":" in line else None
        if row and SECRET_PROPERTY.search(row.group("key")):
            if continuations:
                skip_from = value_column(row)
            line = f"{row.group('indent')}{row.group('key')}:{row.group('sep') or ' '}{MARKER}"
        if "=" in line:
            line = _COS_ASSIGN.sub(lambda a: f"{a.group('key')}={MARKER}", line)
        if "ENC" in line:
            line = _ENC.sub(f"ENC {MARKER}", line)
        lines.append(line)
    return "\n".join(lines)


def _strip_forti_statements(text: str) -> str:
    """Replace the value of every ``set <secret-key> ...`` statement, quoted newlines included,
    and the name of every SNMP community (see :data:`~pytest_kvmha.vendors.fortigate`)."""
    out: list[str] = []
    pos = 0
    paths: list[str] = []  # the open "config" blocks, innermost last
    for stmt in statements(text):
        tokens = stmt.tokens
        word = tokens[0].value
        if word == "config" and len(tokens) > 1:
            paths.append(" ".join(t.value for t in tokens[1:]))
            continue
        if word == "end":
            if paths:
                paths.pop()
            continue
        if word != "set" or len(tokens) < 2:
            continue
        key = tokens[1].value
        community = bool(paths) and paths[-1] == fortigate.SNMP_COMMUNITY_PATH and key == "name"
        if len(tokens) >= 3 and (community or is_secret_key(key)):
            out.append(text[pos : tokens[2].start])
            out.append(MARKER)
            pos = stmt.end
        elif len(tokens) == 2 and is_secret_key(key) and tokens[1].quoted:
            # a quoted key joined to its value ("password""x" is one token): both go
            out.append(text[pos : tokens[1].start])
            out.append(MARKER)
            pos = stmt.end
    out.append(text[pos:])
    return "".join(out)
