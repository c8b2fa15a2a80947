"""Fail closed: an audit that saw nothing is never green (issue 6).

Host problems end in error items, the virsh URI is the host's own, ``-n`` with an audit is a
usage error, and a refused plan fails the gate; ``virsh define`` steps show their XML diff."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from pytest_kvmha.collect.host import collect
from pytest_kvmha.collect.script import batch_script
from pytest_kvmha.collect.transport import remote_command
from pytest_kvmha.config.hosts import check_virsh_uri
from pytest_kvmha.config.inventory import InventoryError, parse_inventory
from pytest_kvmha.config.target import CollectOptions, HostTarget
from pytest_kvmha.parse.host import parse_bundle
from pytest_kvmha.report.document import render_markdown

from ..bundlekit import BUNDLES, HostBundle

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

NO_LIBVIRTD = (
    "error: failed to connect to the hypervisor\n"
    "error: Failed to connect socket to '/var/run/libvirt/libvirt-sock': No such file or directory\n"
)


def report(pytester: pytest.Pytester, name: str = "r.json") -> dict[str, Any]:
    return json.loads((pytester.path / name).read_text())


def break_sections(
    host_dir: Path, names: list[str], stderr: str, rc: int = 1, stdout: str = ""
) -> None:
    """Record ``names`` as failed commands, as the collector does when virsh cannot connect."""
    hb = HostBundle(host_dir)

    def change(meta: dict[str, Any]) -> None:
        for name in names:
            meta["sections"][name] = {"rc": rc, "stderr": stderr}
            (host_dir / "sections" / name).write_text(stdout)

    hb.set_meta(change)


# --- 1. every host problem ends in an error item ------------------------------------------------


def test_libvirt_unreadable_host_is_not_green(pytester: pytest.Pytester) -> None:
    """libvirtd stopped: virsh cannot list domains, nor networks, nor filters. Today: host
    checks pass, exit 0. Now: one error item per problem, naming the host and the reason."""
    shutil.copytree(BUNDLES / "single-ok" / "kvm-a", pytester.path / "kvm-a")
    break_sections(
        pytester.path / "kvm-a",
        ["virsh-domains", "virsh-active", "virsh-paused", "virsh-networks", "virsh-nwfilters"],
        NO_LIBVIRTD,
    )
    result = pytester.runpytest(
        "--kvmha-host=replay://kvm-a", "--kvmha-report=r.json", "--kvmha-report-md=r.md", "-rA"
    )
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        [
            "*ERROR at setup of kvmha/kvm-a/KVMHA-HOST-000[[]libvirt[]]*",
            "*libvirt not read*kvm-a: virsh-domains: command failed (rc 1): error: Failed to connect socket*",
            "*host kvm-a (replay://kvm-a): degraded*",
            "ERROR kvmha/kvm-a/KVMHA-HOST-000[[]libvirt[]]*",
        ]
    )
    r = report(pytester)
    (host,) = r["hosts"]
    assert host["status"] == "degraded"
    assert set(host["problems"]) == {"libvirt", "networks", "nwfilters"}
    errors = {f["subject"]: f for f in r["findings"] if f["check"] == "KVMHA-HOST-000"}
    assert set(errors) == {"libvirt", "networks", "nwfilters"}
    assert {f["status"] for f in errors.values()} == {"error"}
    assert errors["libvirt"]["host"] == "kvm-a"
    assert "Failed to connect socket" in errors["libvirt"]["detail"]
    # ... and discovery, which had no domains to look at, says that no cluster was found
    (disc,) = [f for f in r["findings"] if f["check"] == "KVMHA-DISC-001"]
    assert disc["status"] == "error" and "domains of kvm-a not read" in disc["detail"]
    assert r["summary"]["error"] == 4
    assert "| kvm-a | replay://kvm-a | degraded |" in (pytester.path / "r.md").read_text()


@pytest.mark.parametrize(
    ("sections", "problem"),
    [
        (["identity"], "identity"),
        (["packages"], "packages"),
        (["links"], "links"),
        (["ovs-Bridge"], "ovs"),  # unparsable JSON (a failing ovs-vsctl fails KVMHA-OVS-001)
        (["virsh-domains"], "libvirt"),
        (["virsh-networks"], "networks"),
        (["virsh-nwfilters"], "nwfilters"),
    ],
)
def test_every_problem_section_gives_an_error_item(
    pytester: pytest.Pytester, sections: list[str], problem: str
) -> None:
    shutil.copytree(BUNDLES / "single-ok", pytester.path / "s")
    if problem == "ovs":
        break_sections(pytester.path / "s" / "kvm-b", sections, "", rc=0, stdout="{not json")
    else:
        break_sections(pytester.path / "s" / "kvm-b", sections, "permission denied")
    result = pytester.runpytest("--kvmha-inventory=s/clusters.toml", "--kvmha-report=r.json")
    assert result.ret == 1
    bad = [
        (f["nodeid"], f["status"])
        for f in report(pytester)["findings"]
        if f["check"] == "KVMHA-HOST-000"
    ]
    assert bad == [(f"kvmha/kvm-b/KVMHA-HOST-000[{problem}]", "error")]


def test_broken_domain_is_an_error_item(pytester: pytest.Pytester) -> None:
    """A domain whose XML does not parse is left out of discovery: it must not vanish."""
    shutil.copytree(BUNDLES / "single-ok" / "kvm-a", pytester.path / "kvm-a")
    hb = HostBundle(pytester.path / "kvm-a")
    (name,) = [n for n in hb.sections("domain-inactive/") if "fw-slave" in hb.text(n)]
    hb.edit(name, lambda x: x.replace("</domain>", ""))
    result = pytester.runpytest("--kvmha-host=replay://kvm-a", "--kvmha-report=r.json")
    assert result.ret == 1
    uuid = name.split("/", 1)[1]
    result.stdout.fnmatch_lines([f"ERROR kvmha/kvm-a/KVMHA-HOST-000[[]domain:{uuid}[]]*"])


def test_clean_hosts_get_no_host_000_items() -> None:
    """No problem, no item: recorded conforming bundles keep their counts."""
    from ..bundlekit import run

    result = run(BUNDLES / "two-ok")
    assert not [f for f in result.findings if f.check.id == "KVMHA-HOST-000"]


# --- 2. the host's own libvirt URI ---------------------------------------------------------------


def test_virsh_uri_validation() -> None:
    from pytest_kvmha.config.hosts import check_virsh_uri

    assert check_virsh_uri("qemu:///system") == "qemu:///system"
    assert check_virsh_uri("qemu+ssh://root@kvm1/system?keyfile=/k") == (
        "qemu+ssh://root@kvm1/system?keyfile=/k"
    )
    for bad in ["", "qemu:///system; touch /tmp/x", "$(id)", "qemu:///sys tem", "qemu:///'x'"]:
        with pytest.raises(ValueError, match="virsh URI"):
            check_virsh_uri(bad)


def test_inventory_virsh_uri_key() -> None:
    inv = parse_inventory(
        {"hosts": {"kvm1": {"spec": "ssh://root@kvm1", "virsh_uri": "qemu:///system"}}}, "x.toml"
    )
    assert inv.hosts[0].virsh_uri == "qemu:///system"
    with pytest.raises(InventoryError, match=r'x.toml: host "kvm1": key .virsh_uri.'):
        parse_inventory(
            {"hosts": {"kvm1": {"spec": "local://", "virsh_uri": "qemu:///system`id`"}}}, "x.toml"
        )
    with pytest.raises(InventoryError, match=r'host "kvm1": keys .libvirt. and .virsh_uri.'):
        parse_inventory(
            {
                "hosts": {
                    "kvm1": {
                        "spec": "local://",
                        "virsh_uri": "qemu:///system",
                        "libvirt": "test:///default",
                    }
                }
            },
            "x.toml",
        )


def test_script_stays_fixed_text() -> None:
    """The pinned URI never enters the script: it is an argument of ``sh -c``, after it."""
    script = batch_script("ab" * 8)
    assert "qemu:///system" in script  # the fallback, a constant
    assert "LIBVIRT_DEFAULT_URI" in script
    pinned = "test:///default?x=1&y=2"
    line = remote_command(script, 30, check_virsh_uri(pinned))
    assert pinned not in script
    assert line.endswith(" " + shlex.quote(pinned)) and line.count(pinned) == 1
    assert shlex.quote(script) in line  # the script's text, unchanged


def test_pinned_uri_is_read_from_the_argument(tmp_path: Path) -> None:
    """The script, run with the pinned URI as $1, reports it as the inventory's URI."""
    pinned = "test:///default"
    script = batch_script("ab" * 8, skip_links=True)
    env = {**os.environ, "PATH": str(tmp_path) + ":" + os.environ["PATH"]}
    env.pop("LIBVIRT_DEFAULT_URI", None)
    out = subprocess.run(
        ["sh", "-c", script, "kvmha", pinned], env=env, capture_output=True, text=True, timeout=60
    ).stdout
    assert "\ninventory\n" + pinned + "\n" in out


