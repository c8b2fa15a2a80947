"""The pytest plugin: options, collection of audit items, terminal summary, JSON report."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from .model import ERROR, FAIL, SKIP, Finding, Severity

HELP_HOST = "Audit this host (testinfra spec ssh://[user@]host[:port], local://, paramiko://..., or replay://DIR). Repeatable."
HELP_INVENTORY = "TOML inventory of hosts and HA clusters to audit."
HELP_SSH_CONFIG = "ssh_config file for ssh:// hosts (put ControlPath there for connection reuse)."
HELP_IDENTITY = "SSH private key for ssh:// and paramiko:// hosts."
HELP_REPORT = "Write the JSON report (schema kvmha-report/1) to this path; written in every case."
HELP_REPORT_MD = "Also write the report as Markdown (a CI job summary or merge-request comment)."
HELP_RECORD = (
    "Record each host's evidence bundle under DIR/<host> (replay with replay://DIR/<host>)."
)
HELP_FAIL_ON = "Lowest severity whose failed findings fail their test item: critical|high|medium|low|info (default: medium)."
HELP_LIST = "Print the check catalogue (id, severity, title) and exit."
HELP_PLAN = "Pre-change validation: plan the clusters of WANTED.toml against the current facts, audit the result in memory (no host is touched), report fixed/introduced findings."
HELP_BASELINE = (
    "Compare this audit with an earlier JSON report: new, resolved and unchanged findings."
)
HELP_DATAPATH = (
    "datapath_type for bridges that plans create: system (kernel, default) or netdev (userspace)."
)
HELP_ALLOW = "Let kvmha_provision change live hosts (tests must also be marked kvmha_destructive); otherwise plans are only printed."
HELP_BACKUPS = "Where kvmha_provision keeps its backups and journal (default: a pytest temp dir)."
HELP_TIMEOUT = "Seconds a host may take to answer the whole collection (default 300, at most 86400); a host that hangs is reported unreachable."
HELP_NO_ITEMS = "No audit at collection time and no audit items (for provisioning runs: the fixtures still use the inventory)."

STATE = pytest.StashKey["KvmhaState"]()


class KvmhaBelowThreshold(pytest.PytestWarning):
    """A failed finding below --kvmha-fail-on: visible, but not failing the run."""


@dataclass
class KvmhaState:
    fail_on: Severity
    report_path: Path | None
    audit: Any = None  # engine.Audit
    selected: list[Finding] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    rounds: dict[str, int] = field(default_factory=dict)
    inventory: Any = None
    inventory_path: str | None = None
    report_md: Path | None = None
    wanted: Any = None  # inventory.Inventory of --kvmha-plan
    whatif: Any = None  # whatif.WhatIf
    baseline: Any = None  # {key: status} of --kvmha-baseline
    baseline_path: str | None = None
    lines: dict[str, int] = field(default_factory=dict)  # "[clusters.X]" table -> its line


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kvmha", "HA firewall clusters on KVM + Open vSwitch (pytest-kvmha)")
    group.addoption("--kvmha-host", action="append", default=[], metavar="SPEC", help=HELP_HOST)
    group.addoption("--kvmha-inventory", metavar="FILE", help=HELP_INVENTORY)
    group.addoption("--kvmha-ssh-config", metavar="FILE", help=HELP_SSH_CONFIG)
    group.addoption("--kvmha-ssh-identity-file", metavar="FILE", help=HELP_IDENTITY)
    group.addoption("--kvmha-report", metavar="PATH", help=HELP_REPORT)
    group.addoption("--kvmha-report-md", metavar="PATH", help=HELP_REPORT_MD)
    group.addoption("--kvmha-record", metavar="DIR", help=HELP_RECORD)
    group.addoption("--kvmha-fail-on", metavar="SEVERITY", help=HELP_FAIL_ON)
    group.addoption("--kvmha-list-checks", action="store_true", help=HELP_LIST)
    group.addoption("--kvmha-plan", metavar="WANTED.toml", help=HELP_PLAN)
    group.addoption("--kvmha-baseline", metavar="BEFORE.json", help=HELP_BASELINE)
    group.addoption("--kvmha-datapath", metavar="TYPE", help=HELP_DATAPATH)
    group.addoption("--kvmha-allow-provision", action="store_true", help=HELP_ALLOW)
    group.addoption("--kvmha-backup-dir", metavar="DIR", help=HELP_BACKUPS)
    group.addoption("--kvmha-no-audit-items", action="store_true", help=HELP_NO_ITEMS)
    group.addoption("--kvmha-timeout", type=float, metavar="SECONDS", help=HELP_TIMEOUT)
    parser.addini("kvmha_timeout", HELP_TIMEOUT, default="300")
    parser.addini("kvmha_datapath", HELP_DATAPATH, default="system")
    parser.addini("kvmha_hosts", HELP_HOST, type="linelist", default=[])
    parser.addini("kvmha_inventory", HELP_INVENTORY, default="")
    parser.addini("kvmha_ssh_config", HELP_SSH_CONFIG, default="")
    parser.addini("kvmha_ssh_identity_file", HELP_IDENTITY, default="")
    parser.addini("kvmha_report", HELP_REPORT, default="")
    parser.addini("kvmha_fail_on", HELP_FAIL_ON, default="medium")
    parser.addini("kvmha_report_md", HELP_REPORT_MD, default="")


def _opt(config: pytest.Config, name: str) -> str | None:
    """Command line first, then the ini key (paths in ini files are relative to the ini file)."""
    value = config.getoption(f"kvmha_{name}")
    if value:
        return str(value)
    if name in ("plan", "baseline"):
        return None
    ini = config.getini(f"kvmha_{name}")
    if not ini:
        return None
    if (
        name in ("inventory", "ssh_config", "ssh_identity_file", "report", "report_md")
        and config.inipath
    ):
        return str(config.inipath.parent / str(ini))
    return str(ini)


MAX_TIMEOUT = 86400.0  # a day: beyond it a wait is a typo (and inf/nan break thread joins)


def timeout(config: pytest.Config) -> float:
    """--kvmha-timeout, else the ini key: finite seconds in (0, MAX_TIMEOUT], else a usage error.

    An explicit 0 is an error too, not a fallback to the default."""
    option = config.getoption("kvmha_timeout")
    if option is not None:
        name, value = "--kvmha-timeout", option
    else:
        name, value = "kvmha_timeout (ini)", config.getini("kvmha_timeout") or "300"
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise pytest.UsageError(f"{name}: not a number of seconds: {value!r}") from None
    if not 0 < seconds <= MAX_TIMEOUT:  # also false for nan
        shown = repr(value) if isinstance(value, str) else f"{seconds:g}"
        raise pytest.UsageError(
            f"{name}: {shown} is not a number of seconds above 0 and at most {MAX_TIMEOUT:g}"
        )
    return seconds


def datapath(config: pytest.Config) -> str:
    return str(config.getoption("kvmha_datapath") or config.getini("kvmha_datapath") or "system")


def _hosts(config: pytest.Config) -> list[str]:
    return list(config.getoption("kvmha_host") or config.getini("kvmha_hosts") or [])


def pytest_cmdline_main(config: pytest.Config) -> int | None:
    if config.getoption("kvmha_list_checks"):
        from .model import discover_checks

        for c in discover_checks():
            print(f"{c.id:<16} {c.severity!s:<9} {c.title}")
        return 0
    return None


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "kvmha: an audit finding of pytest-kvmha")
    config.addinivalue_line(
        "markers", "kvmha_destructive: the test changes live hosts through kvmha_provision"
    )
    config.pluginmanager.import_plugin("pytest_kvmha.fixtures.provision")
    if hasattr(config, "workerinput"):  # xdist worker: audits run in one process
        return
    audit_wanted = (_hosts(config) or _opt(config, "inventory")) and not config.getoption(
        "kvmha_no_audit_items"
    )
    if not (audit_wanted or config.getoption("kvmha_plan")):
        return  # nothing to audit: not even one round trip
    try:
        fail_on = Severity.parse(_opt(config, "fail_on") or "medium")
    except ValueError as exc:
        raise pytest.UsageError(f"--kvmha-fail-on: {exc}") from None
    timeout(config)  # a bad value is a usage error before any host is contacted
    for name in ("ssh_config", "ssh_identity_file", "inventory", "plan", "baseline"):
        path = _opt(config, name)
        if path and not Path(path).is_file():
            raise pytest.UsageError(f"--kvmha-{name.replace('_', '-')}: {path}: no such file")
    report = _opt(config, "report")
    report_md = _opt(config, "report_md")
    state = KvmhaState(fail_on, Path(report) if report else None)
    state.report_md = Path(report_md) if report_md else None
    baseline = config.getoption("kvmha_baseline")
    if baseline:
        import json

        from .whatif import load_baseline

        try:
            state.baseline = load_baseline(json.loads(Path(baseline).read_text()), baseline)
        except (ValueError, UnicodeDecodeError) as exc:
            raise pytest.UsageError(f"--kvmha-baseline: {exc}") from None
        state.baseline_path = baseline
    config.stash[STATE] = state


def _run_audit(config: pytest.Config, state: KvmhaState) -> None:
    from .collect import CollectOptions, collect_all
    from .engine import audit
    from .inventory import InventoryError, inventory_from_specs, load_inventory
    from .model import discover_checks
    from .parse import parse_bundle

    inv_path = _opt(config, "inventory")
    wanted_path = config.getoption("kvmha_plan")
    try:
        wanted = load_inventory(wanted_path) if wanted_path else None
        if inv_path:
            inventory = load_inventory(inv_path)
        elif _hosts(config) or wanted is None:
            inventory = inventory_from_specs(_hosts(config))
        else:
            inventory, inv_path = wanted, wanted_path
    except InventoryError as exc:
        state.errors.append(str(exc))
        raise pytest.UsageError(str(exc)) from None
    state.wanted = wanted
    state.inventory = inventory
    if inv_path:
        state.inventory_path = inv_path
        text = Path(inv_path).read_text(encoding="utf-8")
        for number, line in enumerate(text.splitlines()):
            table = line.strip()
            if table.startswith("[") and not table.startswith("[["):
                state.lines.setdefault(table.strip("[] ").replace('"', ""), number)
    options = CollectOptions(
        _opt(config, "ssh_config"), _opt(config, "ssh_identity_file"), timeout(config)
    )
    bundles = collect_all(list(inventory.hosts), options)
    record = config.getoption("kvmha_record")
    for b in bundles:
        state.rounds[b.host] = b.round_trips
        if record:
            try:
                b.write(Path(record) / b.host)
            except Exception as exc:  # recording must not cost the audit
                state.errors.append(f"--kvmha-record: {b.host}: {exc}")
    hosts = [parse_bundle(b) for b in bundles]
    checks = discover_checks()
    state.audit = audit(checks, inventory, hosts)
    if wanted is not None:
        from .whatif import what_if

        state.whatif = what_if(
            checks,
            hosts,
            wanted.clusters,
            state.audit.findings,
            current=state.audit.clusters,
            datapath_type=datapath(config),
        )


class KvmhaCollector(pytest.Collector):
    """The root of all audit items: ``kvmha``."""

    def collect(self) -> list[pytest.Item]:
        state = self.config.stash[STATE]
        items: list[pytest.Item] = []
        if not self.config.getoption("kvmha_no_audit_items"):
            items += [
                KvmhaItem.from_parent(
                    self, name=f.nodeid.split("/", 1)[1], nodeid=f.nodeid, finding=f
                )
                for f in state.audit.findings
            ]
        if state.whatif is not None:
            from .whatif import key_of

            introduced = set(state.whatif.introduced)
            for f in state.whatif.findings:
                culprit = None
                if key_of(f) in introduced:
                    index = state.whatif.culprit.get(key_of(f))
                    step = state.whatif.steps[index] if index is not None else None
                    culprit = (
                        f"introduced by the plan: step {index + 1} on {step.host}: {step.command.splitlines()[0]}"
                        if step is not None
                        else "introduced by the plan"
                    )
                nodeid = "kvmha-whatif/" + f.nodeid.split("/", 1)[1]
                items.append(
                    KvmhaItem.from_parent(
                        self, name=nodeid, nodeid=nodeid, finding=f, whatif=True, culprit=culprit
                    )
                )
        return items


class KvmhaFinding(Exception):
    """A failed finding at or above the threshold."""


class KvmhaItem(pytest.Item):
    def __init__(
        self, *, finding: Finding, whatif: bool = False, culprit: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.finding = finding
        self.whatif = whatif
        self.culprit = culprit  # what-if: the plan step that breaks a finding that passes today
        if whatif:
            self.extra_keyword_matches.add("whatif")
        self.add_marker(pytest.mark.kvmha)
        # -k matches these as whole words: "-k critical", "-k KVMHA-OVS-002" (and node names)
        self.extra_keyword_matches.update({finding.check.id, str(finding.check.severity)})
        self.user_properties.append(("severity", str(finding.check.severity)))
        self.user_properties.append(("status", finding.status))
        if finding.status == SKIP:  # reported at the item's location, not the plugin's
            self.add_marker(pytest.mark.skip(reason=f"{finding.check.id}: {finding.detail}"))

    def setup(self) -> None:
        if self.finding.status == ERROR:
            pytest.fail(self._describe("cannot evaluate"), pytrace=False)

    def runtest(self) -> None:
        f = self.finding
        if f.status == FAIL:
            state = self.config.stash[STATE]
            # A regression a plan would introduce fails whatever its severity.
            if f.check.severity >= state.fail_on or self.culprit:
                raise KvmhaFinding(self._describe("failed"))
            warnings.warn(
                KvmhaBelowThreshold(
                    f"{f.nodeid}: {f.detail} (severity {f.check.severity} is below "
                    f"--kvmha-fail-on={state.fail_on})"
                ),
                stacklevel=2,
            )

    def _describe(self, what: str) -> str:
        f = self.finding
        lines = [
            ("what-if: " if self.whatif else "") + f"{f.check.id} {what}: {f.check.title}",
            f"  severity:    {f.check.severity}",
            f"  subject:     {f.subject}"
            + (f" (cluster {f.cluster})" if f.cluster else "")
            + (f" on host {f.host}" if f.host else ""),
            f"  detail:      {f.detail}",
        ]
        if f.found:
            lines.append(f"  found:       {f.found}")
        if f.expected:
            lines.append(f"  expected:    {f.expected}")
        if self.culprit:
            lines.append(f"  regression:  {self.culprit}")
        if what == "failed":
            fix = (f.remediation or f.check.remediation).splitlines()
            lines.append(f"  remediation: {fix[0]}")
            lines += [f"               {line}" for line in fix[1:]]
            lines.append(f"  source:      {f.check.source}")
        return "\n".join(lines)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, KvmhaFinding):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Any, int | None, str]:
        """The inventory line that declares this finding's cluster (or host), 0-based."""
        state = self.config.stash[STATE]
        f = self.finding
        line = state.lines.get(f"clusters.{f.cluster}" if f.cluster else f"hosts.{f.host}", 0)
        return state.inventory_path or "kvmha", line, self.nodeid


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    state = config.stash.get(STATE, None)
    if state is None:
        return
    try:
        _run_audit(config, state)
    except Exception as exc:  # the report still says what happened
        if not isinstance(exc, pytest.UsageError):
            state.errors.append(f"audit failed: {type(exc).__name__}: {exc}")
        raise
    root = KvmhaCollector.from_parent(session, name="kvmha", nodeid="kvmha")
    audit_items = root.collect()
    report = pytest.CollectReport(
        "kvmha", "passed", None, list[pytest.Item | pytest.Collector](audit_items)
    )
    config.hook.pytest_collectreport(report=report)
    items[:0] = audit_items


