"""Damaged evidence: how the parsers refuse it and name where it broke. Pure: no I/O.

A parser raises :class:`FactError`; :func:`pytest_kvmha.parse.host.parse_bundle` turns it into
a problem of the section, so the checks that need the section report ``error`` with it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import fields, is_dataclass
from typing import Any

from lxml import etree

from pytest_kvmha.bundle.store import MISSING_RC, Section
from pytest_kvmha.config.names import has_control


class FactError(ValueError):
    """Raw evidence is malformed; the message says what and where."""


class ConfigParseError(ValueError):
    """Malformed configuration text; ``line`` is 1-based (0: the text as a whole)."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}" if line else message)
        self.line = line


def show(value: Any, limit: int = 80) -> str:
    """A short, escaped rendering of a value from a host (repr escapes control characters)."""
    try:
        text = repr(value)
    except ValueError:  # an int past Python's digit limit
        text = f"<{type(value).__name__} too large to show>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def load_json(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, digit limit, deep nesting
        raise FactError(f"{what}: malformed JSON: {show(str(exc), 200)}") from None


def present(sections: Mapping[str, Section], name: str) -> Section | None:
    """A section, or None if it was not collected; raises if the bundle lost its file."""
    sec = sections.get(name)
    if sec is not None and sec.rc == MISSING_RC:
        raise FactError(f"{name}: {sec.stderr}")
    return sec


def section_ok(sections: Mapping[str, Section], name: str) -> Section:
    sec = present(sections, name)
    if sec is None:
        raise FactError(f"{name}: section missing from bundle")
    if sec.rc != 0:
        err = sec.stderr.strip().splitlines()
        raise FactError(f"{name}: command failed (rc {sec.rc}): {err[-1] if err else ''}")
    return sec


# --- names from hosts are data, never text that can break a line ------------------------------

# Free text (error messages, raw XML kept for restores), not names.
_FREE_TEXT = frozenset({"error", "inactive_xml", "problem", "version"})


def refuse_control_chars(what: str, **values: object) -> None:
    """Raise FactError naming the first name (at any depth of facts) with a control character
    (:func:`pytest_kvmha.config.names.has_control`)."""
    for key, value in values.items():
        for path, text in _strings(value, key):
            if has_control(text):
                raise FactError(f"{what}: {path} {text!r} contains control characters")


def _strings(value: object, path: str) -> list[tuple[str, str]]:
    if isinstance(value, str):
        return [(path, value)]
    if isinstance(value, etree._Element):
        return [(f"{path} {k}", str(v)) for k, v in value.attrib.items()]
    out: list[tuple[str, str]] = []
    if is_dataclass(value) and not isinstance(value, type):
        for f in fields(value):
            if f.name not in _FREE_TEXT:
                out += _strings(getattr(value, f.name), f"{path}.{f.name}".lstrip("."))
    elif isinstance(value, Mapping):
        for k, v in value.items():
            out += _strings(k, f"{path} key".lstrip())
            out += _strings(v, f"{path}[{k!r}]")
    elif isinstance(value, (list, tuple, set, frozenset)):
        for i, v in enumerate(value):
            out += _strings(v, f"{path}[{i}]")
    return out
