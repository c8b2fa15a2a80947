"""KVMHA-SRIOV-001 on written bundles: two-ok with fw-b's If2 NIC passed through as an SR-IOV
VF (``<interface type='hostdev'>``), its PF on kvm-b listing the VF as ``ip -d -j link`` does
(``vfinfo_list``), under broadcast and unicast heartbeat; the links parser's VF fields."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from pytest_kvmha.parse.evidence import FactError
from pytest_kvmha.parse.links import parse_links

from ..bundlekit import copy_scenario, edit_nic, edit_toml, finding, host, remove_ovs_port, run
from ..remedykit import apply_remediation
from .checkkit import B_IF2, B_VNET2

SRIOV, VIRT1 = "KVMHA-SRIOV-001", "KVMHA-VIRT-001"
SUBJECT = "fw-b:If2"
PF = "enp3s0f0"


def _hostdev(block: str) -> str:
    """The NIC as libvirt shows a VF passed through with <interface type='hostdev'>."""
    guest = re.search(r"      <address type='pci'[^>]*/>\n", block)
    assert guest is not None
    return (
        "    <interface type='hostdev' managed='yes'>\n"
        f"      <mac address='{B_IF2}'/>\n"
        "      <driver name='vfio'/>\n"
        "      <source>\n"
        "        <address type='pci' domain='0x0000' bus='0x03' slot='0x10' function='0x1'/>\n"
        "      </source>\n"
        "      <vlan>\n        <tag id='102'/>\n      </vlan>\n"
        f"{guest.group(0)}"
        "    </interface>\n"
    )


def _vf_bundle(
    tmp_path: Path, *, spoofchk: bool | None = True, trust: bool | None = False, listed: bool = True
) -> Path:
    d = copy_scenario("two-ok", tmp_path)
    hb = host(d, "kvm-b")
    hb.edit_domain("fw-b", edit_nic(B_IF2, _hostdev))
    remove_ovs_port(hb, B_VNET2)
    vf: dict[str, Any] = {
        "vf": 3,
        "link_type": "ether",
        "address": B_IF2 if listed else "52:54:00:00:00:99",
        "broadcast": "ff:ff:ff:ff:ff:ff",
        "vlan_list": [{"vlan": 102}],
        "rate": {"max_tx": 0, "min_tx": 0},
        "link_state": "auto",
    }
    for key, value in (("spoofchk", spoofchk), ("trust", trust)):
        if value is not None:
            vf[key] = value
    pf = {
        "ifindex": 40,
        "ifname": PF,
        "flags": ["BROADCAST", "MULTICAST", "UP", "LOWER_UP"],
        "mtu": 1500,
        "operstate": "UP",
        "link_type": "ether",
        "address": "3c:fd:fe:a0:00:01",
        "promiscuity": 0,
        "num_vf": 8,
        "vfinfo_list": [vf],
    }
    hb.edit_json("links", lambda doc: doc.append(pf))
    return d


def _data_pair_if2(d: Path) -> None:
    """If1 carries the heartbeat, If2 only data (the virtual MAC)."""
    edit_toml(
        d,
        lambda t: t.replace('name = "If1"\n', 'name = "If1"\nheartbeat = true\n').replace(
            'name = "If2"\n', 'name = "If2"\nheartbeat = false\n'
        ),
    )


def test_broadcast_heartbeat_on_a_vf_fails_naming_it_and_unicast(tmp_path: Path) -> None:
    d = _vf_bundle(tmp_path)
    result = run(d)
    f = finding(result, SRIOV, SUBJECT)
    assert f.status == "fail"
    assert "an SR-IOV VF / passthrough NIC (host PCI device 0000:03:10.1), not an OVS port" in (
        f.detail
    )
    assert "FortiGate-VM needs unicast heartbeat there" in f.detail
    assert "VF 3 of enp3s0f0: spoof checking on, trust off" in f.detail
    assert "set unicast-hb enable" in f.remediation
    # VIRT-001 still fails it as no OVS port, and says where to look
    v = finding(result, VIRT1, SUBJECT)
    assert v.status == "fail" and "an SR-IOV VF / passthrough NIC: see KVMHA-SRIOV-001" in v.detail
    # every OVS-bound NIC: not this check's
    assert finding(result, SRIOV, "fw-a:If2").status == "skip"


def test_unicast_heartbeat_on_a_vf_passes(tmp_path: Path) -> None:
    d = _vf_bundle(tmp_path)  # spoof checking on, trust off: no virtual MAC needs them off/on
    edit_toml(d, lambda t: t.replace('heartbeat = "broadcast"', 'heartbeat = "unicast"'))
    f = finding(run(d), SRIOV, SUBJECT)
    assert f.status == "pass", f.detail
    assert "sends from its own MAC only" in f.detail


@pytest.mark.parametrize(
    ("spoofchk", "trust", "wrong"),
    [
        (True, False, "spoof checking on and trust off"),
        (True, True, "spoof checking on drop"),
        (False, False, "trust off drop"),
    ],
)
def test_a_data_pair_vf_needs_spoof_checking_off_and_trust_on(
    tmp_path: Path, spoofchk: bool, trust: bool, wrong: str
) -> None:
    d = _vf_bundle(tmp_path, spoofchk=spoofchk, trust=trust)
    _data_pair_if2(d)
    f = finding(run(d), SRIOV, SUBJECT)
    assert f.status == "fail", f.detail
    assert wrong in f.detail and "FGCP virtual MAC 00:09:0f:09:00:01" in f.detail
    assert "unicast" not in f.detail  # If2 carries no heartbeat
    assert f.remediation == "ip link set enp3s0f0 vf 3 spoofchk off trust on  # on kvm-b"
    # applied to the recorded links, the re-audit passes
    apply_remediation(d, None, f.remediation)
    after = finding(run(d), SRIOV, SUBJECT)
    assert after.status == "pass", after.detail
    assert "spoof checking off, trust on" in after.detail


def test_cos_core_shared_mac_on_a_vf(tmp_path: Path) -> None:
    d = _vf_bundle(tmp_path, spoofchk=True, trust=True)
    edit_toml(d, lambda t: t.replace('vendor = "fortigate"', 'vendor = "cos-core"'))
    f = finding(run(d), SRIOV, SUBJECT)
    assert f.status == "fail", f.detail
    assert "cOS Core shared MAC 10:00:00" in f.detail and "unicast" not in f.detail


@pytest.mark.parametrize(
    ("kwargs", "why"),
    [
        ({"listed": False}, "no physical NIC lists an SR-IOV VF with MAC"),
        ({"spoofchk": None}, "spoof checking unknown"),
        ({"trust": None}, "trust unknown"),
    ],
)
def test_vf_state_unknown_is_an_error(tmp_path: Path, kwargs: dict[str, Any], why: str) -> None:
    d = _vf_bundle(tmp_path, **kwargs)
    _data_pair_if2(d)
    f = finding(run(d), SRIOV, SUBJECT)
    assert f.status == "error" and why in f.detail, f.detail


def _links(**vf: Any) -> str:
    entry = {"ifname": PF, "flags": ["UP"], "vfinfo_list": [{"vf": 0, **vf}]}
    return json.dumps([entry])


def test_links_parser_reads_the_vfs() -> None:
    (vf,) = parse_links(
        _links(
            address="52:54:00:AA:00:01",
            vlan_list=[{"vlan": 0}, {"vlan": 7}],
            spoofchk=False,
            trust=True,
            link_state="auto",
        )  # fmt: skip
    )[PF].vfs
    assert (vf.vf, vf.mac, vf.vlan, vf.spoofchk, vf.trust, vf.link_state) == (
        0, "52:54:00:aa:00:01", 7, False, True, "auto",
    )  # fmt: skip
    assert parse_links(json.dumps([{"ifname": "eth0", "flags": []}]))["eth0"].vfs == ()


@pytest.mark.parametrize(
    ("vf", "message"),
    [
        ({"spoofchk": "on"}, "'spoofchk' must be true or false"),
        ({"trust": 1}, "'trust' must be true or false"),
        ({"address": 5}, "'address' must be a string"),
        ({"vlan_list": [{"vlan": "x"}]}, "'vlan_list' must list"),
        ({"link_state": []}, "'link_state' must be a string"),
    ],
)
def test_links_parser_refuses_malformed_vfs(vf: dict[str, Any], message: str) -> None:
    with pytest.raises(FactError, match=re.escape(message)):
        parse_links(_links(**vf))
    with pytest.raises(FactError, match="expected an object with a VF number"):
        parse_links(json.dumps([{"ifname": PF, "flags": [], "vfinfo_list": [{"vf": -1}]}]))
