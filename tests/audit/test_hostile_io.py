"""Nothing a host or an inventory says attacks the reader: names, reports, bundles, secrets, files,
the collector's temporary directory and its deadline."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import time
from pathlib import Path

import cmarkgfm
import pytest
from cmarkgfm.cmark import Options

from pytest_kvmha.bundle.store import (
    MAX_SECTION_BYTES,
    BundleError,
    EvidenceBundle,
    Section,
    host_dir,
)
from pytest_kvmha.collect.host import collect
from pytest_kvmha.collect.pool import collect_all
from pytest_kvmha.config.inventory import InventoryError, inventory_from_specs, load_inventory
from pytest_kvmha.config.redact import redact
from pytest_kvmha.config.target import CollectOptions, HostTarget
from pytest_kvmha.parse.host import parse_bundle
from pytest_kvmha.report.document import build_report, render_markdown, write_report

from ..bundlekit import HostBundle, copy_scenario, recorded_filter, run, statuses
from ..hostilekit import MARKDOWN_PAYLOAD, hostile_copy

OVS1, VIRT3 = "KVMHA-OVS-001", "KVMHA-VIRT-003"

# --- names with control characters are malformed facts ----------------------------------------


def test_nic_model_with_a_newline_is_an_error_not_a_second_command(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    HostBundle(d / "kvm-b").edit_domain(
        "fw-b",
        lambda x: x.replace("<model type='virtio'/>", "<model type='virtio&#10;touch /tmp/x #'/>"),
    )
    result = run(d)
    for f in result.findings:
        assert "touch /tmp/x" not in (f.remediation or "")
    errors = {f.check.id for f in result.findings if f.status == "error"}
    assert VIRT3 in errors and "KVMHA-TOPO-001" in errors
    (problem,) = [p for h in result.hosts for k, p in h.problems.items() if k.startswith("domain:")]
    assert "model 'virtio\\ntouch /tmp/x #' contains control characters" in problem


XML_NAMES = [
    ("<source bridge='br1-internal'/>", "<source bridge='br1&#10;x'/>", "source_bridge"),
    ("<target dev='vnet", "<target dev='v&#9;net", "target_dev"),
    ("<mac address='52:54:00", "<mac address='52:54:00&#13;", "mac"),
    ("<interface type='bridge'>", "<interface type='bridge&#133;'>", "type"),
]


@pytest.mark.parametrize(("old", "new", "field"), XML_NAMES, ids=[f for *_, f in XML_NAMES])
def test_control_characters_in_domain_names_are_refused(
    tmp_path: Path, old: str, new: str, field: str
) -> None:
    d = copy_scenario("two-ok", tmp_path)
    hb = HostBundle(d / "kvm-a")
    for section in hb.domain_sections("fw-a"):
        if old in hb.text(section):
            hb.edit(section, lambda x: x.replace(old, new, 1))
    facts = parse_bundle(EvidenceBundle.read(d / "kvm-a"))
    assert facts.domains is not None and "fw-a" not in facts.domains
    (problem,) = [p for k, p in facts.problems.items() if k.startswith("domain:")]
    assert f".{field} " in problem and "contains control characters" in problem


@pytest.mark.parametrize(
    ("table", "name", "key"),
    [("Bridge", "br1-internal", "ovs"), ("Port", "up-a", "ovs"), ("Interface", "up-a", "ovs")],
)
def test_control_characters_in_ovs_names_are_refused(
    tmp_path: Path, table: str, name: str, key: str
) -> None:
    d = copy_scenario("two-ok", tmp_path)
    HostBundle(d / "kvm-a").edit_ovs_row(table, name, "name", name + "\n;pwned")
    result = run(d)
    (kvm_a,) = [h for h in result.hosts if h.name == "kvm-a"]
    assert "contains control characters" in kvm_a.problems[key]
    assert all(
        f.status in ("error", "skip")
        for f in result.findings
        if f.check.id == OVS1 and f.host == "kvm-a"
    )


def test_control_characters_in_link_nwfilter_and_network_names_are_refused(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    hb = HostBundle(d / "kvm-a")
    hb.edit_json("links", lambda doc: doc[0].__setitem__("ifname", "lo\u2028x"))
    recorded_filter(hb, "no-mac-spoofing")  # the collector fetched only referenced filters
    hb = HostBundle(d / "kvm-a")  # re-read with it
    (flt,) = [n for n in hb.sections("nwfilter/") if "name='no-mac-spoofing'" in hb.text(n)][:1]
    hb.edit(flt, lambda x: x.replace("name='no-mac-spoofing'", "name='no-mac&#10;spoofing'"))
    facts = parse_bundle(EvidenceBundle.read(d / "kvm-a"))
    assert "contains control characters" in facts.problems["links"]
    assert "contains control characters" in facts.problems["nwfilters"]
    n = copy_scenario("network-ok", tmp_path / "n")
    nb = HostBundle(n / "kvm-a")
    (net,) = nb.sections("network/")[:1]
    nb.edit(net, lambda x: re.sub(r"<bridge name='([^']*)'", r"<bridge name='\1&#10;'", x))
    facts = parse_bundle(EvidenceBundle.read(n / "kvm-a"))
    assert "contains control characters" in facts.problems["networks"]


def test_inventory_refuses_control_characters_and_climbing_host_names(tmp_path: Path) -> None:
    base = '[clusters.c]\nvendor = "fortigate"\nmembers = [{ host = "h", domain = "fw" }]\n'
    cases = {
        '[hosts.".."]\nspec = "local://"\n': "host \"..\" (line 1): host name '..' is not a directory",
        '[hosts."a/b"]\nspec = "local://"\n': "host \"a/b\" (line 1): host name 'a/b' contains a path sep",
        '[hosts."/etc"]\nspec = "local://"\n': "host \"/etc\" (line 1): host name '/etc' contains a path",
        '[hosts.h]\nspec = "local://"\n' + base.replace('"fw"', '"fw\\n;x"'): "contains control",
    }
    for text, message in cases.items():
        path = tmp_path / "inv.toml"
        path.write_text(text if "clusters" in text else text + base.replace('"h"', '"x"'))
        with pytest.raises(InventoryError) as info:
            load_inventory(path)
        assert str(path) in str(info.value) and message in str(info.value), str(info.value)
    with pytest.raises(InventoryError, match="host name '..' is not a directory name"):
        inventory_from_specs([f"replay://{tmp_path}/.."])
    for bad in ("..", "a/b", "/abs", ""):
        with pytest.raises(BundleError):
            host_dir(tmp_path, bad)


# --- Markdown escapes what it shows ----------------------------------------------------------


def test_markdown_report_shows_hostile_names_as_text(tmp_path: Path) -> None:
    d, renames = hostile_copy("shared-bridge", tmp_path, payload=MARKDOWN_PAYLOAD)
    result = run(d)
    report = build_report(
        result.hosts,
        result.clusters,
        result.findings,
        fail_on="high",
        errors=["bad " + MARKDOWN_PAYLOAD],
    )
    md = render_markdown(report)
    page = cmarkgfm.github_flavored_markdown_to_html(md, options=Options.CMARK_OPT_UNSAFE)
    for tag in ("<img", "<a ", "<em>", "<del>"):
        assert tag not in page, (tag, page)
    assert page.count("<strong>") == 1  # the report's own summary line
    # every table row keeps its columns: no | from a host splits a cell
    rows = [r for r in page.split("<tr>")[1:]]
    assert rows and all(r.count("<td>") in (0, 4, 5) for r in rows), rows
    bad = [f for f in result.findings if f.status == "fail"]
    assert bad and all(f.detail.count(MARKDOWN_PAYLOAD) >= 1 for f in bad[:1])
    # the hostile text is still shown, literally
    assert "![i](http://e.invalid/i.png)" in page


# --- bundles are data, not paths -------------------------------------------------------------


def _replace_with_link(path: Path, target: str) -> None:
    path.unlink()
    path.symlink_to(target)


def test_replay_refuses_a_section_symlinked_to_a_host_file(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    _replace_with_link(d / "kvm-a" / "sections" / "ovs-version", "/etc/passwd")
    result = run(d)
    (kvm_a,) = [h for h in result.hosts if h.name == "kvm-a"]
    assert kvm_a.status == "error" and "ovs-version: is a symlink" in (kvm_a.error or "")
    assert statuses(result)[(OVS1, "kvm-a")] == "error"
    assert "root:" not in json.dumps([f.detail for f in result.findings])


@pytest.mark.parametrize("kind", ["dev-zero", "fifo", "dir-symlink", "bundle-symlink", "huge"])
def test_replay_refuses_special_files_and_linked_directories(tmp_path: Path, kind: str) -> None:
    d = copy_scenario("two-ok", tmp_path)
    host = d / "kvm-a"
    if kind == "dev-zero":
        _replace_with_link(host / "sections" / "ovs-Bridge", "/dev/zero")
    elif kind == "fifo":
        (host / "sections" / "ovs-Bridge").unlink()
        os.mkfifo(host / "sections" / "ovs-Bridge")
    elif kind == "dir-symlink":
        (host / "sections").rename(tmp_path / "elsewhere")
        (host / "sections").symlink_to(tmp_path / "elsewhere")
    elif kind == "bundle-symlink":
        host.rename(tmp_path / "real-kvm-a")
        host.symlink_to(tmp_path / "real-kvm-a")
    else:
        with open(host / "sections" / "ovs-Bridge", "r+b") as f:
            f.truncate(MAX_SECTION_BYTES + 1)  # sparse: costs no disk
    started = time.monotonic()
    with pytest.raises(BundleError) as info:
        EvidenceBundle.read(host)
    assert time.monotonic() - started < 5
    message = str(info.value)
    assert str(host) in message
    assert re.search(r"symlink|not a regular file|byte limit", message), message


def test_recording_never_writes_through_a_symlink(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    bundle = EvidenceBundle(
        "kvm-a", "local://", "local", "now", sections={"identity": Section("x")}
    )
    target = tmp_path / "rec" / "kvm-a"
    (target / "sections").mkdir(parents=True)
    (target / "sections" / "identity").symlink_to(victim)
    with pytest.raises(BundleError, match="not a regular file"):
        bundle.write(target)
    (target / "sections" / "identity").unlink()
    (target / "bundle.json").symlink_to(victim)
    with pytest.raises(BundleError, match="not a regular file"):
        bundle.write(target)
    (target / "bundle.json").unlink()
    shutil.rmtree(target / "sections")
    (target / "sections").symlink_to(tmp_path)
    with pytest.raises(BundleError, match="symlink"):
        bundle.write(target)
    assert victim.read_text() == "precious\n"
    assert not (tmp_path / "identity").exists()


# --- credentials stay secret -----------------------------------------------------------------

SECRET = "s3cr3t-pw"


def test_redact() -> None:
    assert redact(f"ssh://root:{SECRET}@kvm1:22") == "ssh://root:***@kvm1:22"
    assert redact(f"x paramiko://u:p@{SECRET}@h/y") == "x paramiko://u:***@h/y"
    assert redact("ssh://root@kvm1") == "ssh://root@kvm1"


def test_password_in_a_host_spec_is_never_shown_or_stored(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    spec = f"ssh://root:{SECRET}@127.0.0.1:1"
    result = pytester.runpytest_subprocess(
        f"--kvmha-host={spec}",
        "--kvmha-report=r.json",
        "--kvmha-report-md=r.md",
        "--kvmha-record=rec",
        "--kvmha-timeout=20",
    )
    out = result.stdout.str() + result.stderr.str()
    assert "ssh://root:***@127.0.0.1:1" in out
    stored = "".join(p.read_text(errors="replace") for p in pytester.path.rglob("*") if p.is_file())
    assert "127.0.0.1" in stored and "ssh://root:***@" in stored
    assert SECRET not in out and SECRET not in stored


def test_plan_backups_redact_and_are_private(tmp_path: Path) -> None:
    from pytest_kvmha.fixtures.apply import Plan
    from pytest_kvmha.fixtures.plan import plan_cluster

    d = copy_scenario("slot-mismatch", tmp_path)
    inv = load_inventory(d / "clusters.toml")
    bundles = {b.host: b for b in collect_all(list(inv.hosts), CollectOptions())}
    facts = {n: parse_bundle(b) for n, b in bundles.items()}
    planned = plan_cluster(inv.clusters[0], facts)
    assert planned.steps
    targets = {n: HostTarget(n, f"ssh://root:{SECRET}@{n}") for n in bundles}
    plan = Plan(
        inv.clusters[0],
        planned.steps,
        planned.notes,
        targets,
        CollectOptions(),
        bundles,
        tmp_path / "backups" / "c",
        run=lambda t, c: (0, "", ""),
    )
    plan._backup()
    backup = tmp_path / "backups" / "c"
    assert stat.S_IMODE(backup.stat().st_mode) == 0o700
    for path in backup.rglob("*"):
        mode = stat.S_IMODE(path.lstat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), (path, oct(mode))
        if path.is_file():
            assert SECRET not in path.read_text()
    targets_saved = json.loads((backup / "plan.json").read_text())["targets"]
    assert {n: t["spec"] for n, t in targets_saved.items()} == {
        n: f"ssh://root:***@{n}" for n in bundles
    }


# --- files ----------------------------------------------------------------------------------


def test_reports_are_readable_and_bundles_private(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        write_report(tmp_path / "r" / "report.json", {"x": 1})
        bundle = EvidenceBundle(
            "kvm-a", "local://", "local", "now", sections={"domain-live/u": Section("<domain/>")}
        )
        bundle.write(tmp_path / "rec" / "kvm-a")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "r" / "report.json").stat().st_mode) == 0o644
    rec = tmp_path / "rec" / "kvm-a"
    modes = {p.relative_to(rec).as_posix(): stat.S_IMODE(p.stat().st_mode) for p in rec.rglob("*")}
    assert stat.S_IMODE(rec.stat().st_mode) == 0o700
    assert modes == {
        "bundle.json": 0o600,
        "sections": 0o700,
        "sections/domain-live": 0o700,
        "sections/domain-live/u": 0o600,
    }


# --- the collector's temporary directory and its deadline ------------------------------------


def _fake_bin(directory: Path, name: str, body: str) -> Path:
    directory.mkdir(exist_ok=True)
    path = directory / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)
    return directory


def test_collector_uses_mktemp_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = _fake_bin(tmp_path / "bin", "mktemp", "echo 'mktemp: no space left' >&2; exit 1")
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    bundle = collect(HostTarget("local", "local://"), CollectOptions(timeout=60))
    assert bundle.status == "error"
    assert bundle.error == "local: collector cannot run: mktemp -d failed: mktemp: no space left"
    assert not bundle.sections.get("identity")


def _processes_running(marker: str) -> list[str]:
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if marker in line and "ps -eo" not in line]


def test_timeout_stops_the_command_not_only_the_wait(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seconds = f"1{os.getpid() % 100000:05d}.25"  # a sleep no other process runs
    bin_dir = _fake_bin(tmp_path / f"hung-{seconds}", "virsh", f"sleep {seconds}")
    marker = seconds
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    started = time.monotonic()
    (bundle,) = collect_all([HostTarget("local", "local://")], CollectOptions(timeout=2))
    elapsed = time.monotonic() - started
    assert bundle.status == "unreachable" and "no answer within 2 s" in (bundle.error or "")
    assert elapsed < 2 + 10
    deadline = time.monotonic() + 10
    while _processes_running(marker) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _processes_running(marker) == []
