"""The fleet benchmark's pieces (scripts/bench_fleet.py): offline where they are pure (layout,
test-driver XML, OVS transaction, inventory, expected findings, table), and one live test that
builds two fleet hosts and audits them with the plugin (and the plain testinfra module)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_kvmha.config.inventory import load_inventory
from pytest_kvmha.parse.libvirt import parse_domain
from pytest_kvmha.testing import lab_slot
from pytest_kvmha.testing.requirements import missing_requirements, require

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import bench_fleet as bf  # noqa: E402

IFNAMSIZ = 15


@pytest.mark.parametrize("n", [1, 2, 7])
def test_plan_names_and_addresses_fit(n: int) -> None:
    plan = bf.plan_fleet(n)
    assert [h.index for h in plan.hosts] == list(range(1, n + 1))
    addrs = [h.addr for h in plan.hosts] + [h.root_addr for h in plan.hosts]
    assert len(set(addrs)) == len(addrs)
    assert all(a.startswith("10.251.") for a in addrs)  # never a lab slot's 10.250.x.y
    macs = [nic.mac for c in plan.clusters for d in (c.master, c.slave) for nic in d.nics]
    macs += [nic.mac for v in plan.vms for nic in v.nics]
    assert len(set(macs)) == len(macs)
    for h in plan.hosts:
        assert len(h.root_if) <= IFNAMSIZ
        doms = plan.domains_on(h.index)
        taps = [nic.tap for d in doms for nic in d.nics]
        assert len(set(taps)) == len(taps)
        names = taps + [nic.bridge for d in doms for nic in d.nics]
        names += [u.name for u in plan.uplinks(h.index)]
        assert max(len(x) for x in names) <= IFNAMSIZ  # kernel netdev names
        assert len({d.name for d in doms}) == len(doms)


def test_plan_ring_and_planted_defects() -> None:
    plan = bf.plan_fleet(12, defect_every=10)
    assert all(c.two_servers for c in plan.clusters)
    assert {c.slave.host for c in plan.clusters if c.master.host == 12} == {1}  # the ring closes
    assert [c.name for c in plan.defects] == ["c2-0", "c12-0"]
    for c in plan.defects:
        k = c.defect_pair
        assert k is not None
        assert c.master.nics[k].slot != c.slave.nics[k].slot
    assert all(2 <= len(c.pairs) <= 4 for c in plan.clusters)
    assert not bf.plan_fleet(12, defect_every=0).defects
    single = bf.plan_fleet(1)
    assert not any(c.two_servers for c in single.clusters)
    assert single.uplinks(1) == []
    assert all(p.vlan is None for c in single.clusters for p in c.pairs)


def test_inventory_parses_with_the_plugin(tmp_path: Path) -> None:
    plan = bf.plan_fleet(3)
    path = tmp_path / "fleet.toml"
    path.write_text(bf.inventory_toml(plan))
    inv = load_inventory(path)
    assert [t.name for t in inv.hosts] == [h.name for h in plan.hosts]
    assert [t.spec for t in inv.hosts] == [h.spec for h in plan.hosts]
    assert [c.name for c in inv.clusters] == [c.name for c in plan.clusters]
    for spec, c in zip(inv.clusters, plan.clusters, strict=True):
        assert [(m.host, m.domain, m.role) for m in spec.members] == [
            (plan.host(c.master.host).name, c.master.name, "master"),
            (plan.host(c.slave.host).name, c.slave.name, "slave"),
        ]
        assert [(p.name, p.bridge, p.vlan) for p in spec.pairs] == [
            (p.name, p.bridge, p.vlan) for p in c.pairs
        ]


def test_node_xml_domains_parse_as_planned() -> None:
    plan = bf.plan_fleet(2)
    text = bf.node_xml(plan, 1)
    blocks = re.findall(r"<domain type='test'>.*?</domain>", text, re.S)
    doms = plan.domains_on(1)
    assert len(blocks) == len(doms)
    for block, want in zip(blocks, doms, strict=True):
        got = parse_domain(block, source="inactive", what=want.name)
        assert (got.name, got.uuid) == (want.name, want.uuid)
        assert [
            (
                n.source_bridge,
                n.virtualport,
                n.target_dev,
                n.mac,
                n.address.slot if n.address else None,
            )
            for n in got.nics
        ] == [(n.bridge, "openvswitch", n.tap, n.mac, n.slot) for n in want.nics]
        assert [n.vlan.tags[0] if n.vlan else None for n in got.nics] == [n.vlan for n in want.nics]


@pytest.mark.skipif(shutil.which("virsh") is None, reason="virsh not installed")
def test_node_xml_through_the_libvirt_test_driver(tmp_path: Path) -> None:
    """What a fleet host's virsh answers: every planned domain, running, with the target
    devices kept (libvirt would drop auto-generated vnetN names)."""
    plan = bf.plan_fleet(2)
    node = tmp_path / "node.xml"
    node.write_text(bf.node_xml(plan, 2))
    uri = f"test://{node}"
    listed = subprocess.run(
        ["virsh", "-q", "-c", uri, "list", "--uuid"], capture_output=True, text=True, check=True
    ).stdout.split()
    assert sorted(listed) == sorted(d.uuid for d in plan.domains_on(2))
    dom = plan.domains_on(2)[0]
    xml = subprocess.run(
        ["virsh", "-c", uri, "dumpxml", dom.name], capture_output=True, text=True, check=True
    ).stdout
    live = parse_domain(xml, source="live", what=dom.name)
    assert [n.target_dev for n in live.nics] == [n.tap for n in dom.nics]


def _ovs_ops(args: list[str]) -> list[list[str]]:
    ops, cur = [], []
    for a in args:
        if a == "--":
            if cur:
                ops.append(cur)
            cur = []
        else:
            cur.append(a)
    return ops + ([cur] if cur else [])


def test_ovs_transaction_matches_the_plan() -> None:
    plan = bf.plan_fleet(3)
    for h in plan.hosts:
        ops = _ovs_ops(bf.ovs_transaction(plan, h.index, "m" * 32))
        bridges = [op[2] for op in ops if op[:2] == ["--may-exist", "add-br"]]
        ports = {op[2]: op[1] for op in ops if op[0] == "add-port"}
        for dom in plan.domains_on(h.index):
            for nic in dom.nics:
                assert ports[nic.tap] == nic.bridge
                assert nic.bridge in bridges
        patches = {op[2]: op[4] for op in ops if op[:1] == ["set"] and "type=patch" in op}
        for inner, peer in patches.items():
            assert patches[peer.split("=", 1)[1]] == f"options:peer={inner}"
        for up in plan.uplinks(h.index):
            add = next(op for op in ops if op[0] == "add-port" and op[2] == up.name)
            assert add[3] == "trunks=[" + ",".join(map(str, up.vlans)) + "]"
    assert not [
        op for op in _ovs_ops(bf.ovs_transaction(bf.plan_fleet(1), 1, "m")) if "up-next" in op
    ]


def _report(expected: dict[bf.Key, frozenset[str]]) -> dict[str, object]:
    findings = []
    for (check, where, subject), want in expected.items():
        host_scope = where == subject and where.startswith("fleet-h")
        findings.append(
            {
                "check": check,
                "cluster": None if host_scope else where,
                "host": where if host_scope else None,
                "subject": subject,
                "status": sorted(want)[0],
            }
        )
    return {"findings": findings}


def test_compare_findings() -> None:
    plan = bf.plan_fleet(12)
    expected = bf.expected_findings(plan)
    assert expected[("KVMHA-VIRT-002", "c2-0", "If2")] == {"fail"}
    assert expected[("KVMHA-VIRT-002", "c3-0", "If2")] == {"pass"}
    report = _report(expected)
    assert bf.compare_findings(expected, report) == []
    findings: list[dict[str, object]] = report["findings"]  # type: ignore[assignment]
    # the test driver has no nwfilter API: that error is allowed, any other one is not
    nwfilter = {"check": "KVMHA-HOST-000", "host": "fleet-h1", "cluster": None}
    findings.append({**nwfilter, "subject": "nwfilters", "status": "error"})
    assert bf.compare_findings(expected, report) == []
    findings.append({**nwfilter, "subject": "libvirt", "status": "error", "detail": "x"})
    assert bf.compare_findings(expected, report) == [
        "('KVMHA-HOST-000', 'fleet-h1', 'libvirt'): unexpected error: x"
    ]
    findings.pop()
    wrong = next(
        f
        for f in findings
        if f["check"] == "KVMHA-VIRT-002" and f["cluster"] == "c2-0" and f["subject"] == "If2"
    )
    wrong["status"] = "pass"
    missing = findings.pop(0)
    problems = bf.compare_findings(expected, report)
    assert len(problems) == 2
    assert any("('KVMHA-VIRT-002', 'c2-0', 'If2'): pass, expected fail" in p for p in problems)
    assert any(p.endswith(": missing") and str(missing["subject"]) in p for p in problems)


def test_testinfra_vars_and_expected_failures() -> None:
    plan = bf.plan_fleet(12)
    spec = bf.testinfra_spec(plan, Path("/x/ssh_config"))
    json.dumps(spec)  # a vars file
    assert len(spec["clusters"]) == len(plan.clusters)  # type: ignore[arg-type]
    assert bf.expected_testinfra_failures(plan) == 2  # two planted defects
    assert bf.expected_testinfra_failures(bf.plan_fleet(1, defect_every=0)) == 2  # single-server


def test_render_table_and_ratios() -> None:
    rows: list[dict[str, object]] = [
        {"n": 10, "run": "floor", "wall_s": 2.0, "cmds_per_host": 1, "conns_per_host": 1,
         "peak_rss_mb": 80.0, "python_rss_mb": 0.0, "note": "ok"},
        {"n": 10, "run": "pytest start-up", "wall_s": 1.0, "cmds_per_host": 0,
         "conns_per_host": 0, "peak_rss_mb": 50.0, "python_rss_mb": 50.0, "note": "ok"},
        {"n": 10, "run": "plugin", "wall_s": 4.0, "cmds_per_host": 1, "conns_per_host": 1,
         "peak_rss_mb": 140.0, "python_rss_mb": 60.0, "note": "findings as built"},
        {"n": 10, "run": "plugin -n auto", "wall_s": None, "note": "n/a (usage error)"},
        {"n": 10, "run": "testinfra", "wall_s": 60.0, "cmds_per_host": 99.5,
         "conns_per_host": 1, "peak_rss_mb": 76.0, "python_rss_mb": 76.0, "note": "220 tests"},
    ]  # fmt: skip
    table = bf.render_table(rows)
    lines = table.splitlines()
    assert lines[0].startswith("| N | run | wall s |")
    assert "| 10 | plugin | 4.00 | 1 | 1 | 140 | 14.0 | 60 | findings as built |" in lines
    assert "| 10 | plugin -n auto | n/a (usage error) | | | | | | |" in lines
    assert "| 10 | testinfra | 60.00 | 99.5 | 1 | 76 | 7.6 | 76 | 220 tests |" in lines
    assert lines[-1] == (
        "- N=10: plugin/floor 2.0x, (plugin - pytest start-up)/floor 1.5x, "
        "plugin memory above pytest start-up 1.00 MB/host, testinfra/plugin 15.0x"
    )


# ---- live -----------------------------------------------------------------------------------


FLEET_BINARIES = (
    "ip",
    "unshare",
    "ovsdb-server",
    "ovs-vswitchd",
    "ovs-vsctl",
    "virsh",
    "ssh",
    "sshd",
)


def _fleet_requirements() -> list[str]:
    """The lab's own lookup (PATH, then sbin): what the fleet needs that is missing."""
    return missing_requirements(FLEET_BINARIES, schema=False)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[bf.Fleet]:
    require(_fleet_requirements(), "the fleet")  # a skip here, a failure under CI=true
    slot = lab_slot()
    # own names and addresses: apart from the lab slots (10.250) and from scripts/bench.py
    plan = bf.plan_fleet(2, tag=f"fltest{slot}", veth_prefix="kvft", first_block=12288 + 16 * slot)
    assert plan.hosts[0].addr.startswith("10.251.")
    fleet = bf.Fleet(plan, tmp_path_factory.mktemp("fleet") / "w")
    fleet.start()
    try:
        yield fleet
    finally:
        leftovers = fleet.stop()
    assert not leftovers
    assert not [h for h in plan.hosts if Path(f"/run/netns/{h.netns}").exists()]


