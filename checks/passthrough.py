"""Pair NICs that are no Open vSwitch port: SR-IOV virtual functions (``<interface
type='hostdev'>``) and macvtap (``<interface type='direct'>``). KVMHA-VIRT-001 fails them as
not bound to OVS; this says what they are and what the vendors need from them instead.

Facts (each with its document):

- An SR-IOV VF's frames are switched by the NIC, not by the host's OVS: no bridge, VLAN or
  OpenFlow check of this project sees them.
- FortiGate-VM: "With SRIOV, the only method for HA interface is to use unicast ha" (Fortinet
  Community, "Technical Tip: Permanent mac address is changed to the FGCP virtual address",
  194975; ``vendors.fortigate.SRIOV_HEARTBEAT``): broadcast heartbeat on a VF fails.
- A VF that sends from a MAC other than its own (an FGCP virtual MAC, a cOS Core shared MAC)
  needs spoof checking off: with it on, "the HW ensures that the source MAC address (or vlan)
  of every outgoing packet exists in the MAC-list ... configured for RX filtering for that VF.
  If not, the packet is dropped" (Linux be2net "add support for spoofchk setting", e7bcbd7b;
  hns3 22044f95 says the same), and trust on: "If specified VF is trusted, then it can enable
  promisc" (hns3 "add support for setting VF trust", e196ec75; ip-link(8): ``trust`` lets the VF
  user set features such as multicast promiscuous mode). The Fortinet tip's host shows such a VF
  "spoof checking off, ... trust on". ``ip -d -j link`` lists both on the PF (``vfinfo_list``):
  the links section of every bundle has them, no extra command.
- macvtap: a guest whose MAC changes needs ``trustGuestRxFilters='yes'`` (libvirt formatdomain,
  "Direct attachment to physical interface"), or the host keeps filtering on the old MAC.
"""

from __future__ import annotations

from pytest_kvmha.config.inventory import PairSpec
from pytest_kvmha.facts import HostFacts, VirtualFunction
from pytest_kvmha.model import MissingFacts, Scope, Verdict, check, failed, passed, skipped
from pytest_kvmha.remediation import command, comment
from pytest_kvmha.topology import Cluster, Member, require_links
from pytest_kvmha.topology.traffic import Frame, member_frames, peer_mac
from pytest_kvmha.vendors import fortigate

FGCP_HEARTBEATS = (fortigate.HEARTBEAT, fortigate.HC, fortigate.CONFIG_SYNC, fortigate.SESSION_SYNC)


def _vf(host: HostFacts, mac: str) -> tuple[str, VirtualFunction]:
    """(PF, VF) of the VF whose MAC is ``mac`` (libvirt sets a hostdev interface's MAC on its VF)."""
    found = [
        (pf.name, vf)
        for pf in require_links(host).values()
        for vf in pf.vfs
        if vf.mac and vf.mac.lower() == mac
    ]
    if len(found) != 1:
        why = "no physical NIC lists" if not found else f"{len(found)} physical NICs list"
        raise MissingFacts(
            f"{host.name}: {why} an SR-IOV VF with MAC {mac} (ip -d -j link, vfinfo_list): "
            "cannot tell its spoof checking and trust"
        )
    return found[0]


def _foreign(frames: tuple[Frame, ...], mac: str) -> list[Frame]:
    """Frames the member sends from another MAC than its NIC's (virtual or shared MACs)."""
    return [f for f in frames if f.src.lower() != mac]


