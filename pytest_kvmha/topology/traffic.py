"""The HA frames a member sends on one interface pair, as its vendor documents them: pure.

The vendor facts are in :mod:`pytest_kvmha.vendors`; this module decides which of them apply to
one member's NIC:

- by the members' own configurations when every member has one (mode, group-id, Ethertypes,
  ``hbdev``, ``session-sync-dev``, reserved management interfaces; cOS Core cluster ID and sync
  interface), each member's frames from its own configuration;
- by the inventory otherwise (``heartbeat``, ``group_id`` on the cluster, ``heartbeat = true`` on
  the pairs that carry the heartbeat; a pair is both heartbeat and data pair when no pair says);
- for a discovered cluster (vendor unknown) both vendors' frames.

Each frame is traced once per leg (:mod:`pytest_kvmha.topology.traceplan`).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from pytest_kvmha.config.inventory import PairSpec
from pytest_kvmha.facts.firewall import CosHaFacts, FgcpFacts, FirewallFacts
from pytest_kvmha.model import MissingFacts
from pytest_kvmha.topology.cluster import Cluster, Member, member_firewalls, pci_ordered
from pytest_kvmha.vendors import cos_core, fortigate

BROADCAST = "ff:ff:ff:ff:ff:ff"
IPV4, ARP = 0x0800, 0x0806


@dataclass(frozen=True, slots=True)
class Frame:
    src: str
    dst: str
    ethertype: int
    label: str  # for findings: "FGCP config sync 0x8893 broadcast from the member MAC ..."
    # further match fields, in the order ``traceplan.flow`` writes them (nw_src, nw_dst,
    # nw_proto, nw_ttl, udp_src, udp_dst or tp_dst, arp_op, arp_sha)
    fields: tuple[tuple[str, str], ...] = ()


def configs(cluster: Cluster) -> dict[str, FirewallFacts] | None:
    """Every member's firewall facts by domain, when every member has readable ones (then they
    decide); None otherwise (the inventory decides)."""
    out = member_firewalls(cluster)
    if not out:
        return None
    kinds = {type(f) for f in out.values()}
    if len(kinds) != 1 or (isinstance(next(iter(out.values())), FgcpFacts) and not _ha(out)):
        return None
    return out


def _ha(found: dict[str, FirewallFacts]) -> bool:
    return all(not isinstance(f, FgcpFacts) or f.ha_section for f in found.values())


def pci_position(member: Member, index: int) -> int | None:
    """The 1-based position of NIC ``index`` in PCI order (the guest's interface number); None
    when a NIC has no PCI address."""
    nics = member.domain().nics
    if any(nic.address is None for nic in nics):
        return None
    ordered = pci_ordered(nics)
    return next(k + 1 for k, nic in enumerate(ordered) if nic.index == index)


def interface_of(member: Member, index: int, facts: FirewallFacts) -> str:
    """The firewall's name for NIC ``index`` (document order) of ``member``: FortiGate-VM
    ``portN`` and cOS Core's N-th Ethernet interface by PCI order, or the cOS Core interface
    whose PCI bus, slot and port the firewall shows at that NIC's address. Raises MissingFacts
    when it cannot be told."""
    if not isinstance(facts, FgcpFacts) and (address := member.nic(index).address) is not None:
        at = (address.bus, address.slot, address.function)
        for name, shown in facts.pci.items():
            if shown == at:
                return name
    pos = pci_position(member, index)
    if pos is None:
        raise MissingFacts(
            f"{member.label} on {member.host.name}: a NIC has no PCI address, so the interface "
            f"of NIC #{index + 1} in its firewall configuration is unknown"
        )
    if isinstance(facts, FgcpFacts):
        return fortigate.port_name(pos)
    if facts.pci:
        # the firewall shows its interfaces' PCI bus, slot and port: that, not the list order,
        # says which NIC each one is (as KVMHA-FW-005 maps the sync interface)
        return _cos_interface_at_pci(member, index, facts)
    if pos > len(facts.ethernet):
        raise MissingFacts(
            f"{member.label}: NIC #{index + 1} is Ethernet interface {pos}, but the configuration "
            f"shows only {len(facts.ethernet)}"
        )
    return facts.ethernet[pos - 1]


def _cos_interface_at_pci(member: Member, index: int, facts: CosHaFacts) -> str:
    nic = next(n for n in member.domain().nics if n.index == index)
    at = nic.address
    named = [
        name
        for name, pci in facts.pci.items()
        if at is not None and pci == (at.bus, at.slot, at.function)
    ]
    if len(named) != 1:
        where = (
            f"PCI bus {at.bus} slot {at.slot} function {at.function}"
            if at is not None
            else "no PCI address"
        )
        raise MissingFacts(
            f"{member.label}: NIC #{index + 1} is at {where}, but "
            + ("no" if not named else "more than one")
            + " Ethernet interface of its configuration shows that PCI address"
        )
    return named[0]


def peer_mac(cluster: Cluster, member: Member, index: int) -> str:
    """The MAC of the other member's NIC of pair ``index`` (broadcast when none is known)."""
    for q in cluster.members:
        if q is not member:
            try:
                mac = q.nic(index).mac
            except MissingFacts:
                continue
            if mac:
                return mac.lower()
    return BROADCAST


def member_frames(
    cluster: Cluster, member: Member, index: int, pair: PairSpec, src: str, peer: str
) -> tuple[Frame, ...]:
    """The HA frames ``member`` sends on pair ``index`` (``src``: its NIC's MAC; ``peer``: the
    peer's MAC on the pair). Raises MissingFacts when the configurations decide but the
    interface cannot be told."""
    found = configs(cluster)
    if found is not None:
        facts = found[member.label]
        iface = interface_of(member, index, facts)
        if isinstance(facts, FgcpFacts):
            return tuple(_fgcp_configured(facts, iface, src, peer, found))
        return tuple(_cos(src, _cos_data(facts, iface), facts.cluster_id, f" ({iface})"))
    vendor = cluster.spec.vendor
    out: list[Frame] = []
    if vendor != "cos-core":
        out += _fgcp_declared(cluster, member, index, pair, src, peer)
    if vendor != "fortigate":
        # every pair but a declared heartbeat (sync) pair carries the shared MAC
        out += _cos(src, pair.heartbeat is not True, cluster.spec.group_id, "")
    return tuple(dict.fromkeys(out))


# --- FortiGate FGCP -----------------------------------------------------------------------------


def _heartbeat_frames(
    src: str, peer: str, types: fortigate.Ethertypes, with_session_sync: bool
) -> list[Frame]:
    out = []
    for et, name in types.heartbeat_link(with_session_sync):
        out.append(Frame(src, BROADCAST, et, f"FGCP {name} {et:#06x} broadcast from {src}"))
        if et == types.config_sync:  # a capture shows it unicast to the peer (vendors.fortigate)
            out.append(Frame(src, peer, et, f"FGCP {name} {et:#06x} from {src} to the peer {peer}"))
    return out


def _vmac_frames(group_id: int, idx: int, estimate: bool) -> list[Frame]:
    """The primary's gratuitous ARPs from the virtual MAC (sent on failover, then its traffic):
    traced from every member, as failover moves the MAC."""
    how = ", interface index estimated" if estimate else ""
    return [
        Frame(
            vmac,
            BROADCAST,
            ARP,
            f"FGCP virtual MAC {vmac} (group-id {group_id}{how}) gratuitous ARP",
            (("arp_op", "1"), ("arp_sha", vmac)),
        )
        for vmac in fortigate.virtual_macs(group_id, idx)
    ]


def _unicast_frame(src: str, peer: str, nw_src: str | None, nw_dst: str | None) -> Frame:
    fields = [("nw_src", nw_src), ("nw_dst", nw_dst)]
    fields += [("nw_proto", "6"), ("tp_dst", str(fortigate.UNICAST_HEARTBEAT_TCP_PORT))]
    between = f" {nw_src} -> {nw_dst}" if nw_src and nw_dst else ""
    return Frame(
        src,
        peer,
        IPV4,
        f"FGCP unicast heartbeat TCP/{fortigate.UNICAST_HEARTBEAT_TCP_PORT}{between} "
        f"from {src} to the peer {peer}",
        tuple((k, v) for k, v in fields if v),
    )


def _types(facts: FgcpFacts) -> fortigate.Ethertypes:
    return fortigate.Ethertypes(
        heartbeat=facts.ha_eth_type or fortigate.HEARTBEAT,
        hc=facts.hc_eth_type or fortigate.HC,
        config_sync=facts.l2ep_eth_type or fortigate.CONFIG_SYNC,
    )


def _fgcp_configured(
    facts: FgcpFacts, iface: str, src: str, peer: str, found: dict[str, FirewallFacts]
) -> list[Frame]:
    hbdev = {h.interface for h in facts.hbdev}
    if facts.unicast_hb:
        if iface not in hbdev:  # no virtual MACs in unicast mode (KVM guide)
            return []
        own = facts.addresses.get(iface)
        peerip = facts.unicast_hb_peerip
        return [
            _unicast_frame(
                src,
                peer,
                str(own.ip) if own else None,
                str(peerip) if peerip and peerip != ipaddress.IPv4Address(0) else None,
            )
        ]
    types = _types(facts)
    out: list[Frame] = []
    if iface in hbdev:
        out += _heartbeat_frames(src, peer, types, not facts.session_sync_dev)
    if iface in facts.session_sync_dev:
        et = types.session_sync
        out.append(Frame(src, BROADCAST, et, f"FGCP session sync {et:#06x} broadcast from {src}"))
    if iface not in hbdev and iface not in facts.mgmt_interfaces:
        idx = fortigate.interface_index(iface)
        assert idx is not None  # port_name() made it
        out += _vmac_frames(facts.group_id or fortigate.DEFAULT_GROUP_ID, idx, estimate=True)
    return out


def _fgcp_declared(
    cluster: Cluster, member: Member, index: int, pair: PairSpec, src: str, peer: str
) -> list[Frame]:
    declared = any(p.heartbeat for p in cluster.pairs())
    heartbeat = pair.heartbeat is True or (pair.heartbeat is None and not declared)
    data = pair.heartbeat is not True  # undeclared: a data pair, or (none declared) either
    if cluster.spec.heartbeat == "unicast":
        return [_unicast_frame(src, peer, None, None)] if heartbeat else []
    out: list[Frame] = []
    if heartbeat:
        out += _heartbeat_frames(src, peer, fortigate.Ethertypes(), True)
    if data:
        pos = pci_position(member, index)
        group = (
            cluster.spec.group_id
            if cluster.spec.group_id is not None
            else fortigate.DEFAULT_GROUP_ID
        )
        out += _vmac_frames(group, (pos or index + 1) - 1, estimate=True)
    return out


# --- Clavister cOS Core -------------------------------------------------------------------------


def _cos_data(facts: CosHaFacts, iface: str) -> bool:
    """Every interface but the sync interface carries data traffic from the shared MAC."""
    return iface != facts.sync_interface


def _cos(src: str, data: bool, cluster_id: int | None, where: str) -> list[Frame]:
    dst = cos_core.HEARTBEAT_DST_MAC
    port = str(cos_core.HEARTBEAT_UDP_PORT)
    out = [
        Frame(
            src,
            dst,
            cos_core.HEARTBEAT_ETHERTYPE,
            f"cOS Core heartbeat UDP {port}->{port} TTL {cos_core.HEARTBEAT_TTL}{where} from "
            f"{src} to the broadcast address (destination MAC {dst}: unconfirmed)",
            (
                ("nw_proto", "17"),
                ("nw_ttl", str(cos_core.HEARTBEAT_TTL)),
                # udp_src/udp_dst: OVS's tp_src/tp_dst are TCP's (ovs-fields(7)), and the
                # flow parser refuses them on UDP
                ("udp_src", port),
                ("udp_dst", port),
            ),
        )
    ]
    if data:
        cid = cluster_id if cluster_id is not None else cos_core.DEFAULT_CLUSTER_ID
        mac = cos_core.shared_mac(cid)
        out.append(
            Frame(
                mac,
                BROADCAST,
                ARP,
                f"cOS Core shared MAC {mac} (cluster ID {cid}; layout after 10:00:00 "
                "unconfirmed) gratuitous ARP",
                (("arp_op", "1"), ("arp_sha", mac)),
            )
        )
    return out
