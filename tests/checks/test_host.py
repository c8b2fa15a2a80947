"""checks/host.py: bridge-utils is not installed (KVMHA-PKG-001), Open vSwitch is installed
and answering (KVMHA-OVS-001).

How the tests edit and audit a recorded scenario: tests/checks/__init__.py.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ..bundlekit import (
    HostBundle,
    copy_scenario,
    drop_section,
    finding,
    host,
    run,
    set_section,
)
from .checkkit import (
    OVS1,
    PKG,
    VIRT1,
    errors_without_ovs,
    expected,
    problem_errors,
    statuses,
)

# --- KVMHA-PKG-001 ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("packages", "status", "remediation"),
    [
        (
            "manager=rpm\nbridge-utils\t0\tbridge-utils-1.7.1-3.el9.x86_64\n"
            "openvswitch-switch\t1\tpackage openvswitch-switch is not installed\n"
            "openvswitch\t0\topenvswitch3.1-3.1.0-52.el9s.x86_64\n",
            "fail",
            "dnf remove -y bridge-utils",
        ),
        (
            "manager=rpm\nbridge-utils\t1\tpackage bridge-utils is not installed\n"
            "openvswitch-switch\t1\tpackage openvswitch-switch is not installed\n"
            "openvswitch\t0\topenvswitch3.1-3.1.0-52.el9s.x86_64\n",
            "pass",
            None,
        ),
        (
            "manager=pacman\nbridge-utils\t0\tbridge-utils 1.7.1-2\n"
            "openvswitch-switch\t1\terror: package 'openvswitch-switch' was not found\n"
            "openvswitch\t0\topenvswitch 3.3.0-1\n",
            "fail",
            "pacman -R --noconfirm bridge-utils",
        ),
        (
            "manager=pacman\nbridge-utils\t1\terror: package 'bridge-utils' was not found\n"
            "openvswitch-switch\t1\terror: package 'openvswitch-switch' was not found\n"
            "openvswitch\t0\topenvswitch 3.3.0-1\n",
            "pass",
            None,
        ),
        (
            "manager=apk\nbridge-utils\t0\tbridge-utils\n"
            "openvswitch-switch\t1\t\nopenvswitch\t0\topenvswitch\n",
            "fail",
            "apk del bridge-utils",
        ),
        (
            "manager=apk\nbridge-utils\t1\t\nopenvswitch-switch\t1\t\nopenvswitch\t0\topenvswitch\n",
            "pass",
            None,
        ),
        (
            "manager=dpkg\nbridge-utils\t0\tdeinstall ok config-files\n"
            "openvswitch-switch\t0\tinstall ok installed\nopenvswitch\t1\t\n",
            "pass",
            None,
        ),
        (
            "manager=dpkg\nbridge-utils\t0\thold ok installed\n"
            "openvswitch-switch\t0\tinstall ok installed\nopenvswitch\t1\t\n",
            "fail",
            "apt-get remove -y bridge-utils",
        ),
    ],
    ids=[
        "rpm-installed",
        "rpm-absent",
        "pacman-installed",
        "pacman-absent",
        "apk-installed",
        "apk-absent",
        "dpkg-config-files",
        "dpkg-hold-installed",
    ],
)
def test_pkg_bridge_utils_per_package_manager(
    tmp_path: Path, packages: str, status: str, remediation: str | None
) -> None:
    d = copy_scenario("two-ok", tmp_path)
    host(d, "kvm-a").edit("packages", lambda _: packages)
    result = run(d)
    assert statuses(result) == expected("two-ok", {(PKG, "kvm-a"): status})
    f = finding(result, PKG, "kvm-a")
    manager = packages.split("\n", 1)[0].split("=")[1]
    assert f"({manager})" in f.detail
    assert f.remediation == remediation


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        # what older collectors printed on a host with none of dpkg/rpm/pacman/apk (exit 3)
        (
            lambda hb: set_section(hb, "packages", stdout="manager=none\n", rc=3),
            "no known package manager",
        ),
        (
            lambda hb: set_section(hb, "packages", stdout="manager=none\n"),
            "no known package manager",
        ),
        (lambda hb: drop_section(hb, "packages"), "packages: section missing from bundle"),
        (
            lambda hb: set_section(hb, "packages", rc=1, stderr="dpkg-query: error: parsing file"),
            "command failed (rc 1): dpkg-query: error: parsing file",
        ),
        (lambda hb: set_section(hb, "packages", stdout="bridge-utils\t1\t\n"), "manager=<name>"),
        (
            lambda hb: set_section(
                hb, "packages", stdout="manager=dpkg\nopenvswitch-switch\t0\tinstall ok installed\n"
            ),
            "bridge-utils state not reported by dpkg",
        ),
    ],
    ids=["manager-none-rc3", "manager-none", "missing", "rc1", "no-manager-line", "not-reported"],
)
def test_pkg_unknown_state_is_an_error(tmp_path: Path, edit: Any, message: str) -> None:
    d = copy_scenario("two-ok", tmp_path)
    edit(host(d, "kvm-a"))
    result = run(d)
    changes = {(PKG, "kvm-a"): "error", **problem_errors(result)}
    assert statuses(result) == expected("two-ok", changes)
    assert message in finding(result, PKG, "kvm-a").detail


def test_pkg_dpkg_unpacked_counts_as_installed(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    host(d, "kvm-a").edit(
        "packages",
        lambda t: t.replace("bridge-utils\t1\t\n", "bridge-utils\t0\tinstall ok unpacked\n"),
    )
    assert statuses(run(d))[(PKG, "kvm-a")] == "fail"


# --- KVMHA-OVS-001 ---------------------------------------------------------------------------

OVS_DEPENDENT_A = errors_without_ovs("kvm-a", "fw-a") | {
    # the domain XML alone says these NICs are OVS-bound, no passthrough: still skipped
    ("KVMHA-SRIOV-001", "fw-a:If1"): "skip",
    ("KVMHA-SRIOV-001", "fw-a:If2"): "skip",
}


def _no_ovs(hb: HostBundle) -> None:
    # the batch script's else-branch: only ovs-version, rc 127; no other OVS section
    set_section(hb, "ovs-version", stdout="", rc=127, stderr="ovs-vsctl: command not found\n")
    for name in (
        "ovs-vswitchd",
        "ovs-Open_vSwitch",
        "ovs-Bridge",
        "ovs-Port",
        "ovs-Interface",
        "ovs-bonds",
        "ovs-lacp",
    ):
        drop_section(hb, name)


def _db_down(hb: HostBundle) -> None:
    err = "ovs-vsctl: unix:/var/run/openvswitch/db.sock: database connection failed (No such file or directory)\n"
    for name in ("ovs-Open_vSwitch", "ovs-Bridge", "ovs-Port", "ovs-Interface"):
        set_section(hb, name, stdout="", rc=1, stderr=err)


@pytest.mark.parametrize(
    ("break_ovs", "detail", "remediation", "dependent"),
    [
        (_no_ovs, "not installed", "apt-get install -y openvswitch-switch", "not installed"),
        (
            _db_down,
            "database connection failed",
            "systemctl restart",
            "database connection failed (No such file or directory)",
        ),
    ],
    ids=["not-installed", "db-down"],
)
def test_ovs_down_fails_and_dependent_checks_error(
    tmp_path: Path,
    break_ovs: Callable[[HostBundle], None],
    detail: str,
    remediation: str,
    dependent: str,
) -> None:
    d = copy_scenario("two-ok", tmp_path)
    break_ovs(host(d, "kvm-a"))
    result = run(d)
    assert statuses(result) == expected("two-ok", {(OVS1, "kvm-a"): "fail", **OVS_DEPENDENT_A})
    f = finding(result, OVS1, "kvm-a")
    assert detail in f.detail and remediation in f.remediation
    assert f"{dependent} (see KVMHA-OVS-001)" in finding(result, VIRT1, "fw-a:If1").detail


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda hb: set_section(
                hb,
                "ovs-vswitchd",
                stdout="",
                rc=1,
                stderr="2026-11-22T05:00:05Z|00001|unixctl|WARN|failed to connect to "
                "/var/run/openvswitch/ovs-vswitchd.4242.ctl\novs-appctl: cannot connect to "
                '"/var/run/openvswitch/ovs-vswitchd.4242.ctl" (Connection refused)\n',
            ),
            "ovs-vswitchd does not answer: ",
        ),
        (
            lambda hb: hb.edit_json(
                "ovs-Open_vSwitch", lambda doc: doc["data"][0].__setitem__(3, 21)
            ),
            "cur_cfg 20 != next_cfg 21",
        ),
    ],
    ids=["vswitchd-down", "cfg-not-applied"],
)
def test_ovs_vswitchd_not_working_fails_only_ovs001(
    tmp_path: Path, edit: Any, message: str
) -> None:
    d = copy_scenario("two-ok", tmp_path)
    edit(host(d, "kvm-a"))
    result = run(d)
    # the database answers, so the configuration is still audited
    assert statuses(result) == expected("two-ok", {(OVS1, "kvm-a"): "fail"})
    f = finding(result, OVS1, "kvm-a")
    assert message in f.detail and "ovs-appctl version" in f.remediation
