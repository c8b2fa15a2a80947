"""Spanning tree, bonded uplinks and path MTU (checks/switch.py), offline: recorded lab bundles
(stp-on, bond-ok, bond-member-down, mtu-step and two-ok) edited where a real host would differ."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_kvmha.bundle.contract import OVS_BONDS, OVS_LACP
from pytest_kvmha.parse.bonds import parse_bond_show, parse_lacp_show
from pytest_kvmha.parse.evidence import FactError

from ..bundlekit import (
    HostBundle,
    copy_scenario,
    drop_section,
    edit_nic,
    failing,
    finding,
    host,
    reload,
    run,
    set_section,
)

STP, BOND, MTU, TRACE = "KVMHA-OVS-003", "KVMHA-OVS-004", "KVMHA-OVS-005", "KVMHA-TRACE-001"


def _set_map(hb: HostBundle, table: str, name: str, column: str, pairs: dict[str, str]) -> None:
    hb.edit_ovs_row(table, name, column, ["map", [[k, v] for k, v in sorted(pairs.items())]])


def _ports_on(hb: HostBundle, bridge: str) -> list[str]:
    bh, brows = hb.ovs_rows("Bridge")
    ph, prows = hb.ovs_rows("Port")
    (row,) = [r for r in brows if r[bh.index("name")] == bridge]
    cell = row[bh.index("ports")]
    refs = {u[1] for u in (cell[1] if cell[0] == "set" else [cell])}
    return [r[ph.index("name")] for r in prows if r[ph.index("_uuid")][1] in refs]


def _drop_column(hb: HostBundle, table: str, column: str) -> None:
    def change(doc: Any) -> None:
        i = doc["headings"].index(column)
        doc["headings"].pop(i)
        for r in doc["data"]:
            r.pop(i)

    hb.edit_json(f"ovs-{table}", change)


# --- spanning tree ---------------------------------------------------------------------------


def test_stp_on_a_pair_bridge_fails_and_the_trace_names_it(tmp_path: Path) -> None:
    result = run(copy_scenario("stp-on", tmp_path))
    f = failing(result, STP, "If1")
    assert "br1-internal (kvm-b): STP on" in f.detail and "listening" in f.detail
    assert "stp_enable=false" in (f.remediation or "")
    assert finding(result, STP, "If2").status == "pass"
    for subject in ("fw-a:If1", "fw-b:If1"):
        t = finding(result, TRACE, subject)
        assert t.status == "fail" and "spanning tree" in t.detail, t.detail


def test_stp_with_every_path_port_excluded_passes(tmp_path: Path) -> None:
    """other_config:stp-enable=false on the member and patch ports: they forward at once."""
    d = copy_scenario("stp-on", tmp_path)
    hb = host(d, "kvm-b")
    for port in _ports_on(hb, "br1-internal"):
        if port != "br1-internal":
            _set_map(hb, "Port", port, "other_config", {"stp-enable": "false"})
            _set_map(hb, "Port", port, "status", {})
    assert finding(run(d), STP, "If1").status == "pass"


def test_rstp_needs_admin_edge_on_every_path_port(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    hb = host(d, "kvm-a")
    hb.edit_ovs_row("Bridge", "br-trunk", "rstp_enable", True)
    assert finding(run(d), STP, "If1").status == "fail"  # patch-*-out and up-a wait
    for port in _ports_on(hb, "br-trunk"):
        if port != "br-trunk":
            _set_map(hb, "Port", port, "other_config", {"rstp-port-admin-edge": "true"})
    result = run(d)
    assert finding(result, STP, "If1").status == "pass"
    assert finding(result, STP, "If2").status == "pass"
    _set_map(hb, "Port", "up-a", "other_config", {})  # the uplink is no edge port
    f = finding(run(d), STP, "If1")
    assert f.status == "fail" and "port up-a on br-trunk (kvm-a): RSTP on" in f.detail


def test_a_stopped_member_on_an_stp_bridge_fails(tmp_path: Path) -> None:
    """libvirt adds the vnet port with no other_config: it will listen and learn at start."""
    d = copy_scenario("two-ok", tmp_path)
    hb = host(d, "kvm-b")
    hb.edit_ovs_row("Bridge", "br2-external", "stp_enable", True)
    from ..bundlekit import stop_domain

    stop_domain(hb, "fw-b")
    f = finding(run(d), STP, "If2")
    assert f.status == "fail" and "fw-b is not running" in f.detail


def test_an_old_bundle_without_the_columns_is_an_error(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    _drop_column(host(d, "kvm-a"), "Bridge", "stp_enable")
    result = run(d)
    f = finding(result, STP, "If1")
    assert f.status == "error" and "Bridge.stp_enable" in f.detail
    assert finding(result, "KVMHA-OVS-001", "kvm-a").status == "pass"  # still read


# --- bonds -----------------------------------------------------------------------------------


def test_bonded_uplinks_pass_everything(tmp_path: Path) -> None:
    result = run(copy_scenario("bond-ok", tmp_path))
    assert {f.status for f in result.findings if f.check.id != "KVMHA-TOPO-002"} <= {
        "pass",
        "skip",
    }
    f = finding(result, BOND, "kvm-a")
    assert f.status == "pass" and "bond-a1" in f.detail and "bond-a2" in f.detail
    assert finding(result, TRACE, "fw-a:If1").status == "pass"


def test_a_bond_member_down_is_redundancy_lost_not_a_failed_pair(tmp_path: Path) -> None:
    result = run(copy_scenario("bond-member-down", tmp_path))
    f = finding(result, BOND, "kvm-a")
    assert f.status == "fail" and "member bond-a2 disabled" in f.detail
    assert f.check.severity.name == "MEDIUM"
    for subject in ("fw-a:If1", "fw-a:If2", "fw-b:If1", "fw-b:If2"):
        assert finding(result, TRACE, subject).status == "pass"


@pytest.mark.parametrize("scenario, status", [("bond-ok", "pass"), ("bond-member-down", "fail")])
def test_the_older_slave_wording_reads_the_same(tmp_path: Path, scenario: str, status: str) -> None:
    """Open vSwitch before 2.15 says ``slave X: enabled`` and ``active slave``."""
    d = copy_scenario(scenario, tmp_path)
    hb = host(d, "kvm-a")
    hb.edit(
        OVS_BONDS, lambda t: t.replace("member ", "slave ").replace("active member", "active slave")
    )
    assert "slave bond-a1" in (hb.dir / "sections" / OVS_BONDS).read_text()
    assert finding(run(d), BOND, "kvm-a").status == status


def _lacp_text(hb: HostBundle, words: str, status: str) -> str:
    """lacp/show for the recorded bond up-a, in OVS 3.1's layout (as the lab printed it)."""
    members = [
        ln.split()[1].rstrip(":")
        for ln in hb.text(OVS_BONDS).splitlines()
        if ln.startswith("member ")
    ]
    body = "".join(
        f"\nmember: {m}: {words}\n  port_id: {k}\n  port_priority: 65535\n  may_enable: true\n"
        for k, m in enumerate(members, 1)
    )
    return (
        f"---- up-a ----\n  status: {status}\n  sys_id: aa:55:aa:55:00:01\n"
        f"  sys_priority: 65534\n  aggregation key: 1\n  lacp_time: slow\n{body}"
    )


