"""Node ids are unique: one domain name on two hosts (fw-a on kvm-a and fw-a on kvm-b) gives
member-scoped findings ids that carry the host, KVMHA-TOPO-001 counts NICs per (host, domain),
and a waiver for one host waives that host's finding only, in the gate and in every report."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from pytest_kvmha.bundle.store import EvidenceBundle
from pytest_kvmha.config.inventory import InventoryError, load_inventory
from pytest_kvmha.parse.host import parse_bundle

from ..bundlekit import edit_toml, finding, host, run, use_filter

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

EXAMPLES = Path(__file__).parents[2] / "examples"


def first_mac(host_name: str, domain: str) -> str:
    """The MAC of ``domain``'s NIC #1 in the example recording (read, not hard-coded, so the
    test survives scripts/record-bundles.py)."""
    facts = parse_bundle(EvidenceBundle.read(EXAMPLES / "bundles" / host_name))
    assert facts.domains is not None
    return facts.domains[domain].nics[0].mac or ""


A_IF1, B_IF1 = first_mac("kvm-a", "fw-a"), first_mac("kvm-b", "fw-b")  # fw-a's NIC #1, fw-b's


def twin_names(dest: Path) -> Path:
    """The example recording with kvm-b's firewall renamed fw-b -> fw-a (inventory too)."""
    d = dest / "ex"
    shutil.copytree(EXAMPLES / "bundles", d / "bundles")
    shutil.copy(EXAMPLES / "clusters.toml", d / "clusters.toml")
    host(d / "bundles", "kvm-b").edit_domain("fw-b", lambda x: x.replace("fw-b", "fw-a"))
    edit_toml(d, lambda t: t.replace('domain = "fw-b"', 'domain = "fw-a"'))
    return d


def third_nic(xml: str) -> str:
    """A copy of the domain's last NIC, with a MAC and an OVS interface id of its own."""
    blocks = list(re.finditer(r"    <interface type='bridge'>.*?</interface>\n", xml, re.S))
    last = blocks[-1]
    extra = re.sub(r"<mac address='[^']*'/>", "<mac address='52:54:00:aa:bb:03'/>", last.group())
    extra = re.sub(
        r"interfaceid='[^']*'", "interfaceid='3f0c8e8a-0000-4000-8000-000000000003'", extra
    )
    extra = re.sub(r"\s*<address type='pci'[^>]*/>", "", extra)
    return xml[: last.end()] + extra + xml[last.end() :]


def test_same_domain_name_on_two_hosts_gives_distinct_ids(tmp_path: Path) -> None:
    result = run(twin_names(tmp_path))
    ids = [f.nodeid for f in result.findings]
    assert len(ids) == len(set(ids))
    assert "kvmha/edge-fw/KVMHA-VIRT-001[fw-a@kvm-b:If1]" in ids
    assert "kvmha/edge-fw/KVMHA-HB-002[fw-a@kvm-a]" in ids
    # names that do not collide keep the short form
    assert "kvmha/dmz-fw/KVMHA-HB-002[dmz-b]" in ids
    assert finding(result, "KVMHA-TOPO-001", "edge-fw").status == "pass"


def test_topo_001_counts_nics_per_host_and_domain(tmp_path: Path) -> None:
    d = twin_names(tmp_path)
    host(d / "bundles", "kvm-b").edit_domain("fw-a", third_nic)
    topo = finding(run(d), "KVMHA-TOPO-001", "edge-fw")
    assert topo.status == "fail", topo.detail
    assert "fw-a@kvm-a: 2 NICs" in topo.detail and "fw-a@kvm-b: 3 NICs" in topo.detail


def test_waiver_for_one_host_waives_that_hosts_finding_only(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    d = twin_names(pytester.path)
    use_filter(host(d / "bundles", "kvm-a"), "fw-a", A_IF1, "clean-traffic")
    use_filter(host(d / "bundles", "kvm-b"), "fw-a", B_IF1, "clean-traffic")
    (d / "w.toml").write_text(
        '[[waiver]]\ncheck = "KVMHA-HB-002"\nhost = "kvm-b"\nreason = "r"\n'
        'approver = "a"\nticket = "OPS-9"\nexpires = 2999-12-31\n'
    )
    result = pytester.runpytest(
        f"--kvmha-inventory={d / 'clusters.toml'}",
        f"--kvmha-waivers={d / 'w.toml'}",
        "--kvmha-report=r.json",
        "--kvmha-report-md=r.md",
        "--kvmha-report-html=r.html",
        "-rA",
        "-k",
        "HB-002",
    )
    assert result.ret == 1
    result.stdout.fnmatch_lines(["FAILED kvmha/edge-fw/KVMHA-HB-002[[]fw-a@kvm-a[]]*"])
    result.stdout.fnmatch_lines(["XFAIL kvmha/edge-fw/KVMHA-HB-002[[]fw-a@kvm-b[]]*"])
    r = json.loads((pytester.path / "r.json").read_text())
    by_id = {f["nodeid"]: f for f in r["findings"]}
    a, b = (
        by_id["kvmha/edge-fw/KVMHA-HB-002[fw-a@kvm-a]"],
        by_id["kvmha/edge-fw/KVMHA-HB-002[fw-a@kvm-b]"],
    )
    assert "waived" not in a and a["gating"] is True
    assert b["waived"]["ticket"] == "OPS-9" and b["gating"] is False
    assert "Gate failed" in (pytester.path / "r.html").read_text()
    failing = (pytester.path / "r.md").read_text().split("## Failing findings")[1]
    assert "HB-002[fw-a@kvm-a]" in failing.split("## Waived")[0]


def test_cluster_of_one_domain_twice_is_a_usage_error(tmp_path: Path) -> None:
    inv = tmp_path / "c.toml"
    inv.write_text(
        '[hosts.kvm-a]\nspec = "replay://a"\n[clusters.edge-fw]\nvendor = "fortigate"\n'
        'members = [{ host = "kvm-a", domain = "fw-a" }, { host = "kvm-a", domain = "fw-a" }]\n'
    )
    with pytest.raises(
        InventoryError, match=r'cluster "edge-fw", member 2.*.fw-a. on host .kvm-a.'
    ):
        load_inventory(inv)
