"""The pytest plugin: options, collection of audit items, terminal summary, JSON report."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pytest_kvmha.model import ERROR, FAIL, SKIP, Finding, Severity

HELP_HOST = "Audit this host (testinfra spec ssh://[user@]host[:port], local://, paramiko://..., or replay://DIR). Repeatable."
HELP_INVENTORY = "TOML inventory of hosts and HA clusters to audit."
HELP_SSH_CONFIG = "ssh_config file for ssh:// hosts (put ControlPath there for connection reuse)."
HELP_IDENTITY = "SSH private key for ssh:// and paramiko:// hosts."
HELP_REPORT = "Write the JSON report (schema kvmha-report/1) to this path; written in every case."
HELP_REPORT_MD = "Also write the report as Markdown (a CI job summary or merge-request comment)."
HELP_REPORT_HTML = (
    "Also write the report as one self-contained HTML file (no scripts, no external assets)."
)
HELP_FORMAT = "Output format of --kvmha-list-checks: text (default; -v adds rationale, remediation, source) or json."
HELP_RECORD = (
    "Record each host's evidence bundle under DIR/<host> (replay with replay://DIR/<host>)."
)
HELP_FAIL_ON = "Lowest severity whose failed findings fail their test item: critical|high|medium|low|info (default: medium)."
HELP_LIST = (
    "Print the check catalogue (id, severity, title; -v: rationale, remediation, source) and exit."
)
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
HELP_AUDIT = "Audit at collection time (audit items) although test paths are given: a run with test paths (command line or ini testpaths) otherwise only runs those tests."
HELP_WAIVERS = (
    "TOML file of waivers: accepted failures (check, scope, reason, approver, ticket, expiry date)."
)
HELP_STRICT_WAIVERS = (
    "Fail the run when a waiver matches no failed finding (stale); otherwise a warning."
)
HELP_MAX_PARALLEL = (
    "At most this many hosts are collected at once (default 32; a positive whole number)."
)
HELP_FAIL_ON_NEW = "With --kvmha-baseline: gate only on failures that are new since the baseline (known ones pass with a warning; errors still fail)."
# Options that name a file or directory: '~' is expanded in each (a shell leaves '--opt=~/x' alone).
PATH_OPTIONS = (
    "inventory",
    "ssh_config",
    "ssh_identity_file",
    "report",
    "report_md",
    "report_html",
    "record",
    "plan",
    "baseline",
    "backup_dir",
    "waivers",
)
SEVERITY_MARKERS = ("critical", "high", "medium", "low", "info")

STATE = pytest.StashKey["KvmhaState"]()
NODEIDS = pytest.StashKey[list[str]]()  # kvmha node ids taken out of the file arguments
# pytest-xdist: the controller collects every host once and hands the bundles to the workers
# in a private run directory (node.workerinput), where they replay them.
RUNDIR = "kvmha_rundir"
TODAY = "kvmha_today"  # the controller's date: waiver expiry is judged the same on every worker


class KvmhaBelowThreshold(pytest.PytestWarning):
    """A failed finding below --kvmha-fail-on: visible, but not failing the run."""


class KvmhaKnownSinceBaseline(pytest.PytestWarning):
    """With --kvmha-fail-on-new: a failure the baseline already had; visible, not gating."""


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
    report_html: Path | None = None
    digests: dict[str, str] = field(default_factory=dict)  # host -> evidence bundle SHA-256
    started: float = field(default_factory=time.time)
    waivers: tuple[Any, ...] = ()  # waivers.Waiver of --kvmha-waivers
    waivers_path: str | None = None
    strict_waivers: bool = False
    fail_on_new: bool = False
    today: Any = None  # datetime.date: waiver expiry is judged against it
    nodeids: list[str] = field(default_factory=list)  # kvmha node ids given as arguments
    max_parallel: int = 32
    rundir: Path | None = None  # xdist controller: the bundles handed to the workers
    replay_from: Path | None = None  # xdist worker: where the controller put them
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)  # host -> collection cost
    not_contacted: dict[str, str] = field(default_factory=dict)  # host -> why
    reports_written: bool = False


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kvmha", "HA firewall clusters on KVM + Open vSwitch (pytest-kvmha)")
    group.addoption("--kvmha-host", action="append", default=[], metavar="SPEC", help=HELP_HOST)
    group.addoption("--kvmha-inventory", metavar="FILE", help=HELP_INVENTORY)
    group.addoption("--kvmha-ssh-config", metavar="FILE", help=HELP_SSH_CONFIG)
    group.addoption("--kvmha-ssh-identity-file", metavar="FILE", help=HELP_IDENTITY)
    group.addoption("--kvmha-report", metavar="PATH", help=HELP_REPORT)
    group.addoption("--kvmha-report-md", metavar="PATH", help=HELP_REPORT_MD)
    group.addoption("--kvmha-report-html", metavar="PATH", help=HELP_REPORT_HTML)
    group.addoption("--kvmha-format", metavar="FORMAT", help=HELP_FORMAT)
    group.addoption("--kvmha-record", metavar="DIR", help=HELP_RECORD)
    group.addoption("--kvmha-fail-on", metavar="SEVERITY", help=HELP_FAIL_ON)
    group.addoption("--kvmha-list-checks", action="store_true", help=HELP_LIST)
    group.addoption("--kvmha-plan", metavar="WANTED.toml", help=HELP_PLAN)
    group.addoption("--kvmha-baseline", metavar="BEFORE.json", help=HELP_BASELINE)
    group.addoption("--kvmha-datapath", metavar="TYPE", help=HELP_DATAPATH)
    group.addoption("--kvmha-allow-provision", action="store_true", help=HELP_ALLOW)
    group.addoption("--kvmha-backup-dir", metavar="DIR", help=HELP_BACKUPS)
    group.addoption("--kvmha-no-audit-items", action="store_true", help=HELP_NO_ITEMS)
    group.addoption("--kvmha-audit", action="store_true", help=HELP_AUDIT)
    group.addoption("--kvmha-timeout", type=float, metavar="SECONDS", help=HELP_TIMEOUT)
    group.addoption("--kvmha-waivers", metavar="FILE.toml", help=HELP_WAIVERS)
    group.addoption("--kvmha-strict-waivers", action="store_true", help=HELP_STRICT_WAIVERS)
    group.addoption("--kvmha-fail-on-new", action="store_true", help=HELP_FAIL_ON_NEW)
    group.addoption("--kvmha-max-parallel", metavar="N", help=HELP_MAX_PARALLEL)
    parser.addini("kvmha_max_parallel", HELP_MAX_PARALLEL, default="32")
    parser.addini("kvmha_waivers", HELP_WAIVERS, default="")
    parser.addini("kvmha_strict_waivers", HELP_STRICT_WAIVERS, type="bool", default=False)
    parser.addini("kvmha_timeout", HELP_TIMEOUT, default="300")
    parser.addini("kvmha_datapath", HELP_DATAPATH, default="system")
    parser.addini("kvmha_hosts", HELP_HOST, type="linelist", default=[])
    parser.addini("kvmha_inventory", HELP_INVENTORY, default="")
    parser.addini("kvmha_ssh_config", HELP_SSH_CONFIG, default="")
    parser.addini("kvmha_ssh_identity_file", HELP_IDENTITY, default="")
    parser.addini("kvmha_report", HELP_REPORT, default="")
    parser.addini("kvmha_fail_on", HELP_FAIL_ON, default="medium")
    parser.addini("kvmha_report_md", HELP_REPORT_MD, default="")
    parser.addini("kvmha_report_html", HELP_REPORT_HTML, default="")


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
        name
        in (
            "inventory",
            "ssh_config",
            "ssh_identity_file",
            "report",
            "report_md",
            "report_html",
            "waivers",
        )
        and config.inipath
    ):
        return str(config.inipath.parent / os.path.expanduser(str(ini)))
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


def max_parallel(config: pytest.Config) -> int:
    """--kvmha-max-parallel, else the ini key: a whole number of hosts >= 1, else a usage error."""
    option = config.getoption("kvmha_max_parallel")
    if option is not None:
        name, value = "--kvmha-max-parallel", option
    else:
        name, value = "kvmha_max_parallel (ini)", config.getini("kvmha_max_parallel") or "32"
    text = str(value).strip()
    if not text.isdigit():  # no sign, no fraction, no "1e3": a count of connections
        raise pytest.UsageError(f"{name}: not a whole number of hosts: {value!r}")
    n = int(text)
    if n < 1:
        raise pytest.UsageError(f"{name}: {n}: at least one host must be collected at a time")
    return n


def datapath(config: pytest.Config) -> str:
    return str(config.getoption("kvmha_datapath") or config.getini("kvmha_datapath") or "system")


def _hosts(config: pytest.Config) -> list[str]:
    given = config.getoption("kvmha_host")
    if given:
        return [_replay_path(spec, Path.cwd()) for spec in given]
    base = config.inipath.parent if config.inipath else Path.cwd()
    # replay:// paths in the ini key are relative to the ini file, like the other ini paths.
    return [_replay_path(spec, base) for spec in config.getini("kvmha_hosts") or []]


def _replay_path(spec: str, base: Path) -> str:
    if not spec.startswith("replay://"):
        return spec
    path = os.path.expanduser(spec[len("replay://") :])
    if Path(path).is_absolute() or base == Path.cwd():
        return "replay://" + path  # relative to the working directory: leave it as given
    return "replay://" + str(base / path)


def _take_nodeids(config: pytest.Config) -> list[str]:
    """Take kvmha node ids (``kvmha/edge-fw/KVMHA-VIRT-002[If2]``) out of the file arguments.

    pytest would look for a file of that name; they select audit items instead (see
    pytest_collection_modifyitems). An argument that exists on disk stays a path. With the
    rootdir elsewhere pytest prints ``<rootdir>/kvmha/...`` relative to the working directory."""
    rel = os.path.relpath(config.rootpath, config.invocation_params.dir)
    prefix = "" if rel == "." else rel.replace(os.sep, "/") + "/"
    ids: dict[str, str] = {}  # as given -> node id
    for a in config.args:
        nodeid = a[len(prefix) :] if prefix and a.startswith(prefix) else a
        if (
            nodeid.split("/", 1)[0] in ("kvmha", "kvmha-whatif")
            and not (config.invocation_params.dir / a.split("::", 1)[0]).exists()
        ):
            ids[a] = nodeid
    if ids:
        config.args = [a for a in config.args if a not in ids]
    config.stash[NODEIDS] = list(ids.values())
    return list(ids.values())


def audit_items_wanted(config: pytest.Config) -> bool:
    """Whether this run audits at collection time (one item per finding).

    Test paths, given on the command line or by the ini file's ``testpaths``, make it a test
    run: a provisioning test must not fail on audit items of the very state it is about to
    fix, and an ini ``kvmha_inventory`` meant for the fixtures must not audit every host on
    every run. Without test paths it is an audit. ``--kvmha-audit`` asks for both."""
    if config.getoption("kvmha_no_audit_items"):
        if config.getoption("kvmha_audit"):
            raise pytest.UsageError(
                "--kvmha-audit and --kvmha-no-audit-items contradict each other"
            )
        return False
    if config.getoption("kvmha_audit") or config.stash.get(NODEIDS, []):
        return True  # asked for, or kvmha node ids given as arguments
    return config.args_source not in (
        pytest.Config.ArgsSource.ARGS,
        pytest.Config.ArgsSource.TESTPATHS,
    )


def pytest_report_header(config: pytest.Config) -> str | None:
    """Say why an inventory was given and nothing is audited (the rule above)."""
    if (
        (_hosts(config) or _opt(config, "inventory"))
        and not config.getoption("kvmha_no_audit_items")
        and not audit_items_wanted(config)
    ):
        return "kvmha: test paths given: no audit at collection (--kvmha-audit adds it)"
    return None


def pytest_cmdline_main(config: pytest.Config) -> int | None:
    if config.getoption("kvmha_list_checks"):
        from pytest_kvmha.model import CheckDiscoveryError, discover_checks
        from pytest_kvmha.report.catalogue import render_catalogue

        try:
            checks = discover_checks()
            text = render_catalogue(
                checks, config.getoption("kvmha_format") or "text", config.get_verbosity()
            )
        except (CheckDiscoveryError, ValueError) as exc:
            raise pytest.UsageError(str(exc)) from None
        print(text, end="")
        return 0
    return None


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "kvmha: an audit finding of pytest-kvmha")
    config.addinivalue_line(
        "markers", "kvmha_destructive: the test changes live hosts through kvmha_provision"
    )
    for severity in SEVERITY_MARKERS:  # -m critical, -m "high or critical"
        config.addinivalue_line("markers", f"{severity}: a kvmha finding of severity {severity}")
    config.pluginmanager.import_plugin("pytest_kvmha.fixtures.provision")
    config.pluginmanager.import_plugin("pytest_kvmha.report.junit")
    if config.pluginmanager.hasplugin("html"):  # pytest-html: its hooks exist only then
        config.pluginmanager.import_plugin("pytest_kvmha.report.pytest_html")
    worker = getattr(config, "workerinput", None)
    if worker is not None and RUNDIR not in worker:  # xdist worker of a run without an audit
        return
    for name in PATH_OPTIONS:
        value = getattr(config.option, f"kvmha_{name}", None)
        if isinstance(value, str) and value.startswith("~"):
            setattr(config.option, f"kvmha_{name}", os.path.expanduser(value))
    nodeids = _take_nodeids(config)
    audit_wanted = (_hosts(config) or _opt(config, "inventory")) and audit_items_wanted(config)
    if not (audit_wanted or config.getoption("kvmha_plan")):
        if nodeids:  # else pytest would quietly run nothing
            raise pytest.UsageError(
                f"{nodeids[0]}: a kvmha node id needs --kvmha-inventory or --kvmha-host"
            )
        return  # nothing to audit: not even one round trip
    try:
        fail_on = Severity.parse(_opt(config, "fail_on") or "medium")
    except ValueError as exc:
        raise pytest.UsageError(f"--kvmha-fail-on: {exc}") from None
    timeout(config)  # a bad value is a usage error before any host is contacted
    parallel = max_parallel(config)
    for name in ("ssh_config", "ssh_identity_file", "inventory", "plan", "baseline"):
        path = _opt(config, name)
        if path and not Path(path).is_file():
            raise pytest.UsageError(f"--kvmha-{name.replace('_', '-')}: {path}: no such file")
    report = _opt(config, "report")
    report_md = _opt(config, "report_md")
    state = KvmhaState(fail_on, Path(report) if report else None)
    state.report_md = Path(report_md) if report_md else None
    report_html = _opt(config, "report_html")
    state.report_html = Path(report_html) if report_html else None
    state.nodeids = nodeids
    state.max_parallel = parallel
    _configure_gate(config, state)
    if worker is not None:  # reports are the controller's; the facts come from its bundles
        import datetime as dt

        state.report_path = state.report_md = state.report_html = None
        state.replay_from = Path(worker[RUNDIR])
        state.today = dt.date.fromisoformat(worker[TODAY])
    baseline = config.getoption("kvmha_baseline")
    if baseline:
        import json

        from pytest_kvmha.fixtures.whatif import load_baseline

        try:
            state.baseline = load_baseline(json.loads(Path(baseline).read_text()), baseline)
        except (ValueError, UnicodeDecodeError) as exc:
            raise pytest.UsageError(f"--kvmha-baseline: {exc}") from None
        state.baseline_path = baseline
    config.stash[STATE] = state


def _configure_gate(config: pytest.Config, state: KvmhaState) -> None:
    """Waivers and baseline gating (usage errors name the file, entry and field)."""
    import datetime as dt

    from pytest_kvmha.config.waivers import WaiverError, load_waivers

    state.today = dt.date.today()
    waivers = _opt(config, "waivers")
    if waivers:
        try:
            state.waivers = load_waivers(waivers)
        except WaiverError as exc:
            raise pytest.UsageError(f"--kvmha-waivers: {exc}") from None
        state.waivers_path = waivers
    state.strict_waivers = bool(
        config.getoption("kvmha_strict_waivers") or config.getini("kvmha_strict_waivers")
    )
    state.fail_on_new = bool(config.getoption("kvmha_fail_on_new"))
    if state.fail_on_new and not config.getoption("kvmha_baseline"):
        raise pytest.UsageError("--kvmha-fail-on-new needs --kvmha-baseline=BEFORE.json")


def _progress(config: pytest.Config, inventory: Any) -> Any:
    """Hosts done / total (and unreachable so far) rewritten in place on a terminal while the
    hosts are collected; None (nothing printed) when the output is a log, not a terminal."""
    tr = config.pluginmanager.get_plugin("terminalreporter")
    total = len(inventory.hosts)
    if tr is None or not getattr(tr, "isatty", False) or total == 0:
        return None

    def show(done: int, total: int, unreachable: int) -> None:
        tr.rewrite(f"kvmha: collecting hosts {done}/{total}, {unreachable} unreachable", erase=True)

    show(0, total, 0)
    return show


def _run_audit(config: pytest.Config, state: KvmhaState) -> None:
    from pytest_kvmha.audit.engine import audit, same_hosts
    from pytest_kvmha.bundle.store import host_dir
    from pytest_kvmha.collect.pool import collect_all
    from pytest_kvmha.config.inventory import InventoryError, inventory_from_specs, load_inventory
    from pytest_kvmha.config.redact import redact
    from pytest_kvmha.config.target import CollectOptions
    from pytest_kvmha.model import CheckDiscoveryError, discover_checks
    from pytest_kvmha.parse.host import parse_bundle

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
        state.errors.append(redact(str(exc)))
        raise pytest.UsageError(redact(str(exc))) from None
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
        _opt(config, "ssh_config"),
        _opt(config, "ssh_identity_file"),
        timeout(config),
        max_parallel=state.max_parallel,
    )
    targets = list(inventory.hosts)
    if state.replay_from is None and wanted is None:
        state.not_contacted = _not_contacted(config, inventory)
    # Workers replay the controller's bundles (no host contact); their reports are not written.
    record = config.getoption("kvmha_record") if state.replay_from is None else None
    parsed: list[Any] = [None] * len(targets)
    bundles: list[Any] = [None] * len(targets)

    def arrived(i: int, b: Any) -> None:
        """Parse each host as its bundle arrives, while the others are still being collected."""
        parsed[i] = parse_bundle(b)
        bundles[i] = b

    if state.replay_from is not None:
        _wait_for_controller(state.replay_from)
    collect_all(
        targets,
        options,
        _collector(state),
        # not while xdist writes its own start-up lines (the controller collects meanwhile)
        progress=_progress(config, inventory) if state.rundir is None else None,
        on_bundle=arrived,
    )
    # Issue 11: trace the heartbeat paths of the audited clusters (one more round trip for each
    # host holding their ports; never on workers or for recordings, whose traces are evidence).
    if state.replay_from is None:
        from pytest_kvmha.audit.engine import resolve_clusters
        from pytest_kvmha.audit.run import trace_phase

        done = [b for b in bundles if b is not None]
        before = {b.host: b.round_trips for b in done}
        trace_phase(done, list(parsed), resolve_clusters(inventory, parsed), targets, options)
        for i, b in enumerate(bundles):
            if b is not None and b.round_trips != before[b.host]:
                parsed[i] = parse_bundle(b)
    for b in bundles:
        if b is None:
            continue
        state.rounds[b.host] = b.round_trips
        state.digests[b.host] = b.sha256()
        state.metrics[b.host] = _metrics(b)
        if record and b.status != NOT_CONTACTED:
            try:
                b.write(host_dir(Path(record), b.host))
            except Exception as exc:  # recording must not cost the audit
                state.errors.append(f"--kvmha-record: {b.host}: {exc}")
        if state.rundir is not None:  # xdist: every worker must see exactly these facts
            b.write(host_dir(state.rundir, b.host))
    hosts = list(parsed)
    twice = [
        f"hosts {a.name} ({a.spec}) and {b.name} ({b.spec}) are one machine "
        f"(machine-id {a.identity}, same libvirt domains): give each host once"
        for a, b in same_hosts(hosts)
    ]
    if twice:  # every domain would be audited twice, and paired with itself by discovery
        state.errors += twice
        raise pytest.UsageError("; ".join(twice))
    try:
        checks = discover_checks()
    except CheckDiscoveryError as exc:
        raise pytest.UsageError(str(exc)) from None
    state.audit = audit(checks, inventory, hosts)
    if wanted is not None:
        from pytest_kvmha.fixtures.whatif import what_if

        state.whatif = what_if(
            checks,
            hosts,
            wanted.clusters,
            state.audit.findings,
            current=state.audit.clusters,
            datapath_type=datapath(config),
        )


NOT_CONTACTED = "not-contacted"  # bundle/host status of a host no selected item needs
NOT_EVALUATED = "not-evaluated"  # waiver status: it may be about a host that was not contacted


def _collector(state: KvmhaState) -> Any:
    """How each host's bundle is had: collected (hosts no selected item needs are not
    contacted), or on an xdist worker read back from the controller's run directory."""
    from urllib.parse import urlsplit

    from pytest_kvmha.bundle.store import BundleError, EvidenceBundle, host_dir
    from pytest_kvmha.collect.host import collect
    from pytest_kvmha.config.redact import redact
    from pytest_kvmha.config.target import CollectOptions, HostTarget

    def one(target: HostTarget, options: CollectOptions) -> EvidenceBundle:
        if state.replay_from is not None:
            try:
                return EvidenceBundle.read(host_dir(state.replay_from, target.name))
            except BundleError as exc:  # the controller wrote it: a broken run directory
                return EvidenceBundle(
                    target.name, redact(target.spec), "replay", "", status="error", error=str(exc)
                )
        why = state.not_contacted.get(target.name)
        if why is not None:
            return EvidenceBundle(
                target.name,
                redact(target.spec),
                urlsplit(target.spec).scheme or "local",
                "",
                status=NOT_CONTACTED,
                error=f"{target.name}: not contacted: {why}",
            )
        return collect(target, options)

    return one