def test_lacp_must_be_negotiated(tmp_path: Path) -> None:
    d = copy_scenario("bond-ok", tmp_path)
    hb = host(d, "kvm-a")
    hb.edit_ovs_row("Port", "up-a", "lacp", "active")
    set_section(hb, OVS_LACP, stdout=_lacp_text(hb, "defaulted detached", "active"))
    f = finding(run(d), BOND, "kvm-a")
    assert f.status == "fail" and "LACP not negotiated" in f.detail
    assert "every frame in is dropped" in f.detail
    set_section(hb, OVS_LACP, stdout=_lacp_text(hb, "current attached", "active negotiated"))
    assert finding(run(d), BOND, "kvm-a").status == "pass"


def test_bond_state_not_collected_is_an_error(tmp_path: Path) -> None:
    d = copy_scenario("bond-ok", tmp_path)
    hb = host(d, "kvm-b")
    drop_section(hb, OVS_BONDS)
    result = run(d)
    assert finding(result, BOND, "kvm-b").status == "error"
    assert finding(result, BOND, "kvm-a").status == "pass"


def test_bond_show_failing_is_an_error(tmp_path: Path) -> None:
    d = copy_scenario("bond-ok", tmp_path)
    set_section(host(d, "kvm-a"), OVS_BONDS, rc=2, stderr="ovs-appctl: cannot connect")
    f = finding(run(d), BOND, "kvm-a")
    assert f.status == "error" and "cannot connect" in f.detail


