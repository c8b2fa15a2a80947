"""Plans that keep the cluster up: the heartbeat pairs (firewall config, inventory, default),
one heartbeat pair at a time with both sides back to back, a gate after each, the refusal of a
plan that would cut every heartbeat link, and the maintenance window that allows it."""

from __future__ import annotations

import ipaddress
import json
import shutil
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType

import pytest
from pytest_kvmha.fixtures.actions import SetPortVlans, Step, simulate_steps
from pytest_kvmha.fixtures.apply import PairNotProven, Plan
from pytest_kvmha.fixtures.heartbeat import (
    ALLOW_CUT_FLAG,
    Gate,
    heartbeat_links,
    up_pairs,
)
from pytest_kvmha.fixtures.plan import PlanOptions, PlanRefused, plan_cluster

from pytest_kvmha.collect.pool import collect_all
from pytest_kvmha.config.inventory import (
    ClusterSpec,
    InventoryError,
    PairSpec,
    load_inventory,
    parse_inventory,
)
from pytest_kvmha.config.names import firewall_key
from pytest_kvmha.config.target import CollectOptions, HostTarget
from pytest_kvmha.facts import HostFacts
from pytest_kvmha.facts.firewall import CosHaFacts, FgcpFacts, FirewallConfig, HbDev

from ..bundlekit import BUNDLES

# two-ok: fw-a on kvm-a (vnet4 If1 VLAN 101, vnet5 If2 VLAN 102, uplink up-a), fw-b on kvm-b
# (vnet0 If1, vnet1 If2, uplink up-b); each uplink trunks 101 and 102.
PORTS = {"kvm-a": ("vnet4", "vnet5", "up-a"), "kvm-b": ("vnet0", "vnet1", "up-b")}


def _two_ok() -> tuple[ClusterSpec, dict[str, HostFacts], dict[str, HostTarget]]:
    inv = load_inventory(BUNDLES / "two-ok" / "clusters.toml")
    bundles = collect_all(list(inv.hosts), CollectOptions())
    from pytest_kvmha.parse.host import parse_bundle

    hosts = {b.host: parse_bundle(b) for b in bundles}
    return inv.clusters[0], hosts, {t.name: t for t in inv.hosts}


def mistagged(pairs: tuple[int, ...]) -> tuple[ClusterSpec, dict[str, HostFacts]]:
    """two-ok with the running ports of ``pairs`` on a wrong VLAN (201, 202) on both servers,
    consistently, and the uplinks trunking those too: the links work, on the wrong VLAN."""
    spec, hosts, _ = _two_ok()
    steps = []
    for host, (p1, p2, up) in PORTS.items():
        for k in pairs:
            port = (p1, p2)[k]
            steps.append(Step(host, SetPortVlans(port, 201 + k, (), 101 + k, ()), "mis-tag"))
        steps.append(Step(host, SetPortVlans(up, None, (101, 102, 201, 202), None, ()), "trunk"))
    return spec, simulate_steps(steps, hosts)


def retags(steps: list[Step]) -> list[tuple[str, str, int | None]]:
    return [
        (s.host, s.action.port, s.action.tag)
        for s in steps
        if isinstance(s.action, SetPortVlans) and s.action.port.startswith("vnet")
    ]


def test_two_mistagged_pairs_change_one_at_a_time_and_one_link_stays_up() -> None:
    spec, hosts = mistagged((0, 1))
    assert up_pairs(spec, hosts, heartbeat_links(spec, hosts)) == {0, 1}
    planned = plan_cluster(spec, hosts)
    hb = planned.heartbeat
    assert hb is not None and hb.pairs == (0, 1) and hb.names == ("If1", "If2")
    # both sides of one pair back to back, the other pair after it
    assert retags(planned.steps) == [
        ("kvm-a", "vnet4", 101),
        ("kvm-b", "vnet0", 101),
        ("kvm-a", "vnet5", 102),
        ("kvm-b", "vnet1", 102),
    ]
    state = hosts
    for i, step in enumerate(planned.steps):
        state = simulate_steps([step], state)
        assert up_pairs(spec, state, hb), f"no heartbeat link after step {i + 1}"
    assert up_pairs(spec, state, hb) == {0, 1}
    assert [(g.names, g.hosts) for g in planned.gates] == [
        (("If1",), ("kvm-a", "kvm-b")),
        (("If2",), ("kvm-a", "kvm-b")),
    ]
    for g in planned.gates:  # the gate follows the pair's last step, and covers its first
        assert {s.action.port for s in planned.steps[g.first : g.after + 1]} <= {
            "vnet4",
            "vnet0",
            "vnet5",
            "vnet1",
        }
    assert planned.cut == []