def _metrics(b: Any) -> dict[str, Any]:
    return {
        "round_trips": b.round_trips,
        "collect_seconds": round(b.seconds, 3),
        "bytes_received": b.bytes_received,
        "bytes_sent": b.bytes_sent,
        "retries": len(b.retries),
        "retry_reasons": [str(r.get("reason", "")) for r in b.retries],
    }


def _not_contacted(config: pytest.Config, inventory: Any) -> dict[str, str]:
    """Hosts no item the run selects can need (node ids, --deselect, -k): not contacted."""
    from pytest_kvmha.audit.selection import unneeded_hosts
    from pytest_kvmha.model import CheckDiscoveryError, discover_checks

    try:
        checks = discover_checks()
    except CheckDiscoveryError:
        return {}  # reported where the audit discovers them
    nodeids: list[str] = config.stash.get(NODEIDS, [])
    return unneeded_hosts(
        checks,
        inventory,
        nodeids=nodeids,
        deselect=list(config.getoption("deselect", None) or []),
        keyword=str(config.getoption("keyword", "") or ""),
    )


class KvmhaCollector(pytest.Collector):
    """The root of all audit items: ``kvmha``."""

    def collect(self) -> list[pytest.Item]:
        state = self.config.stash[STATE]
        items: list[pytest.Item] = []
        if audit_items_wanted(self.config):
            items += [
                KvmhaItem.from_parent(
                    self, name=f.nodeid.split("/", 1)[1], nodeid=f.nodeid, finding=f
                )
                for f in state.audit.findings
            ]
        if state.whatif is not None:
            from pytest_kvmha.fixtures.whatif import key_of

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
        self.add_marker(str(finding.check.severity))  # -m critical
        # -k matches these as whole words: "-k critical", "-k KVMHA-OVS-002" (and node names)
        self.extra_keyword_matches.update({finding.check.id, str(finding.check.severity)})
        from pytest_kvmha.report.junit import junit_properties

        self.user_properties += junit_properties(
            finding, self.config.stash[STATE].fail_on, regression=bool(culprit), whatif=whatif
        )
        # -k kvm-a: every item touching kvm-a, cluster items of members on it included
        self.extra_keyword_matches.update(_hosts_of(self.config, finding))
        if finding.status == SKIP:  # reported at the item's location, not the plugin's
            self.add_marker(pytest.mark.skip(reason=f"{finding.check.id}: {finding.detail}"))

    def setup(self) -> None:
        if self.finding.status == ERROR:
            pytest.fail(self._describe("cannot evaluate"), pytrace=False)

    def runtest(self) -> None:
        f = self.finding
        if f.status == FAIL:
            state = self.config.stash[STATE]
            gate = gate_of(state, f, self.culprit)
            if gate == WAIVED:
                waiver = _waiver_match(state, f).waiver
                self.user_properties.append(("waived", waiver.describe()))
                pytest.xfail(f"{f.detail} - {waiver.describe()}")
            if gate == KNOWN:
                _notice(
                    KvmhaKnownSinceBaseline(
                        f"{f.nodeid}: {f.detail} (known since baseline {state.baseline_path})"
                    )
                )
            elif gate == BELOW:
                _notice(
                    KvmhaBelowThreshold(
                        f"{f.nodeid}: {f.detail} (severity {f.check.severity} is below "
                        f"--kvmha-fail-on={state.fail_on})"
                    )
                )
            else:
                raise KvmhaFinding(self._describe("failed"))

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
        state = self.config.stash[STATE]
        expired = _waiver_match(state, f).expired if state.waivers else None
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
        state = self.config.stash[STATE]
        f = self.finding
        line = state.lines.get(f"clusters.{f.cluster}" if f.cluster else f"hosts.{f.host}", 0)
        return state.inventory_path or "kvmha", line, self.nodeid


