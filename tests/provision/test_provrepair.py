"""The planner repairs the two-server wiring that exists (recorded bundles), without `uplinks`
or `trunk_bridge` declarations, and names the missing fact where it cannot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pytest_kvmha.fixtures.actions import SetPortVlans, SetPromisc, Step, simulate_steps
from pytest_kvmha.fixtures.plan import PlanOptions, PlanRefused, plan_cluster
from pytest_kvmha.fixtures.whatif import what_if

from pytest_kvmha.config.inventory import load_inventory
from pytest_kvmha.model import discover_checks
from tests.scenarios import FIXABLE, SCENARIOS

from ..bundlekit import BUNDLES, HostBundle, copy_scenario, run, statuses
from .test_plan import facts_of

WIRED_TWO_SERVERS = [n for n in FIXABLE if SCENARIOS[n].two_servers and not SCENARIOS[n].bare]


def plan(directory: Path) -> list[Step]:
    inv, hosts = facts_of(directory)
    return plan_cluster(inv.clusters[0], hosts, PlanOptions("netdev")).steps


def summary(steps: list[Step]) -> list[tuple[str, str]]:
    return [(s.host, s.command.splitlines()[0]) for s in steps]


def test_wired_scenarios_declare_no_uplinks() -> None:
    assert set(WIRED_TWO_SERVERS) >= {
        "promisc-off",
        "vlan-clash",
        "per-pair-missing-vlan",
        "per-pair-promisc-off",
        "trunk-missing-vlan",
        "wrong-member-tag",
        "patch-tag-wrong",
    }
    for name in WIRED_TWO_SERVERS:
        (cluster,) = load_inventory(BUNDLES / name / "clusters.toml").clusters
        assert not cluster.uplinks and cluster.trunk_bridge is None, name


@pytest.mark.parametrize("name", WIRED_TWO_SERVERS)
def test_existing_wiring_repaired_to_a_clean_audit(name: str) -> None:
    inv, hosts = facts_of(BUNDLES / name)
    cluster = inv.clusters[0]
    steps = plan_cluster(cluster, hosts, PlanOptions("netdev")).steps
    after = simulate_steps(steps, hosts)
    assert plan_cluster(cluster, after, PlanOptions("netdev")).steps == []
    result = what_if(
        discover_checks(), list(hosts.values()), inv.clusters, run(BUNDLES / name).findings
    )
    assert not result.refused and not result.introduced
    assert [f for f in result.findings if f.status in ("fail", "error")] == []
    # Nothing is built: no bridge, no port, no patch; the wiring that exists is kept.
    assert not [s for s in steps if "add-br" in s.command or "add-port" in s.command]


def test_per_pair_uplink_gets_the_missing_vlan() -> None:
    """Each pair bridge has its own uplink; up2-a trunks 103 instead of 102. Was refused with
    'declare the uplink between the servers'."""
    (step,) = plan(BUNDLES / "per-pair-missing-vlan")
    assert isinstance(step.action, SetPortVlans)
    assert (step.host, step.command) == (
        "kvm-a",
        "ovs-vsctl clear port up2-a tag -- set port up2-a 'trunks=[102,103]'",
    )
    assert step.undo == "ovs-vsctl clear port up2-a tag -- set port up2-a 'trunks=[103]'"
    assert step.reason == "uplink up2-a must trunk VLAN 102 (pair If2)"


def test_per_pair_uplink_made_promiscuous() -> None:
    (step,) = plan(BUNDLES / "per-pair-promisc-off")
    assert isinstance(step.action, SetPromisc)
    assert (step.host, step.command) == ("kvm-b", "ip link set dev up2-b promisc on")


def test_trunk_bridge_uplink_gets_the_missing_vlan() -> None:
    assert summary(plan(BUNDLES / "trunk-missing-vlan")) == [
        ("kvm-b", "ovs-vsctl clear port up-b tag -- set port up-b 'trunks=[101,102]'")
    ]


def test_member_with_the_wrong_tag_is_retagged() -> None:
    # fw-b's If2 port, as recorded (libvirt numbers vnet ports per host run)
    ports = HostBundle(BUNDLES / "wrong-member-tag" / "kvm-b").ovs_rows("Port")
    (vnet,) = [r[ports[0].index("name")] for r in ports[1] if 103 == r[ports[0].index("tag")]]
    assert summary(plan(BUNDLES / "wrong-member-tag")) == [
        ("kvm-b", "virsh define fw-b.xml  # the XML below"),
        ("kvm-b", f"ovs-vsctl set port {vnet} tag=102 -- clear port {vnet} trunks"),
    ]


def test_patch_port_with_the_wrong_tag_is_retagged() -> None:
    """Recorded on the lab: the pair VLANs are patch port tags; kvm-b's patch-2-out is wrong."""
    assert summary(plan(BUNDLES / "patch-tag-wrong")) == [
        ("kvm-b", "ovs-vsctl set port patch-2-out tag=102 -- clear port patch-2-out trunks")
    ]


