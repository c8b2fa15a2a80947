"""The command-line options and ini keys of pytest-kvmha, each declared once, and how a value
is resolved: the command line first, then the ini key (paths there relative to the ini file)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

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
HELP_ALLOW_CUT = "Maintenance window: let a plan cut every heartbeat link between a cluster's members for a while (the only heartbeat pair changing on both servers); otherwise such a plan is refused."
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

# A file or directory: '~' is expanded (a shell leaves '--opt=~/x' alone); "ini": given in the
# ini file as well, and then relative to it.
FILE, INI_FILE = "file", "ini-file"


@dataclass(frozen=True)
class Option:
    name: str  # dest kvmha_<name>, flag --kvmha-<name with dashes>
    help: str
    metavar: str | None = None
    action: str | None = None  # "store_true", "append"
    type: type | None = None
    ini: str | None = None  # the ini key's type ("string", "bool", "linelist"), None: no key
    ini_default: Any = ""
    ini_name: str | None = None  # when it is not kvmha_<name>
    path: str | None = None  # FILE or INI_FILE

    @property
    def flag(self) -> str:
        return "--kvmha-" + self.name.replace("_", "-")

    @property
    def dest(self) -> str:
        return "kvmha_" + self.name

    @property
    def ini_key(self) -> str:
        return self.ini_name or self.dest

    @property
    def ini_type(self) -> Any:
        """``parser.addini``'s type (None: a string)."""
        return None if self.ini == "string" else self.ini


S = "string"
OPTIONS = (
    Option(
        "host", HELP_HOST, "SPEC", "append", ini="linelist", ini_default=[], ini_name="kvmha_hosts"
    ),
    Option("inventory", HELP_INVENTORY, "FILE", ini=S, path=INI_FILE),
    Option("ssh_config", HELP_SSH_CONFIG, "FILE", ini=S, path=INI_FILE),
    Option("ssh_identity_file", HELP_IDENTITY, "FILE", ini=S, path=INI_FILE),
    Option("report", HELP_REPORT, "PATH", ini=S, path=INI_FILE),
    Option("report_md", HELP_REPORT_MD, "PATH", ini=S, path=INI_FILE),
    Option("report_html", HELP_REPORT_HTML, "PATH", ini=S, path=INI_FILE),
    Option("format", HELP_FORMAT, "FORMAT"),
    Option("record", HELP_RECORD, "DIR", path=FILE),
    Option("fail_on", HELP_FAIL_ON, "SEVERITY", ini=S, ini_default="medium"),
    Option("list_checks", HELP_LIST, action="store_true"),
    Option("plan", HELP_PLAN, "WANTED.toml", path=FILE),
    Option("baseline", HELP_BASELINE, "BEFORE.json", path=FILE),
    Option("datapath", HELP_DATAPATH, "TYPE", ini=S, ini_default="system"),
    Option("allow_provision", HELP_ALLOW, action="store_true"),
    Option("allow_heartbeat_cut", HELP_ALLOW_CUT, action="store_true"),
    Option("backup_dir", HELP_BACKUPS, "DIR", path=FILE),
    Option("no_audit_items", HELP_NO_ITEMS, action="store_true"),
    Option("audit", HELP_AUDIT, action="store_true"),
    Option("timeout", HELP_TIMEOUT, "SECONDS", type=float, ini=S, ini_default="300"),
    Option("waivers", HELP_WAIVERS, "FILE.toml", ini=S, path=INI_FILE),
    Option(
        "strict_waivers", HELP_STRICT_WAIVERS, action="store_true", ini="bool", ini_default=False
    ),
    Option("fail_on_new", HELP_FAIL_ON_NEW, action="store_true"),
    Option("max_parallel", HELP_MAX_PARALLEL, "N", ini=S, ini_default="32"),
)
BY_NAME = {o.name: o for o in OPTIONS}
# The order of the ini keys in pytest --help (as they were added over time).
INI_ORDER = (
    "max_parallel",
    "waivers",
    "strict_waivers",
    "timeout",
    "datapath",
    "host",
    "inventory",
    "ssh_config",
    "ssh_identity_file",
    "report",
    "fail_on",
    "report_md",
    "report_html",
)
PATH_OPTIONS = tuple(o.name for o in OPTIONS if o.path is not None)


def addoption_kwargs(o: Option) -> dict[str, Any]:
    """The keyword arguments of ``parser.addoption`` for ``o``."""
    kwargs: dict[str, Any] = {"help": o.help}
    if o.metavar is not None:
        kwargs["metavar"] = o.metavar
    if o.action is not None:
        kwargs["action"] = o.action
    if o.action == "append":
        kwargs["default"] = []
    if o.type is not None:
        kwargs["type"] = o.type
    return kwargs


def ini_options() -> list[Option]:
    """The options that have an ini key, in their --help order."""
    assert set(INI_ORDER) == {o.name for o in OPTIONS if o.ini is not None}
    return [BY_NAME[name] for name in INI_ORDER]


def expand_paths(config: pytest.Config) -> None:
    """'~' at the start of a path given on the command line is the user's home."""
    for name in PATH_OPTIONS:
        value = getattr(config.option, f"kvmha_{name}", None)
        if isinstance(value, str) and value.startswith("~"):
            setattr(config.option, f"kvmha_{name}", os.path.expanduser(value))


def option(config: pytest.Config, name: str) -> str | None:
    """Command line first, then the ini key (paths in ini files are relative to the ini file)."""
    value = config.getoption(f"kvmha_{name}")
    if value:
        return str(value)
    o = BY_NAME[name]
    if o.ini is None:
        return None
    ini = config.getini(o.ini_key)
    if not ini:
        return None
    if o.path == INI_FILE and config.inipath:
        return str(config.inipath.parent / os.path.expanduser(str(ini)))
    return str(ini)


def given_as(config: pytest.Config, name: str) -> str:
    """Where the value of option ``name`` came from, for a message: ``--kvmha-fail-on`` when
    given on the command line, else its ini key ``kvmha_fail_on (ini file.ini)``."""
    if config.getoption(f"kvmha_{name}") or BY_NAME[name].ini is None:
        return "--kvmha-" + name.replace("_", "-")
    where = f" {config.inipath}" if config.inipath else ""
    return f"{BY_NAME[name].ini_key} (ini{where})"


def hosts(config: pytest.Config) -> list[str]:
    """The --kvmha-host specs, else the ini key's."""
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


MAX_TIMEOUT = 86400.0  # a day: beyond it a wait is a typo (and inf/nan break thread joins)


def timeout(config: pytest.Config) -> float:
    """--kvmha-timeout, else the ini key: finite seconds in (0, MAX_TIMEOUT], else a usage error.

    An explicit 0 is an error too, not a fallback to the default."""
    given = config.getoption("kvmha_timeout")
    if given is not None:
        name, value = "--kvmha-timeout", given
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
    given = config.getoption("kvmha_max_parallel")
    if given is not None:
        name, value = "--kvmha-max-parallel", given
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