PASSED, FAILED, ERRORED, SKIPPED = "pass", "fail", "error", "skip"
WAIVED, BELOW, KNOWN = "waived", "below", "known"


def gate_of(state: KvmhaState, f: Finding, culprit: str | None = None) -> str:
    """What a finding does to the gate: pass, fail, error, skip, or a failure that does not gate
    (waived; below the threshold; known since the baseline with --kvmha-fail-on-new)."""
    if f.status != FAIL:
        return f.status
    if culprit:  # a regression a plan would introduce fails whatever its severity
        return FAILED
    if state.waivers and _waiver_match(state, f).waiver is not None:
        return WAIVED
    if f.check.severity < state.fail_on:
        return BELOW
    if state.fail_on_new and state.baseline is not None:
        from pytest_kvmha.fixtures.whatif import key_of

        # Known only if it *failed* then: an error in the baseline proved nothing.
        if state.baseline.get(key_of(f)) == FAIL:
            return KNOWN
    return FAILED


def _waiver_match(state: KvmhaState, f: Finding) -> Any:
    from pytest_kvmha.config.waivers import match

    return match(state.waivers, f, state.today)


def _notice(warning: Warning) -> None:
    """Warn about a failure that does not gate, shown in the warnings summary; ``-W error``
    must not turn it into a failure (the gate decides, not the warning filters)."""
    with warnings.catch_warnings():
        warnings.simplefilter("always", type(warning))
        warnings.warn(warning, stacklevel=3)