def test_only_heartbeat_pair_changing_on_both_servers_is_refused_naming_the_flag() -> None:
    spec, hosts = mistagged((0,))
    one = replace(spec, pairs=spec.pairs[:1])
    with pytest.raises(PlanRefused) as exc:
        plan_cluster(one, hosts)
    text = str(exc.value)
    assert ALLOW_CUT_FLAG in text and "If1" in text and "split brain" in text


def test_maintenance_window_allows_the_cut_and_marks_it() -> None:
    spec, hosts = mistagged((0,))
    one = replace(spec, pairs=spec.pairs[:1])
    planned = plan_cluster(one, hosts, PlanOptions(allow_heartbeat_cut=True))
    order = retags(planned.steps)
    assert order == [("kvm-a", "vnet4", 101), ("kvm-b", "vnet0", 101)]
    first = next(i for i, s in enumerate(planned.steps) if getattr(s.action, "port", "") == "vnet4")
    assert planned.cut == [first, first + 1]
    plan = _plan(one, planned, Path("/nonexistent"))
    text = plan.render()
    assert f"!! heartbeat cut: steps {first + 1}-{first + 2}" in text
    assert f"!!{first + 1:2}. [kvm-a]" in text and f"!!{first + 2:2}. [kvm-b]" in text


def test_a_broken_pair_is_fixed_first_when_only_the_other_works() -> None:
    # If2 works on the wrong VLAN; If1 is broken (fw-a's port on VLAN 301, nowhere else):
    # changing If2 first would leave no link, so If1 is repaired before it.
    spec, hosts = mistagged((1,))
    hosts = simulate_steps(
        [Step("kvm-a", SetPortVlans("vnet4", 301, (), 101, ()), "break If1")], hosts
    )
    hb = heartbeat_links(spec, hosts)
    assert up_pairs(spec, hosts, hb) == {1}
    planned = plan_cluster(spec, hosts)
    assert retags(planned.steps) == [
        ("kvm-a", "vnet4", 101),
        ("kvm-a", "vnet5", 102),
        ("kvm-b", "vnet1", 102),
    ]
    state = hosts
    for step in planned.steps:
        state = simulate_steps([step], state)
        assert up_pairs(spec, state, hb)


def test_inventory_key_says_which_pairs_carry_heartbeat() -> None:
    spec, hosts = mistagged((1,))
    marked = replace(
        spec,
        pairs=(replace(spec.pairs[0], heartbeat=False), replace(spec.pairs[1], heartbeat=True)),
    )
    assert heartbeat_links(marked, hosts).pairs == (1,)
    with pytest.raises(PlanRefused, match="heartbeat pair If2"):
        plan_cluster(marked, hosts)
    # the same change on a pair that carries no heartbeat is not gated
    spec, hosts = mistagged((0,))
    marked = replace(
        spec,
        pairs=(replace(spec.pairs[0], heartbeat=False), replace(spec.pairs[1], heartbeat=True)),
    )
    planned = plan_cluster(marked, hosts)
    assert planned.gates == [] and len(retags(planned.steps)) == 2


def test_default_is_every_pair() -> None:
    spec, hosts = mistagged(())
    hb = heartbeat_links(spec, hosts)
    assert hb.pairs == (0, 1) and hb.source.startswith("default")


def _with_firewall(
    spec: ClusterSpec, hosts: dict[str, HostFacts], facts: object
) -> tuple[ClusterSpec, dict[str, HostFacts]]:
    members = tuple(replace(m, config="/etc/fw.conf") for m in spec.members)
    out = dict(hosts)
    for m in members:
        cfg = FirewallConfig(m.domain, "auto", facts, None)  # type: ignore[arg-type]
        out[m.host] = replace(
            hosts[m.host], firewalls=MappingProxyType({firewall_key(m.domain): cfg})
        )
    return replace(spec, members=members), out


