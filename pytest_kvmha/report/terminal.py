"""The kvmha audit summary at the end of a run: hosts, one line per cluster (and host) with its
outcomes, what does not apply to it, its matrix (checks with their titles x pairs, failing
first; every check with -v), the failures that do not gate, counts beside pytest's, waivers, the
what-if and the baseline. Findings and each finding's gate outcome in, lines out (to the
terminal reporter, whose writer colours them: --color and NO_COLOR are pytest's)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pytest_kvmha.audit.applicable import NotApplicable
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
# When several findings fall into one cell (a pair's two member NICs), the worst one shows;
# rows and counts go in this order too (failing first).
WORST = ("error", "fail", "waived", "known", "below", "pass", "skip")
QUIET = ("pass", "skip")  # rows with only these marks are shown with -v only
MEANING = {
    ".": "pass",
    "F": "fail",
    "E": "error (not evaluated)",
    "s": "skip",
    "w": "waived",
    "b": "failed below --kvmha-fail-on",
    "k": "known since the baseline",
}
WHOLE = "all"  # the column of findings about the cluster, a member or a host, not one pair
MIN_TITLE = 30  # a title is cut to the terminal's width, never shorter than this


def _column(f: Finding, pairs: Sequence[str]) -> str:
    if f.check.scope == Scope.PAIR:
        return f.subject
    if f.check.scope == Scope.MEMBER_NIC and ":" in f.subject:
        pair = f.subject.rsplit(":", 1)[1]
        if pair in pairs or not pairs:
            return pair
    return WHOLE


def _fill(rows: dict[str, dict[str, str]], check: str, column: str, outcome: str) -> None:
    cell = rows.setdefault(check, {})
    old = cell.get(column)
    if old is None or WORST.index(outcome) < WORST.index(old):
        cell[column] = outcome


def _worst(outcomes: Iterable[str]) -> str:
    return min(outcomes, key=WORST.index, default="skip")


def _markup(outcome: str) -> dict[str, bool]:
    """The colour of a line whose worst outcome is ``outcome`` (pytest's writer drops it
    under --color=no, NO_COLOR and when not on a terminal)."""
    if outcome in ("error", "fail"):
        return {"red": True}
    if outcome in ("waived", "known", "below"):
        return {"yellow": True}
    return {"green": True} if outcome == "pass" else {}


def outcome_counts(outcomes: Iterable[str]) -> str:
    """``3 fail, 1 below, 8 pass, 6 skip`` (failing first)."""
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o] = counts.get(o, 0) + 1
    return ", ".join(f"{counts[o]} {o}" for o in WORST if o in counts) or "no findings"


@dataclass(frozen=True)
class Line:
    text: str
    markup: dict[str, bool]


@dataclass
class Block:
    """One cluster's (or host's) part of the summary: its line, what does not apply, the rows."""

    head: Line
    notes: list[Line]
    rows: list[Line]  # the column header first (when there are rows)
    hidden: int  # rows left out (only pass or skip) below -v
    marks: set[str] = field(default_factory=set)  # the marks in the rows shown


def _title(title: str, room: int) -> str:
    room = max(room, MIN_TITLE)
    return title if len(title) <= room else title[: room - 3] + "..."


def _rows(
    rows: dict[str, dict[str, str]],
    columns: list[str],
    titles: dict[str, str],
    verbose: bool,
    width: int,
) -> tuple[list[Line], int, set[str]]:
    """Checks as rows (failing first; with their titles), one column per pair (or host); how
    many rows were left out, and the marks of those shown."""
    shown = [c for c in rows if verbose or any(o not in QUIET for o in rows[c].values())]
    if not shown:
        return [], len(rows), set()
    name = max(len(c) for c in rows)
    shown.sort(key=lambda c: (WORST.index(_worst(rows[c].values())), c))
    lines = [Line("  " + " " * name + "  " + "  ".join(columns), {})]
    marks: set[str] = set()
    for check in shown:
        cells = "  ".join(
            (MARKS[rows[check][c]] if c in rows[check] else " ").center(len(c)) for c in columns
        )
        marks.update(MARKS[o] for o in rows[check].values())
        text = f"  {check:<{name}}  {cells}  "
        text += _title(titles.get(check, ""), width - len(text))
        lines.append(Line(text.rstrip(), _markup(_worst(rows[check].values()))))
    return lines, len(rows) - len(shown), marks


def cluster_blocks(
    clusters: Iterable[ClusterSpec],
    findings: Sequence[Finding],
    outcome: Callable[[Finding], str],
    *,
    not_applicable: Sequence[NotApplicable] = (),
    verbose: bool = False,
    width: int = 80,
) -> list[Block]:
    """One block per cluster (checks as rows, pairs as columns), then one per host for the host
    checks; cells hold the worst outcome's mark."""
    blocks: list[Block] = []
    titles = {f.check.id: f.check.title for f in findings}
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
        members = ", ".join(f"{m.domain}@{m.host} ({m.role})" for m in c.members)
        outcomes = [outcome(f) for f in mine]
        head = f"cluster {c.name}{' (discovered)' if c.discovered else ''}: {members}: "
        notes = [
            Line(
                f"  {n.line}" + (f": {', '.join(n.checks)}" if verbose else ""),
                {},
            )
            for n in not_applicable
            if n.cluster == c.name
        ]
        lines, hidden, marks = _rows(rows, [*pairs, WHOLE], titles, verbose, width)
        top = Line(head + outcome_counts(outcomes), _markup(_worst(outcomes)))
        blocks.append(Block(top, notes, lines, hidden, marks))
    hosts: dict[str, dict[str, dict[str, str]]] = {}
    for f in findings:
        if f.cluster is None and f.host is not None:
            _fill(hosts.setdefault(f.host, {}), f.check.id, f.host, outcome(f))
    for host, rows in sorted(hosts.items()):
        outcomes = [o for r in rows.values() for o in r.values()]
        # one column, no header: the block's line names the host
        one = {check: {"": r[host]} for check, r in rows.items()}
        lines, hidden, marks = _rows(one, [""], titles, verbose, width)
        top = Line(f"host checks of {host}: {outcome_counts(outcomes)}", _markup(_worst(outcomes)))
        blocks.append(Block(top, [], lines[1:], hidden, marks))
    segments: dict[str, dict[str, dict[str, str]]] = {}  # across clusters: per segment
    for f in findings:
        if f.check.scope is Scope.SEGMENT:
            _fill(segments.setdefault(f.subject, {}), f.check.id, "", outcome(f))
    for segment, rows in sorted(segments.items()):
        outcomes = [o for r in rows.values() for o in r.values()]
        lines, hidden, marks = _rows(rows, [""], titles, verbose, width)
        top = Line(f"segment {segment}: {outcome_counts(outcomes)}", _markup(_worst(outcomes)))
        blocks.append(Block(top, [], lines[1:], hidden, marks))
    return blocks


