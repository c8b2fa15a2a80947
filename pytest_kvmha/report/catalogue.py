"""The check catalogue as people and tools read it (``--kvmha-list-checks``)."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Sequence
from typing import Any

from pytest_kvmha.model import Check

FORMATS = ("text", "json")
CATALOGUE_SCHEMA = "kvmha-checks/1"


def check_json(c: Check) -> dict[str, Any]:
    return {
        "id": c.id,
        "title": c.title,
        "severity": str(c.severity),
        "scope": c.scope.value,
        "rationale": c.rationale,
        "remediation": c.remediation,
        "source": c.source,
        # where the code lives: built-in checks are pytest_kvmha.checks.*, site checks their own
        "module": c.func.__module__,
    }


def render_catalogue(checks: Sequence[Check], fmt: str = "text", verbosity: int = 0) -> str:
    """One line per check; with ``verbosity`` > 0 also its rationale, remediation and source.

    ``json`` is for tools: every field, whatever the verbosity."""
    if fmt not in FORMATS:
        raise ValueError(f"--kvmha-format: unknown format {fmt!r} (expected {'|'.join(FORMATS)})")
    if fmt == "json":
        doc = {"schema": CATALOGUE_SCHEMA, "checks": [check_json(c) for c in checks]}
        return json.dumps(doc, indent=2) + "\n"
    lines: list[str] = []
    for c in checks:
        lines.append(f"{c.id:<16} {c.severity!s:<9} {c.title}")
        if verbosity > 0:
            lines.append(f"    scope:       {c.scope.value}")
            for label, text in (
                ("rationale", c.rationale),
                ("remediation", c.remediation),
                ("source", c.source),
            ):
                body = textwrap.dedent(text).strip().splitlines() or [""]
                lines.append(f"    {label + ':':<12} {body[0]}")
                lines += [f"    {'':<12} {line}" for line in body[1:]]
            lines.append(f"    module:      {c.func.__module__}")
            lines.append("")
    return "\n".join(lines) + "\n"
