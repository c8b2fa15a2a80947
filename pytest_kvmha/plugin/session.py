"""The state of one audit run, registered as a plugin by ``pytest_configure`` when there is
something to audit: its methods are the hooks that need that state, so they exist only then."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_kvmha.audit.applicable import NotApplicable, split_not_applicable
from pytest_kvmha.config.options import option
from pytest_kvmha.config.waivers import WaiverError, load_waivers
from pytest_kvmha.model import key_of
from pytest_kvmha.plugin import run, xdist
from pytest_kvmha.plugin.gate import (
    GATING,
    KNOWN,
    audited_by_baseline,
    decide,
    gate_of,
    stale,
    waiver_match,
    waiver_statuses,
)
from pytest_kvmha.plugin.items import KvmhaCollector, KvmhaItem
from pytest_kvmha.plugin.selection import chosen
from pytest_kvmha.plugin.state import KvmhaState
from pytest_kvmha.report.assemble import ReportPaths, WaiverReport, assemble_report, write_reports
from pytest_kvmha.report.baseline import (
    baseline_json,
    load_baseline,
    load_baseline_hosts,
)

if TYPE_CHECKING:
    pass

STATE = pytest.StashKey["KvmhaSession"]()


class KvmhaSession(KvmhaState):
    """The run's state with the hooks that need it (registered as a plugin)."""

    def configure_gate(self) -> None:
        """Waivers and baseline gating (usage errors name the file, entry and field)."""
        config = self.config
        self.today = dt.date.today()
        waivers = option(config, "waivers")
        if waivers:
            from pytest_kvmha.model import CheckDiscoveryError, discover_checks

            try:
                ids = [c.id for c in discover_checks()]
            except CheckDiscoveryError as exc:
                raise pytest.UsageError(str(exc)) from None
            try:
                self.waivers = load_waivers(waivers, ids)
            except WaiverError as exc:
                raise pytest.UsageError(f"--kvmha-waivers: {exc}") from None
            self.waivers_path = waivers
        self.strict_waivers = bool(
            config.getoption("kvmha_strict_waivers") or config.getini("kvmha_strict_waivers")
        )
        self.fail_on_new = bool(config.getoption("kvmha_fail_on_new"))
        if self.fail_on_new and not config.getoption("kvmha_baseline"):
            raise pytest.UsageError("--kvmha-fail-on-new needs --kvmha-baseline=BEFORE.json")

    def configure_worker(self, worker: dict[str, Any]) -> None:
        """An xdist worker: reports are the controller's; the facts come from its bundles."""
        self.reports = ReportPaths()
        self.replay_from, self.today = xdist.handed_over(worker)

    def configure_baseline(self) -> None:
        baseline = self.config.getoption("kvmha_baseline")
        if baseline:
            try:
                doc = json.loads(Path(baseline).read_text())
                self.baseline = load_baseline(doc, baseline)
                self.baseline_hosts = load_baseline_hosts(doc, baseline)
            except json.JSONDecodeError as exc:
                raise pytest.UsageError(
                    f"--kvmha-baseline: {baseline}: not a JSON report (a --kvmha-report file): "
                    f"{exc}"
                ) from None
            except (ValueError, UnicodeDecodeError) as exc:
                message = str(exc)
                if not message.startswith(str(baseline)):
                    message = f"{baseline}: {message}"
                raise pytest.UsageError(f"--kvmha-baseline: {message}") from None
            except OSError as exc:
                raise pytest.UsageError(
                    f"--kvmha-baseline: {baseline}: unreadable: {exc.strerror or exc}"
                ) from None
            self.baseline_path = baseline

    def run_audit(self) -> None:
        run.run(self.config, self)

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(
        self, session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        try:
            self.run_audit()
        except Exception as exc:  # the report still says what happened
            if not isinstance(exc, pytest.UsageError):
                self.errors.append(f"audit failed: {type(exc).__name__}: {exc}")
            raise
        root = KvmhaCollector.from_parent(session, name="kvmha", nodeid="kvmha", state=self)
        audit_items = root.collect()
        report = pytest.CollectReport(
            "kvmha", "passed", None, list[pytest.Item | pytest.Collector](audit_items)
        )
        config.hook.pytest_collectreport(report=report)
        if self.nodeids:  # node ids given as arguments: exactly those items (or under a prefix)
            picked = chosen(audit_items, self.nodeids)
            if len(picked) < len(audit_items):
                config.hook.pytest_deselected(items=[i for i in audit_items if i not in picked])
            audit_items = picked
        items[:0] = audit_items

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        if self.audit is not None:
            items = [i for i in session.items if isinstance(i, KvmhaItem)]
            self.selected = [i.finding for i in items if not i.whatif]
            self.gates = {i.nodeid: i.gate for i in items}

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
        report = yield
        if isinstance(item, KvmhaItem) and report.failed and call.when == "setup":
            report.longrepr = item.setup_failure()
        elif (
            isinstance(item, KvmhaItem)
            and report.skipped
            and not hasattr(report, "wasxfail")
            and isinstance(report.longrepr, tuple)
        ):
            # pytest puts a skip at the item's reportinfo (the inventory file): one folded
            # "SKIPPED [n] clusters.toml: ..." for many items. Name the item instead.
            report.longrepr = (item.nodeid, None, report.longrepr[2])
        return report

    @pytest.hookimpl(wrapper=True)
    def pytest_sessionstart(self, session: pytest.Session) -> Any:
        """Under pytest-xdist the controller audits here (see plugin.xdist). The audit's outcome
        (a usage error included) is the controller's, after the start."""
        if not xdist.is_controller(session.config):
            return (yield)
        controller = xdist.ControllerAudit()
        self.rundir = controller.rundir
        controller.start(self.run_audit)
        try:
            return (yield)  # xdist's own sessionstart: the workers start meanwhile
        finally:
            exc = controller.join()
            if exc is not None:
                if not isinstance(exc, pytest.UsageError):
                    self.errors.append(f"audit failed: {type(exc).__name__}: {exc}")
                # pytest skips sessionfinish when sessionstart fails
                usage = isinstance(exc, pytest.UsageError)
                self.decide(
                    pytest.ExitCode.USAGE_ERROR if usage else pytest.ExitCode.INTERNAL_ERROR
                )
                self.write_reports()
                raise exc

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        if self.rundir is not None:
            xdist.configure_node(node, self.rundir, self.today)

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        if self.audit is not None:
            self.selected = xdist.workers_selection(self.audit.findings, ids)
            self.gates = {f.nodeid: gate_of(self, f) for f in self.selected}
            # the workers' collectors left these out; the controller reports them
            _, self.not_applicable = split_not_applicable(
                self.audit.findings, self.audit.clusters, self.nodeids
            )

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        if self.rundir is not None:
            shutil.rmtree(self.rundir, ignore_errors=True)
            self.rundir = None

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self.decide(int(session.exitstatus))
        try:
            self.write_reports()
        except OSError as exc:  # the summary is still printed; the run fails
            self.errors.append(f"report not written: {exc}")
            self.decide(int(session.exitstatus))
        assert self.verdict is not None
        if self.verdict.exit_status != session.exitstatus:
            session.exitstatus = self.verdict.exit_status

    def decide(self, exit_status: int) -> None:
        """The run's one verdict (see plugin.gate.decide); every output prints it."""
        self.verdict = decide(
            self.gates,
            errors=self.errors,
            strict_stale=len(stale(self)) if self.strict_waivers else 0,
            exit_status=exit_status,
        )

    def write_reports(self) -> None:
        if self.reports_written or not self.reports.any():
            return
        self.reports_written = True
        audit = self.audit
        report = assemble_report(
            audit,
            self.selected,
            fail_on=str(self.fail_on),
            errors=self.errors,
            rounds=self.rounds,
            digests=self.digests,
            started=self.started,
            metrics=self.metrics,
            not_contacted=self.not_contacted,
            whatif=self.whatif.as_json() if self.whatif is not None else None,
            baseline=self.baseline_json() if audit is not None else None,
            waivers=self.waiver_report() if self.waivers_path is not None else None,
            known=(
                {f.nodeid for f in self.selected if gate_of(self, f) == KNOWN}
                if self.fail_on_new
                else None
            ),
            gating={f.nodeid for f in self.selected if self.gates.get(f.nodeid) in GATING},
            verdict=self.verdict.as_json() if self.verdict is not None else None,
            not_applicable=[n.as_json() for n in self.shown_not_applicable()],
        )
        write_reports(report, self.reports)

    def shown_not_applicable(self) -> list[NotApplicable]:
        """What does not apply to the clusters of the selected findings (a run narrowed to
        other clusters or hosts by -k or node ids does not report them)."""
        clusters = {f.cluster for f in self.selected}
        return [n for n in self.not_applicable if n.cluster in clusters]

    def baseline_json(self) -> dict[str, Any] | None:
        if self.baseline is None:
            return None
        # A finding about a host the baseline did not audit is new, whatever the baseline says.
        foreign = {key_of(f) for f in self.selected if not audited_by_baseline(self, f)}
        before = {k: s for k, s in self.baseline.items() if k not in foreign}
        return baseline_json(before, self.selected, self.baseline_path, self.fail_on_new)

    def waiver_report(self) -> WaiverReport:
        out = WaiverReport(self.waivers_path, self.strict_waivers)
        for f in self.selected:
            m = waiver_match(self, f)
            if m.waiver is not None:
                out.waived[f.nodeid] = m.waiver.as_json()
            elif m.expired is not None:
                out.expired[f.nodeid] = m.expired.as_json()
        out.waivers = [
            {**w.as_json(), "status": status, "matches": n}
            for w, status, n in waiver_statuses(self)
        ]
        return out

    def pytest_terminal_summary(self, terminalreporter: Any, config: pytest.Config) -> None:
        if self.audit is None:
            return
        from pytest_kvmha.report.terminal import AuditSummary, write_summary

        summary = AuditSummary(
            self.audit,
            self.selected,
            lambda f: gate_of(self, f),
            self.fail_on,
            waiver_statuses(self),
            self.strict_waivers,
            self.whatif.as_json() if self.whatif is not None else None,
            self.baseline_json(),
            self.fail_on_new,
            list(self.reports),
            self.verdict.as_json() if self.verdict is not None else None,
            not_applicable=self.shown_not_applicable(),
            whatif_not_applicable=self.whatif_not_applicable,
            verbosity=config.get_verbosity(),
            width=getattr(config.get_terminal_writer(), "fullwidth", 80),
            beside=_beside(terminalreporter),
        )
        write_summary(terminalreporter, summary, quiet=config.option.verbose < 0)


def _beside(terminalreporter: Any) -> dict[str, int]:
    """The items pytest's last line counts that are no audit finding: what-if items and tests
    beside the audit (from the reports, so under xdist too)."""
    ids: set[str] = set()
    for reports in terminalreporter.stats.values():
        ids.update(r.nodeid for r in reports if isinstance(r, pytest.TestReport))
    whatif = sum(1 for n in ids if n.startswith("kvmha-whatif/"))
    tests = sum(1 for n in ids if not n.startswith(("kvmha/", "kvmha-whatif/")))
    return {"what-if items": whatif, f"test{'' if tests == 1 else 's'} beside the audit": tests}