def test_hostile_uri_refused_before_any_command() -> None:
    b = collect(
        HostTarget("h", "local://", virsh_uri="test:///default';touch /tmp/kvmha-pwn;'"),
        CollectOptions(timeout=30),
    )
    assert b.status == "error" and "virsh URI" in (b.error or "")
    assert not Path("/tmp/kvmha-pwn").exists()


needs_virsh = pytest.mark.skipif(shutil.which("virsh") is None, reason="needs virsh")


@needs_virsh
def test_login_environment_uri_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """The host's own LIBVIRT_DEFAULT_URI (here: the test driver) instead of qemu:///system."""
    monkeypatch.setenv("LIBVIRT_DEFAULT_URI", "test:///default")
    b = collect(HostTarget("h", "local://"), CollectOptions(timeout=60))
    facts = parse_bundle(b)
    assert b.sections["libvirt-uri"].stdout.splitlines() == ["env", "test:///default"]
    assert facts.libvirt_uri == "test:///default"
    assert facts.domains is not None and set(facts.domains) == {"test"}, dict(facts.problems)


@needs_virsh
def test_inventory_pin_wins_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIBVIRT_DEFAULT_URI", "qemu:///nowhere")
    b = collect(HostTarget("h", "local://", virsh_uri="test:///default"), CollectOptions())
    facts = parse_bundle(b)
    assert b.sections["libvirt-uri"].stdout.splitlines() == ["inventory", "test:///default"]
    assert facts.domains is not None and set(facts.domains) == {"test"}