def test_bond_parsers_refuse_what_they_cannot_read() -> None:
    with pytest.raises(FactError, match="before the first"):
        parse_bond_show("bond_mode: active-backup\n")
    with pytest.raises(FactError, match="lists no member"):
        parse_bond_show("---- b ----\nbond_mode: active-backup\n")
    with pytest.raises(FactError, match="no 'status:' line"):
        parse_lacp_show("---- b ----\n\nmember: p1: current attached\n")
    assert parse_bond_show("") == {} and parse_lacp_show("") == {}


def test_bonds_without_bonds_skip(tmp_path: Path) -> None:
    assert finding(run(copy_scenario("two-ok", tmp_path)), BOND, "kvm-a").status == "skip"


# --- MTU -------------------------------------------------------------------------------------


def test_an_mtu_step_fails(tmp_path: Path) -> None:
    result = run(copy_scenario("mtu-step", tmp_path))
    f = failing(result, MTU, "If1")
    assert "uplink up-a on br-trunk on kvm-a: 1400" in f.detail and "differs" in f.detail
    assert "ip link set dev up-a mtu 1500" in (f.remediation or "")


def _set_link_mtu(hb: HostBundle, ifname: str, mtu: int | None) -> None:
    def change(doc: Any) -> None:
        (entry,) = [e for e in doc if e["ifname"] == ifname]
        if mtu is None:
            entry.pop("mtu")
        else:
            entry["mtu"] = mtu

    hb.edit_json("links", change)


def test_smaller_on_both_servers_still_fails(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    _set_link_mtu(host(d, "kvm-a"), "up-a", 1400)
    _set_link_mtu(host(d, "kvm-b"), "up-b", 1400)
    f = finding(run(d), MTU, "If2")
    assert f.status == "fail" and "smaller than 1500" in f.detail and "differs" not in f.detail


def test_a_domain_mtu_below_the_members_fails(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    hb = host(d, "kvm-b")
    reload(hb)
    from ..checks.checkkit import live_nics

    _, nics = live_nics("two-ok", "kvm-b", "fw-b")
    mac = nics[0][0]
    hb.edit_domain(
        "fw-b",
        edit_nic(
            mac,
            lambda b: b.replace("    </interface>", "      <mtu size='1400'/>\n    </interface>"),
        ),
    )
    f = finding(run(d), MTU, "If1")
    assert f.status == "fail" and "fw-b <mtu> on kvm-b: 1400" in f.detail


def test_no_mtu_anywhere_is_an_error(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    hb = host(d, "kvm-a")
    _set_link_mtu(hb, "up-a", None)
    hb.edit_ovs_row("Interface", "up-a", "mtu", ["set", []])
    f = finding(run(d), MTU, "If1")
    assert f.status == "error" and "no MTU known for up-a" in f.detail


def test_a_bad_mtu_is_damaged_evidence(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    _set_link_mtu(host(d, "kvm-a"), "up-a", -1)
    result = run(d)
    assert finding(result, MTU, "If1").status == "error"
    assert json.dumps(-1) in finding(result, MTU, "If1").detail


def test_the_trace_names_an_output_spanning_tree_skipped(tmp_path: Path) -> None:
    """Egress blocked: ofproto/trace prints ``>> STP not in forwarding state, skipping output``
    under NORMAL and delivers nothing (the lab's STP bridge blocks at ingress instead)."""
    d = copy_scenario("two-ok", tmp_path)
    traces = d / "kvm-b" / "sections" / "trace"
    edited = 0
    for path in sorted(traces.iterdir()):
        text = path.read_text()
        if 'bridge("br1-internal")' not in text:
            continue
        lines = text.splitlines()
        out = []
        for ln in lines:
            if ln.startswith("Datapath actions: "):
                ln = "Datapath actions: drop"
            out.append(ln)
            if ln.strip() == "NORMAL" and not any("STP not" in x for x in out):
                out.append("     >> STP not in forwarding state, skipping output")
        path.write_text("\n".join(out) + "\n")
        edited += 1
    assert edited
    t = finding(run(d), TRACE, "fw-a:If1")
    assert t.status == "fail" and "spanning tree: STP not in forwarding state" in t.detail, t.detail