def _hosts_of(config: pytest.Config, f: Finding) -> set[str]:
    if f.host:
        return {f.host}
    state = config.stash.get(STATE, None)
    audit = state.audit if state is not None else None
    for c in audit.clusters if audit is not None else ():
        if c.name == f.cluster:
            return {m.host for m in c.members}
    return set()


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
    """The unreachable host an error finding comes from (its reason is printed once)."""
    if f.status != ERROR or state.audit is None:
        return None
    for h in state.audit.hosts:
        if h.status != "ok" and h.error and h.error in f.detail:
            return str(h.name)
    return None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if isinstance(item, KvmhaItem) and report.failed and call.when == "setup":
        f = item.finding
        host = _unreachable(item.config.stash[STATE], f)
        if host is not None:
            line = f"host {host} unreachable (reason in the kvmha audit summary)"
            report.longrepr = KvmhaRepr(line, line)
        else:
            report.longrepr = KvmhaRepr(item._describe("cannot evaluate"), f.detail)
    return report


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
    if state.nodeids:  # node ids given as arguments: exactly those items (or under a prefix)
        chosen = [i for i in audit_items if any(_under(i.nodeid, n) for n in state.nodeids)]
        unknown = [n for n in state.nodeids if not any(_under(i.nodeid, n) for i in audit_items)]
        if unknown:
            raise pytest.UsageError(f"no kvmha item with node id {', '.join(unknown)}")
        if len(chosen) < len(audit_items):
            config.hook.pytest_deselected(items=[i for i in audit_items if i not in chosen])
        audit_items = chosen
    items[:0] = audit_items


