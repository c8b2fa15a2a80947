"""The kvmha audit summary at the end of a run: hosts, the compact block per cluster (pairs x
checks, one mark per cell), counts, waivers, the what-if and the baseline. Findings and each
finding's gate outcome in, lines out (to anything that writes lines, the terminal reporter)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from pytest_kvmha.audit.engine import Audit
from pytest_kvmha.config.inventory import ClusterSpec
from pytest_kvmha.config.redact import redact
from pytest_kvmha.config.waivers import Waiver
from pytest_kvmha.model import ERROR, FAIL, PASS, SKIP, Finding, Scope, Severity
from pytest_kvmha.report.document import host_status
from pytest_kvmha.topology.discovery import name_list

MARKS = {
    "error": "E",
    "fail": "F",
    "waived": "w",
    "known": "k",
    "below": "b",
    "pass": ".",
    "skip": "s",
}
# When several findings fall into one cell (a pair's two member NICs), the worst one shows.
WORST = ("error", "fail", "waived", "known", "below", "pass", "skip")
LEGEND = (
    "legend: . pass  F fail  E error (not evaluated)  s skip  w waived  "
    "b failed below --kvmha-fail-on  k known since the baseline"
)
WHOLE = "all"  # the column of findings about the cluster, a member or a host, not one pair


def _column(f: Finding, pairs: Sequence[str]) -> str:
    if f.check.scope == Scope.PAIR:
        return f.subject
    if f.check.scope == Scope.MEMBER_NIC and ":" in f.subject:
        pair = f.subject.rsplit(":", 1)[1]
        if pair in pairs or not pairs:
            return pair
    return WHOLE


def _table(rows: dict[str, dict[str, str]], columns: list[str]) -> list[str]:
    width = max(len(r) for r in rows)
    lines = ["  " + " " * width + "  " + "  ".join(columns)]
    for check in sorted(rows):
        cells = [rows[check].get(c, " ").center(len(c)) for c in columns]
        lines.append(f"  {check:<{width}}  " + "  ".join(cells).rstrip())
    return lines


def _fill(rows: dict[str, dict[str, str]], check: str, column: str, outcome: str) -> None:
    cell = rows.setdefault(check, {})
    old = cell.get(column)
    if old is None or WORST.index(outcome) < WORST.index(old):
        cell[column] = outcome


def cluster_blocks(
    clusters: Iterable[ClusterSpec],
    findings: Sequence[Finding],
    outcome: Callable[[Finding], str],
) -> list[str]:
    """One block per cluster (checks as rows, pairs as columns), then one per host for the host
    checks; cells hold the worst outcome's mark."""
    lines: list[str] = []
    for c in clusters:
        mine = [f for f in findings if f.cluster == c.name]
        if not mine:
            continue
        pairs = [p.name for p in c.pairs]
        rows: dict[str, dict[str, str]] = {}
        for f in mine:
            column = _column(f, pairs)
            if column not in pairs and column != WHOLE:
                pairs.append(column)
            _fill(rows, f.check.id, column, outcome(f))
        columns = [*pairs, WHOLE]
        marked = {k: {col: MARKS[o] for col, o in v.items()} for k, v in rows.items()}
        members = ", ".join(f"{m.domain}@{m.host} ({m.role})" for m in c.members)
        lines.append(f"cluster {c.name}{' (discovered)' if c.discovered else ''}: {members}")
        lines += _table(marked, columns)
    hosts: dict[str, dict[str, dict[str, str]]] = {}
    for f in findings:
        if f.cluster is None and f.host is not None:
            _fill(hosts.setdefault(f.host, {}), f.check.id, f.host, outcome(f))
    for host, rows in sorted(hosts.items()):
        lines.append(
            f"host checks of {host}: "
            + "  ".join(f"{check} {MARKS[v[host]]}" for check, v in sorted(rows.items()))
        )
    segments: dict[str, dict[str, dict[str, str]]] = {}  # across clusters: per segment
    for f in findings:
        if f.check.scope is Scope.SEGMENT:
            _fill(segments.setdefault(f.subject, {}), f.check.id, f.subject, outcome(f))
    for segment, rows in sorted(segments.items()):
        lines.append(
            f"segment {segment}: "
            + "  ".join(f"{check} {MARKS[v[segment]]}" for check, v in sorted(rows.items()))
        )
    if lines:
        lines.append(LEGEND)
    return lines


