"""The ``kvmha`` command: ``audit``, ``checks``, ``discover`` and ``restore``.

The top of the layer order: it runs pytest (the plugin) for audits and calls the stages below
for the rest. Exit statuses: pytest's for ``audit`` (0 passed, 1 findings gate, 2 interrupted,
3 internal error, 4 usage error); 0/1/4 for the others (see each command's help).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

USAGE_ERROR = 4  # as pytest's: one meaning across the commands

DESCRIPTION = """\
Audit HA firewall clusters (Clavister cOS Core, FortiGate-VM) on KVM + Open vSwitch.
pytest is the engine: `kvmha audit` is `pytest --kvmha-...` with the same items, reports and
exit status; arguments after `--` go to pytest as they are (-k, -n 4, node ids)."""

EPILOG = """\
examples:
  kvmha audit --inventory examples/clusters.toml --report audit.json
  kvmha audit ssh://root@kvm1 ssh://root@kvm2 --fail-on high -- -k HB
  kvmha checks                      the catalogue
  kvmha checks KVMHA-HB-001         one check's page
  kvmha discover ssh://root@kvm1 ssh://root@kvm2 > clusters.toml
  kvmha restore /var/backups/kvmha/run-1
"""


def parser() -> argparse.ArgumentParser:
    from pytest_kvmha.cli import audit
    from pytest_kvmha.fixtures.__main__ import RESTORE_HELP, add_restore_arguments

    ap = argparse.ArgumentParser(
        prog="kvmha",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = ap.add_subparsers(dest="command", metavar="COMMAND", required=True)
    a = sub.add_parser(
        "audit",
        help="audit hosts or an inventory (pytest underneath; exit 0 pass, 1 findings gate)",
        description="Audit the hosts or the inventory's clusters. "
        "Arguments after -- go to pytest. Exit status: pytest's (0 nothing gates, 1 findings "
        "gate, 2 interrupted, 3 internal error, 4 usage error).",
    )
    audit.add_arguments(a)
    c = sub.add_parser(
        "checks",
        help="the check catalogue, or one check's documentation",
        description="Without ID: one line per check. With ID: its page (Markdown, as in "
        "docs/checks/ID.md). Exit 0, or 4 for an unknown ID.",
    )
    c.add_argument("id", nargs="?", metavar="ID")
    c.add_argument("--json", action="store_true", help="the catalogue as JSON (kvmha-checks/1)")
    c.add_argument(
        "--write-docs",
        metavar="DIR",
        type=Path,
        help="write one Markdown page per check and index.md into DIR (built-in checks only)",
    )
    c.add_argument(
        "--check-docs",
        metavar="DIR",
        type=Path,
        help="exit 1 when the pages in DIR differ from what --write-docs writes",
    )
    d = sub.add_parser(
        "discover",
        help="collect hosts and print a TOML inventory of the HA pairs they run",
        description="Collect the hosts, find the HA pairs among their domains and print an "
        "inventory of them (review the GUESSED lines). Exit 0 when every host was read, 1 when "
        "some host was not read or no pair was found (the inventory is printed anyway), 4 for "
        "a bad host spec.",
    )
    d.add_argument("hosts", nargs="+", metavar="HOST")
    d.add_argument("--ssh-config", metavar="FILE")
    d.add_argument("--ssh-identity-file", metavar="FILE")
    d.add_argument("--timeout", type=float, default=300.0, metavar="SECONDS")
    r = sub.add_parser(
        "restore",
        help=RESTORE_HELP,
        description="Undo the steps of a provisioning run journaled in BACKUP_DIR, then verify "
        "every host against its backup. Exit 0 restored, 1 problems left (run it again), 2 no "
        "usable backup.",
    )
    add_restore_arguments(r)
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in args:  # the rest is pytest's
        at = args.index("--")
        args, extra = args[:at], args[at + 1 :]
    ap = parser()
    try:
        ns = ap.parse_args(args)
    except SystemExit as exc:  # argparse: 2 for a usage error; pytest's (and ours) is 4
        return USAGE_ERROR if exc.code not in (0, None) else 0
    if extra and ns.command != "audit":
        return _usage(f"kvmha {ns.command}: arguments after -- are for kvmha audit only")
    if ns.command == "audit":
        from pytest_kvmha.cli.audit import run

        return run(ns, extra)
    if ns.command == "checks":
        return _checks(ns)
    if ns.command == "discover":
        return _discover(ns)
    from pytest_kvmha.fixtures.__main__ import run_restore

    if ns.timeout <= 0:
        return _usage("kvmha restore: --timeout must be positive")
    return run_restore(ns)


def _usage(message: str) -> int:
    print(message, file=sys.stderr)
    return USAGE_ERROR


def _checks(ns: argparse.Namespace) -> int:
    from pytest_kvmha.cli.checkdoc import check_page, stale_pages, write_pages
    from pytest_kvmha.model import CheckDiscoveryError, discover_checks
    from pytest_kvmha.report.catalogue import render_catalogue

    docs = ns.write_docs or ns.check_docs
    try:
        # The docs tree holds the built-in catalogue: site checks installed here stay out of it.
        checks = discover_checks(group=None) if docs else discover_checks()
    except CheckDiscoveryError as exc:
        return _usage(f"kvmha checks: {exc}")
    if ns.write_docs:
        for name in write_pages(checks, ns.write_docs):
            print(f"wrote {ns.write_docs / name}")
        return 0
    if ns.check_docs:
        stale = stale_pages(checks, ns.check_docs)
        for name in stale:
            print(f"{ns.check_docs / name}: not what the catalogue generates", file=sys.stderr)
        if stale:
            print(f"regenerate: kvmha checks --write-docs {ns.check_docs}", file=sys.stderr)
        return 1 if stale else 0
    if ns.id is None:
        print(render_catalogue(checks, "json" if ns.json else "text"), end="")
        return 0
    by_id = {c.id.upper(): c for c in checks}
    c = by_id.get(ns.id.upper())
    if c is None:
        near = [i for i in by_id if i.startswith(ns.id.upper().rsplit("-", 1)[0])]
        hint = f" (did you mean {', '.join(near)}?)" if near else " (kvmha checks lists them)"
        return _usage(f"kvmha checks: no check {ns.id!r}{hint}")
    if ns.json:
        import json

        from pytest_kvmha.report.catalogue import check_json

        print(json.dumps(check_json(c), indent=2))
        return 0
    print(check_page(c), end="")
    return 0


def _discover(ns: argparse.Namespace) -> int:
    from pytest_kvmha.cli.discover import collect_hosts, inventory_toml
    from pytest_kvmha.config.inventory import InventoryError, inventory_from_specs
    from pytest_kvmha.config.target import CollectOptions
    from pytest_kvmha.topology.discovery import discover

    if ns.timeout <= 0:
        return _usage("kvmha discover: --timeout must be positive")
    try:
        inventory = inventory_from_specs(ns.hosts)
    except InventoryError as exc:
        # inventory_from_specs names the pytest option; here the specs are arguments
        return _usage(f"kvmha discover: {str(exc).replace('--kvmha-host', 'HOST', 1)}")
    hosts = collect_hosts(
        inventory, CollectOptions(ns.ssh_config, ns.ssh_identity_file, ns.timeout)
    )
    found = discover(hosts)
    print(inventory_toml(inventory.hosts, hosts, found), end="")
    unread = [h for h in hosts if h.status != "ok"]
    for h in unread:
        print(f"kvmha discover: {h.name}: {h.status}: {h.error}", file=sys.stderr)
    if not found.clusters:
        print(f"kvmha discover: no HA pair found: {found.describe()}", file=sys.stderr)
    return 1 if unread or not found.clusters else 0