@pytest.mark.live
def test_plugin_audits_the_fleet_as_planted(fleet: bf.Fleet) -> None:
    row = bf.run_plugin(fleet, sys.executable, xdist=False)
    assert row["findings_problems"] == [], row["findings_problems"]
    assert row["rc"] == 1  # the planted defect (VIRT-002, high) fails the run
    report = json.loads((fleet.workdir / "plugin" / "report.json").read_text())
    fails = [
        (f["check"], f["cluster"], f["subject"])
        for f in report["findings"]
        if f["status"] == "fail"
    ]
    assert fails == [("KVMHA-VIRT-002", "c2-0", "If2")]
    # every fleet host holds cluster ports: its batch, then the trace phase (KVMHA-TRACE-001)
    assert [h["round_trips"] for h in report["hosts"]] == [2, 2]
    assert {h["libvirt_uri_from"] for h in report["hosts"]} == {"env"}
    assert row["cmds_per_host"] == 2  # counted by sshd, not guessed
    assert row["conns_per_host"] == 1  # the trace phase reuses the batch's connection


@pytest.mark.live
def test_floor_and_testinfra_module_on_the_fleet(fleet: bf.Fleet) -> None:
    floor = bf.run_floor(fleet)
    assert floor["note"] == "ok" and floor["cmds_per_host"] == 1
    row = bf.run_testinfra(fleet, sys.executable, xdist=False)
    assert row["tests"]["failures"] == bf.expected_testinfra_failures(fleet.plan) == 1  # type: ignore[index]
    assert row["tests"]["errors"] == 0  # type: ignore[index]
    assert row["cmds_per_host"] > 10  # one command per property
    assert "as planted" in str(row["note"])


def test_compare_findings_wants_every_segment_to_pass() -> None:
    plan = bf.plan_fleet(2)
    expected = bf.expected_findings(plan)
    report = _report(expected)
    findings = report["findings"]
    assert isinstance(findings, list)
    seg = {"check": "KVMHA-ID-001", "host": None, "cluster": None, "subject": "vlan100@x"}
    findings.append({**seg, "status": "pass", "detail": "d"})
    assert bf.compare_findings(expected, report) == []
    findings[-1] = {**seg, "status": "error", "detail": "no group_id"}
    assert bf.compare_findings(expected, report) == [
        "('KVMHA-ID-001', '', 'vlan100@x'): error, expected pass: no group_id"
    ]
    toml = bf.inventory_toml(plan).splitlines()
    ids = [line for line in toml if line.startswith("group_id = ")]
    assert len(ids) == len(set(ids)) == len(plan.clusters)  # one cluster ID each
