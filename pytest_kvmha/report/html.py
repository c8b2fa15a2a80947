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
# the column of a cluster's subjects that are not pairs: its members, hosts, the cluster
OTHER = "members, hosts, cluster"
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
    findings: list[dict[str, Any]], pairs: list[str], by_host: bool = False
) -> dict[str, Any]:
    """Rows (checks: failing first, then errors, then the rest; a check skipped on every subject
    last) x columns (the pairs in their order, then one column for the other subjects: members,
    hosts, the cluster). ``by_host``: one column per host instead (the host checks).

    Checks as rows keep the table as wide as the cluster has pairs, not as the catalogue has
    checks: at 1,280 px every failing cell is on screen. A member-NIC subject ``dom:If1`` joins
    its pair's column: both NICs of a pair in one cell."""
    wanted = set(pairs)
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    titles: dict[str, str] = {}
    columns: list[str] = []
    for f in findings:
        head, sep, tail = f["subject"].rpartition(":")
        if by_host:
            column = f["host"] or f["subject"]
        elif (tail if sep else f["subject"]) in wanted:
            column = tail if sep else f["subject"]
        else:
            column = OTHER
        if column not in columns:
            columns.append(column)
        titles[f["check"]] = f.get("title") or ""
        groups.setdefault((f["check"], column), []).append(f)
    order = [p for p in pairs if p in columns]
    columns = (
        order
        + sorted(c for c in columns if c not in order and c != OTHER)
        + ([OTHER] if OTHER in columns else [])
    )
    cells = {key: _cell(key[1], group) for key, group in groups.items()}

    def rank(check: str) -> tuple[int, str]:
        mine = [c for (k, _), c in cells.items() if k == check]
        if any(c["status"] == "fail" and not c["waived"] for c in mine):
            return 0, check
        if any(c["status"] == "error" for c in mine):
            return 1, check
        if any(c["status"] == "fail" for c in mine):
            return 2, check  # failed, every failure waived
        if all(c["status"] == "skip" for c in mine):
            return 4, check
        return 3, check

    rows = sorted(titles, key=rank)
    return {"rows": rows, "titles": titles, "columns": columns, "cells": cells}


def _cell(column: str, group: list[dict[str, Any]]) -> dict[str, Any]:
    status = min((f["status"] for f in group), key=WORST.index)
    # every failure of the cell waived: it does not gate, and the cell says so
    waived = status == "fail" and all(f.get("waived") for f in group if f["status"] == "fail")
    subjects = list(dict.fromkeys(f["subject"] for f in group))
    # one subject named as its column (a host, a pair, the NICs of a pair): the mark alone;
    # else each subject with its own mark (the members, the hosts of a cluster)
    labelled = not (len(subjects) == 1 and subjects[0] == column) and not all(
        s.rpartition(":")[2] == column for s in subjects
    )
    entries = []
    for s in subjects:
        mine = [f for f in group if f["subject"] == s]
        st = min((f["status"] for f in mine), key=WORST.index)
        w = st == "fail" and all(f.get("waived") for f in mine if f["status"] == "fail")
        entries.append({"subject": s, "status": st, "waived": w, "mark": MARKS.get(st, "?")})
    return {
        "status": status,
        "mark": MARKS.get(status, "?"),
        "count": len(group),
        "waived": waived,
        "labelled": labelled,
        "entries": entries,
        "tip": "; ".join(
            f"{f['subject']}: {f['status']}{' (waived)' if f.get('waived') else ''} - {f['detail']}"
            for f in group
        ),
    }


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
        clusters.append({**c, **_matrix(mine, [p["name"] for p in c["pairs"]])})
    host_findings = [f for f in findings if f["cluster"] is None]
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
        "hosts_matrix": _matrix(host_findings, [], by_host=True),
        "bad": [{**f, "gate": gate[id(f)]} for f in bad],
        "whatif": whatif,
        "baseline": report.get("baseline"),
    }


def render_html(report: dict[str, Any]) -> str:
    return _environment().get_template("report.html.j2").render(**view_model(report))