def severity_counts(findings: Iterable[Finding], outcome: Callable[[Finding], str]) -> str:
    """``failed by severity: high 3 (1 waived), medium 1, low 1 (below threshold)``."""
    by: dict[Severity, dict[str, int]] = {}
    for f in findings:
        o = outcome(f)
        if o in ("fail", "waived", "known", "below"):
            counts = by.setdefault(f.check.severity, {})
            counts[o] = counts.get(o, 0) + 1
    parts = []
    for sev in sorted(by, reverse=True):
        counts = by[sev]
        text = f"{sev} {sum(counts.values())}"
        notes = [f"{n} {o}" for o, n in sorted(counts.items()) if o != "fail"]
        parts.append(text + (f" ({', '.join(notes)})" if notes else ""))
    return "failed by severity: " + (", ".join(parts) or "none")


class Writer(Protocol):
    def section(self, title: str, sep: str = "=", **markup: bool) -> None: ...

    def write_line(self, line: str, **markup: bool) -> None: ...


@dataclass
class AuditSummary:
    audit: Audit
    selected: Sequence[Finding]
    outcome: Callable[[Finding], str]  # what each finding does to the gate
    fail_on: Severity
    waivers: list[tuple[Waiver, str, int]]  # each waiver, its status, its matches
    strict_waivers: bool
    whatif: dict[str, Any] | None  # the report's "whatif"
    baseline: dict[str, Any] | None  # the report's "baseline"
    fail_on_new: bool
    paths: Sequence[Path | None]  # the reports written
    verdict: dict[str, Any] | None = None  # the run's one verdict (plugin.gate.decide)

    def attention(self) -> bool:
        """Anything gating or to warn about (else -q prints the report paths only)."""
        return (
            any(self.outcome(f) in ("fail", "error") for f in self.selected)
            or any(h.problems for h in self.audit.hosts)
            or (self.audit.discovery is not None and bool(self.audit.discovery.ambiguous))
            or any(s != "active" for _, s, _ in self.waivers)
            or self.whatif is not None
        )


def write_summary(tr: Writer, s: AuditSummary, quiet: bool) -> None:
    if quiet and not s.attention():
        _paths(tr, s)
        return
    tr.section("kvmha audit")
    for h in s.audit.hosts:
        line = f"host {h.name} ({h.spec}): {host_status(h)}"
        if h.error:  # the one place an unreachable host's reason is printed
            line += f" - {h.error}"
        if h.libvirt_uri:
            line += f" (libvirt {h.libvirt_uri}, from {h.libvirt_uri_from})"
        tr.write_line(redact(line), red=host_status(h) not in ("ok", "not-contacted"))
        for problem in h.problems.values():
            tr.write_line(redact(f"  problem: {problem}"), yellow=True)
    for line in cluster_blocks(s.audit.clusters, s.selected, s.outcome):
        tr.write_line(line)
    if s.audit.discovery is not None:
        for a in s.audit.discovery.ambiguous:
            names = name_list(f"{d}@{h}" for h, d in a.members)
            tr.write_line(
                f"ambiguous layout ({', '.join(a.layout)}): {names}: {a.reason}", yellow=True
            )
    _counts(tr, s)
    for w, status, n in s.waivers:
        text = f"waiver[{w.index}] {w.ticket} ({w.check}): {status}"
        if status == "active":
            tr.write_line(f"{text}, waives {n} until {w.expires}")
        elif status == "expired":
            tr.write_line(f"{text} on {w.expires}: no longer waives", yellow=True)
        else:
            strict = " (--kvmha-strict-waivers: the run fails)" if s.strict_waivers else ""
            tr.write_line(f"{text}: matches no failed finding{strict}", yellow=True)
    if s.whatif is not None:
        _whatif(tr, s.whatif)
    if s.baseline is not None:
        _baseline(tr, s.baseline, s.fail_on_new)
    if s.verdict is not None:
        v = s.verdict
        head = "gate passed" if v["passed"] else "gate failed"
        tr.write_line(
            redact(f"kvmha verdict: {head} (exit status {v['exit_status']}): {v['reason']}"),
            red=not v["passed"],
            green=bool(v["passed"]),
        )
    _paths(tr, s)


