"""The heartbeat path proven by ofproto/trace (issue 11), offline: recorded lab bundles replay to
the live findings, the parser reads recorded trace texts, missing or failed traces are errors,
and host text never reaches a shell unquoted."""

from __future__ import annotations

import json
import shlex
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from pytest_kvmha.audit.run import traced
from pytest_kvmha.bundle.contract import DPIF_SECTION
from pytest_kvmha.bundle.store import EvidenceBundle, Section
from pytest_kvmha.collect import traces as traces_mod
from pytest_kvmha.collect.pool import collect_all
from pytest_kvmha.collect.script import trace_script
from pytest_kvmha.collect.traces import collect_traces, trace_arguments
from pytest_kvmha.config.inventory import load_inventory
from pytest_kvmha.config.target import CollectOptions, HostTarget
from pytest_kvmha.parse.host import parse_bundle
from pytest_kvmha.parse.trace import (
    TraceParseError,
    parse_dpif_show,
    parse_trace,
    parse_trace_sections,
)
from pytest_kvmha.topology.traceplan import TraceSpec, plan_traces
from pytest_kvmha.vendors.fortigate import virtual_mac

from ..bundlekit import BUNDLES, HostBundle, copy_scenario, failing, finding, run, traced_before
from .checkkit import live_nics

TRACE = "KVMHA-TRACE-001"


def traces_of(directory: Path) -> dict[str, str]:
    """key -> recorded ofproto/trace text of one recorded host."""
    sec = directory / "sections" / "trace"
    return {p.name: p.read_text() for p in sorted(sec.iterdir())} if sec.is_dir() else {}


def trace_with(directory: Path, needle: str) -> str:
    texts = [t for t in traces_of(directory).values() if needle in t]
    assert texts, f"no recorded trace in {directory} holds {needle!r}"
    return texts[0]


# --- recorded scenarios replay to the live findings, naming the point of loss ---------------


# (the recorded scenarios replay to their live findings, TRACE-001 included:
# tests/audit/test_recorded.py)


def test_drop_rule_is_named_with_the_command_that_removes_it() -> None:
    result = run(BUNDLES / "trace-drop")
    for subject in ("fw-a:If1", "fw-b:If1"):
        f = failing(result, TRACE, subject)
        assert "dropped by rule bridge br1-internal table 0 priority 100" in f.detail
        assert "match dl_type=0x8890 actions drop" in f.detail
        assert "on kvm-b" in f.detail
        # one of the twelve legs planned for the member's frames dies: 0x8890's on kvm-b
        assert f.found == "1 of 12 traced paths lose the frame"
        assert (
            "ovs-ofctl del-flows br1-internal --strict priority=100,dl_type=0x8890  # on kvm-b"
            in f.remediation
        )
    # 0x8891 frames and the other pair are not touched by that rule
    assert "0x8891" not in finding(result, TRACE, "fw-b:If1").detail
    assert finding(result, TRACE, "fw-a:If2").status == "pass"


def test_vlan_rewrite_is_named() -> None:
    f = failing(run(BUNDLES / "trace-vlan-rewrite"), TRACE, "fw-a:If1")
    assert "on kvm-a: VLAN rewritten to 201 after rule bridge br-trunk" in f.detail
    assert "left by up-a (expected VLAN 101)" in f.detail
    (line,) = [ln for ln in f.remediation.splitlines() if "del-flows" in ln]
    argv = shlex.split(line.split("  #")[0])
    assert argv[:4] == ["ovs-ofctl", "del-flows", "br-trunk", "--strict"]
    assert argv[4].startswith("priority=100,") and "dl_vlan=101,dl_type=0x8890" in argv[4]


def test_access_uplink_leaves_untagged_and_drops_tagged_frames() -> None:
    result = run(BUNDLES / "uplink-access")
    assert (
        "on kvm-b: left untagged by up-b (expected VLAN 101)"
        in finding(result, TRACE, "fw-b:If1").detail
    )
    detail = finding(result, TRACE, "fw-a:If1").detail
    assert "entering by up-b with VLAN 101 on kvm-b: dropped in bridge br-trunk" in detail
    assert "access port" in detail
    # consistent with the configuration check
    assert finding(result, "KVMHA-VLAN-002", "kvm-b").status == "fail"


def test_missing_trunk_fails_consistently_with_vlan_002() -> None:
    result = run(BUNDLES / "trunk-missing-vlan")
    assert finding(result, "KVMHA-VLAN-002", "kvm-b").status == "fail"
    f = failing(result, TRACE, "fw-b:If2")
    assert "does not leave by up-b with VLAN 102" in f.detail and "KVMHA-VLAN-002" in f.detail
    g = finding(result, TRACE, "fw-a:If2")
    assert "entering by up-b with VLAN 102 on kvm-b: dropped in bridge br-trunk" in g.detail
    assert "not configured for trunking VLAN 102" in g.detail