def _fgcp(hbdev: tuple[str, ...], sync: tuple[str, ...] = ()) -> FgcpFacts:
    return FgcpFacts(
        1,
        "c",
        "a-p",
        tuple(HbDev(h, 50) for h in hbdev),
        False,
        None,
        None,
        None,
        None,
        MappingProxyType({"port9": ipaddress.IPv4Interface("10.0.0.1/24")}),
        session_sync_dev=sync,
    )


def test_fgcp_hbdev_and_session_sync_dev_decide_over_the_inventory() -> None:
    spec, hosts = mistagged((0,))
    spec = replace(spec, pairs=tuple(replace(p, heartbeat=True) for p in spec.pairs))
    fw_spec, fw_hosts = _with_firewall(spec, hosts, _fgcp(("port2",)))
    hb = heartbeat_links(fw_spec, fw_hosts)
    assert hb.pairs == (1,) and "hbdev" in hb.source
    # If1 is no heartbeat pair for FortiOS: its retag is not gated
    assert plan_cluster(fw_spec, fw_hosts).gates == []
    fw_spec, fw_hosts = _with_firewall(spec, hosts, _fgcp(("port2",), ("port1",)))
    assert heartbeat_links(fw_spec, fw_hosts).pairs == (0, 1)


def test_cos_core_carries_heartbeats_on_every_pair() -> None:
    spec, hosts = mistagged(())
    spec = replace(spec, pairs=(replace(spec.pairs[0], heartbeat=True), spec.pairs[1]))
    cos = CosHaFacts(3, "master", "If1", ("If1", "If2"))
    fw_spec, fw_hosts = _with_firewall(spec, hosts, cos)
    hb = heartbeat_links(fw_spec, fw_hosts)
    assert hb.pairs == (0, 1) and "cOS Core" in hb.source


def test_inventory_heartbeat_key_must_be_a_bool(tmp_path: Path) -> None:
    doc = {
        "hosts": {"a": {"spec": "local://"}},
        "clusters": {
            "c": {
                "vendor": "fortigate",
                "members": [{"host": "a", "domain": "x"}, {"host": "a", "domain": "y"}],
                "pairs": [{"name": "If1", "heartbeat": "yes"}],
            }
        },
    }
    with pytest.raises(InventoryError, match=r"pair 1: key .heartbeat. must be true or false"):
        parse_inventory(doc, "inv.toml")
    doc["clusters"]["c"]["pairs"] = [{"name": "If1", "heartbeat": True}]  # type: ignore[index]
    assert parse_inventory(doc, "inv.toml").clusters[0].pairs == (
        PairSpec("If1", None, None, True),
    )


# --- the applier: gates -------------------------------------------------------------------


def _plan(spec: ClusterSpec, planned: object, backups: Path, **kw: object) -> Plan:
    _, _, targets = _two_ok()
    bundles = dict(zip(targets, collect_all(list(targets.values()), CollectOptions()), strict=True))
    return Plan(
        spec,
        planned.steps,  # type: ignore[attr-defined]
        planned.notes,  # type: ignore[attr-defined]
        targets,
        CollectOptions(),
        bundles,
        backups,
        gates=planned.gates,  # type: ignore[attr-defined]
        cut=planned.cut,  # type: ignore[attr-defined]
        heartbeat=planned.heartbeat,  # type: ignore[attr-defined]
        **kw,  # type: ignore[arg-type]
    )


