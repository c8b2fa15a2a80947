"""The compact terminal block per cluster: pairs x checks, one mark per cell. Pure: findings and
each finding's gate outcome in, text lines out."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from pytest_kvmha.config.inventory import ClusterSpec
from pytest_kvmha.model import Finding, Scope, Severity

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