def legend(blocks: Sequence[Block]) -> str:
    """The marks of the rows shown, and whether -v would show more rows."""
    used = {m for b in blocks for m in b.marks}
    parts = [f"{m} {what}" for m, what in MEANING.items() if m in used]
    if any(b.hidden for b in blocks):
        parts.append("(-v: also the checks that only pass or skip)")
    return "legend: " + "  ".join(parts)


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

    def line(self, msg: str, **markup: bool) -> None: ...


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
    not_applicable: Sequence[NotApplicable] = ()  # checks that are no items, per cluster
    whatif_not_applicable: Sequence[NotApplicable] = ()  # the same for the wanted clusters
    verbosity: int = 0  # pytest's: -v shows every check's row
    width: int = 80  # the terminal's: titles are cut to it
    # items pytest counts beside these findings' own: what-if items, tests beside the audit
    beside: dict[str, int] = field(default_factory=dict)

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
        tr.line(redact(line), red=host_status(h) not in ("ok", "not-contacted"))
        for problem in h.problems.values():
            tr.line(redact(f"  problem: {problem}"), yellow=True)
    blocks = cluster_blocks(
        s.audit.clusters,
        s.selected,
        s.outcome,
        not_applicable=s.not_applicable,
        verbose=s.verbosity > 0,
        width=s.width,
    )
    for b in blocks:
        for row in (b.head, *b.notes, *b.rows):
            tr.line(row.text, **row.markup)
    if blocks:
        tr.line(legend(blocks))
    if s.audit.discovery is not None:
        for a in s.audit.discovery.ambiguous:
            names = name_list(f"{d}@{h}" for h, d in a.members)
            tr.line(f"ambiguous layout ({', '.join(a.layout)}): {names}: {a.reason}", yellow=True)
    _not_gating(tr, s)
    _counts(tr, s)
    for w, status, n in s.waivers:
        text = f"waiver[{w.index}] {w.ticket} ({w.check}): {status}"
        if status == "active":
            tr.line(f"{text}, waives {n} until {w.expires}")
        elif status == "expired":
            tr.line(f"{text} on {w.expires}: no longer waives", yellow=True)
        else:
            strict = " (--kvmha-strict-waivers: the run fails)" if s.strict_waivers else ""
            tr.line(f"{text}: matches no failed finding{strict}", yellow=True)
    if s.whatif is not None:
        _whatif(tr, s.whatif)
        for na in s.whatif_not_applicable:
            tr.line(f"  cluster {na.cluster}: {na.line}")
    if s.baseline is not None:
        _baseline(tr, s.baseline, s.fail_on_new)
    if s.verdict is not None:
        v = s.verdict
        head = "gate passed" if v["passed"] else "gate failed"
        tr.line(
            redact(f"kvmha verdict: {head} (exit status {v['exit_status']}): {v['reason']}"),
            red=not v["passed"],
            green=bool(v["passed"]),
        )
    _paths(tr, s)