def _under(nodeid: str, given: str) -> bool:
    return nodeid == given or nodeid.startswith(given.rstrip("/") + "/")


def pytest_collection_finish(session: pytest.Session) -> None:
    state = session.config.stash.get(STATE, None)
    if state is not None and state.audit is not None:
        items = [i for i in session.items if isinstance(i, KvmhaItem)]
        state.selected = [i.finding for i in items if not i.whatif]


def _xdist_controller(config: pytest.Config) -> bool:
    return not hasattr(config, "workerinput") and config.pluginmanager.hasplugin("dsession")


DONE = ".kvmha-done"  # in the run directory: "ok" once every bundle is in it, else the error


@pytest.hookimpl(wrapper=True)
def pytest_sessionstart(session: pytest.Session) -> Any:
    """Under pytest-xdist the controller collects no items, so it audits here: every host is
    collected once, in a thread that runs while xdist starts its workers, and the bundles go to
    the workers through a private run directory (pytest_configure_node) where they wait for
    them. The audit's outcome (a usage error included) is the controller's, after the start."""
    config = session.config
    state = config.stash.get(STATE, None)
    if state is None or not _xdist_controller(config):
        return (yield)
    import threading

    rundir = Path(tempfile.mkdtemp(prefix="kvmha-run-"))  # 0700, removed at unconfigure
    state.rundir = rundir
    failure: list[BaseException] = []

    def run() -> None:
        try:
            _run_audit(config, state)
        except BaseException as exc:  # raised in the main thread below
            failure.append(exc)
        finally:
            outcome = "ok" if not failure else f"{type(failure[0]).__name__}: {failure[0]}"
            (rundir / (DONE + ".tmp")).write_text(outcome, encoding="utf-8")
            os.replace(rundir / (DONE + ".tmp"), rundir / DONE)  # workers never see half

    thread = threading.Thread(target=run, name="kvmha-audit", daemon=True)
    thread.start()
    try:
        return (yield)  # xdist's own sessionstart: the workers start meanwhile
    finally:
        thread.join()
        if failure:
            exc = failure[0]
            if not isinstance(exc, pytest.UsageError):
                state.errors.append(f"audit failed: {type(exc).__name__}: {exc}")
            _write_reports(state)  # pytest skips sessionfinish when sessionstart fails
            raise exc