def test_running_port_retagged_by_hand_is_put_back(tmp_path: Path) -> None:
    """fw-b's XML says VLAN 102 for If2, but its running port was set to 103 by hand: the audit
    fails (it judges the port), so the plan retags the port, and leaves the domain alone."""
    d = copy_scenario("two-ok", tmp_path)
    kvm_b = HostBundle(d / "kvm-b")
    headings, rows = kvm_b.ovs_rows("Port")
    (vnet,) = [r[1] for r in rows if r[headings.index("tag")] == 102]
    kvm_b.edit_ovs_row("Port", vnet, "tag", 103)
    assert statuses(run(d))[("KVMHA-VLAN-001", "If2")] == "fail"
    (step,) = plan(d)
    assert isinstance(step.action, SetPortVlans)
    assert (step.host, step.command, step.undo) == (
        "kvm-b",
        f"ovs-vsctl set port {vnet} tag=102 -- clear port {vnet} trunks",
        f"ovs-vsctl set port {vnet} tag=103 -- clear port {vnet} trunks",
    )


def _drop_port(host: HostBundle, port: str) -> None:
    """Take ``port`` out of its bridge, as ``ovs-vsctl del-port`` would."""
    headings, rows = host.ovs_rows("Port")
    (uuid,) = [r[0] for r in rows if r[headings.index("name")] == port]

    def change(doc: dict) -> None:  # type: ignore[type-arg]
        col = doc["headings"].index("ports")
        for row in doc["data"]:
            members = row[col][1] if row[col][0] == "set" else [row[col]]
            kept = [m for m in members if m != uuid]
            row[col] = kept[0] if len(kept) == 1 else ["set", kept]

    host.edit_json("ovs-Bridge", change)


def test_unwired_pair_bridge_joined_to_the_existing_trunk_bridge(tmp_path: Path) -> None:
    """br2-external on kvm-b lost its patch ports to br-trunk: the plan patches it back to the
    one trunk bridge there is, and nothing else."""
    d = copy_scenario("two-ok", tmp_path)
    _drop_port(HostBundle(d / "kvm-b"), "patch-2-in")
    _drop_port(HostBundle(d / "kvm-b"), "patch-2-out")
    assert summary(plan(d)) == [
        (
            "kvm-b",
            "ovs-vsctl add-port br2-external br2-external-up -- set interface "
            "br2-external-up type=patch options:peer=br2-external-dn",
        ),
        (
            "kvm-b",
            "ovs-vsctl add-port br-trunk br2-external-dn -- set interface "
            "br2-external-dn type=patch options:peer=br2-external-up",
        ),
    ]


def test_refusal_names_the_pair_bridge_without_an_uplink(tmp_path: Path) -> None:
    """Per-pair wiring where br2-external on kvm-b has no uplink: there is no trunk bridge to
    join it to, so only a declaration can say which NIC to use; the refusal says exactly that."""
    d = copy_scenario("per-pair-ok", tmp_path)
    _drop_port(HostBundle(d / "kvm-b"), "up2-b")
    inv, hosts = facts_of(d)
    with pytest.raises(PlanRefused) as refused:
        plan_cluster(inv.clusters[0], hosts)
    assert refused.value.reasons == [
        "pair If2: no uplink reachable from br2-external on kvm-b and no `uplinks` declared "
        "for kvm-b (other pair bridges reach up1-b)"
    ]


def test_bare_servers_without_declarations_are_refused_per_pair(tmp_path: Path) -> None:
    d = copy_scenario("two-bare", tmp_path)
    text = (d / "clusters.toml").read_text()
    (d / "clusters.toml").write_text(
        "\n".join(
            line for line in text.splitlines() if not line.startswith(("uplinks", "trunk_bridge"))
        )
        + "\n"
    )
    inv, hosts = facts_of(d)
    with pytest.raises(PlanRefused) as refused:
        plan_cluster(inv.clusters[0], hosts)
    assert refused.value.reasons == [
        f"pair {p}: no uplink reachable from {b} on {h} and no `uplinks` declared for {h}"
        for h in ("kvm-a", "kvm-b")
        for p, b in (("If1", "br1-internal"), ("If2", "br2-external"))
    ]


def _declare(d: Path, lines: str) -> None:
    path = d / "clusters.toml"
    path.write_text(path.read_text().replace("members = [", lines + "\nmembers = [", 1))


def test_declared_uplink_that_matches_the_wiring_is_repaired_in_place(tmp_path: Path) -> None:
    d = copy_scenario("trunk-missing-vlan", tmp_path)
    _declare(d, 'uplinks = { kvm-a = "up-a", kvm-b = "up-b" }\ntrunk_bridge = "br-trunk"')
    assert summary(plan(d)) == [
        ("kvm-b", "ovs-vsctl clear port up-b tag -- set port up-b 'trunks=[101,102]'")
    ]


