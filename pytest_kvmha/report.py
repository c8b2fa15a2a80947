"""The JSON report (schema ``kvmha-report/1``)."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from .facts import HostFacts
from .inventory import ClusterSpec
from .model import STATUSES, Finding

SCHEMA = "kvmha-report/1"


def build_report(
    hosts: Sequence[HostFacts],
    clusters: Iterable[ClusterSpec],
    findings: Iterable[Finding],
    *,
    fail_on: str,
    errors: Sequence[str] = (),
    rounds: dict[str, int] | None = None,
) -> dict[str, Any]:
    findings = list(findings)
    summary = {s: 0 for s in STATUSES}
    for f in findings:
        summary[f.status] += 1
    return {
        "schema": SCHEMA,
        "fail_on": fail_on,
        "hosts": [
            {
                "name": h.name,
                "spec": h.spec,
                "status": h.status,
                "error": h.error,
                "problems": dict(h.problems) or None,
                "round_trips": (rounds or {}).get(h.name),
            }
            for h in hosts
        ],
        "clusters": [c.as_json() for c in clusters],
        "findings": [f.as_json() for f in findings],
        "summary": summary,
        "errors": list(errors),
    }


def write_report(path: Path, report: dict[str, Any]) -> None:
    """Write atomically: a reader never sees half a report."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".kvmha-", suffix=".json", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(report, out, indent=2)
        out.write("\n")
    os.replace(tmp, path)
