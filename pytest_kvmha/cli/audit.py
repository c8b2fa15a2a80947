"""``kvmha audit``: the pytest audit run, with pytest-kvmha's options under shorter names.

pytest stays the engine: the same items, reports and exit status as ``pytest --kvmha-...``. The
run is isolated from the directory it starts in: an empty ini file of its own (so a project's
``testpaths``, ``addopts`` or ``kvmha_*`` keys change nothing), an empty directory as the only
test path with ``--kvmha-audit`` (so no test file of the working directory is collected) and
``--confcutdir`` there (so no ``conftest.py`` of the working directory or above is loaded).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import pytest

from pytest_kvmha.config.options import OPTIONS, Option

# Options that make no sense for an audit from this command (or that it sets itself).
NOT_HERE = (
    "host",
    "format",
    "list_checks",
    "allow_provision",
    "backup_dir",
    "no_audit_items",
    "audit",
)


def audit_options() -> list[Option]:
    return [o for o in OPTIONS if o.name not in NOT_HERE]


def flag(o: Option) -> str:
    return "--" + o.name.replace("_", "-")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "hosts",
        nargs="*",
        metavar="HOST",
        help="a host to audit: ssh://[user@]host[:port], local://, paramiko://..., replay://DIR",
    )
    p.add_argument(
        "--junitxml", metavar="PATH", help="pytest's JUnit XML report, with the kvmha properties"
    )
    for o in audit_options():
        kwargs: dict[str, object] = {"help": o.help.replace("%", "%%"), "dest": o.name}
        if o.action == "store_true":
            kwargs["action"] = "store_true"
        else:
            kwargs["metavar"] = o.metavar
        p.add_argument(flag(o), **kwargs)  # type: ignore[arg-type]


def pytest_args(ns: argparse.Namespace, workdir: Path, extra: Sequence[str]) -> list[str]:
    """The pytest command line of this audit (``workdir``: an empty directory of its own)."""
    ini = workdir / "pytest.ini"
    args = [
        "-p",
        "no:cacheprovider",
        "-c",
        str(ini),
        f"--rootdir={Path.cwd()}",
        f"--confcutdir={workdir}",
        "--kvmha-audit",
    ]
    for spec in ns.hosts:
        args.append(f"--kvmha-host={spec}")
    for o in audit_options():
        value = getattr(ns, o.name, None)
        if o.action == "store_true":
            if value:
                args.append("--kvmha-" + o.name.replace("_", "-"))
        elif value is not None:
            args.append(f"--kvmha-{o.name.replace('_', '-')}={value}")
    if getattr(ns, "junitxml", None):
        args.append(f"--junitxml={ns.junitxml}")
    return [*args, str(workdir / "none"), *extra]


def run(ns: argparse.Namespace, extra: Sequence[str]) -> int:
    if not ns.hosts and not ns.inventory and not ns.plan:
        print("kvmha audit: give one or more HOSTs or --inventory FILE", file=sys.stderr)
        return int(pytest.ExitCode.USAGE_ERROR)
    with tempfile.TemporaryDirectory(prefix="kvmha-audit-") as tmp:
        workdir = Path(tmp)
        (workdir / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
        (workdir / "none").mkdir()
        return int(pytest.main(pytest_args(ns, workdir, extra)))
