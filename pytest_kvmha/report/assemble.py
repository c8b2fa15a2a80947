"""The report of one run: the document of :func:`build_report` with what the gate decided
(waivers, known failures), the baseline comparison and the what-if added, written as JSON,
Markdown and HTML. The plugin hands in its results; nothing here decides a gate."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_kvmha.audit.engine import Audit
from pytest_kvmha.model import Finding
from pytest_kvmha.report.document import build_report, render_markdown, write_report, write_text


@dataclass
class WaiverReport:
    """The waivers of a run: which waiver waives each finding (or only an expired one
    matched), and every waiver with its status and number of matches."""

    path: str | None
    strict: bool
    waived: dict[str, dict[str, Any]] = field(default_factory=dict)  # nodeid -> waiver
    expired: dict[str, dict[str, Any]] = field(default_factory=dict)  # nodeid -> waiver
    waivers: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class ReportPaths:
    json: Path | None = None
    markdown: Path | None = None
    html: Path | None = None

    def __iter__(self) -> Iterator[Path | None]:
        return iter((self.json, self.markdown, self.html))

    def any(self) -> bool:
        return any(p is not None for p in self)


def assemble_report(
    audit: Audit | None,
    selected: Sequence[Finding],
    *,
    fail_on: str,
    errors: Sequence[str],
    rounds: dict[str, int],
    digests: dict[str, str],
    started: float,
    metrics: dict[str, dict[str, Any]],
    not_contacted: Mapping[str, str],
    whatif: dict[str, Any] | None = None,
    baseline: dict[str, Any] | None = None,
    waivers: WaiverReport | None = None,
    known: set[str] | None = None,
    gating: set[str] | None = None,
    verdict: dict[str, Any] | None = None,
    not_applicable: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """``known``: with --kvmha-fail-on-new, the node ids of the failures the gate let pass as
    known since the baseline; ``gating``: the node ids of the findings that fail the run;
    ``verdict``: the run's one verdict (passed, exit status, reason), printed by every format;
    ``not_applicable``: per cluster, the checks that do not apply to it at all (no findings,
    no items: :mod:`pytest_kvmha.audit.applicable`)."""
    report = build_report(
        audit.hosts if audit else [],
        audit.clusters if audit else [],
        selected,
        fail_on=fail_on,
        errors=errors,
        rounds=rounds,
        digests=digests,
        started=started,
        metrics=metrics,
    )
    if verdict is not None:
        report["verdict"] = verdict
    if not_applicable:
        report["not_applicable"] = list(not_applicable)
    if gating is not None:
        for entry in report["findings"]:
            entry["gating"] = entry["nodeid"] in gating
    if not_contacted:
        report["not_contacted"] = dict(not_contacted)
    if audit is not None and audit.discovery is not None:
        report["discovery"] = audit.discovery.as_json()
    if whatif is not None:
        report["whatif"] = whatif
    if baseline is not None:
        report["baseline"] = baseline
    if waivers is not None:
        for entry in report["findings"]:
            if entry["nodeid"] in waivers.waived:
                entry["waived"] = waivers.waived[entry["nodeid"]]
            elif entry["nodeid"] in waivers.expired:
                entry["waiver_expired"] = waivers.expired[entry["nodeid"]]
        report["waivers"] = waivers.waivers
        report["waivers_path"] = waivers.path
        report["strict_waivers"] = waivers.strict  # a stale waiver then fails the run
    if known is not None:
        for entry in report["findings"]:
            if entry["nodeid"] in known:
                entry["known_since_baseline"] = True
    return report


def write_reports(report: dict[str, Any], paths: ReportPaths) -> None:
    if paths.json is not None:
        write_report(paths.json, report)
    if paths.markdown is not None:
        write_text(paths.markdown, render_markdown(report))
    if paths.html is not None:
        from pytest_kvmha.report.html import render_html

        write_text(paths.html, render_html(report))
