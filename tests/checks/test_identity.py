"""KVMHA-ID-001 on the recorded two-cluster scenario (edge-fw and core-fw on VLAN 101 of
br1-internal, between kvm-a and kvm-b) and on edits of it: identities from the inventory and
from written FortiOS / cOS Core configurations, unknown identities, missing facts, names."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pytest_kvmha.topology.identity import FGCP, Identity
from pytest_kvmha.topology.segments import escape
from tests.scenarios import SCENARIOS

from ..bundlekit import copy_scenario, edit_toml, finding, host, run, undefine_domain

ID = "KVMHA-ID-001"
SCENARIO = "two-clusters-one-group"
SHARED, OTHER = "vlan101@kvm-a+kvm-b", "vlan102@kvm-a+kvm-b"


def _scenario(tmp_path: Path) -> Path:
    return copy_scenario(SCENARIO, tmp_path)


def _group_ids(d: Path, edge: int | None, core: int | None) -> None:
    """Set (None: remove) each cluster's inventory group_id."""

    def change(text: str) -> str:
        head, _, core_part = text.partition("[clusters.core-fw]")
        head = head.replace("group_id = 7\n", f"group_id = {edge}\n" if edge is not None else "")
        core_part = core_part.replace(
            "group_id = 7\n", f"group_id = {core}\n" if core is not None else ""
        )
        return head + "[clusters.core-fw]" + core_part

    edit_toml(d, change)


def _ids(result: object) -> dict[str, str]:
    return {f.subject: f.status for f in result.findings if f.check.id == ID}  # type: ignore[attr-defined]


def test_recorded_two_clusters_one_group_id_fail_naming_both_and_the_segment() -> None:
    from ..bundlekit import BUNDLES

    result = run(BUNDLES / SCENARIO)
    assert _ids(result) == {SHARED: "fail", OTHER: "pass"}
    f = finding(result, ID, SHARED)
    assert f.nodeid == f"kvmha/segment/{ID}[{SHARED}]"
    assert f.host is None and f.cluster is None
    assert "edge-fw (fw-a, fw-b) and core-fw (fw-c, fw-d) both use FGCP group-id 7" in f.detail
    assert "kvm-a br1-internal VLAN 101, kvm-b br1-internal VLAN 101" in f.detail
    assert "core-fw" in (f.remediation or "")
    assert "only cluster edge-fw" in finding(result, ID, OTHER).detail
    # the scenario's expectation is the same (the live test asserts it over SSH)
    assert SCENARIOS[SCENARIO].expected[(ID, SHARED)] == "fail"


def test_different_group_ids_pass(tmp_path: Path) -> None:
    d = _scenario(tmp_path)
    _group_ids(d, 7, 8)
    result = run(d)
    assert _ids(result) == {SHARED: "pass", OTHER: "pass"}
    assert "identities differ" in finding(result, ID, SHARED).detail


@pytest.mark.parametrize(("edge", "core"), [(7, None), (None, 7), (None, None)])
def test_a_cluster_without_group_id_or_configuration_is_an_error(
    tmp_path: Path, edge: int | None, core: int | None
) -> None:
    d = _scenario(tmp_path)
    _group_ids(d, edge, core)
    result = run(d)
    assert _ids(result) == {SHARED: "error", OTHER: "pass"}
    missing = "core-fw" if core is None else "edge-fw"
    assert f"cluster {missing} declares no group_id" in finding(result, ID, SHARED).detail


def test_extended_group_ids_with_the_same_virtual_macs_collide(tmp_path: Path) -> None:
    # 261 and 517 differ, but under the 7.0.2 reading both are e0:23:ff:fc:05:xx
    d = _scenario(tmp_path)
    _group_ids(d, 261, 517)
    f = finding(run(d), ID, SHARED)
    assert f.status == "fail"
    assert "FGCP group-id 261 and 517" in f.detail and "the same virtual MACs" in f.detail
    assert Identity(FGCP, 5, "x").collides(Identity(FGCP, 5, "y"))
    assert not Identity(FGCP, 5, "x").collides(Identity(FGCP, 261, "y"))


def test_cos_core_clusters_with_one_cluster_id_collide_and_vendors_never_do(
    tmp_path: Path,
) -> None:
    d = _scenario(tmp_path)
    edit_toml(d, lambda t: t.replace('vendor = "fortigate"', 'vendor = "cos-core"'))
    f = finding(run(d), ID, SHARED)
    assert f.status == "fail" and "cOS Core cluster ID 7" in f.detail
    # a FortiGate and a cOS Core cluster: virtual and shared MACs never meet
    edit_toml(d, lambda t: t.replace('vendor = "cos-core"', 'vendor = "fortigate"', 1))
    f = finding(run(d), ID, SHARED)
    assert f.status == "pass", f.detail


def test_unicast_heartbeat_cluster_has_no_virtual_mac(tmp_path: Path) -> None:
    d = _scenario(tmp_path)
    edit_toml(
        d,
        lambda t: t.replace(
            '[clusters.core-fw]\nvendor = "fortigate"\nheartbeat = "broadcast"',
            '[clusters.core-fw]\nvendor = "fortigate"\nheartbeat = "unicast"',
        ),
    )
    f = finding(run(d), ID, SHARED)
    assert f.status == "pass" and "no shared or virtual MAC" in f.detail


