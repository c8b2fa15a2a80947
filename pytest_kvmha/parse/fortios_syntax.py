"""FortiOS CLI text as the CLI reads it: statements of tokens, line endings, abbreviations. Pure.

:func:`normalize` takes a UTF-8 byte-order mark off and makes CRLF and CR-only line endings
LF; :func:`statements` splits the text into statements of tokens (quotes, escapes, values over
several lines); :func:`resolve` expands a word the CLI would accept as an abbreviation.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import NamedTuple

from pytest_kvmha.parse.evidence import ConfigParseError
from pytest_kvmha.vendors import fortigate


def normalize(text: str) -> str:
    """``text`` without a leading byte-order mark, with CRLF and lone CR line endings as LF
    (Windows editors save bootstrap files with CRLF, old Mac tools with CR; the CLI reads
    each the same way)."""
    if text.startswith("\ufeff"):
        text = text[1:]
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def resolve(word: str, known: Sequence[str], line: int, what: str) -> str:
    """``word`` as the CLI takes it among ``known``: itself when it is one of them or starts
    none of them, else the one known word it abbreviates. Ambiguous: ConfigParseError."""
    if word in known:
        return word
    matches = [k for k in known if k.startswith(word)]
    if len(matches) > 1:
        raise ConfigParseError(
            line,
            f"ambiguous {what} {word!r:.40}: it abbreviates "
            + ", ".join(matches[:6])
            + (" ..." if len(matches) > 6 else ""),
        )
    return matches[0] if matches else word


def resolve_path(words: Sequence[str], line: int, prefix: Sequence[str] = ()) -> tuple[str, ...]:
    """The words of a ``config`` path with each known abbreviation expanded; ``prefix`` is the
    path of the enclosing block when it continues a known path (``config global`` holds the
    top-level tables again)."""
    out: list[str] = []
    for word in words:
        known = fortigate.CLI_PATHS.get(" ".join([*prefix, *out]))
        out.append(resolve(word, known, line, "path word") if known else word)
    return tuple(out)


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


# The CLI echoes "FGT-A (global) # show system ha" when a console reads commands from stdin
# (the prompt gains "(global)" inside "config global": vendors.fortigate.CONFIG_GLOBAL); the
# echoes of the console's own "config global" and "end" around its reads are prompts too.
CLI_PROMPT = re.compile(
    r"^\s*\S+(?:\s+\([^)]*\))?\s*[#$]\s*(?:(?:show|get)\b.*|config\s+global|end)?\s*$"
)


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
