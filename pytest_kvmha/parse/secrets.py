"""Secrets out of firewall configuration text, before it is stored or shown anywhere. Pure.

The collector calls :func:`strip_secrets` BEFORE the text is stored in a bundle: passwords, keys
and pre-shared secrets never reach a bundle, a terminal or a report, in either vendor's format.
"""

from __future__ import annotations

import re

from pytest_kvmha.parse.cos_core import PROPERTY_ROW
from pytest_kvmha.parse.fortios_syntax import normalize, statements

MARKER = "<removed-by-kvmha>"  # what a secret value becomes (one token in both formats)

_PEM_PRIVATE = re.compile(
    r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)", re.S
)
_FORTI_SECRET_EXACT = {"key", "private-key", "passwd", "psksecret", "ppk-secret"}
_FORTI_SECRET_PARTS = ("password", "secret", "passphrase", "psk")
# A "set <key> ..." line, whatever the quoting around it (second pass, see strip_secrets).
_SET_LINE = re.compile(r"^(?P<head>\s*set\s+(?P<key>\S+))(?P<rest>\s.*)?$")
_ENC = re.compile(r"\bENC\s+\S+")
_COS_SECRET = re.compile(r"psk|password|passphrase|secret|presharedkey|privatekey", re.I)
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
    # one line ending first: a CR-only file would otherwise be a single "line" to both passes
    text = _PEM_PRIVATE.sub(MARKER, normalize(text))
    text = _strip_forti_statements(text)
    lines = []
    skip_continuation: int | None = None  # value column of a removed cOS row
    for line in text.split("\n"):
        if skip_continuation is not None:
            indent = len(line) - len(line.lstrip(" "))
            if line.strip() and indent >= skip_continuation and not PROPERTY_ROW.match(line):
                continue  # the rest of a multi-line secret value
            skip_continuation = None
        # (cheap substring tests first: a backup has 100k lines and few of them matter)
        m = _SET_LINE.match(line) if "set" in line else None
        if m and is_secret_key(m.group("key").strip('"')) and m.group("rest"):
            line = f"{m.group('head')} {MARKER}"
        row = PROPERTY_ROW.match(line) if ":" in line else None
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
    for stmt in statements(text):
        tokens = stmt.tokens
        if len(tokens) >= 3 and tokens[0].value == "set" and is_secret_key(tokens[1].value):
            out.append(text[pos : tokens[2].start])
            out.append(MARKER)
            pos = stmt.end
    out.append(text[pos:])
    return "".join(out)
