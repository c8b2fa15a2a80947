"""The gate: what each finding does to the run (fail it, or pass as waived, below the threshold
or known since the baseline), and the waivers' statuses."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from fnmatch import fnmatchcase

from pytest_kvmha.audit.engine import finding_hosts
from pytest_kvmha.config.waivers import Match, Waiver, match, statuses
from pytest_kvmha.model import FAIL, Finding, key_of
from pytest_kvmha.plugin.state import KvmhaState, RunVerdict

PASSED, FAILED, ERRORED, SKIPPED = "pass", "fail", "error", "skip"
WAIVED, BELOW, KNOWN = "waived", "below", "known"
NOT_EVALUATED = "not-evaluated"  # waiver status: it may be about a host that was not contacted


def gate_of(state: KvmhaState, f: Finding, culprit: str | None = None) -> str:
    """What a finding does to the gate: pass, fail, error, skip, or a failure that does not gate
    (waived; below the threshold; known since the baseline with --kvmha-fail-on-new)."""
    if f.status != FAIL:
        return f.status
    if culprit:  # a regression a plan would introduce fails whatever its severity
        return FAILED
    if state.waivers and waiver_match(state, f).waiver is not None:
        return WAIVED
    if f.check.severity < state.fail_on:
        return BELOW
    # Known only if it *failed* then: an error in the baseline proved nothing.
    if (
        state.fail_on_new
        and state.baseline is not None
        and state.baseline.get(key_of(f)) == FAIL
        and audited_by_baseline(state, f)
    ):
        return KNOWN
    return FAILED


def audited_by_baseline(state: KvmhaState, f: Finding) -> bool:
    """Whether the baseline audited every host the finding is about (same machine identity,
    else same spec): a baseline recorded on other hosts makes nothing "known"."""
    from pytest_kvmha.config.redact import redact
    from pytest_kvmha.report.baseline import same_host

    facts = {h.name: h for h in state.audit.hosts} if state.audit is not None else {}
    names = finding_hosts(state.audit.clusters if state.audit is not None else (), f)
    if not names:
        return False
    for name in names:
        h = facts.get(name)
        if h is None or not same_host(state.baseline_hosts.get(name), (redact(h.spec), h.identity)):
            return False
    return True


def waiver_match(state: KvmhaState, f: Finding) -> Match:
    return match(state.waivers, f, state.today)


def waiver_statuses(state: KvmhaState) -> list[tuple[Waiver, str, int]]:
    """Each waiver, its status and how many failed findings it matches.

    Over every finding of the audit, not the -k selection: a waiver is stale when the whole
    audit has nothing for it. A host that was not contacted was not audited: a waiver that
    could be about it is "not-evaluated" there, never stale (a pruned run must not fail
    --kvmha-strict-waivers where the full run passes)."""
    out = statuses(state.waivers, state.audit.findings if state.audit else (), state.today)
    skipped = list(state.not_contacted)
    if not skipped:
        return out

    def about_skipped(w: Waiver) -> bool:
        return w.host is None or any(fnmatchcase(h, w.host) for h in skipped)

    return [
        (w, NOT_EVALUATED if status == "stale" and about_skipped(w) else status, n)
        for w, status, n in out
    ]


def stale(state: KvmhaState) -> list[Waiver]:
    return [w for w, status, _ in waiver_statuses(state) if status == "stale"]


GATING = (FAILED, ERRORED)


def decide(
    gates: Mapping[str, str],
    *,
    errors: Sequence[str],
    strict_stale: int,
    exit_status: int,
) -> RunVerdict:
    """The verdict from each selected item's gate outcome (what-if items included: a refused
    plan is a ``KVMHA-PLAN-001`` error there), the run's errors, the stale waivers under
    --kvmha-strict-waivers and pytest's own exit status (tests beside the audit, usage errors).
    A reason to fail with pytest's status still 0 makes the status 1: the verdict decides."""
    reasons = []
    failed = sorted(n for n, g in gates.items() if g == FAILED)
    errored = sorted(n for n, g in gates.items() if g == ERRORED)
    refused = [n for n in errored if "/KVMHA-PLAN-001[" in n]
    if refused:
        reasons.append(f"plan refused: {', '.join(refused)}")
    if failed:
        reasons.append(f"{len(failed)} gating failure(s): {_few(failed)}")
    rest = [n for n in errored if n not in refused]
    if rest:
        reasons.append(f"{len(rest)} error(s): {_few(rest)}")
    reasons += list(errors)
    if strict_stale:
        reasons.append(f"{strict_stale} stale waiver(s) under --kvmha-strict-waivers")
    if reasons and exit_status == 0:
        exit_status = 1
    if exit_status and not reasons:
        reasons.append(f"pytest exit status {exit_status} (tests beside the audit, or stopped)")
    return RunVerdict(exit_status == 0, exit_status, "; ".join(reasons) or "nothing gating")


def _few(nodeids: Sequence[str], most: int = 5) -> str:
    more = len(nodeids) - most
    return ", ".join(nodeids[:most]) + (f" and {more} more" if more > 0 else "")
