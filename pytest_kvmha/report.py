"""The JSON report (schema ``kvmha-report/1``)."""

from __future__ import annotations

import html
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
    write_text(path, json.dumps(report, indent=2) + "\n")


def write_text(path: Path, text: str) -> None:
    """Write atomically: a reader never sees half a report."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".kvmha-", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    os.replace(tmp, path)


def _cell(text: object) -> str:
    """One table cell: HTML escaped (remediations hold XML), pipes escaped, lines as <br>."""
    raw = html.escape(str(text if text is not None else ""), quote=False)
    return raw.replace("|", "\\|").replace("\n", "<br>")


def render_markdown(report: dict[str, Any]) -> str:
    """The JSON report as Markdown (for a CI job summary or a merge-request comment)."""
    s = report["summary"]
    lines = [
        "# kvmha audit",
        "",
        f"**{s['fail']} fail, {s['error']} error, {s['pass']} pass, {s['skip']} skip** "
        f"(fail-on {report['fail_on']})",
        "",
        "| host | spec | status | error |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {_cell(h['name'])} | {_cell(h['spec'])} | {h['status']} | {_cell(h['error'])} |"
        for h in report["hosts"]
    ]
    # A waived failure does not gate: it has its own section below, not this one.
    bad = [
        f for f in report["findings"] if f["status"] in ("fail", "error") and not f.get("waived")
    ]
    order = {"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4}
    bad.sort(key=lambda f: (f["status"] != "error", order.get(f["severity"], 5), f["nodeid"]))
    lines += ["", "## Failing findings", ""]
    if bad:
        lines += ["| status | severity | finding | detail | remediation |", "|---|---|---|---|---|"]
        lines += [
            f"| {f['status']} | {f['severity']} | `{f['nodeid']}` | {_cell(f['detail'])} | "
            f"{_cell(f['remediation'])} |"
            for f in bad
        ]
    else:
        lines.append("None.")
    lines += _waivers_markdown(report)
    discovery = report.get("discovery")
    if discovery is not None and discovery["ambiguous"]:
        lines += ["", "## Ambiguous layouts (no cluster formed)", ""]
        for a in discovery["ambiguous"]:
            names = ", ".join(f"{m['domain']}@{m['host']}" for m in a["members"])
            layout = ", ".join(a["layout"])
            lines.append(f"- {_cell(names)} on {_cell(layout)}: {_cell(a['reason'])}")
    whatif = report.get("whatif")
    if whatif is not None:
        lines += [
            "",
            "## What-if",
            "",
            f"{len(whatif['steps'])} steps, {len(whatif['fixed'])} fixed, "
            f"{len(whatif['introduced'])} introduced, {len(whatif['unchanged'])} still failing.",
            "",
        ]
        lines += [
            f"1. `[{st['host']}] {_cell(st['command'].splitlines()[0])}`" for st in whatif["steps"]
        ]
        lines += [f"- **refused**: {_cell(r)}" for r in whatif["refused"]]
        lines += [
            f"- **introduced** by step {k['step']}: `{k['check']}[{k['subject']}]` "
            f"({k['cluster'] or k['host']})"
            for k in whatif["introduced"]
        ]
    baseline = report.get("baseline")
    if baseline is not None:
        lines += ["", f"## Compared with {_cell(baseline['path'])}", ""]
        if baseline.get("gating") == "new only":
            lines += ["Gating on new findings only (`--kvmha-fail-on-new`).", ""]
        for what in ("new", "resolved", "unchanged"):
            keys = ", ".join(f"`{k['check']}[{k['subject']}]`" for k in baseline[what]) or "none"
            lines.append(f"- {what}: {keys}")
    return "\n".join(lines) + "\n"


def _waivers_markdown(report: dict[str, Any]) -> list[str]:
    """The "Waived" section: each waived finding with its waiver, then every waiver's status."""
    waivers = report.get("waivers")
    if waivers is None:
        return []
    lines = ["", "## Waived", ""]
    waived = [f for f in report["findings"] if f.get("waived")]
    if waived:
        lines += ["| severity | finding | detail | ticket | until | approver | reason |"]
        lines += ["|---|---|---|---|---|---|---|"]
        lines += [
            f"| {f['severity']} | `{f['nodeid']}` | {_cell(f['detail'])} | "
            f"{_cell(w['ticket'])} | {w['expires']} | {_cell(w['approver'])} | "
            f"{_cell(w['reason'])} |"
            for f in waived
            for w in [f["waived"]]
        ]
    else:
        lines.append("No finding waived.")
    lines += [
        "",
        "| waiver | check | scope | ticket | expires | status |",
        "|---|---|---|---|---|---|",
    ]
    for w in waivers:
        scope = ", ".join(f"{k} {w[k]}" for k in ("host", "cluster", "subject") if w[k])
        lines.append(
            f"| {w['index']} | {_cell(w['check'])} | {_cell(scope)} | {_cell(w['ticket'])} | "
            f"{w['expires']} | {w['status']} |"
        )
    return lines