def pytest_collection_finish(session: pytest.Session) -> None:
    state = session.config.stash.get(STATE, None)
    if state is not None and state.audit is not None:
        items = [i for i in session.items if isinstance(i, KvmhaItem)]
        state.selected = [i.finding for i in items if not i.whatif]


def pytest_sessionfinish(session: pytest.Session) -> None:
    state = session.config.stash.get(STATE, None)
    if state is None or (state.report_path is None and state.report_md is None):
        return
    from .report import build_report, render_markdown, write_report, write_text

    audit = state.audit
    report = build_report(
        audit.hosts if audit else [],
        audit.clusters if audit else [],
        state.selected,
        fail_on=str(state.fail_on),
        errors=state.errors,
        rounds=state.rounds,
    )
    if state.whatif is not None:
        report["whatif"] = state.whatif.as_json()
    if state.baseline is not None and audit is not None:
        report["baseline"] = _baseline(state)
    if state.report_path is not None:
        write_report(state.report_path, report)
    if state.report_md is not None:
        write_text(state.report_md, render_markdown(report))


def _baseline(state: KvmhaState) -> dict[str, Any]:
    from .whatif import compare_status, key_json, key_of

    diff = compare_status(state.baseline, {key_of(f): f.status for f in state.selected})
    return {
        "path": state.baseline_path,
        "new": [key_json(k) for k in diff.introduced],
        "resolved": [key_json(k) for k in diff.fixed],
        "unchanged": [key_json(k) for k in diff.unchanged],
    }


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    state = config.stash.get(STATE, None)
    if state is None or state.audit is None:
        return
    tr = terminalreporter
    tr.section("kvmha audit")
    for h in state.audit.hosts:
        line = f"host {h.name} ({h.spec}): {h.status}"
        if h.error:
            line += f" - {h.error}"
        tr.write_line(line, red=h.status != "ok")
        for problem in h.problems.values():
            tr.write_line(f"  problem: {problem}", yellow=True)
    for c in state.audit.clusters:
        members = ", ".join(f"{m.domain}@{m.host} ({m.role})" for m in c.members)
        tr.write_line(f"cluster {c.name}{' (discovered)' if c.discovered else ''}: {members}")
    counts: dict[str, int] = {}
    below = 0
    for f in state.selected:
        counts[f.status] = counts.get(f.status, 0) + 1
        if f.status == FAIL and f.check.severity < state.fail_on:
            below += 1
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    tr.write_line(
        f"findings: {summary or 'none'} (fail-on {state.fail_on}; {below} failed below it)"
    )
    if state.whatif is not None:
        w = state.whatif
        tr.section("kvmha what-if")
        tr.write_line(
            f"plan: {len(w.steps)} steps" + (f", {len(w.refused)} refused" if w.refused else "")
        )
        for i, step in enumerate(w.steps):
            tr.write_line(f"  {i + 1:2}. [{step.host}] {step.command.splitlines()[0]}")
        for r in w.refused:
            tr.write_line(f"  refused: {r}", red=True)
        for n in w.notes:
            tr.write_line(f"  note: {n}", yellow=True)
        tr.write_line(
            f"after the change: {len(w.fixed)} fixed, {len(w.introduced)} introduced, "
            f"{len(w.unchanged)} still failing",
            red=bool(w.introduced),
            green=not w.introduced,
        )
        for k in w.introduced:
            index = w.culprit.get(k)
            by = f" by step {index + 1}" if index is not None else ""
            tr.write_line(f"  introduced{by}: {k[0]}[{k[3]}] ({k[2] or k[1]})", red=True)
    if state.baseline is not None:
        b = _baseline(state)
        tr.write_line(
            f"baseline {state.baseline_path}: {len(b['new'])} new, {len(b['resolved'])} resolved, "
            f"{len(b['unchanged'])} unchanged"
        )
        for k in b["new"]:
            tr.write_line(
                f"  new: {k['check']}[{k['subject']}] ({k['cluster'] or k['host']})", red=True
            )
        for k in b["resolved"]:
            tr.write_line(
                f"  resolved: {k['check']}[{k['subject']}] ({k['cluster'] or k['host']})",
                green=True,
            )
    for path in (state.report_path, state.report_md):
        if path:
            tr.write_line(f"kvmha report: {path}")
