"""checks/topology.py: a cluster has exactly two members with the same number of NICs
(KVMHA-TOPO-001), on different physical servers (KVMHA-TOPO-002).

How the tests edit and audit a recorded scenario: tests/checks/__init__.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ..bundlekit import (
    copy_scenario,
    domain_uuid,
    drop_section,
    edit_nic,
    edit_toml,
    finding,
    host,
    remove_ovs_port,
    run,
    set_section,
    undefine_domain,
)
from .checkkit import (
    B_IF2,
    B_VNET2,
    FW_C_PASSES,
    HB1,
    HB2,
    HOST0,
    OVS2,
    TOPO1,
    TOPO2,
    VIRT1,
    VIRT2,
    VIRT3,
    VLAN1,
    VLAN2,
    add_third_member,
    errors_without_member,
    expected,
    problem_errors,
    statuses,
)

# --- KVMHA-TOPO-001 --------------------------------------------------------------------------

FW_B_GONE = {(TOPO1, "edge-fw"): "fail", **errors_without_member("kvm-b", "fw-b")}


def test_topo_member_domain_not_defined(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    undefine_domain(host(d, "kvm-b"), "fw-b")
    result = run(d)
    assert statuses(result) == expected("two-ok", FW_B_GONE)
    f = finding(result, TOPO1, "edge-fw")
    assert f.detail == "domain not defined: fw-b on kvm-b (kvm-b has no domain)"
    assert finding(result, VIRT1, "fw-b:If1").detail == (
        "depends on domain fw-b on kvm-b, which is missing (see KVMHA-TOPO-001)"
    )


def test_topo_member_domain_typo_names_the_close_match_and_collapses(tmp_path: Path) -> None:
    """A typo in the inventory's domain: TOPO-001 names what the host has and corrects the
    inventory (never "define fw-bb"); every check that needs the member is one short line that
    points at it. Applying the remediation (the inventory corrected) audits to the scenario."""
    d = copy_scenario("two-ok", tmp_path)
    edit_toml(d, lambda t: t.replace('domain = "fw-b"', 'domain = "fw-bb"'))
    result = run(d)
    f = finding(result, TOPO1, "edge-fw")
    assert f.status == "fail"
    assert f.detail == (
        "domain not defined: fw-bb on kvm-b (kvm-b has domains fw-b: did you mean fw-b?)"
    )
    assert f.remediation == (
        '# did you mean fw-b? correct the inventory: cluster edge-fw, member on kvm-b: domain = "fw-b"'
    )
    errors = [x for x in result.findings if x.status == "error"]
    assert len(errors) >= 10
    assert {x.detail for x in errors} == {
        "depends on domain fw-bb on kvm-b, which is missing (see KVMHA-TOPO-001)"
    }
    edit_toml(d, lambda t: t.replace('domain = "fw-bb"', 'domain = "fw-b"'))  # the remediation
    assert statuses(run(d)) == expected("two-ok", {})


def test_topo_nic_count_mismatch(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    hb = host(d, "kvm-b")
    hb.edit_domain("fw-b", edit_nic(B_IF2, lambda _: ""))  # virsh detach-interface --config --live
    remove_ovs_port(hb, B_VNET2)
    result = run(d)
    assert statuses(result) == expected(
        "two-ok",
        {
            (TOPO1, "edge-fw"): "fail",
            (OVS2, "If2"): "error",
            (VIRT1, "fw-b:If2"): "error",
            (VIRT2, "If2"): "error",
            (VIRT3, "If2"): "error",
            (HB1, "kvm-b"): "error",
            (HB2, "fw-b"): "error",
            (VLAN1, "If2"): "error",
            # If1's "used by no other pair" needs If2's VLAN on both members
            (VLAN1, "If1"): "error",
            (VLAN2, "kvm-a"): "error",
            (VLAN2, "kvm-b"): "error",
            ("KVMHA-OVS-003", "If2"): "error",
            ("KVMHA-OVS-004", "kvm-b"): "error",
            ("KVMHA-OVS-005", "If2"): "error",
        },
    )
    assert (
        finding(result, TOPO1, "edge-fw").detail == "NIC counts differ (fw-a: 2 NICs, fw-b: 1 NICs)"
    )
    assert finding(result, VIRT2, "If2").detail == (
        "depends on NIC #2 of fw-b on kvm-b, which is missing (see KVMHA-TOPO-001)"
    )


def test_topo_three_members(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    add_third_member(d)
    result = run(d)
    assert statuses(result) == expected("two-ok", {(TOPO1, "edge-fw"): "fail", **FW_C_PASSES})
    f = finding(result, TOPO1, "edge-fw")
    assert f.detail == "cluster edge-fw has 3 members"
    assert f.found == "fw-a@kvm-a, fw-b@kvm-b, fw-c@kvm-b"


BROKEN_FW_B = {
    (TOPO1, "edge-fw"): "error",
    **{k: v for k, v in FW_B_GONE.items() if k != (TOPO1, "edge-fw")},
}


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda x: x[: len(x) // 2], "malformed XML"),
        (
            lambda x: (
                '<!DOCTYPE domain [<!ENTITY nic "br2-external">]>\n'
                + x.replace("<source bridge='br2-external'/>", "<source bridge='&nic;'/>")
            ),
            "DTDs and entities are not accepted",
        ),
        (
            lambda x: x.replace("<uuid>", "<uuidx>").replace("</uuid>", "</uuidx>"),
            "without <name> or <uuid>",
        ),
    ],
    ids=["truncated", "doctype-entity", "no-uuid"],
)
def test_broken_member_xml_errors_its_cluster_only(tmp_path: Path, edit: Any, message: str) -> None:
    d = copy_scenario("two-ok", tmp_path)
    hb = host(d, "kvm-b")
    uuid = domain_uuid(hb, "fw-b")
    hb.edit(f"domain-live/{uuid}", edit)
    result = run(d)
    # kvm-b's host checks, fw-a's member checks and kvm-a's uplink still pass
    assert statuses(result) == expected(
        "two-ok", {**BROKEN_FW_B, (HOST0, f"domain:{uuid}"): "error"}
    )
    for f in (finding(result, TOPO1, "edge-fw"), finding(result, VIRT1, "fw-b:If1")):
        assert f"domain-live/{uuid}" in f.detail and message in f.detail
    assert [h.problems for h in result.hosts if h.name == "kvm-b"][0].keys() == {f"domain:{uuid}"}


# --- KVMHA-TOPO-002 --------------------------------------------------------------------------


def test_topo_same_machine_id_is_one_server(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    machine_id = host(d, "kvm-a").text("identity").splitlines()[0]
    host(d, "kvm-b").edit("identity", lambda t: machine_id + "\n" + t.split("\n", 1)[1])
    result = run(d)
    assert statuses(result) == expected(
        "two-ok",
        {
            (TOPO2, "edge-fw"): "fail",
            (VLAN1, "If1"): "skip",
            (VLAN1, "If2"): "skip",
            (VLAN2, "kvm-a"): "skip",
            (VLAN2, "kvm-b"): "skip",
        },
    )
    assert (
        finding(result, TOPO2, "edge-fw").found == f"kvm-a and kvm-b share machine-id {machine_id}"
    )


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda hb: drop_section(hb, "identity"), "identity: section missing from bundle"),
        (lambda hb: set_section(hb, "identity", stdout=""), "machine identity unknown"),
    ],
    ids=["missing", "empty"],
)
def test_topo_identity_unknown_is_an_error(tmp_path: Path, edit: Any, message: str) -> None:
    d = copy_scenario("two-ok", tmp_path)
    edit(host(d, "kvm-b"))
    result = run(d)
    assert statuses(result) == expected(
        "two-ok",
        {
            (TOPO2, "edge-fw"): "error",
            ("KVMHA-OVS-005", "If1"): "error",  # equal on both servers needs both identities
            ("KVMHA-OVS-005", "If2"): "error",
            (VLAN1, "If1"): "error",
            (VLAN1, "If2"): "error",
            (VLAN2, "kvm-a"): "error",
            (VLAN2, "kvm-b"): "error",
            **problem_errors(result),  # the missing section (an empty one is no problem)
        },
    )
    assert message in finding(result, TOPO2, "edge-fw").detail