def _wait_for_controller(rundir: Path) -> None:
    """An xdist worker waits until the controller has put every bundle in the run directory."""
    marker = rundir / DONE
    while not marker.exists():
        if not rundir.is_dir():
            raise pytest.UsageError(f"kvmha: the controller's run directory {rundir} is gone")
        time.sleep(0.02)
    outcome = marker.read_text(encoding="utf-8")
    if outcome != "ok":
        raise pytest.UsageError(f"kvmha: the controller's audit failed: {outcome}")


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    state = node.config.stash.get(STATE, None)
    if state is not None and state.rundir is not None:
        node.workerinput[RUNDIR] = str(state.rundir)
        node.workerinput[TODAY] = state.today.isoformat()


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node: Any, ids: list[str]) -> None:
    """The controller's selection is what the workers collected (after -k, -m, --deselect and
    node ids); xdist itself refuses workers that collected different items."""
    state = node.config.stash.get(STATE, None)
    if state is None or state.audit is None:
        return
    chosen = set(ids)
    state.selected = [f for f in state.audit.findings if f.nodeid in chosen]


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(STATE, None)
    if state is not None and state.rundir is not None:
        shutil.rmtree(state.rundir, ignore_errors=True)
        state.rundir = None


def pytest_sessionfinish(session: pytest.Session) -> None:
    state = session.config.stash.get(STATE, None)
    if state is not None and state.strict_waivers and _stale(state):
        if session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
    if state is not None:
        _write_reports(state)


