"""Fail closed, for real over SSH: a host whose libvirt cannot be read ends in error items, and
the collector reads libvirt through the URI the host's own virsh would use."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_kvmha.testing import Lab
from tests.scenarios import HOSTS, SCENARIOS, reset

from .test_audit_live import run_audit

pytestmark = pytest.mark.live


def inventory(lab: Lab, path: Path, **extra: str) -> Path:
    """Both lab hosts under the scenario names, no clusters (discovery)."""
    lines = []
    for i, name in enumerate(HOSTS):
        lines += [f"[hosts.{name}]", f"spec = {json.dumps(lab.hosts[i].spec)}"]
        if name in extra:
            lines.append(extra[name])
        lines.append("")
    path.write_text("\n".join(lines))
    return path


def test_libvirtd_stopped_is_an_error_naming_the_host(lab: Lab, tmp_path: Path) -> None:
    reset(lab)
    SCENARIOS["two-ok"].build(lab)
    b = lab.hosts[1]
    lab.stop_libvirtd(b)
    try:
        rc, out, report = run_audit(
            tmp_path,
            f"--kvmha-inventory={inventory(lab, tmp_path / 'hosts.toml')}",
            f"--kvmha-ssh-config={lab.ssh_config}",
        )
    finally:
        lab.start_libvirtd(b)
    assert rc == 1, out
    assert "ERROR kvmha/kvm-b/KVMHA-HOST-000[libvirt]" in out
    assert "host kvm-b (ssh://" in out and "): degraded" in out
    hosts = {h["name"]: h for h in report["hosts"]}
    assert hosts["kvm-b"]["status"] == "degraded"
    assert "virsh-domains: command failed" in hosts["kvm-b"]["problems"]["libvirt"]
    assert hosts["kvm-a"]["status"] == "ok" and hosts["kvm-a"]["problems"] is None
    (libvirt,) = [
        f for f in report["findings"] if f["nodeid"] == "kvmha/kvm-b/KVMHA-HOST-000[libvirt]"
    ]
    assert libvirt["status"] == "error" and "kvm-b" in libvirt["detail"]
    # the lab is usable again: the pair is discovered and its checks pass
    (tmp_path / "again").mkdir()
    rc, out, report = run_audit(
        tmp_path / "again",
        f"--kvmha-inventory={inventory(lab, tmp_path / 'hosts.toml')}",
        f"--kvmha-ssh-config={lab.ssh_config}",
    )
    assert [c["name"] for c in report["clusters"]] == ["fw-a+fw-b"], out
    assert not [f for f in report["findings"] if f["check"] == "KVMHA-HOST-000"]


def test_login_environment_and_inventory_pin_choose_the_uri(lab: Lab, tmp_path: Path) -> None:
    """kvm-a's root login exports LIBVIRT_DEFAULT_URI (the test driver: one domain "test");
    kvm-b's inventory entry pins qemu:///system although its login sets the test driver too."""
    reset(lab)
    SCENARIOS["two-ok"].build(lab)
    bashrcs = [h.hostdir / "bashrc" for h in lab.hosts]
    saved = [p.read_text() for p in bashrcs]
    try:
        for p, text in zip(bashrcs, saved, strict=True):
            p.write_text(text + "export LIBVIRT_DEFAULT_URI=test:///default\n")
        pin = {"kvm-b": 'virsh_uri = "qemu:///system"'}
        rc, out, report = run_audit(
            tmp_path,
            f"--kvmha-inventory={inventory(lab, tmp_path / 'h.toml', **pin)}",
            f"--kvmha-ssh-config={lab.ssh_config}",
            f"--kvmha-record={tmp_path / 'bundles'}",
        )
    finally:
        for p, text in zip(bashrcs, saved, strict=True):
            p.write_text(text)
    hosts = {h["name"]: h for h in report["hosts"]}
    assert (hosts["kvm-a"]["libvirt_uri"], hosts["kvm-a"]["libvirt_uri_from"]) == (
        "test:///default",
        "env",
    ), out
    assert (hosts["kvm-b"]["libvirt_uri"], hosts["kvm-b"]["libvirt_uri_from"]) == (
        "qemu:///system",
        "inventory",
    )
    assert "(libvirt test:///default, from env)" in out
    # The URI is in the recorded bundle too.
    section = tmp_path / "bundles" / "kvm-a" / "sections" / "libvirt-uri"
    assert section.read_text() == "env\ntest:///default\n"
    # kvm-a's own virsh sees the test driver's domain, not the lab's firewalls: no pair.
    assert report["clusters"] == []
    # ... the test driver has no nwfilter driver, and no NIC there references a filter: no
    # host problem (a filter no NIC references cannot drop anything); the run still fails,
    # on KVMHA-DISC-001 (no pair found)
    host000 = {
        (f["host"], f["subject"]) for f in report["findings"] if f["check"] == "KVMHA-HOST-000"
    }
    assert host000 == set(), out
    assert "KVMHA-DISC-001" in {f["check"] for f in report["findings"]}
    assert rc == 1
