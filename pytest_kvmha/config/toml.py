"""Reading a TOML file (an inventory, a waivers file) with usage errors that name the file."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["TomlLines", "at", "load_toml", "tomllib"]


def load_toml(path: Path, what: str, error: type[Exception]) -> dict[str, Any]:
    """The document in ``path``; ``error`` (the caller's usage error) says why there is none.

    ``what`` names the kind of file in the message ("inventory": "no such inventory file")."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(f"{path}: no such {what} file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{path}: unreadable: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{path}: not valid TOML: {exc}") from None


_KEY = re.compile(r'"((?:[^"\\]|\\.)*)"|\'([^\']*)\'|([A-Za-z0-9_-]+)')


class TomlLines:
    """Where a table or an array entry of a TOML file starts (1-based line numbers), for
    messages: ``cluster "dmz-fw", pair 1 (line 14)``. Read from the text by its headers
    (``[a.b]``, ``[[a.b.c]]``) and inline arrays of tables (``members = [ {...}, {...} ]``);
    None where the file spells it some other way."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        self.headers: list[tuple[int, bool, tuple[str, ...]]] = []
        for k, line in enumerate(self.lines):
            s = line.strip()
            if not s.startswith("["):
                continue
            double = s.startswith("[[")
            inner = s[2 if double else 1 :].split("]", 1)[0]
            keys = tuple(a or b or c for a, b, c in _KEY.findall(inner))
            self.headers.append((k + 1, double, keys))

    @classmethod
    def read(cls, path: Path) -> TomlLines:
        try:
            return cls(path.read_text(encoding="utf-8", errors="replace"))
        except OSError:
            return cls("")

    def table(self, *keys: str) -> int | None:
        return next((n for n, d, k in self.headers if not d and k == keys), None)

    def entry(self, keys: tuple[str, ...], key: str, index: int) -> int | None:
        """Entry ``index`` (0-based) of the array of tables ``key`` under table ``keys``."""
        entries = [n for n, d, k in self.headers if d and k == (*keys, key)]
        if index < len(entries):
            return entries[index]
        start = self.table(*keys)
        if start is None:
            return None
        assign = re.compile(rf"^\s*{re.escape(key)}\s*=")
        seen = -1
        inside = False
        for n in range(start, len(self.lines)):
            line = self.lines[n]
            if not inside:
                if line.strip().startswith("["):
                    return None  # the next table: no such array here
                if not assign.match(line):
                    continue
                inside = True
                line = line.split("=", 1)[1]
            seen += line.count("{")
            if seen >= index:
                return n + 1
        return None


def at(line: int | None) -> str:
    """`` (line 14)``, or nothing when the line is not known."""
    return f" (line {line})" if line is not None else ""