def _paths(tr: Writer, s: AuditSummary) -> None:
    for path in s.paths:
        if path:
            tr.line(f"kvmha report: {path}")


NOT_GATING_SHOWN = 10  # per kind; the reports list them all
DETAIL_SHOWN = 120


def _safe(text: str) -> str:
    """Host text for a terminal: every control character (C0, DEL, C1) as ``\\xNN``, so no
    escape sequence or newline from a host reaches the terminal."""
    return "".join(
        f"\\x{ord(ch):02x}" if ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0 else ch for ch in text
    )


def _not_gating(tr: Writer, s: AuditSummary) -> None:
    """The failures that do not fail the run, each on one line: below the threshold, known
    since the baseline (waived ones: the waiver lines and pytest's xfail)."""
    heads = {
        "below": f"below --kvmha-fail-on={s.fail_on} (their items pass):",
        "known": (
            f"known since the baseline {s.baseline['path'] if s.baseline else ''}"
            " (--kvmha-fail-on-new; their items pass):"
        ),
    }
    for kind, head in heads.items():
        found = [f for f in s.selected if s.outcome(f) == kind]
        if not found:
            continue
        tr.line(f"not gating, {head}", yellow=True)
        for f in found[:NOT_GATING_SHOWN]:
            detail = f.detail if len(f.detail) <= DETAIL_SHOWN else f.detail[:DETAIL_SHOWN] + "..."
            tr.line(_safe(redact(f"  {f.nodeid} ({f.check.severity}): {detail}")))
        if len(found) > NOT_GATING_SHOWN:
            tr.line(f"  and {len(found) - NOT_GATING_SHOWN} more (the reports list them)")


# pytest's outcome of an audit item, by what its finding does to the gate
PYTEST_OUTCOME = {
    "fail": "failed",
    "pass": "passed",
    "below": "passed",
    "known": "passed",
    "skip": "skipped",
    "waived": "xfailed",
    "error": "errors",
}
PYTEST_ORDER = ("failed", "passed", "skipped", "xfailed", "errors")