FORTIOS = """#config-version=FGVMK6-7.2.5-FW-build1517-230606:opmode=0:vdom=0:user=admin
config system ha
{group}    set group-name "{name}"
    set mode a-p
    set hbdev "port1" 50
end
"""


def _configs(d: Path, tmp_path: Path, groups: dict[str, str]) -> None:
    """Give every member a written FortiOS configuration; ``groups``: domain -> its
    ``set group-id`` line ("" leaves it out, as ``show`` does at the default)."""
    text = (d / "clusters.toml").read_text()
    for domain, line in groups.items():
        path = tmp_path / f"{domain}.conf"
        name = "edge" if domain in ("fw-a", "fw-b") else "core"
        path.write_text(FORTIOS.format(group=line, name=name))
        text = re.sub(
            rf'(domain = "{domain}", role = "\w+")',
            rf'\1, config = "{path}"',
            text,
        )
    (d / "clusters.toml").write_text(text)


def test_configurations_decide_over_the_inventory(tmp_path: Path) -> None:
    d = _scenario(tmp_path)  # the inventory says 7 for both: the configurations differ
    _configs(
        d,
        tmp_path,
        {m: "    set group-id 10\n" for m in ("fw-a", "fw-b")}
        | {m: "    set group-id 11\n" for m in ("fw-c", "fw-d")},
    )
    f = finding(run(d), ID, SHARED)
    assert f.status == "pass", f.detail
    assert "FGCP group-id 10" in f.detail and "FGCP group-id 11" in f.detail


def test_group_id_left_out_of_both_configurations_is_the_default_0_and_collides(
    tmp_path: Path,
) -> None:
    d = _scenario(tmp_path)
    _group_ids(d, 1, 2)  # the inventory's values do not count where a configuration is read
    _configs(d, tmp_path, {m: "" for m in ("fw-a", "fw-b", "fw-c", "fw-d")})
    f = finding(run(d), ID, SHARED)
    assert f.status == "fail"
    assert "both use FGCP group-id 0 (configuration: not shown, the default" in f.detail


def test_unreadable_configuration_is_an_error(tmp_path: Path) -> None:
    d = _scenario(tmp_path)
    _group_ids(d, 7, 8)
    _configs(d, tmp_path, {"fw-c": "    set group-id 8\n"})
    (tmp_path / "fw-c.conf").unlink()
    f = finding(run(d), ID, SHARED)
    assert f.status == "error", f.detail
    assert "fw-c" in f.detail


def test_a_cluster_whose_nics_cannot_be_placed_errs_the_other_segments(tmp_path: Path) -> None:
    """fw-d is gone from kvm-b: core-fw's segments are not all known, so VLAN 102 (edge-fw
    only) cannot be said to hold no other cluster; VLAN 101 still holds core-fw's fw-c."""
    d = _scenario(tmp_path)
    _group_ids(d, 7, 8)
    undefine_domain(host(d, "kvm-b"), "fw-d")
    result = run(d)
    assert _ids(result) == {SHARED: "pass", OTHER: "error"}
    assert "cannot rule out another cluster on it: cluster core-fw" in (
        finding(result, ID, OTHER).detail
    )


def test_an_unreachable_host_errs_every_segment_its_nics_could_change(tmp_path: Path) -> None:
    """kvm-b unreachable: neither cluster's kvm-b NICs are placed. VLAN 101 holds both clusters
    already, with identities the inventory gives: whatever kvm-b holds cannot change that
    verdict. VLAN 102 holds edge-fw only, and core-fw's unknown NICs could be on it: error."""
    d = _scenario(tmp_path)
    _group_ids(d, 7, 8)
    edit_toml(d, lambda t: t.replace('"replay://kvm-b"', '"replay://nowhere"'))
    result = run(d)
    assert _ids(result) == {SHARED: "pass", OTHER: "error"}
    assert "cannot rule out another cluster on it: cluster core-fw" in (
        finding(result, ID, OTHER).detail
    )


def test_no_segment_known_with_two_clusters_is_one_error(tmp_path: Path) -> None:
    d = _scenario(tmp_path)
    for h in ("kvm-a", "kvm-b"):
        edit_toml(d, lambda t, h=h: t.replace(f'"replay://{h}"', f'"replay://gone-{h}"'))
    result = run(d)
    assert _ids(result) == {"segments": "error"}
    f = finding(result, ID, "segments")
    assert "edge-fw" in f.detail and "core-fw" in f.detail
    assert f.nodeid == f"kvmha/segment/{ID}[segments]"


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("br1-internal", "br1-internal"),
        ("br 1", "br\\x201"),
        ("a:b+c@d[e]", "a\\x3ab\\x2bc\\x40d\\x5be\\x5d"),
        ("br\n1", "br\\x0a1"),
        ("\\x41", "\\x5cx41"),  # the escape character itself: injective
        ("", "\\x00"),
    ],
)
def test_names_in_segment_names_are_escaped(name: str, shown: str) -> None:
    assert escape(name) == shown
    assert re.fullmatch(r"[\w.\\-]+", escape(name))