def test_declared_uplink_that_contradicts_the_wiring_is_refused(tmp_path: Path) -> None:
    """up2-a is If2's own wire; declaring it the one uplink of kvm-a asks for a trunk bridge,
    which would mean moving a port the plan does not own."""
    d = copy_scenario("per-pair-missing-vlan", tmp_path)
    _declare(d, 'uplinks = { kvm-a = "up2-a", kvm-b = "up2-b" }')
    inv, hosts = facts_of(d)
    with pytest.raises(PlanRefused, match="uplink up2-a is already in bridge br2-external"):
        plan_cluster(inv.clusters[0], hosts)


def test_several_uplinks_none_carrying_the_vlan_is_refused_by_name(tmp_path: Path) -> None:
    """br2-external on kvm-a has a second physical port (eno9, trunking 101); neither it nor
    up2-a trunks VLAN 102: which one is If2's wire is a declaration, not a guess."""
    d = copy_scenario("per-pair-missing-vlan", tmp_path)
    kvm_a = HostBundle(d / "kvm-a")
    ports = json.loads(kvm_a.text("ovs-Port"))
    ifaces = json.loads(kvm_a.text("ovs-Interface"))
    bridges = json.loads(kvm_a.text("ovs-Bridge"))
    ports["data"].append(
        [["uuid", "p-extra"], "eno9", ["uuid", "i-extra"], ["set", []], 101, ["set", []]]
        + [["map", []], ["map", []], ["map", []], ["set", []], ["set", []]]
    )
    (up,) = [r for r in ifaces["data"] if r[ifaces["headings"].index("name")] == "up2-a"]
    extra = list(up)
    extra[ifaces["headings"].index("_uuid")] = ["uuid", "i-extra"]
    extra[ifaces["headings"].index("name")] = "eno9"
    ifaces["data"].append(extra)
    col = bridges["headings"].index("ports")
    for b in bridges["data"]:
        if b[bridges["headings"].index("name")] == "br2-external":
            b[col] = ["set", [*b[col][1], ["uuid", "p-extra"]]]
    for table, doc in (("Port", ports), ("Interface", ifaces), ("Bridge", bridges)):
        kvm_a.edit(f"ovs-{table}", lambda _, doc=doc: json.dumps(doc))
    inv, hosts = facts_of(d)
    with pytest.raises(PlanRefused) as refused:
        plan_cluster(inv.clusters[0], hosts)
    assert refused.value.reasons == [
        "pair If2: VLAN 102 is carried by none of the uplinks reachable from br2-external on "
        "kvm-a (eno9, up2-a) and no `uplinks` declared for kvm-a says which to trunk it on"
    ]


def _vlans_on_patch_ports(d: Path) -> None:
    """two-ok redesigned: members untagged (XML and ports), each pair's VLAN given by the access
    tag of its patch port on the trunk bridge (patch-K-out), as some sites wire it."""
    import re

    for host in ("kvm-a", "kvm-b"):
        hb = HostBundle(d / host)
        headings, rows = hb.ovs_rows("Port")
        for row in rows:
            name, tag = row[headings.index("name")], row[headings.index("tag")]
            if name.startswith("vnet") and tag != ["set", []]:
                hb.edit_ovs_row("Port", name, "tag", ["set", []])
        hb.edit_ovs_row("Port", "patch-1-out", "tag", 101)
        hb.edit_ovs_row("Port", "patch-2-out", "tag", 102)
        for section in hb.sections("domain-"):
            if "<vlan>" in hb.text(section):
                hb.edit(section, lambda x: re.sub(r"\n\s*<vlan>.*?</vlan>", "", x, flags=re.S))


def test_vlan_on_patch_ports_is_kept_and_the_patch_port_retagged(tmp_path: Path) -> None:
    """Where the pair VLAN comes from a tagged patch port, the wrong tag is fixed there; the
    members stay untagged (tagged frames into an access port would be dropped)."""
    d = copy_scenario("two-ok", tmp_path)
    _vlans_on_patch_ports(d)
    assert "fail" not in statuses(run(d)).values()
    assert plan(d) == []  # conforms as it is
    HostBundle(d / "kvm-b").edit_ovs_row("Port", "patch-2-out", "tag", 103)
    assert statuses(run(d))[("KVMHA-VLAN-001", "If2")] == "fail"
    (step,) = plan(d)
    assert isinstance(step.action, SetPortVlans)
    assert (step.host, step.command, step.undo) == (
        "kvm-b",
        "ovs-vsctl set port patch-2-out tag=102 -- clear port patch-2-out trunks",
        "ovs-vsctl set port patch-2-out tag=103 -- clear port patch-2-out trunks",
    )
    inv, hosts = facts_of(d)
    result = what_if(discover_checks(), list(hosts.values()), inv.clusters, run(d).findings)
    assert not result.introduced and ("KVMHA-VLAN-001", None, "edge-fw", "If2") in result.fixed
