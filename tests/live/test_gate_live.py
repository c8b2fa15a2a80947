"""The CI gate on the real namespace lab: waivers (active, expired) and baseline gating
(--kvmha-fail-on-new) over SSH, with the JSON, Markdown and JUnit outputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_kvmha.lab import Lab
from pytest_kvmha.scenarios import CLUSTER, SCENARIOS, reset

from .test_audit_live import run_audit

pytestmark = pytest.mark.live

WAIVER = """
[[waiver]]
check = "KVMHA-PKG-001"
host = "kvm-*"
reason = "bridge-utils kept until the legacy bridge is gone"
approver = "Jane Doe"
ticket = "{ticket}"
expires = {expires}
"""


def test_waivers_and_baseline_gating_live(lab: Lab, tmp_path: Path) -> None:
    reset(lab)
    SCENARIOS["bridge-utils"].build(lab)  # KVMHA-PKG-001 (high) fails on kvm-a
    inventory = tmp_path / "clusters.toml"
    inventory.write_text(SCENARIOS["bridge-utils"].inventory(lab))
    common = (f"--kvmha-inventory={inventory}", f"--kvmha-ssh-config={lab.ssh_config}")
    pkg = "kvmha/kvm-a/KVMHA-PKG-001[kvm-a]"

    rc, out, before = run_audit(tmp_path, *common)
    assert rc == 1, out
    (tmp_path / "before.json").write_text((tmp_path / "report.json").read_text())

    # An active waiver: the failure is waived (xfail), the run passes, every output says so.
    (tmp_path / "w.toml").write_text(WAIVER.format(ticket="OPS-7", expires="2999-01-01"))
    rc, out, report = run_audit(
        tmp_path,
        *common,
        "--kvmha-waivers=w.toml",
        "--kvmha-report-md=r.md",
        "--junitxml=j.xml",
    )
    assert rc == 0, out
    assert f"XFAIL {pkg} - bridge-utils is installed on kvm-a" in out
    f = next(f for f in report["findings"] if f["nodeid"] == pkg)
    assert f["waived"]["ticket"] == "OPS-7"
    assert [(w["status"], w["matches"]) for w in report["waivers"]] == [("active", 1)]
    assert "## Waived" in (tmp_path / "r.md").read_text()
    assert (
        'name="waived" value="waived by OPS-7 until 2999-01-01' in (tmp_path / "j.xml").read_text()
    )

    # Expired: it no longer waives, and the failure names it.
    (tmp_path / "w.toml").write_text(WAIVER.format(ticket="OPS-6", expires="2020-01-01"))
    rc, out, report = run_audit(tmp_path, *common, "--kvmha-waivers=w.toml")
    assert rc == 1, out
    assert "expired on 2020-01-01, no longer waives: OPS-6" in out
    assert report["waivers"][0]["status"] == "expired"

    # Baseline gating: the known failure passes with a warning...
    rc, out, report = run_audit(
        tmp_path, *common, "--kvmha-baseline=before.json", "--kvmha-fail-on-new"
    )
    assert rc == 0, out
    assert "known since baseline" in out
    pkg_key = {"check": "KVMHA-PKG-001", "host": "kvm-a", "cluster": None, "subject": "kvm-a"}
    assert pkg_key in report["baseline"]["unchanged"] and not report["baseline"]["new"]

    # ... and a new one fails: the hosts change (bridge-utils gone, a PCI slot moved).
    reset(lab)
    SCENARIOS["slot-mismatch"].build(lab)
    inventory.write_text(SCENARIOS["slot-mismatch"].inventory(lab))
    rc, out, report = run_audit(
        tmp_path,
        *common,
        "--kvmha-baseline=before.json",
        "--kvmha-fail-on-new",
        "--kvmha-report-md=r.md",
    )
    assert rc == 1, out
    assert f"FAILED kvmha/{CLUSTER}/KVMHA-VIRT-002[If2]" in out
    assert [k["check"] for k in report["baseline"]["new"]] == ["KVMHA-VIRT-002"]
    assert [k["check"] for k in report["baseline"]["resolved"]] == ["KVMHA-PKG-001"]
    md = (tmp_path / "r.md").read_text()
    assert "- new: `KVMHA-VIRT-002[If2]`" in md and "- resolved: `KVMHA-PKG-001[kvm-a]`" in md