def test_failed_proof_undoes_that_pair_and_stops(tmp_path: Path) -> None:
    spec, hosts = mistagged((0, 1))
    planned = plan_cluster(spec, hosts)
    ran: list[tuple[str, str]] = []
    proofs: list[tuple[str, ...]] = []

    def run(target: HostTarget, command: str) -> tuple[int, str, str]:
        ran.append((target.name, command))
        return 0, "", ""

    def prove(c: ClusterSpec, t: dict[str, HostTarget], o: CollectOptions, g: Gate) -> list[str]:
        proofs.append(g.names)
        return [] if g.names == ("If1",) else ["fw-b:If2: fail: dropped on kvm-b"]

    plan = _plan(spec, planned, tmp_path / "b", run=run, prove=prove)
    with pytest.raises(PairNotProven, match="heartbeat pair If2 does not work") as exc:
        plan.apply()
    assert proofs == [("If1",), ("If2",)]
    g1, g2 = planned.gates
    assert exc.value.gate == g2
    # If2's steps were undone newest first, If1 stays applied, nothing after If2 ran
    undone = [c for _, c in ran[-(g2.after - g2.first + 1) :]]
    expected = range(g2.after, g2.first - 1, -1)
    assert undone == [planned.steps[i].action.undo_execute() for i in expected]
    state = plan.journal.read()
    assert set(range(g2.first, g2.after + 1)) <= state.undone
    assert set(range(0, g1.after + 1)) <= state.done - state.undone
    assert plan.applied == list(range(0, g1.after + 1))
    assert len(ran) == g2.after + 1 + (g2.after - g2.first + 1)


# --- readable plans ----------------------------------------------------------------------


def test_plan_reads_per_cluster_with_reasons_fixes_and_gates() -> None:
    from pytest_kvmha.fixtures.explain import fixes_by_step

    from pytest_kvmha.model import discover_checks

    spec, hosts = mistagged((0, 1))
    planned = plan_cluster(spec, hosts)
    fixes = fixes_by_step(discover_checks(), list(hosts.values()), [spec], planned.steps)
    plan = _plan(spec, planned, Path("/nonexistent"), fixes=fixes)
    text = plan.render()
    assert text.startswith(f"plan for edge-fw: {len(planned.steps)} steps\n")
    assert "heartbeat pairs: If1, If2 (default: every pair may carry heartbeats)" in text
    assert "-- heartbeat pair If1: one pair at a time" in text
    assert "-- gate: trace heartbeat pair If1 on kvm-a, kvm-b" in text
    # the step that completes If1's retag says which finding it fixes
    g1 = planned.gates[0]
    assert "KVMHA-VLAN-001[If1]" in fixes[g1.after]
    assert "# fixes KVMHA-VLAN-001[If1]" in text
    steps = plan.as_json()["steps"]
    assert steps[g1.after]["gate"] == ["If1"] and "KVMHA-VLAN-001[If1]" in steps[g1.after]["fixes"]


def test_one_step_reads_one_step() -> None:
    from pytest_kvmha.fixtures.render import render_plan

    from pytest_kvmha.report.terminal import _whatif

    step = Step("kvm-a", SetPortVlans("vnet4", 101, (), 201, ()), "pair If1 on VLAN 101")
    assert render_plan("c", [step], [], [], [], None).startswith("plan for c: 1 step\n")
    lines: list[str] = []

    class Tr:
        def section(self, title: str) -> None:
            lines.append(title)

        def line(self, line: str, **kw: object) -> None:
            lines.append(line)

    w = {
        "steps": [
            {
                "host": "kvm-a",
                "cluster": "c",
                "command": step.command,
                "reason": step.reason,
                "diff": None,
                "fixes": ["KVMHA-VLAN-001[If1]"],
                "gate": ["If1"],
                "heartbeat_cut": True,
            }
        ],
        "refused": [],
        "notes": [],
        "introduced": [],
        "fixed": [],
        "unchanged": [],
    }
    _whatif(Tr(), w)  # type: ignore[arg-type]
    assert "plan: 1 step" in lines and "  cluster c:" in lines
    assert "      # pair If1 on VLAN 101 (fixes KVMHA-VLAN-001[If1])" in lines
    assert any(line.startswith("!! 1. [kvm-a]") for line in lines)


def test_json_step_carries_the_whole_planned_xml_redacted() -> None:
    from pytest_kvmha.fixtures.actions import DefineDomain

    old = "<domain><name>fw</name><graphics type='vnc' passwd='s3cret'/><vlan/></domain>"
    new = old.replace("<vlan/>", "<vlan><tag id='101'/></vlan>")
    out = Step("h", DefineDomain("fw", old, new, False, False), "r").as_json()
    assert out["xml"] == new.replace("s3cret", "***")
    assert "s3cret" not in str(out) and "+" in str(out["diff"])


