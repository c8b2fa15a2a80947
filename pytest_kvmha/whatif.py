"""Pre-change validation: audit the hosts as a plan would leave them, without touching them,
and compare audits (what-if, and ``--kvmha-baseline``). Pure: facts in, findings out."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .engine import run_checks
from .facts import HostFacts
from .inventory import ClusterSpec
from .model import ERROR, FAIL, Check, Finding, Scope, Severity, Verdict

Key = tuple[str, str | None, str | None, str]  # (check, host, cluster, subject)
BAD = (FAIL, ERROR)


def _refused(cluster: object) -> Verdict:  # never run: refusals are made by what_if()
    raise NotImplementedError


# Not in the catalogue (it judges a plan, not a host): the gate's item for a refused plan.
PLAN_REFUSED = Check(
    "KVMHA-PLAN-001",
    "The wanted cluster can be planned",
    Severity.CRITICAL,
    Scope.CLUSTER,
    "A plan that is refused changes nothing: the pre-change validation has not validated "
    "the change, so the gate must not pass.",
    "Fix what the refusal names (in the wanted file or on the hosts), then validate again.",
    "pytest-kvmha: fixtures/plan.py (PlanRefused)",
    _refused,
)


def key_of(f: Finding) -> Key:
    return (f.check.id, f.host, f.cluster, f.subject)


def key_json(k: Key) -> dict[str, str | None]:
    return {"check": k[0], "host": k[1], "cluster": k[2], "subject": k[3]}


@dataclass
class WhatIf:
    steps: list[Any]  # fixtures.actions.Step
    refused: list[str]
    notes: list[str]
    findings: tuple[Finding, ...]  # KVMHA-PLAN-001 errors of refused clusters, then the audit
    fixed: list[Key]
    introduced: list[Key]
    unchanged: list[Key]
    culprit: dict[Key, int] = field(default_factory=dict)  # introduced finding -> step index

    def as_json(self) -> dict[str, Any]:
        return {
            "steps": [
                {
                    "host": s.host,
                    "command": s.command,
                    "reason": s.reason,
                    "diff": s.as_json().get("diff"),  # virsh define: the XML, now -> planned
                }
                for s in self.steps
            ],
            "refused": self.refused,
            "notes": self.notes,
            "findings": [f.as_json() for f in self.findings],
            "fixed": [key_json(k) for k in self.fixed],
            "introduced": [
                {**key_json(k), "step": self.culprit[k] + 1 if k in self.culprit else None}
                for k in self.introduced
            ],
            "unchanged": [key_json(k) for k in self.unchanged],
        }


def what_if(
    checks: Sequence[Check],
    hosts: Sequence[HostFacts],
    wanted: Sequence[ClusterSpec],
    now: Sequence[Finding],
    *,
    current: Sequence[ClusterSpec] = (),
    datapath_type: str = "system",
) -> WhatIf:
    """Plan every wanted cluster against the current facts, apply the plans in memory, audit.

    The audit after the change covers the wanted clusters and every current cluster that the
    wanted file does not redefine: a plan for one cluster must not break another."""
    from .fixtures.actions import simulate_steps
    from .fixtures.plan import PlanOptions, PlanRefused, plan_cluster

    by_name = {h.name: h for h in hosts}
    steps, refused, notes = [], [], []
    refusals: list[Finding] = []
    for cluster in wanted:
        try:
            planned = plan_cluster(cluster, by_name, PlanOptions(datapath_type))
        except PlanRefused as exc:
            refused.append(str(exc))
            refusals.append(
                Finding(PLAN_REFUSED, ERROR, cluster.name, str(exc), None, cluster.name)
            )
            continue
        steps += planned.steps
        notes += planned.notes
        # Later clusters are planned against the state the earlier plans leave.
        by_name = simulate_steps(planned.steps, by_name)
    names = {c.name for c in wanted}
    audited = [*wanted, *(c for c in current if c.name not in names)]
    after_hosts = [_simulated(h, by_name[h.name]) for h in hosts]
    after = run_checks(checks, after_hosts, audited)
    result = compare(now, after)
    culprit: dict[Key, int] = {}
    introduced = set(result.introduced)
    if introduced:
        # Name the step that breaks each: the first prefix of the plan after which it fails.
        state = {h.name: h for h in hosts}
        for index, step in enumerate(steps):
            state = simulate_steps([step], state)
            partial = run_checks(checks, [_simulated(h, state[h.name]) for h in hosts], audited)
            for f in partial:
                k = key_of(f)
                if k in introduced and f.status in BAD and k not in culprit:
                    culprit[k] = index
    return WhatIf(
        steps,
        refused,
        notes,
        (*refusals, *after),
        result.fixed,
        result.introduced,
        result.unchanged,
        culprit,
    )


def _simulated(before: HostFacts, after: HostFacts) -> HostFacts:
    """``after``, its recorded traces marked as predating the change when the plan changed the
    host (ofproto/trace evidence cannot be simulated: KVMHA-TRACE-001 then skips)."""
    if after is before or after.traces is None:
        return after
    from dataclasses import replace

    return replace(after, traces=replace(after.traces, simulated=True))


@dataclass
class Comparison:
    fixed: list[Key]
    introduced: list[Key]
    unchanged: list[Key]


def compare(before: Iterable[Finding], after: Iterable[Finding]) -> Comparison:
    return compare_status(
        {key_of(f): f.status for f in before}, {key_of(f): f.status for f in after}
    )


def compare_status(before: Mapping[Key, str], after: Mapping[Key, str]) -> Comparison:
    """Fixed: bad before, not after. Introduced: bad after and not bad before (new subjects
    included). Unchanged: bad in both."""
    fixed = sorted(k for k, s in before.items() if s in BAD and after.get(k) not in BAD)
    introduced = sorted(k for k, s in after.items() if s in BAD and before.get(k) not in BAD)
    unchanged = sorted(k for k, s in after.items() if s in BAD and before.get(k) in BAD)
    return Comparison(fixed, introduced, unchanged)


def load_baseline(report: Mapping[str, Any], source: str) -> dict[Key, str]:
    """Findings of an earlier JSON report (schema kvmha-report/1)."""
    if report.get("schema") != "kvmha-report/1" or not isinstance(report.get("findings"), list):
        raise ValueError(f"{source}: not a kvmha-report/1 JSON report")
    out: dict[Key, str] = {}
    for i, f in enumerate(report["findings"]):
        try:
            out[(f["check"], f["host"], f["cluster"], f["subject"])] = f["status"]
        except (KeyError, TypeError):
            raise ValueError(
                f"{source}: findings[{i}] lacks check/host/cluster/subject/status"
            ) from None
    return out