@check(
    "KVMHA-SRIOV-001",
    title="A pair NIC that is an SR-IOV VF or macvtap meets what the vendor needs there",
    severity="high",
    scope=Scope.MEMBER_NIC,
    rationale="""
        A NIC passed through as an SR-IOV virtual function (or attached by macvtap) is no Open
        vSwitch port: the NIC's own switch carries its frames. FortiGate-VM supports HA over
        SR-IOV with unicast heartbeat only; a VF that sends the cluster's virtual or shared MACs
        needs spoof checking off and trust on, or the NIC drops those frames and the members
        split.""",
    remediation="FortiGate: config system ha / set unicast-hb enable / set unicast-hb-peerip "
    "PEER / end. On the host, for the VF: ip link set PF vf N spoofchk off trust on. macvtap: "
    "<interface type='direct' trustGuestRxFilters='yes'>. Or attach the NIC to the pair's OVS "
    "bridge (KVMHA-VIRT-001).",
    source="Fortinet Community tip 194975 ('With SRIOV, the only method for HA interface is to "
    "use unicast ha'); ip-link(8) (vf spoofchk, trust); Linux be2net e7bcbd7b / hns3 e196ec75 "
    "(spoofchk and trust semantics); libvirt formatdomain (PCI Passthrough; Direct attachment)",
)
def passthrough_nic(cluster: Cluster, member: Member, index: int, pair: PairSpec) -> Verdict:
    nic = member.nic(index)
    where = f"{member.label} NIC #{index + 1} ({nic.mac or 'no MAC'}) on {member.host.name}"
    if nic.type not in ("hostdev", "direct"):
        return skipped(f"{where}: type='{nic.type}', not a passthrough NIC (KVMHA-VIRT-001)")
    if not nic.mac:
        raise MissingFacts(f"{where}: no MAC in the domain XML: cannot tell what it sends")
    mac = nic.mac.lower()
    frames = member_frames(cluster, member, index, pair, mac, peer_mac(cluster, member, index))
    foreign = _foreign(frames, mac)
    if nic.type == "direct":
        what = f"macvtap on {nic.source_dev or '(no device)'} mode {nic.source_mode or 'vepa'}"
        if foreign and not nic.trust_guest_rx_filters:
            return failed(
                f"{where}: {what}, not an OVS port; it sends {foreign[0].label}, but the "
                "interface lacks trustGuestRxFilters='yes'",
                expected="trustGuestRxFilters='yes' on a macvtap NIC that sends virtual MACs",
                found=what,
                remediation=command(
                    "virsh",
                    "edit",
                    member.label,
                    note=f"NIC {mac}: <interface type='direct' trustGuestRxFilters='yes'>",
                ),  # fmt: skip
            )
        return passed(f"{where}: {what}, not an OVS port; " + _needs(foreign))
    source = f"host PCI device {nic.source_address}" if nic.source_address else "a host device"
    problems, fixes = [], []
    # in unicast mode the model sends IPv4 to the peer only: an FGCP Ethertype is broadcast mode
    heartbeats = [f for f in frames if f.ethertype in FGCP_HEARTBEATS]
    if heartbeats:
        problems.append(
            f"broadcast FGCP heartbeat ({heartbeats[0].label}) on an SR-IOV VF: FortiGate-VM "
            f"needs {fortigate.SRIOV_HEARTBEAT} heartbeat there"
        )
        fixes.append(
            comment(
                f"{cluster.name}: config system ha / set unicast-hb enable / set "
                "unicast-hb-peerip <the peer's heartbeat address> / end, on both members"
            )
        )
    state = ""
    if foreign:
        pf, vf = _vf(member.host, mac)
        state = (
            f"VF {vf.vf} of {pf}: spoof checking {_onoff(vf.spoofchk)}, trust {_onoff(vf.trust)}"
        )
        if vf.spoofchk is None or vf.trust is None:
            raise MissingFacts(f"{where}: {state}: the driver does not report it")
        wrong = [
            text
            for text, bad in (("spoof checking on", vf.spoofchk), ("trust off", not vf.trust))
            if bad
        ]
        if wrong:
            problems.append(
                f"{state}, but it sends {foreign[0].label}: {' and '.join(wrong)} drop or "
                "refuse that MAC"
            )
            fixes.append(
                command(
                    "ip",
                    "link",
                    "set",
                    pf,
                    "vf",
                    vf.vf,
                    "spoofchk",
                    "off",
                    "trust",
                    "on",
                    note=f"on {member.host.name}",
                )  # fmt: skip
            )
    what = f"an SR-IOV VF / passthrough NIC ({source}), not an OVS port"
    if problems:
        return failed(
            f"{where}: {what}; " + "; ".join(problems),
            expected="unicast heartbeat on a VF; spoof checking off and trust on for a VF that "
            "sends virtual or shared MACs",
            found=state or what,
            remediation="\n".join(fixes),
        )
    return passed(f"{where}: {what}; " + (state + "; " if state else "") + _needs(foreign))


def _needs(foreign: list[Frame]) -> str:
    if not foreign:
        return "it sends from its own MAC only (no virtual or shared MAC on this pair)"
    return f"it may send {foreign[0].label}"


def _onoff(value: bool | None) -> str:
    return "unknown" if value is None else ("on" if value else "off")
