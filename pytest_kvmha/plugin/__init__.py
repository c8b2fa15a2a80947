"""The pytest plugin: options, the audit run's session object, the check catalogue.

The hooks here need no audit state; those that do are methods of
:class:`~pytest_kvmha.plugin.session.KvmhaSession`, registered when there is something to audit.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import pytest

from pytest_kvmha.config.options import (
    OPTIONS,
    addoption_kwargs,
    expand_paths,
    given_as,
    hosts,
    ini_options,
    max_parallel,
    option,
    timeout,
)
from pytest_kvmha.model import Severity
from pytest_kvmha.plugin.selection import audit_items_wanted, take_nodeids
from pytest_kvmha.plugin.session import STATE, KvmhaSession
from pytest_kvmha.plugin.xdist import RUNDIR, worker_input
from pytest_kvmha.report.assemble import ReportPaths

SEVERITY_MARKERS = ("critical", "high", "medium", "low", "info")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kvmha", "HA firewall clusters on KVM + Open vSwitch (pytest-kvmha)")
    for o in OPTIONS:
        group.addoption(o.flag, **addoption_kwargs(o))
    for o in ini_options():
        parser.addini(o.ini_key, o.help, type=o.ini_type, default=o.ini_default)


def pytest_report_header(config: pytest.Config) -> str | None:
    """Say why an inventory was given and nothing is audited (see audit_items_wanted)."""
    if (
        (hosts(config) or option(config, "inventory"))
        and not config.getoption("kvmha_no_audit_items")
        and not audit_items_wanted(config)
    ):
        return "kvmha: test paths given: no audit at collection (--kvmha-audit adds it)"
    return None


def pytest_cmdline_main(config: pytest.Config) -> int | None:
    if config.getoption("kvmha_format") and not config.getoption("kvmha_list_checks"):
        raise pytest.UsageError(
            "--kvmha-format is the format of --kvmha-list-checks and means nothing without it "
            "(reports: --kvmha-report, --kvmha-report-md, --kvmha-report-html)"
        )
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
    _severity_typo(config)
    config.pluginmanager.import_plugin("pytest_kvmha.fixtures.provision")
    config.pluginmanager.import_plugin("pytest_kvmha.report.junit")
    if config.pluginmanager.hasplugin("html"):  # pytest-html: its hooks exist only then
        config.pluginmanager.import_plugin("pytest_kvmha.report.pytest_html")
    worker = worker_input(config)
    if worker is not None and RUNDIR not in worker:  # xdist worker of a run without an audit
        return
    expand_paths(config)
    if config.getoption("kvmha_host") and option(config, "inventory"):
        # one of them would be silently ignored: the inventory's hosts or the given ones
        where = "" if config.getoption("kvmha_inventory") else " (ini kvmha_inventory)"
        raise pytest.UsageError(
            f"--kvmha-host and --kvmha-inventory{where} given together: audit the hosts of "
            "the inventory, or the hosts given, not both (add the host to the inventory)"
        )
    nodeids = take_nodeids(config)
    audit_wanted = (hosts(config) or option(config, "inventory")) and audit_items_wanted(config)
    if not (audit_wanted or config.getoption("kvmha_plan")):
        if nodeids:  # else pytest would quietly run nothing
            raise pytest.UsageError(
                f"{nodeids[0]}: a kvmha node id needs --kvmha-inventory or --kvmha-host"
            )
        return  # nothing to audit: not even one round trip
    from pytest_kvmha.audit.selection import KeywordTooDeep, check_depth

    try:  # the selection parsers recurse: a usage error, not a RecursionError
        check_depth(str(config.getoption("keyword", "") or ""))
    except KeywordTooDeep as exc:
        raise pytest.UsageError(str(exc)) from None
    try:
        fail_on = Severity.parse(option(config, "fail_on") or "medium")
    except ValueError as exc:
        raise pytest.UsageError(f"{given_as(config, 'fail_on')}: {exc}") from None
    timeout(config)  # a bad value is a usage error before any host is contacted
    parallel = max_parallel(config)
    for name in ("ssh_config", "ssh_identity_file", "inventory", "plan", "baseline"):
        path = option(config, name)
        if path and not Path(path).is_file():
            raise pytest.UsageError(f"{given_as(config, name)}: {path}: no such file")
    names = ("report", "report_md", "report_html")
    paths = ReportPaths(*(_path(option(config, n)) for n in names))
    if worker is None:  # before any host is contacted: not after the whole audit
        for name, report_path in zip(names, paths, strict=True):
            problem = _unwritable(report_path) if report_path is not None else None
            if problem is not None:
                flag = "--kvmha-" + name.replace("_", "-")
                raise pytest.UsageError(f"{flag}: {report_path}: {problem}")
    state = KvmhaSession(
        config,
        fail_on,
        paths,
        nodeids=nodeids,
        max_parallel=parallel,
    )
    state.configure_gate()
    if worker is not None:
        state.configure_worker(worker)
    state.configure_baseline()
    config.stash[STATE] = state
    config.pluginmanager.register(state, "kvmha-session")


def _severity_typo(config: pytest.Config) -> None:
    """``-m crit``: pytest deselects every item for a marker nobody has, silently. A word of
    the expression that no marker is registered for and that begins a severity (or a severity
    begins) is a typo of it: a usage error naming the severities."""
    expression = str(config.getoption("markexpr", "") or "")
    if not expression:
        return
    registered = {
        str(line).split(":", 1)[0].split("(", 1)[0].strip() for line in config.getini("markers")
    }
    for word in re.findall(r"[A-Za-z_][\w.+-]*", expression):
        if word in ("and", "or", "not") or word in registered:
            continue
        low = word.lower()
        if any(s.startswith(low) or low.startswith(s) for s in SEVERITY_MARKERS):
            raise pytest.UsageError(
                f"-m {expression!r}: no marker {word!r}; the severity markers are "
                + ", ".join(SEVERITY_MARKERS)
            )


def _unwritable(path: Path) -> str | None:
    """Why a report cannot be written at ``path``, or None. Probed with a temporary file in the
    nearest existing folder, removed at once (permissions alone do not tell: /proc as root)."""
    if path.is_dir():
        return "is a directory (give a file name)"
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        return f"{folder} is not a directory"
    try:
        fd, probe = tempfile.mkstemp(prefix=".kvmha-probe-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        return f"cannot be written ({exc.strerror or exc})"
    return None


def _path(value: str | None) -> Path | None:
    return Path(value) if value else None