def _paths(tr: Writer, s: AuditSummary) -> None:
    for path in s.paths:
        if path:
            tr.write_line(f"kvmha report: {path}")


def _counts(tr: Writer, s: AuditSummary) -> None:
    counts: dict[str, int] = {}  # by finding status
    gates: dict[str, int] = {}  # by what each failure does to the gate
    for f in s.selected:
        counts[f.status] = counts.get(f.status, 0) + 1
        if f.status == FAIL:
            gates[s.outcome(f)] = gates.get(s.outcome(f), 0) + 1
    summary = ", ".join(f"{counts[x]} {x}" for x in (ERROR, FAIL, PASS, SKIP) if x in counts)
    # Why pytest's count line differs: failures that pass (or xfail) their items.
    why = f"{gates.get('below', 0)} failed below it"
    if gates.get("waived"):
        why += f", {gates['waived']} waived (xfailed)"
    if gates.get("known"):
        why += f", {gates['known']} known since the baseline (passed)"
    tr.write_line(f"findings: {summary or 'none'} (fail-on {s.fail_on}; {why})")
    tr.write_line(severity_counts(s.selected, s.outcome))


def _whatif(tr: Writer, w: dict[str, Any]) -> None:
    tr.section("kvmha what-if")
    steps, refused = w["steps"], w["refused"]
    word = "step" if len(steps) == 1 else "steps"
    tr.write_line(f"plan: {len(steps)} {word}" + (f", {len(refused)} refused" if refused else ""))
    cluster = None
    for i, step in enumerate(steps):
        if step.get("cluster") and step["cluster"] != cluster:
            cluster = step["cluster"]
            tr.write_line(f"  cluster {cluster}:")
        cut = step.get("heartbeat_cut")
        mark = "!!" if cut else "  "
        tr.write_line(
            f"{mark}{i + 1:2}. [{step['host']}] {step['command'].splitlines()[0]}", red=bool(cut)
        )
        if step.get("reason"):
            fixes = step.get("fixes") or []
            tr.write_line(
                f"      # {step['reason']}" + (f" (fixes {', '.join(fixes)})" if fixes else "")
            )
        for line in (step["diff"] or "").splitlines():
            tr.write_line(f"      {line}")  # "the XML below": virsh define's diff
        if step.get("gate"):
            tr.write_line(f"      -- gate: trace heartbeat pair {', '.join(step['gate'])}")
    for r in refused:
        tr.write_line(f"  refused: {r}", red=True)
    for n in w["notes"]:
        tr.write_line(f"  note: {n}", yellow=True)
    introduced = w["introduced"]
    tr.write_line(
        f"after the change: {len(w['fixed'])} fixed, {len(introduced)} introduced, "
        f"{len(w['unchanged'])} still failing",
        red=bool(introduced),
        green=not introduced,
    )
    for k in introduced:
        by = f" by step {k['step']}" if k["step"] is not None else ""
        tr.write_line(f"  introduced{by}: {_key(k)}", red=True)


def _baseline(tr: Writer, b: dict[str, Any], fail_on_new: bool) -> None:
    tr.write_line(
        f"baseline {b['path']}: {len(b['new'])} new, {len(b['resolved'])} resolved, "
        f"{len(b['unchanged'])} unchanged"
        + ("; gating on new findings only" if fail_on_new else "")
    )
    for k in b["new"]:
        tr.write_line(f"  new: {_key(k)}", red=True)
    for k in b["resolved"]:
        tr.write_line(f"  resolved: {_key(k)}", green=True)


def _key(k: dict[str, Any]) -> str:
    return f"{k['check']}[{k['subject']}] ({k['cluster'] or k['host']})"
