"""The JSON report (schema ``kvmha-report/1``)."""

from __future__ import annotations

import datetime
import json
import os
import re
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from pytest_kvmha import __version__
from pytest_kvmha.config.inventory import ClusterSpec
from pytest_kvmha.config.names import CONTROL as _CONTROL
from pytest_kvmha.config.redact import redact
from pytest_kvmha.facts import HostFacts
from pytest_kvmha.model import STATUSES, Finding

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
    metrics: dict[str, dict[str, Any]] | None = None,
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
                "spec": redact(h.spec),
                "identity": h.identity,  # machine-id: a baseline proves it audited this host
                "status": host_status(h),
                "error": redact(h.error) if h.error else h.error,
                "problems": {k: redact(v) for k, v in h.problems.items()} or None,
                "round_trips": (rounds or {}).get(h.name),
                "libvirt_uri": h.libvirt_uri,
                "libvirt_uri_from": h.libvirt_uri_from,
                "bundle_sha256": (digests or {}).get(h.name),
                # what collecting it cost: time, bytes, handshakes refused and retried
                **{k: v for k, v in (metrics or {}).get(h.name, {}).items() if k != "round_trips"},
            }
            for h in hosts
        ],
        "clusters": [c.as_json() for c in clusters],
        "findings": [f.as_json() for f in findings],
        "summary": summary,
        "errors": [redact(e) for e in errors],
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
    try:
        # mkstemp makes 0600; a report is shared like a JUnit file: 0666 less the umask (0644).
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)  # no stray temporary file beside the report
        raise


def _umask() -> int:
    """The process umask, read without changing it (os.umask would, for every thread)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    old = os.umask(0o022)
    os.umask(old)
    return old


# Markdown (CommonMark + GitHub's extensions) that host text could otherwise form: code spans,
# links and images, emphasis, strikethrough, table cells, escapes. Backslash-escaping these
# leaves them literal; block syntax (#, -, >, 1.) cannot start mid-line, where host text sits.
_MD_SPECIAL = frozenset("\\`*_[]|~")
_HTML = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
# GitHub's bare autolinks: http(s)://, ftp://, www., and e-mail addresses.
_AUTOLINK = re.compile(r"(?i)\b(https?|ftp)(:)|\b(www)(\.)")


def _control(ch: str) -> str:
    return f"\\\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\\\u{ord(ch):04x}"


def md_text(text: object) -> str:
    """Host-derived text as inert Markdown, in a table cell or running text: shown literally.

    HTML specials become entities (no raw HTML, no <autolink>), Markdown specials and bare
    autolink triggers are backslash-escaped, newlines become ``<br>`` (one table row stays one
    row) and other control characters ``\\xNN``."""
    raw = str(text if text is not None else "")
    # mark where an autolink would start, before the per-character pass
    breaks = {m.start(m.lastindex or 0) for m in _AUTOLINK.finditer(raw)}
    out = []
    for i, ch in enumerate(raw):
        if ch in _HTML:
            out.append(_HTML[ch])
        elif ch == "@":
            # cmark-gfm links e-mail addresses even through \@ or &#64;; an (invisible) HTML
            # comment splits the text node the autolinker scans.
            out.append("<!-- -->@")
        elif ch in _MD_SPECIAL or i in breaks:
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("<br>")
        elif _CONTROL.match(ch):
            out.append(_control(ch))
        else:
            out.append(ch)
    return "".join(out)


def md_code(text: object, *, in_table: bool = False) -> str:
    """Host-derived text as one code span. Inside a code span nothing is Markdown or HTML, so
    only the span's own end needs care: the fence is one backtick longer than any run of
    backticks in the text. In a GitHub table ``|`` still ends a cell, even there: escaped."""
    raw = _CONTROL.sub(lambda m: " " if m.group() == "\n" else _control(m.group()), str(text))
    longest = max((len(run) for run in re.findall(r"`+", raw)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if raw.startswith("`") or raw.endswith("`") or raw.startswith(" ") else ""
    if in_table:
        raw = raw.replace("|", "\\|")
    return f"{fence}{pad}{raw}{pad}{fence}"


_cell = md_text


def render_markdown(report: dict[str, Any]) -> str:
    """The JSON report as Markdown (for a CI job summary or a merge-request comment)."""
    s = report["summary"]
    lines = [
        "# kvmha audit",
        "",
        f"**{s['fail']} fail, {s['error']} error, {s['pass']} pass, {s['skip']} skip** "
        f"(fail-on {report['fail_on']})",
        "",
        *_verdict_markdown(report),
        "| host | spec | status | error |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {_cell(h['name'])} | {_cell(redact(h['spec']))} | {_cell(h['status'])} | "
        f"{_cell(redact(h['error'] or ''))} |"
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
            f"| {_cell(f['status'] + _not_gating(f))} | {_cell(f['severity'])} | "
            f"{md_code(f['nodeid'], in_table=True)} | "
            f"{_cell(f['detail'])} | "
            f"{_cell(f['remediation'])} |"
            for f in bad
        ]
    else:
        lines.append("None.")
    if report.get("not_applicable"):
        lines += ["", "## Not applicable", ""]
        lines += [
            f"- {md_code(n['cluster'])}: {_cell(n['reason'])}: {_cell(', '.join(n['checks']))}"
            for n in report["not_applicable"]
        ]
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
        for st in whatif["steps"]:
            lines.append(f"1. {md_code('[' + st['host'] + '] ' + st['command'].splitlines()[0])}")
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
            f"- **introduced** by step {_cell(k['step'])}: "
            f"{md_code(k['check'] + '[' + k['subject'] + ']')} ({_cell(k['cluster'] or k['host'])})"
            for k in whatif["introduced"]
        ]
    baseline = report.get("baseline")
    if baseline is not None:
        lines += ["", f"## Compared with {_cell(baseline['path'])}", ""]
        if baseline.get("gating") == "new only":
            lines += ["Gating on new findings only (`--kvmha-fail-on-new`).", ""]
        for what in ("new", "resolved", "unchanged"):
            keys = (
                ", ".join(md_code(f"{k['check']}[{k['subject']}]") for k in baseline[what])
                or "none"
            )
            lines.append(f"- {what}: {keys}")
    return "\n".join(lines) + "\n"


def _verdict_markdown(report: dict[str, Any]) -> list[str]:
    """The run's one verdict (the plugin's: it decided the exit status), when there is one."""
    v = report.get("verdict")
    if v is None:
        return []
    head = "Gate passed" if v["passed"] else "Gate failed"
    return [f"**{head}** (exit status {int(v['exit_status'])}): {_cell(v['reason'])}", ""]


def _not_gating(f: dict[str, Any]) -> str:
    """A row that does not fail the run says so (below the threshold, known since the
    baseline); rows without the plugin's ``gating`` mark say nothing."""
    return " (not gating)" if f.get("gating") is False else ""


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
