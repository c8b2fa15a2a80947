"""Which audit items a run wants: whether it audits at collection time at all, and the kvmha
node ids given as arguments."""

from __future__ import annotations

import os

import pytest

NODEIDS = pytest.StashKey[list[str]]()  # kvmha node ids taken out of the file arguments


def take_nodeids(config: pytest.Config) -> list[str]:
    """Take kvmha node ids (``kvmha/edge-fw/KVMHA-VIRT-002[If2]``) out of the file arguments.

    pytest would look for a file of that name; they select audit items instead (see
    :func:`chosen`). An argument that exists on disk stays a path. With the rootdir elsewhere
    pytest prints ``<rootdir>/kvmha/...`` relative to the working directory."""
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
    if explicit_audit(config):
        return True
    return config.args_source not in (
        pytest.Config.ArgsSource.ARGS,
        pytest.Config.ArgsSource.TESTPATHS,
    )


def explicit_audit(config: pytest.Config) -> bool:
    """An audit asked for on the command line is never left out: an inventory or host given
    there with only the ini's ``testpaths`` (no test path typed), or with a report asked for
    (``--kvmha-report*``: the report of an audit is written whenever one is asked for)."""
    given = config.getoption("kvmha_inventory") or config.getoption("kvmha_host")
    if not given:
        return False
    if config.args_source is pytest.Config.ArgsSource.TESTPATHS:
        return True
    return any(config.getoption(f"kvmha_{n}") for n in ("report", "report_md", "report_html"))


def chosen(items: list[pytest.Item], nodeids: list[str]) -> list[pytest.Item]:
    """The items of the node ids given as arguments (each an item's, a folder of some, or a
    check's without its subject)."""
    picked = [i for i in items if any(_under(i.nodeid, n) for n in nodeids)]
    unknown = [n for n in nodeids if not any(_under(i.nodeid, n) for i in items)]
    if unknown:
        raise pytest.UsageError(f"no kvmha item with node id {', '.join(unknown)}")
    return picked


def _under(nodeid: str, given: str) -> bool:
    """``given`` is the item's node id, a folder of it (``kvmha/edge-fw``), or its check without
    the subject (``kvmha/edge-fw/KVMHA-VIRT-002``: every subject, as pytest selects every
    parameter of a test function by its name)."""
    given = given.rstrip("/")
    if nodeid == given or nodeid.startswith(given + "/"):
        return True
    return "[" not in given and nodeid.startswith(given + "[")