@needs_virsh
def test_uri_in_report(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIBVIRT_DEFAULT_URI", "test:///default")
    pytester.runpytest_inprocess("--kvmha-host=local://", "--kvmha-report=r.json")
    (host,) = report(pytester)["hosts"]
    assert host["libvirt_uri"] == "test:///default"
    assert host["libvirt_uri_from"] == "env"


# --- 3. pytest-xdist -------------------------------------------------------------------------------


@pytest.fixture
def single_ok(pytester: pytest.Pytester) -> Path:
    shutil.copytree(BUNDLES / "single-ok", pytester.path / "s")
    return pytester.path / "s" / "clusters.toml"


def test_xdist_off_or_without_audit_is_allowed(pytester: pytest.Pytester, single_ok: Path) -> None:
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest_subprocess(
        "-p", "xdist", "-n", "0", f"--kvmha-inventory={single_ok}"
    )
    assert result.ret == 0, result.stdout.str()
    # the audit ran in this one process: its items and the ordinary test
    assert result.parseoutcomes()["passed"] > 10, result.stdout.str()
    # -n without an audit: an ordinary xdist run
    result = pytester.runpytest_subprocess("-p", "xdist", "-n", "2")
    assert result.ret == 0
    # provisioning runs (no audit items) may use xdist
    result = pytester.runpytest_subprocess(
        "-p", "xdist", "-n", "2", f"--kvmha-inventory={single_ok}", "--kvmha-no-audit-items"
    )
    assert result.ret == 0, result.stdout.str()


# --- 4. pre-change validation --------------------------------------------------------------------


# A refused plan fails the gate and every report: tests/report/test_verdict.py,
# test_refused_plan_fails_the_gate_and_every_report.


def test_accepted_plan_has_no_refusal_item(pytester: pytest.Pytester) -> None:
    shutil.copytree(BUNDLES / "slot-mismatch", pytester.path / "s")
    inv = pytester.path / "s" / "clusters.toml"
    result = pytester.runpytest(
        f"--kvmha-inventory={inv}", f"--kvmha-plan={inv}", "-rA", "-k", "whatif"
    )
    assert "KVMHA-PLAN-001" not in result.stdout.str()
    assert result.ret == 0


def test_define_step_shows_its_xml_diff(pytester: pytest.Pytester) -> None:
    shutil.copytree(BUNDLES / "slot-mismatch", pytester.path / "s")
    inv = pytester.path / "s" / "clusters.toml"
    pytester.runpytest(
        f"--kvmha-inventory={inv}",
        f"--kvmha-plan={inv}",
        "--kvmha-report=r.json",
        "--kvmha-report-md=r.md",
    ).stdout.fnmatch_lines(
        [
            "*1. [[]kvm-a[]] virsh define fw-slave.xml  # the XML below",
            "*--- fw-slave.xml (now)",
            "*+++ fw-slave.xml (planned)",
            "*-*<address type='pci' * slot='0x0*",
            "*+*<address type='pci' * slot='0x0*",
            "*after the change*",
        ]
    )
    (step,) = report(pytester)["whatif"]["steps"]
    assert step["diff"].startswith("--- fw-slave.xml (now)\n+++ fw-slave.xml (planned)\n")
    md = (pytester.path / "r.md").read_text()
    assert "   ```diff\n   --- fw-slave.xml (now)\n" in md


def test_markdown_diff_fence_outlasts_backticks_in_the_diff() -> None:
    """A domain XML holding backtick runs cannot close the fence and write into the report."""
    diff = "--- a\n+++ b\n@@ -1 +1 @@\n-<title>x</title>\n+<title>````\n# owned</title>\n"
    rep: dict[str, Any] = {
        "summary": {"pass": 0, "fail": 0, "error": 0, "skip": 0},
        "fail_on": "medium",
        "hosts": [],
        "findings": [],
        "whatif": {
            "steps": [
                {"host": "h", "command": "virsh define d.xml  # the XML below", "diff": diff}
            ],
            "refused": [],
            "introduced": [],
            "fixed": [],
            "unchanged": [],
        },
    }
    md = render_markdown(rep)
    assert "   `````diff\n" in md and "\n   `````\n" in md
    inside = md.split("   `````diff\n", 1)[1].split("\n   `````\n", 1)[0]
    assert all(line.startswith("   ") for line in inside.splitlines())
    assert "   # owned</title>" in inside


# --- 5. host must not be reached by a shell through the URI ----------------------------------------


@needs_virsh
def test_hostile_environment_uri_stays_data(tmp_path: Path) -> None:
    """A host's own LIBVIRT_DEFAULT_URI is host data: used quoted, never evaluated."""
    flag = tmp_path / "pwned"
    env = {**os.environ, "LIBVIRT_DEFAULT_URI": f"test:///default $(touch {flag})"}
    script = batch_script("cd" * 8, skip_links=True)
    out = subprocess.run(
        ["sh", "-c", script, "kvmha"], env=env, capture_output=True, text=True, timeout=60
    ).stdout
    assert not flag.exists()
    # ... and it was read: reported as the environment's URI, byte for byte.
    assert f"\nenv\ntest:///default $(touch {flag})\n" in out