def _counts(tr: Writer, s: AuditSummary) -> None:
    """The findings by status beside what pytest's last line counts for their items, with the
    difference explained on the line."""
    counts: dict[str, int] = {}  # by finding status
    items: dict[str, int] = {}  # by pytest outcome
    gates: dict[str, int] = {}  # by what each failure does to the gate
    for f in s.selected:
        counts[f.status] = counts.get(f.status, 0) + 1
        o = s.outcome(f)
        items[PYTEST_OUTCOME[o]] = items.get(PYTEST_OUTCOME[o], 0) + 1
        gates[o] = gates.get(o, 0) + 1
    summary = ", ".join(f"{counts[x]} {x}" for x in (ERROR, FAIL, PASS, SKIP) if x in counts)
    pytest_line = ", ".join(
        f"{items[x]} {'error' if x == 'errors' and items[x] == 1 else x}"
        for x in PYTEST_ORDER
        if x in items
    )
    why = []  # failures whose items do not fail
    if gates.get("below"):
        why.append(f"{gates['below']} below fail-on passed")
    if gates.get("known"):
        why.append(f"{gates['known']} known since the baseline passed")
    if gates.get("waived"):
        why.append(f"{gates['waived']} waived xfailed")
    beside = [f"{n} {what}" for what, n in s.beside.items() if n]
    if beside:
        why.append(f"pytest also counts {' and '.join(beside)}")
    tr.line(
        f"findings: {summary or 'none'} (fail-on {s.fail_on}); "
        f"pytest: {pytest_line or 'none'}" + (f" ({'; '.join(why)})" if why else "")
    )
    tr.line(severity_counts(s.selected, s.outcome))


def _whatif(tr: Writer, w: dict[str, Any]) -> None:
    tr.section("kvmha what-if")
    steps, refused = w["steps"], w["refused"]
    word = "step" if len(steps) == 1 else "steps"
    tr.line(f"plan: {len(steps)} {word}" + (f", {len(refused)} refused" if refused else ""))
    cluster = None
    for i, step in enumerate(steps):
        if step.get("cluster") and step["cluster"] != cluster:
            cluster = step["cluster"]
            tr.line(f"  cluster {cluster}:")
        cut = step.get("heartbeat_cut")
        mark = "!!" if cut else "  "
        tr.line(
            f"{mark}{i + 1:2}. [{step['host']}] {step['command'].splitlines()[0]}", red=bool(cut)
        )
        if step.get("reason"):
            fixes = step.get("fixes") or []
            tr.line(f"      # {step['reason']}" + (f" (fixes {', '.join(fixes)})" if fixes else ""))
        for line in (step["diff"] or "").splitlines():
            tr.line(f"      {line}")  # "the XML below": virsh define's diff
        if step.get("gate"):
            tr.line(f"      -- gate: trace heartbeat pair {', '.join(step['gate'])}")
    for r in refused:
        tr.line(f"  refused: {r}", red=True)
    for n in w["notes"]:
        tr.line(f"  note: {n}", yellow=True)
    introduced = w["introduced"]
    tr.line(
        f"after the change: {len(w['fixed'])} fixed, {len(introduced)} introduced, "
        f"{len(w['unchanged'])} still failing",
        red=bool(introduced),
        green=not introduced,
    )
    for k in introduced:
        by = f" by step {k['step']}" if k["step"] is not None else ""
        tr.line(f"  introduced{by}: {_key(k)}", red=True)


def _baseline(tr: Writer, b: dict[str, Any], fail_on_new: bool) -> None:
    tr.line(
        f"baseline {b['path']}: {len(b['new'])} new, {len(b['resolved'])} resolved, "
        f"{len(b['unchanged'])} unchanged"
        + ("; gating on new findings only" if fail_on_new else "")
    )
    for k in b["new"]:
        tr.line(f"  new: {_key(k)}", red=True)
    for k in b["resolved"]:
        tr.line(f"  resolved: {_key(k)}", green=True)


def _key(k: dict[str, Any]) -> str:
    return f"{k['check']}[{k['subject']}] ({k['cluster'] or k['host']})"