def _write_reports(state: KvmhaState) -> None:
    if state.reports_written or (
        state.report_path is None and state.report_md is None and state.report_html is None
    ):
        return
    state.reports_written = True
    from pytest_kvmha.report.document import build_report, render_markdown, write_report, write_text

    audit = state.audit
    report = build_report(
        audit.hosts if audit else [],
        audit.clusters if audit else [],
        state.selected,
        fail_on=str(state.fail_on),
        errors=state.errors,
        rounds=state.rounds,
        digests=state.digests,
        started=state.started,
        metrics=state.metrics,
    )
    if state.not_contacted:
        report["not_contacted"] = dict(state.not_contacted)
    if audit is not None and audit.discovery is not None:
        report["discovery"] = audit.discovery.as_json()
    if state.whatif is not None:
        report["whatif"] = state.whatif.as_json()
    if state.baseline is not None and audit is not None:
        report["baseline"] = _baseline(state)
    if state.waivers_path is not None:
        _add_waivers(state, report)
    if state.fail_on_new:  # the failures the gate let pass as known (the HTML verdict uses it)
        known = {f.nodeid for f in state.selected if gate_of(state, f) == KNOWN}
        for entry in report["findings"]:
            if entry["nodeid"] in known:
                entry["known_since_baseline"] = True
    if state.report_path is not None:
        write_report(state.report_path, report)
    if state.report_md is not None:
        write_text(state.report_md, render_markdown(report))
    if state.report_html is not None:
        from pytest_kvmha.report.html import render_html

        write_text(state.report_html, render_html(report))


def _waiver_statuses(state: KvmhaState) -> list[tuple[Any, str, int]]:
    from pytest_kvmha.config.waivers import statuses

    # Over every finding of the audit, not the -k selection: a waiver is stale when the whole
    # audit has nothing for it. A host that was not contacted was not audited: a waiver that
    # could be about it is "not-evaluated" there, never stale (a pruned run must not fail
    # --kvmha-strict-waivers where the full run passes).
    out = statuses(state.waivers, state.audit.findings if state.audit else (), state.today)
    skipped = list(state.not_contacted)
    if not skipped:
        return out
    from fnmatch import fnmatchcase

    def about_skipped(w: Any) -> bool:
        return w.host is None or any(fnmatchcase(h, w.host) for h in skipped)

    return [
        (w, NOT_EVALUATED if status == "stale" and about_skipped(w) else status, n)
        for w, status, n in out
    ]


def _stale(state: KvmhaState) -> list[Any]:
    return [w for w, status, _ in _waiver_statuses(state) if status == "stale"]


def _add_waivers(state: KvmhaState, report: dict[str, Any]) -> None:
    """``waived`` on each waived finding (``waiver_expired`` where only an expired one matched),
    and every waiver with its status."""
    by_id = {f.nodeid: f for f in state.selected}
    for entry in report["findings"]:
        f = by_id.get(entry["nodeid"])
        m = _waiver_match(state, f) if f is not None else None
        if m is not None and m.waiver is not None:
            entry["waived"] = m.waiver.as_json()
        elif m is not None and m.expired is not None:
            entry["waiver_expired"] = m.expired.as_json()
    report["waivers"] = [
        {**w.as_json(), "status": status, "matches": n} for w, status, n in _waiver_statuses(state)
    ]
    report["waivers_path"] = state.waivers_path
    report["strict_waivers"] = state.strict_waivers  # a stale waiver then fails the run