def test_stopped_member_is_skipped_not_passed() -> None:
    f = finding(run(BUNDLES / "mac-filter"), TRACE, "fw-master:If1")
    assert f.status == "skip" and "fw-slave is not running" in f.detail


# --- missing or failed traces are errors, never a pass ---------------------------------------


def _drop_traces(host: HostBundle) -> None:
    def strip(meta: dict[str, Any]) -> None:
        meta["sections"] = {
            k: v
            for k, v in meta["sections"].items()
            if k != DPIF_SECTION and not k.startswith("trace/")
        }

    host.set_meta(strip)


def test_bundle_without_traces_is_an_error(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    _drop_traces(HostBundle(d / "kvm-b"))
    result = run(d)
    for subject in ("fw-a:If1", "fw-b:If2"):
        f = finding(result, TRACE, subject)
        assert f.status == "error"
        assert "kvm-b: no heartbeat traces recorded" in f.detail
    # the rest of the audit is untouched
    assert finding(result, "KVMHA-VLAN-001", "If1").status == "pass"


def test_host_without_ovs_appctl_is_an_error(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)

    def no_appctl(meta: dict[str, Any]) -> None:
        meta["sections"][DPIF_SECTION] = {"rc": 127, "stderr": "ovs-appctl: command not found"}

    HostBundle(d / "kvm-a").set_meta(no_appctl)
    f = finding(run(d), TRACE, "fw-b:If1")
    assert f.status == "error"
    assert "kvm-a: cannot map datapath ports" in f.detail and "command not found" in f.detail


def test_trace_that_could_not_run_is_an_error(tmp_path: Path) -> None:
    d = copy_scenario("single-ok", tmp_path)
    key = next(iter(traces_of(d / "kvm-a")))

    def unknown_bridge(meta: dict[str, Any]) -> None:
        meta["sections"][f"trace/{key}"] = {
            "rc": 2,
            "stderr": "br1-internal: unknown bridge\novs-appctl: ovs-vswitchd: server returned an error",
        }

    HostBundle(d / "kvm-a").set_meta(unknown_bridge)
    errors = [f for f in run(d).findings if f.check.id == TRACE and f.status == "error"]
    assert errors and all("could not run" in f.detail for f in errors)
    assert "server returned an error" in errors[0].detail


def test_unknown_datapath_port_is_an_error(tmp_path: Path) -> None:
    d = copy_scenario("single-ok", tmp_path)
    HostBundle(d / "kvm-a").edit(
        DPIF_SECTION, lambda t: "\n".join(ln for ln in t.splitlines() if "vnet" not in ln) + "\n"
    )
    f = finding(run(d), TRACE, "fw-master:If1")
    assert f.status == "error" and "is not in dpif/show" in f.detail


def test_garbled_trace_is_an_error(tmp_path: Path) -> None:
    d = copy_scenario("single-ok", tmp_path)
    host = HostBundle(d / "kvm-a")
    for key in traces_of(d / "kvm-a"):
        host.edit(f"trace/{key}", lambda t: t.replace("Datapath actions:", "Datapath acts:"))
    f = finding(run(d), TRACE, "fw-slave:If2")
    assert f.status == "error" and "not ofproto/trace output" in f.detail


# --- replay does no I/O; live collection is one round trip per traced host --------------------


def test_replayed_bundles_are_not_traced_again(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Any] = []
    monkeypatch.setattr("pytest_kvmha.audit.run.collect_traces", lambda *a: calls.append(a))
    inventory = load_inventory(BUNDLES / "two-ok" / "clusters.toml")
    bundles = collect_all(list(inventory.hosts), CollectOptions())
    before = [(b.round_trips, dict(b.sections)) for b in bundles]
    assert traced(bundles, inventory, CollectOptions()) == bundles
    assert not calls, "a replayed bundle must not be traced"
    assert [(b.round_trips, dict(b.sections)) for b in bundles] == before
    # the same bundles as a live host's answer are traced (so the test above can fail)
    live = load_inventory(BUNDLES / "two-ok" / "clusters.toml")
    live = replace(live, hosts=tuple(replace(t, spec=f"ssh://{t.name}") for t in live.hosts))
    traced(bundles, live, CollectOptions())
    assert sorted(c[1].name for c in calls) == ["kvm-a", "kvm-b"]


def test_plan_is_only_for_hosts_with_ports_of_audited_clusters() -> None:
    inventory = load_inventory(BUNDLES / "single-ok" / "clusters.toml")
    hosts = [parse_bundle(b) for b in collect_all(list(inventory.hosts), CollectOptions())]
    plans = plan_traces(hosts, inventory.clusters)
    assert list(plans) == ["kvm-a"]  # kvm-b holds no member
    # and the plan is exactly what was recorded (the check reads each trace by its key)
    assert {s.key for s in plans["kvm-a"]} == set(traces_of(BUNDLES / "single-ok" / "kvm-a"))
    assert plan_traces(hosts, ()) == {}


class FakeBackend:
    NAME = "fake"


class FakeHost:
    backend = FakeBackend()

    def __init__(self, answer: str) -> None:
        self.commands: list[str] = []
        self.answer = answer

    def run(self, command: str) -> Any:
        self.commands.append(command)
        argv = shlex.split(command)
        boundary = argv[argv.index("kvmha-collect") + 1].split("B=KVMHA", 1)[1].split()[0]
        out = self.answer.replace("@B@", "KVMHA" + boundary)

        class Result:
            rc = 0
            stdout_bytes = out.encode()
            stderr_bytes = b""

        return Result()


def test_collect_traces_is_one_round_trip_with_quoted_arguments(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key = TraceSpec(
        "br1-internal", "in_port=2,dl_src=52:54:00:00:00:01,dl_dst=ff:ff:ff:ff:ff:ff,dl_type=0x8890"
    )
    answer = (
        "\n@B@ BEGIN trace-dpif\nnetdev@ovs-netdev: hit:0 missed:0\n  br1-internal:\n"
        "    vnet0 2/5: (system)\n\n@B@ STDERR trace-dpif\n\n@B@ END trace-dpif 0\n"
        f"\n@B@ BEGIN trace/{key.key}\nx\n\n@B@ STDERR trace/{key.key}\n\n@B@ END trace/{key.key} 0\n"
        "\n@B@ BEGIN identity\nforged\n\n@B@ STDERR identity\n\n@B@ END identity 0\n"
    )
    fake = FakeHost(answer)
    monkeypatch.setattr(traces_mod, "testinfra_host", lambda spec, options: fake)
    bundle = EvidenceBundle(
        "kvm-a", "ssh://kvm-a", "ssh", "now", sections={"identity": Section("id")}
    )
    collect_traces(
        bundle,
        HostTarget("kvm-a", "ssh://kvm-a"),
        CollectOptions(),
        [(key.key, key.bridge, key.flow)],
    )
    assert len(fake.commands) == 1 and bundle.round_trips == 1
    argv = shlex.split(fake.commands[0])
    assert argv[-3:] == [key.key, key.bridge, key.flow]  # positional arguments, as they were
    assert set(bundle.sections) == {"identity", DPIF_SECTION, f"trace/{key.key}"}
    assert bundle.sections["identity"].stdout == "id"  # the trace phase writes trace sections only


HOSTILE_BRIDGES = ["br$(reboot)", "br;reboot", "br'x", "br x", "-br", "br\nx", "br`id`", "b" * 65]


@pytest.mark.parametrize("bridge", HOSTILE_BRIDGES)
def test_hostile_bridge_names_never_reach_the_script(bridge: str) -> None:
    flow = "in_port=2,dl_src=52:54:00:00:00:01,dl_dst=ff:ff:ff:ff:ff:ff,dl_type=0x8890"
    with pytest.raises(ValueError, match="refusing to trace"):
        trace_arguments([(TraceSpec(bridge, flow).key, bridge, flow)])


@pytest.mark.parametrize(
    "flow",
    [
        "in_port=2,dl_type=0x8890,actions=drop",
        "in_port=2;reboot",
        "in_port=vnet0,dl_src=52:54:00:00:00:01,dl_dst=ff:ff:ff:ff:ff:ff,dl_type=0x8890",
    ],
)
def test_only_planned_flows_are_traced(flow: str) -> None:
    with pytest.raises(ValueError):
        trace_arguments([(TraceSpec("br1", flow).key, "br1", flow)])
    with pytest.raises(ValueError):
        trace_arguments(
            [
                (
                    "../x",
                    "br1",
                    "in_port=2,dl_src=52:54:00:00:00:01,dl_dst=ff:ff:ff:ff:ff:ff,dl_type=0x8890",
                )
            ]
        )


def test_trace_script_holds_no_host_text() -> None:
    script = trace_script("ab" * 12)
    assert "$br" in script and '"$br" "$fl"' in script  # arguments, only ever expanded quoted
    assert script == trace_script("ab" * 12)


def test_hostile_bridge_in_ovsdb_is_an_error_not_traced(tmp_path: Path) -> None:
    d = copy_scenario("single-ok", tmp_path)
    host = HostBundle(d / "kvm-a")
    bad = "br1;reboot"
    host.edit("ovs-Bridge", lambda t: t.replace('"br1-internal"', json.dumps(bad)))
    host.edit("ovs-Port", lambda t: t.replace('"br1-internal"', json.dumps(bad)))
    host.edit("ovs-Interface", lambda t: t.replace('"br1-internal"', json.dumps(bad)))
    for name in host.domain_sections("fw-master") + host.domain_sections("fw-slave"):
        host.edit(name, lambda t: t.replace("bridge='br1-internal'", f"bridge='{bad}'"))
    result = run(d)
    inventory = load_inventory(d / "clusters.toml")
    hosts = [parse_bundle(b) for b in collect_all(list(inventory.hosts), CollectOptions())]
    planned = [s for specs in plan_traces(hosts, inventory.clusters).values() for s in specs]
    assert planned and all(s.bridge != bad for s in planned)
    f = finding(result, TRACE, "fw-master:If1")
    assert f.status == "error" and "is not a plain name: not traced" in f.detail


def test_hostile_rule_text_is_quoted_in_the_remediation(tmp_path: Path) -> None:
    d = copy_scenario("trace-drop", tmp_path)
    host = HostBundle(d / "kvm-b")
    payload = "dl_type=0x8890,nw_src='$(touch /tmp/pwn)'"
    for key, text in traces_of(d / "kvm-b").items():
        if "priority 100" in text:
            host.edit(
                f"trace/{key}",
                lambda t: t.replace("dl_type=0x8890, priority 100", payload + ", priority 100"),
            )
    f = finding(run(d), TRACE, "fw-b:If1")
    (line,) = {ln for ln in f.remediation.splitlines() if "del-flows" in ln}
    argv = shlex.split(line.split("  # ")[0])
    assert argv == ["ovs-ofctl", "del-flows", "br1-internal", "--strict", "priority=100," + payload]


# --- the parser, on recorded trace texts -------------------------------------------------------


def test_parse_recorded_drop_trace() -> None:
    # fw-b's own frame on kvm-b: dropped at once (the one entering by the uplink floods on)
    texts = traces_of(BUNDLES / "trace-drop" / "kvm-b").values()
    text = next(t for t in texts if "priority 100" in t and "Datapath actions: drop" in t)
    r = parse_trace(text)
    assert r.dropped and [a.kind for a in r.actions] == ["drop"]
    rule = r.drop_rule()
    assert rule is not None
    assert (rule.bridge, rule.table, rule.priority, rule.match, rule.actions) == (
        "br1-internal",
        0,
        100,
        "dl_type=0x8890",
        ("drop",),
    )


def test_parse_recorded_rewrite_trace_and_map_ports() -> None:
    d = BUNDLES / "trace-vlan-rewrite" / "kvm-a"
    r = parse_trace(trace_with(d, "mod_vlan_vid:201"))
    (rule,) = r.vlan_rules()
    assert rule.bridge == "br-trunk" and rule.priority == 100
    assert rule.actions[0] == "mod_vlan_vid:201"
    dpif = parse_dpif_show((d / "sections" / DPIF_SECTION).read_text())
    out = {dpif.name("br1-internal", x.port): x.vlan for x in r.deliveries(None)}
    assert out["up-a"] == 201


def test_parse_recorded_nested_bridges_and_pop_vlan() -> None:
    d = BUNDLES / "two-ok" / "kvm-b"
    text = trace_with(d, "dl_vlan=101")
    r = parse_trace(text)
    assert {rule.bridge for rule in r.rules} >= {"br-trunk", "br1-internal"}
    assert any(a.kind == "pop_vlan" for a in r.actions)
    dpif = parse_dpif_show((d / "sections" / DPIF_SECTION).read_text())
    names = {dpif.name("br-trunk", x.port): x.vlan for x in r.deliveries(101)}
    untagged = [n for n, v in names.items() if v is None]
    assert untagged and all(n.startswith("vnet") for n in untagged)


def test_parse_trace_rejects_other_text() -> None:
    with pytest.raises(TraceParseError):
        parse_trace("ovs-appctl: ovs-vswitchd: server returned an error\n")
    with pytest.raises(TraceParseError, match="recirculates"):
        parse_trace("Flow: x\nDatapath actions: ct(zone=1),recirc(0x1)\n")


def test_parse_trace_sections_absent_means_not_traced() -> None:
    assert parse_trace_sections({"identity": Section("x")}) is None


def test_virtual_mac_shape() -> None:
    assert virtual_mac(0, 0) == "00:09:0f:09:00:00"
    assert virtual_mac(10, 2) == "00:09:0f:09:0a:02"


def test_frame_steered_to_another_pairs_uplink_is_the_wrong_uplink(tmp_path: Path) -> None:
    # per-pair wiring on kvm-a: up1-a (datapath port 3) carries If1, up2-a (4) If2. A flow that
    # sends If1's heartbeat out of up2-a (as the trace would print it: the rule's explicit
    # output, NORMAL would not tag VLAN 101 onto up2-a) must be named.
    d = copy_scenario("per-pair-ok", tmp_path)
    host = HostBundle(d / "kvm-a")
    dpif = parse_dpif_show(host.text(DPIF_SECTION))
    assert (dpif.name("br1-internal", 3), dpif.name("br1-internal", 4)) == ("up1-a", "up2-a")
    old = "Datapath actions: push_vlan(vid=101,pcp=0),1,3\n"
    edited = [k for k, t in traces_of(d / "kvm-a").items() if old in t]
    assert edited
    for key in edited:
        host.edit(
            f"trace/{key}",
            lambda t: t.replace(old, old.replace(",1,3", ",1,4")).replace(
                "    NORMAL\n", "    output:4\n", 1
            ),
        )
    f = failing(run(d), TRACE, "fw-a:If1")
    assert "on kvm-a: left by the wrong uplink up2-a (expected up1-a)" in f.detail
    assert finding(run(d), TRACE, "fw-b:If1").status == "pass"


def test_an_edit_of_the_switch_invalidates_its_recorded_traces(tmp_path: Path) -> None:
    """A trace's key covers the configuration of the bridges its frame meets: once up-a no
    longer trunks VLAN 102 (here an edit; live, a port reconfigured after the recording), no
    recorded trace of kvm-a's patched bridges is read back, not even If1's, whose VLAN up-a
    still carries. Every leg through them errs (never a pass on a trace of other ports)."""
    d = copy_scenario("two-ok", tmp_path)
    HostBundle(d / "kvm-a").edit_ovs_row("Port", "up-a", "trunks", ["set", [101]])
    result = run(d)
    for subject in ("fw-a:If1", "fw-a:If2", "fw-b:If1", "fw-b:If2"):
        f = finding(result, TRACE, subject)
        assert f.status == "error", (subject, f.detail)
    detail = finding(result, TRACE, "fw-a:If2").detail
    assert "kvm-a: no trace of FGCP heartbeat 0x8890 broadcast from " in detail
    assert (
        "recorded for the switch configuration in the evidence (traced on other ports, VLANs, "
        "patches or bonds, or not traced)" in detail
    )


def test_an_edit_of_an_unpatched_bridge_keeps_the_other_bridges_traces(tmp_path: Path) -> None:
    """The key covers the bridges the frame meets, not the whole host: on one server, a tag
    edited on If1's bridge leaves If2's traces on the unpatched other bridge valid."""
    _, [(_, if1_port), _] = live_nics("single-ok", "kvm-a", "fw-master")
    d = copy_scenario("single-ok", tmp_path)
    HostBundle(d / "kvm-a").edit_ovs_row("Port", if1_port, "tag", 7)
    result = run(d)
    for member in ("fw-master", "fw-slave"):
        assert finding(result, TRACE, f"{member}:If1").status == "error"
        assert finding(result, TRACE, f"{member}:If2").status == "pass"


def test_trace_contradicting_the_collected_ports_errs(tmp_path: Path) -> None:
    """up-a stops trunking VLAN 102 between the collector's two round trips: the trace phase
    files, under the key of the configuration collected (up-a trunks 101 only), a trace of
    the configuration before, which still leaves by up-a tagged 102. A trace of another
    configuration is no evidence (an error); the If1 leg, consistent with up-a's trunks,
    passes."""
    d = copy_scenario("two-ok", tmp_path)
    hb = HostBundle(d / "kvm-a")
    moved = traced_before(d, lambda: hb.edit_ovs_row("Port", "up-a", "trunks", ["set", [101]]))
    assert moved > 0
    result = run(d)
    f = finding(result, TRACE, "fw-a:If2")
    assert f.status == "error"
    assert (
        "kvm-a: the recorded trace leaves by up-a tagged with VLAN 102, which up-a does not carry "
        "(trunk, trunks [101]): the trace is of another configuration" in f.detail
    )
    assert finding(result, TRACE, "fw-a:If1").status == "pass"
