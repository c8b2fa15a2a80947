"""The JSON report as one self-contained HTML page (``--kvmha-report-html``).

Rendered from the report dict (``report.build_report``), like the Markdown, so every format says
the same. Jinja2 with autoescaping on for every value: host data (names, details, remediations
holding XML) is hostile and is only ever text in the page. No script, no external asset; a
Content-Security-Policy forbids both, so the page reads the same in a mail client or an archive.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

SEVERITIES = ("critical", "high", "medium", "low", "info")
# worst first: the mark a matrix cell shows when several findings share it (two NICs of a pair)
WORST = ("error", "fail", "skip", "pass")
MARKS = {"pass": "✓", "fail": "✗", "error": "!", "skip": "–", "ok": "✓", "unreachable": "✗"}


def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("pytest_kvmha.report", "templates"),
        autoescape=True,  # every {{ }} is escaped; nothing in the template is marked safe
        undefined=StrictUndefined,  # a key missing from the report is a bug, not a blank
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _gate(f: dict[str, Any], fail_on: int, regressions: set[tuple[Any, ...]]) -> str | None:
    """What a finding does to the gate, by the same rule as the items (plugin.gate.gate_of): errors
    gate; a failure gates unless waived, below fail-on, or known since the baseline with
    --kvmha-fail-on-new. None for a pass or skip."""
    if f["status"] == "error":
        return "gating"
    if f["status"] != "fail":
        return None
    key = (f["check"], f["host"], f["cluster"], f["subject"])
    if key in regressions:  # a plan would introduce it: fails whatever its severity
        return "gating"
    if f.get("waived"):
        return "waived"
    if _rank(f["severity"]) < fail_on:
        return "below"
    if f.get("known_since_baseline"):
        return "known"
    return "gating"


def _rank(severity: str) -> int:
    return len(SEVERITIES) - 1 - SEVERITIES.index(severity) if severity in SEVERITIES else -1


def _matrix(
    findings: list[dict[str, Any]], rows_first: list[str]
) -> tuple[list[str], list[str], dict[tuple[str, str], dict[str, Any]]]:
    """Rows (subjects: the pairs first, in their order, then the rest) x columns (check ids).

    A member-NIC subject ``dom:If1`` joins its pair's row: both NICs of a pair in one cell."""
    pairs = set(rows_first)
    cells: dict[tuple[str, str], list[dict[str, Any]]] = {}
    others: list[str] = []
    for f in findings:
        subject = f["subject"]
        head, sep, tail = subject.rpartition(":")
        row = tail if sep and tail in pairs else subject
        if row not in pairs and row not in others:
            others.append(row)
        cells.setdefault((row, f["check"]), []).append(f)
    rows = [p for p in rows_first if any(r == p for r, _ in cells)] + others
    columns = sorted({c for _, c in cells})
    view: dict[tuple[str, str], dict[str, Any]] = {}
    for key, group in cells.items():
        status = min((f["status"] for f in group), key=WORST.index)
        # every failure of the cell waived: it does not gate, and the cell says so
        waived = status == "fail" and all(f.get("waived") for f in group if f["status"] == "fail")
        view[key] = {
            "status": status,
            "mark": MARKS.get(status, "?"),
            "count": len(group),
            "waived": waived,
            "tip": "; ".join(
                f"{f['subject']}: {f['status']}{' (waived)' if f.get('waived') else ''} - "
                f"{f['detail']}"
                for f in group
            ),
        }
    return rows, columns, view


def view_model(report: dict[str, Any]) -> dict[str, Any]:
    findings: list[dict[str, Any]] = report["findings"]
    fail_on = _rank(report["fail_on"])
    whatif = report.get("whatif")
    regressions = {
        (k["check"], k["host"], k["cluster"], k["subject"])
        for k in (whatif or {}).get("introduced", [])
    }
    gate = {id(f): _gate(f, fail_on, regressions) for f in findings}
    gating = [f for f in findings if gate[id(f)] == "gating"]
    below = [f for f in findings if gate[id(f)] == "below"]
    waived = [f for f in findings if gate[id(f)] == "waived"]
    known = [f for f in findings if gate[id(f)] == "known"]
    waivers = report.get("waivers")
    stale = [w for w in waivers or () if w["status"] == "stale"]
    strict_stale = bool(stale) and bool(report.get("strict_waivers"))
    # The run's one verdict when the plugin wrote the report (it decided the exit status); the
    # rule below only for a report without one (an older report read back).
    verdict = report.get("verdict")
    passed = (
        bool(verdict["passed"])
        if verdict is not None
        else not gating and not report["errors"] and not regressions and not strict_stale
    )
    by_severity = {
        sev: Counter(f["status"] for f in findings if f["severity"] == sev) for sev in SEVERITIES
    }
    clusters = []
    for c in report["clusters"]:
        mine = [f for f in findings if f["cluster"] == c["name"]]
        rows, columns, cells = _matrix(mine, [p["name"] for p in c["pairs"]])
        clusters.append({**c, "rows": rows, "columns": columns, "cells": cells})
    host_findings = [f for f in findings if f["cluster"] is None]
    host_rows, host_columns, host_cells = _matrix(host_findings, [])
    bad = sorted(
        (f for f in findings if f["status"] in ("fail", "error")),
        key=lambda f: (
            gate[id(f)] != "gating",
            f["status"] != "error",
            -_rank(f["severity"]),
            f["nodeid"],
        ),
    )
    return {
        "r": report,
        "passed": passed,
        "verdict": verdict,
        "gating": gating,
        "below": below,
        "waived": waived,
        "known": known,
        "waivers": waivers,
        "stale": stale,
        "strict_stale": strict_stale,
        "severities": SEVERITIES,
        "by_severity": by_severity,
        "statuses": WORST,
        "marks": MARKS,
        "clusters": clusters,
        "hosts_matrix": {"rows": host_rows, "columns": host_columns, "cells": host_cells},
        "bad": [{**f, "gate": gate[id(f)]} for f in bad],
        "whatif": whatif,
        "baseline": report.get("baseline"),
    }


def render_html(report: dict[str, Any]) -> str:
    return _environment().get_template("report.html.j2").render(**view_model(report))
