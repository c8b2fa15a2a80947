"""The JSON report (schema ``kvmha-report/1``)."""

from __future__ import annotations

import datetime
import html
import json
import os
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from . import __version__
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
    digests: dict[str, str] | None = None,
    started: float | None = None,
) -> dict[str, Any]:
    """``digests``: each host's evidence bundle SHA-256; ``started``: the run's ``time.time()``."""
    findings = list(findings)
    now = time.time()
    summary = {s: 0 for s in STATUSES}
    for f in findings:
        summary[f.status] += 1
    return {
        "schema": SCHEMA,
        "generated_at": _utc(now),
        "tool_version": __version__,
        "duration_s": round(now - started, 3) if started is not None else None,
        "fail_on": fail_on,
        "hosts": [
            {
                "name": h.name,
                "spec": h.spec,
                "status": host_status(h),
                "error": h.error,
                "problems": dict(h.problems) or None,
                "round_trips": (rounds or {}).get(h.name),
                "libvirt_uri": h.libvirt_uri,
                "libvirt_uri_from": h.libvirt_uri_from,
                "bundle_sha256": (digests or {}).get(h.name),
            }
            for h in hosts
        ],
        "clusters": [c.as_json() for c in clusters],
        "findings": [f.as_json() for f in findings],
        "summary": summary,
        "errors": list(errors),
    }


def host_status(host: HostFacts) -> str:
    """ok | degraded (answered, but problems were recorded: KVMHA-HOST-000 errors) |
    unreachable | error."""
    return "degraded" if host.status == "ok" and host.problems else host.status


def _fence(text: str) -> str:
    """A backtick fence longer than any backtick run in ``text``: the text cannot close it."""
    run, longest = 0, 0
    for c in text:
        run = run + 1 if c == "`" else 0
        longest = max(longest, run)
    return "`" * max(3, longest + 1)


def _utc(seconds: float) -> str:
    return (
        datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)
        .isoformat(timespec="seconds")
        .replace("+00:00", "Z")
    )


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
    bad = [f for f in report["findings"] if f["status"] in ("fail", "error")]
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
        for st in whatif["steps"]:
            lines.append(f"1. `[{st['host']}] {_cell(st['command'].splitlines()[0])}`")
            diff = st.get("diff")
            if diff:
                # Host XML inside the list item: every line indented (so none can leave the
                # item), inside a fence no backtick run of the XML can close.
                fence = _fence(diff)
                lines.append(f"   {fence}diff")
                lines += [f"   {line}" for line in diff.splitlines()]
                lines.append(f"   {fence}")
        lines += [f"- **refused**: {_cell(r)}" for r in whatif["refused"]]
        lines += [
            f"- **introduced** by step {k['step']}: `{k['check']}[{k['subject']}]` "
            f"({k['cluster'] or k['host']})"
            for k in whatif["introduced"]
        ]
    baseline = report.get("baseline")
    if baseline is not None:
        lines += ["", f"## Compared with {_cell(baseline['path'])}", ""]
        for what in ("new", "resolved", "unchanged"):
            keys = ", ".join(f"`{k['check']}[{k['subject']}]`" for k in baseline[what]) or "none"
            lines.append(f"- {what}: {keys}")
    return "\n".join(lines) + "\n"
