"""The audit items: one per finding under the ``kvmha`` collector (``kvmha-whatif`` for the
audit after a planned change), their outcome by the gate, and their failure text."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_kvmha.audit.applicable import split_not_applicable
from pytest_kvmha.audit.engine import finding_hosts
from pytest_kvmha.model import DEPENDS_ON, ERROR, FAIL, SKIP, Finding, key_of
from pytest_kvmha.plugin.gate import GATING, WAIVED, gate_of, waiver_match
from pytest_kvmha.plugin.selection import audit_items_wanted
from pytest_kvmha.plugin.state import KvmhaState


class KvmhaCollector(pytest.Collector):
    """The root of all audit items: ``kvmha``."""

    def __init__(self, *, state: KvmhaState, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.state = state

    def collect(self) -> list[pytest.Item]:
        """One item per finding; the skips of checks that do not apply to a cluster at all
        are none (see :mod:`pytest_kvmha.audit.applicable`: the state keeps them)."""
        state = self.state
        items: list[pytest.Item] = []

        def item(name: str, nodeid: str, f: Finding, **whatif: Any) -> pytest.Item:
            return KvmhaItem.from_parent(
                self, name=name, nodeid=nodeid, finding=f, state=state, **whatif
            )

        if audit_items_wanted(self.config) and state.audit is not None:
            findings, state.not_applicable = split_not_applicable(
                state.audit.findings, state.audit.clusters, state.nodeids
            )
            items += [item(f.nodeid.split("/", 1)[1], f.nodeid, f) for f in findings]
        if state.whatif is not None:
            introduced = set(state.whatif.introduced)
            wanted = state.wanted.clusters if state.wanted is not None else ()
            findings, state.whatif_not_applicable = split_not_applicable(
                state.whatif.findings, wanted, state.nodeids, root="kvmha-whatif"
            )
            for f in findings:
                culprit = None
                if key_of(f) in introduced:
                    index = state.whatif.culprit.get(key_of(f))
                    step = state.whatif.steps[index] if index is not None else None
                    culprit = (
                        f"introduced by the plan: step {index + 1} on {step.host}: {step.command.splitlines()[0]}"
                        if step is not None and index is not None
                        else "introduced by the plan"
                    )
                nodeid = "kvmha-whatif/" + f.nodeid.split("/", 1)[1]
                items.append(item(nodeid, nodeid, f, whatif=True, culprit=culprit))
        return items


class KvmhaFinding(Exception):
    """A failed finding at or above the threshold."""


class KvmhaItem(pytest.Item):
    def __init__(
        self,
        *,
        finding: Finding,
        state: KvmhaState,
        whatif: bool = False,
        culprit: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.finding = finding
        self.state = state
        self.whatif = whatif
        self.culprit = culprit  # what-if: the plan step that breaks a finding that passes today
        if whatif:
            self.extra_keyword_matches.add("whatif")
        self.add_marker(pytest.mark.kvmha)
        self.add_marker(str(finding.check.severity))  # -m critical
        # -k matches these as whole words: "-k critical", "-k KVMHA-OVS-002" (and node names)
        self.extra_keyword_matches.update({finding.check.id, str(finding.check.severity)})
        # imported here: pytest imports it as a plugin first (pytest_configure)
        from pytest_kvmha.report.junit import junit_properties

        # what the finding does to the gate, decided once: the run's verdict and JUnit's
        # "gating" property both read it (a waived or known failure does not gate)
        self.gate = gate_of(state, finding, culprit)
        self.user_properties += junit_properties(
            finding, state.fail_on, gating=self.gate in GATING, whatif=whatif
        )
        # -k kvm-a: every item touching kvm-a, cluster items of members on it included
        self.extra_keyword_matches.update(_hosts_of(state, finding))
        if finding.status == SKIP:  # its report names the item (the session's makereport)
            self.add_marker(pytest.mark.skip(reason=finding.detail))

    def setup(self) -> None:
        if self.finding.status == ERROR:
            pytest.fail(self.describe("cannot evaluate"), pytrace=False)

    def runtest(self) -> None:
        f = self.finding
        if f.status == FAIL:
            state = self.state
            gate = self.gate
            if gate == WAIVED:
                waiver = waiver_match(state, f).waiver
                assert waiver is not None  # WAIVED means an active waiver matched
                self.user_properties.append(("waived", waiver.describe()))
                pytest.xfail(f"{f.detail} - {waiver.describe()}")
            if gate in GATING:
                raise KvmhaFinding(self.describe("failed"))
            # Below the threshold or known since the baseline: the item passes, and the kvmha
            # summary lists the finding under "not gating" (no pytest warning to filter).

    def describe(self, what: str) -> str:
        f = self.finding
        lines = [
            ("what-if: " if self.whatif else "") + f"{f.check.id} {what}: {f.check.title}",
            f"  severity:    {f.check.severity}",
            f"  subject:     {f.subject}"
            + (f" (cluster {f.cluster})" if f.cluster else "")
            + (f" on host {f.host}" if f.host else ""),
            f"  detail:      {f.detail}",
        ]
        if f.found and f.found not in f.detail:  # else it would only repeat the detail
            lines.append(f"  found:       {f.found}")
        if f.expected:
            lines.append(f"  expected:    {f.expected}")
        if self.culprit:
            lines.append(f"  regression:  {self.culprit}")
        state = self.state
        expired = waiver_match(state, f).expired if state.waivers else None
        if expired is not None:
            lines.append(
                f"  waiver:      expired on {expired.expires}, no longer waives: "
                f"{expired.ticket} ({expired.approver}): {expired.reason}"
            )
        if what == "failed":
            fix = (f.remediation or f.check.remediation).splitlines()
            lines.append(f"  remediation: {fix[0]}")
            lines += [f"               {line}" for line in fix[1:]]
            lines.append(f"  source:      {f.check.source}")
        return "\n".join(lines)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, KvmhaFinding):
            return KvmhaRepr(str(excinfo.value), self.finding.detail)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Any, int | None, str]:
        """The inventory line that declares this finding's cluster (or host), 0-based."""
        state = self.state
        f = self.finding
        line = state.lines.get(f"clusters.{f.cluster}" if f.cluster else f"hosts.{f.host}", 0)
        return state.inventory_path or "kvmha", line, self.nodeid

    def setup_failure(self) -> KvmhaRepr:
        """What a failed setup (a finding that cannot be evaluated) reports."""
        f = self.finding
        unreachable = _unreachable(self.state, f)
        if unreachable is not None:  # one line with the reason: the same on every item of it
            line = f"host {unreachable}"
            return KvmhaRepr(line, line)
        if f.detail.startswith(DEPENDS_ON):  # one line: the cause is another finding's
            return KvmhaRepr(f"{f.check.id} not evaluated: {f.detail}", f.detail)
        return KvmhaRepr(self.describe("cannot evaluate"), f.detail)


def _hosts_of(state: KvmhaState, f: Finding) -> set[str]:
    return finding_hosts(state.audit.clusters if state.audit is not None else (), f)


class _Crash:
    def __init__(self, message: str) -> None:
        self.message = message

    def __str__(self) -> str:  # --tb=line
        return self.message


class KvmhaRepr:
    """A failure's text whose one-line summary (``-rfE``, JUnit's failure message) is what was
    found, not the check title."""

    def __init__(self, text: str, message: str) -> None:
        self.text = text
        self.reprcrash = _Crash(message)

    def toterminal(self, tw: Any) -> None:
        for line in self.text.splitlines():
            tw.line(line)

    def __str__(self) -> str:
        return self.text


def _unreachable(state: KvmhaState, f: Finding) -> str | None:
    """``kvm-b unreachable: ssh: connect to host ...: Connection refused`` for an error finding
    that comes from a host that could not be read, or None."""
    if f.status != ERROR or state.audit is None or (f.host is None and f.cluster is None):
        return None  # discovery's finding gives every host's reason itself
    for h in state.audit.hosts:
        if h.status != "ok" and h.error and h.error in f.detail:
            reason = h.error.removeprefix(f"{h.name}: ")
            return f"{h.name} {h.status}: {reason}"
    return None