def _baseline(state: KvmhaState) -> dict[str, Any]:
    from pytest_kvmha.fixtures.whatif import compare_status, key_json, key_of

    diff = compare_status(state.baseline, {key_of(f): f.status for f in state.selected})
    return {
        "path": state.baseline_path,
        "gating": "new only" if state.fail_on_new else "all",
        "new": [key_json(k) for k in diff.introduced],
        "resolved": [key_json(k) for k in diff.fixed],
        "unchanged": [key_json(k) for k in diff.unchanged],
    }


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    state = config.stash.get(STATE, None)
    if state is None or state.audit is None:
        return
    from pytest_kvmha.config.redact import redact

    tr = terminalreporter
    from pytest_kvmha.report.terminal import cluster_blocks, severity_counts

    def outcome(f: Finding) -> str:
        return gate_of(state, f)

    # -q and a clean success (nothing gating, nothing to warn about): the report paths only.
    attention = (
        any(outcome(f) in (FAILED, ERRORED) for f in state.selected)
        or any(h.problems for h in state.audit.hosts)
        or (state.audit.discovery is not None and state.audit.discovery.ambiguous)
        or any(s != "active" for _, s, _ in _waiver_statuses(state))
        or state.whatif is not None
    )
    if config.option.verbose < 0 and not attention:
        for path in (
            state.report_path,
            state.report_md,
            state.report_html,
        ):  # -q and green: the paths only
            if path:
                tr.write_line(f"kvmha report: {path}")
        return
    tr.section("kvmha audit")
    from pytest_kvmha.report.document import host_status

    for h in state.audit.hosts:
        line = f"host {h.name} ({h.spec}): {host_status(h)}"
        if h.error:  # the one place an unreachable host's reason is printed
            line += f" - {h.error}"
        if h.libvirt_uri:
            line += f" (libvirt {h.libvirt_uri}, from {h.libvirt_uri_from})"
        tr.write_line(redact(line), red=host_status(h) not in ("ok", NOT_CONTACTED))
        for problem in h.problems.values():
            tr.write_line(redact(f"  problem: {problem}"), yellow=True)
    for line in cluster_blocks(state.audit.clusters, state.selected, outcome):
        tr.write_line(line)
    if state.audit.discovery is not None:
        from pytest_kvmha.topology.discovery import name_list

        for a in state.audit.discovery.ambiguous:
            names = name_list(f"{d}@{h}" for h, d in a.members)
            tr.write_line(
                f"ambiguous layout ({', '.join(a.layout)}): {names}: {a.reason}", yellow=True
            )
    counts: dict[str, int] = {}  # by finding status
    gates: dict[str, int] = {}  # by what each failure does to the gate
    for f in state.selected:
        counts[f.status] = counts.get(f.status, 0) + 1
        if f.status == FAIL:
            gates[outcome(f)] = gates.get(outcome(f), 0) + 1
    summary = ", ".join(f"{counts[s]} {s}" for s in (ERROR, FAIL, PASSED, SKIP) if s in counts)
    # Why pytest's count line differs: failures that pass (or xfail) their items.
    why = f"{gates.get(BELOW, 0)} failed below it"
    if gates.get(WAIVED):
        why += f", {gates[WAIVED]} waived (xfailed)"
    if gates.get(KNOWN):
        why += f", {gates[KNOWN]} known since the baseline (passed)"
    tr.write_line(f"findings: {summary or 'none'} (fail-on {state.fail_on}; {why})")
    tr.write_line(severity_counts(state.selected, outcome))
    for w, status, n in _waiver_statuses(state) if state.waivers else []:
        text = f"waiver[{w.index}] {w.ticket} ({w.check}): {status}"
        if status == "active":
            tr.write_line(f"{text}, waives {n} until {w.expires}")
        elif status == "expired":
            tr.write_line(f"{text} on {w.expires}: no longer waives", yellow=True)
        else:
            strict = " (--kvmha-strict-waivers: the run fails)" if state.strict_waivers else ""
            tr.write_line(f"{text}: matches no failed finding{strict}", yellow=True)
    if state.whatif is not None:
        w = state.whatif
        tr.section("kvmha what-if")
        tr.write_line(
            f"plan: {len(w.steps)} steps" + (f", {len(w.refused)} refused" if w.refused else "")
        )
        for i, step in enumerate(w.steps):
            tr.write_line(f"  {i + 1:2}. [{step.host}] {step.command.splitlines()[0]}")
            for line in (step.as_json().get("diff") or "").splitlines():
                tr.write_line(f"      {line}")  # "the XML below": virsh define's diff
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
            + ("; gating on new findings only" if state.fail_on_new else "")
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
    for path in (state.report_path, state.report_md, state.report_html):
        if path:
            tr.write_line(f"kvmha report: {path}")