def test_what_if_refuses_without_the_flag_and_marks_the_cut_items_with_it() -> None:
    from pytest_kvmha.fixtures.whatif import what_if

    from pytest_kvmha.audit.engine import run_checks
    from pytest_kvmha.model import discover_checks

    spec, hosts = mistagged((0,))
    one = replace(spec, pairs=spec.pairs[:1])
    checks = discover_checks()
    now = run_checks(checks, list(hosts.values()), [one])
    refused = what_if(checks, list(hosts.values()), [one], now)
    assert refused.steps == [] and ALLOW_CUT_FLAG in refused.refused[0]
    plan_item = [f for f in refused.findings if f.check.id == "KVMHA-PLAN-001"]
    assert plan_item and ALLOW_CUT_FLAG in plan_item[0].detail
    allowed = what_if(checks, list(hosts.values()), [one], now, allow_heartbeat_cut=True)
    assert not allowed.refused and allowed.cut
    window = f"steps {allowed.cut[0] + 1}-{allowed.cut[-1] + 1}"
    assert any(window in n and ALLOW_CUT_FLAG in n for n in allowed.notes)
    marked = [f for f in allowed.findings if "during the change: no heartbeat link" in f.detail]
    assert marked and all(f.subject.rsplit(":", 1)[-1] == "If1" for f in marked)
    steps = allowed.as_json()["steps"]
    assert [i for i, s in enumerate(steps) if s["heartbeat_cut"]] == allowed.cut


def test_allow_heartbeat_cut_flag_turns_the_refusal_into_a_marked_dry_run(
    pytester: pytest.Pytester,
) -> None:
    """A real pytest run on the recorded two-ok: the wanted inventory moves If1, the cluster's
    only heartbeat pair (If2 says heartbeat = false), to VLAN 111 on both servers. Without
    the flag the plan is refused naming it; with it the dry run marks the cut window."""
    shutil.copytree(BUNDLES / "two-ok", pytester.path / "s")
    inv = pytester.path / "s" / "clusters.toml"
    wanted = pytester.path / "s" / "wanted.toml"
    wanted.write_text(
        inv.read_text()
        .replace("vlan = 101", "vlan = 111")
        .replace("vlan = 102", "vlan = 102\nheartbeat = false")
    )
    run = (f"--kvmha-inventory={inv}", f"--kvmha-plan={wanted}", "--kvmha-report=r.json")

    refused = pytester.runpytest(*run)
    assert refused.ret == 1
    refused.stdout.fnmatch_lines(
        [
            "plan: 0 steps, 1 refused",
            "  refused: edge-fw: plan refused: changing heartbeat pair If1 on kvm-a, kvm-b leaves "
            "no heartbeat link between the members while it runs*split brain*"
            f"maintenance window with {ALLOW_CUT_FLAG}",
        ]
    )
    assert "!!" not in refused.stdout.str()
    report = json.loads((pytester.path / "r.json").read_text())["whatif"]
    assert report["steps"] == [] and ALLOW_CUT_FLAG in report["refused"][0]

    allowed = pytester.runpytest(*run, ALLOW_CUT_FLAG)
    assert allowed.ret == 0, allowed.stdout.str()
    allowed.stdout.fnmatch_lines(
        [
            "plan: 6 steps",
            "!! 5. [[]kvm-a[]] ovs-vsctl set port vnet4 tag=111 -- clear port vnet4 trunks",
            "!! 6. [[]kvm-b[]] ovs-vsctl set port vnet0 tag=111 -- clear port vnet0 trunks",
            "  note: edge-fw: no heartbeat link between the members during steps 5-6 (pair If1; "
            f"maintenance window: {ALLOW_CUT_FLAG})",
        ]
    )
    marked = [line for line in allowed.stdout.lines if line.startswith("!!")]
    assert len(marked) == 2, marked  # only the two steps inside the window
    report = json.loads((pytester.path / "r.json").read_text())["whatif"]
    assert not report["refused"]
    assert [i for i, s in enumerate(report["steps"]) if s["heartbeat_cut"]] == [4, 5]
    cut = [f for f in report["findings"] if "no heartbeat link in steps 5-6" in f["detail"]]
    assert cut and all(f["subject"].endswith("If1") for f in cut)
