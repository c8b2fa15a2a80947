"""Heartbeat requirements: promiscuous uplinks, no MAC-spoofing filters, unicast limits.

Which heartbeat a cluster is judged for is ``topology.heartbeat_mode``: the firewalls' own
configuration when every member's is known and they agree (FGCP ``unicast-hb``; cOS Core is
broadcast-style), else the inventory's ``heartbeat`` (KVMHA-FW-003 reports a contradiction)."""

from __future__ import annotations

from pytest_kvmha.facts import DomainNic, HostFacts, OvsBridge, OvsPort
from pytest_kvmha.model import (
    MissingFacts,
    MissingSubject,
    Scope,
    Verdict,
    check,
    failed,
    passed,
    skipped,
)
from pytest_kvmha.remediation import command, comment, xml_attr
from pytest_kvmha.topology import Cluster, Member, heartbeat_mode, require_links, uplinks
from pytest_kvmha.topology.nwfilter import evaluate
from pytest_kvmha.topology.traffic import member_frames, peer_mac

FGT_GUIDE = "FortiGate-VM KVM Administration Guide, High availability (Heartbeat, Promiscuous mode)"


def _pair_bridges_on(cluster: Cluster, host: HostFacts) -> list[str]:
    names: list[str] = []
    for m in cluster.members:
        if m.host.name != host.name:
            continue
        for k in range(len(cluster.pairs())):
            p = cluster.placement(m, k)
            if p.bridge is not None and p.bridge.name not in names:
                names.append(p.bridge.name)
    return names


@check(
    "KVMHA-HB-001",
    title="Uplinks of the pair bridges are promiscuous (broadcast heartbeat)",
    severity="critical",
    scope=Scope.CLUSTER_HOST,
    rationale="""
        Broadcast heartbeats and virtual MACs only reach the peer if the host's physical NIC
        accepts frames for MACs it does not own: it must be in promiscuous mode and attached to
        the bridge. The kernel datapath raises the promiscuity counter without the PROMISC flag;
        either counts.""",
    remediation="ip link set dev UPLINK promisc on (and persist it in the host's network config).",
    source=FGT_GUIDE,
)
def uplinks_promiscuous(cluster: Cluster, host: HostFacts) -> Verdict:
    if heartbeat_mode(cluster) != "broadcast":
        return skipped("unicast heartbeat: promiscuous uplinks are not required")
    links = require_links(host)
    ovs = host.ovs
    assert ovs is not None  # place() in _pair_bridges_on required it
    bridges = _pair_bridges_on(cluster, host)
    found: dict[tuple[str, str], tuple[OvsPort, OvsBridge]] = {}
    for name in bridges:
        br = ovs.bridge(name)
        if br is not None:
            for port, on in uplinks(host, br):
                found.setdefault((port.name, on.name), (port, on))
    ports = list(found.values())
    if not ports:
        if cluster.two_servers():
            return failed(
                f"no physical uplink on {', '.join(bridges) or 'the pair bridges'} of {host.name}: "
                "heartbeats cannot reach the other server",
                expected="a promiscuous physical uplink per pair bridge",
                found="no uplink",
                remediation="\n".join(
                    comment(
                        f"on {host.name}: add the physical NIC that reaches the other server to "
                        f"bridge {name} (ovs-vsctl add-port), then set it promiscuous "
                        "(ip link set dev ... promisc on)"
                    )
                    for name in bridges
                )
                or comment(
                    f"on {host.name}: put the pair NICs on OVS bridges first (KVMHA-OVS-002)"
                ),
            )
        return skipped(
            f"single-server cluster: no physical uplinks on {', '.join(bridges)} of {host.name}"
        )
    # A port's netdevs are its interfaces (a bond has several, none named like the port).
    nics = [(i.name, port, br) for port, br in ports for i in port.interfaces]
    bad, missing = [], []
    for name, port, br in nics:
        link = links.get(name)
        where = f"port {port.name} on {br.name}" if name != port.name else f"on {br.name}"
        if link is None:
            missing.append(f"{name} ({where})")
        elif not link.promiscuous:
            bad.append(f"{name} ({where}, promiscuity {link.promiscuity})")
    if bad or missing:
        problems = []
        if bad:
            problems.append("not promiscuous: " + ", ".join(bad))
        if missing:
            problems.append("no such host NIC: " + ", ".join(missing))
        return failed(
            f"{host.name}: " + "; ".join(problems),
            expected="every physical uplink promiscuous (PROMISC flag or promiscuity > 0)",
            found="; ".join(problems),
            remediation="\n".join(
                command("ip", "link", "set", "dev", name, "promisc", "on")
                for name, _, _ in nics
                if (link := links.get(name)) is not None and not link.promiscuous
            )
            or None,
        )
    return passed(f"{host.name}: uplinks promiscuous: {', '.join(n for n, _, _ in nics)}")


def _path(host: HostFacts, start: str, owner: str) -> list[str]:
    """The filterref path from ``start`` down to ``owner`` (breadth first)."""
    filters = host.nwfilters or {}
    todo, seen = [[start]], {start}
    while todo:
        chain = todo.pop(0)
        if chain[-1] == owner:
            return chain
        flt = filters.get(chain[-1])
        for ref in flt.references if flt is not None else ():
            if ref not in seen:
                seen.add(ref)
                todo.append(chain + [ref])
    return [start, owner]


def _filter_drops(cluster: Cluster, member: Member, k: int, nic: DomainNic) -> list[str]:
    """What the NIC's filter chain drops of the frames the vendor model says the member sends
    on pair ``k`` (one line per distinct dropping rule)."""
    filters = member.host.nwfilters
    if filters is None:
        raise MissingFacts(
            member.host.problems.get("nwfilters", f"{member.host.name}: no nwfilter facts")
        )
    assert nic.filterref and nic.mac
    pair = cluster.pairs()[k]
    mac = nic.mac.lower()
    try:
        sent = member_frames(cluster, member, k, pair, mac, peer_mac(cluster, member, k))
    except MissingSubject:
        raise  # the cause is another finding's: its one line, unwrapped
    except MissingFacts as exc:
        raise MissingFacts(f"{member.label} NIC #{k + 1}: {exc}") from None
    by_rule: dict[str, list[str]] = {}
    unknown: MissingFacts | None = None
    for frame in sent:
        try:
            verdict = evaluate(filters, nic.filterref, frame, mac)
        except MissingFacts as exc:  # an undefined filter could drop it: only if none is
            unknown = MissingFacts(f"{member.host.name}: {exc}")
            continue
        if verdict.dropped and verdict.by is not None:
            by_rule.setdefault(verdict.by, []).append(frame.label)
    if unknown is not None and not by_rule:
        raise unknown
    out = []
    for by, labels in by_rule.items():
        owner = by.split(":", 1)[0]
        chain = " -> ".join(_path(member.host, nic.filterref, owner))
        out.append(f"{chain} drops {', '.join(labels)} (rule {by})")
    return out


# libvirt formatnwfilter ("Concepts"): the nwfilter driver builds on ebtables, iptables and
# ip6tables, and hooks the rules to the NIC's tap device (ebtables nat PREROUTING -i vnetN,
# iptables physdev). Those hooks belong to the Linux bridge (ebtables filters "traffic passing
# a bridge"; br_netfilter runs the IP hooks "from the bridge layer"); a tap that is an Open
# vSwitch port is not a Linux-bridge port, so the rules are expected never to see its frames
# (inferred from the documentation, not tested). And the lab's libvirt (9.0) goes further: it
# refuses to start a domain whose virtualport-openvswitch NIC has a filterref ("filterref is
# not supported for network interfaces with virtualport type openvswitch"). So on an OVS port a
# dropping filter is a medium finding: a protection that is not there (or a domain that will
# not start), and HA traffic that dies the day the NIC moves to a Linux bridge, where the same
# filter drops the frames outright.
_OVS_NOTE = (
    "on an Open vSwitch port the filter does not protect: libvirt 9.0 refuses to start the "
    "domain ('filterref is not supported for network interfaces with virtualport type "
    "openvswitch'), and where it installs the rules they hook the Linux-bridge path, outside "
    "Open vSwitch's (inferred from libvirt's and the kernel's documentation); it drops these "
    "frames as soon as the NIC is on a Linux bridge"
)


@check(
    "KVMHA-HB-002",
    title="No nwfilter on HA NICs drops the vendor's HA frames (broadcast heartbeat)",
    severity="medium",
    scope=Scope.MEMBER,
    rationale="""
        In broadcast mode FGCP and cOS Core send heartbeats with non-IP Ethertypes (FGCP
        0x8890-0x8893) or UDP 999, and put a shared virtual MAC on each data interface, which
        the active member announces with gratuitous ARPs. The NIC's libvirt filter chain is
        resolved (nested filterrefs, chains, priorities, directions, $MAC) and run over the
        frames the vendor model says the member sends on that NIC: no-mac-spoofing drops the
        virtual MAC, no-arp-mac-spoofing its ARPs, no-other-l2-traffic (and clean-traffic,
        which nests all three) the heartbeats; a filter that does not touch these frames
        passes, and reserved management interfaces keep their own MAC. Severity medium: on an
        Open vSwitch port the filter does not act (libvirt 9.0 refuses to start such a domain;
        where rules are installed they hook the Linux-bridge path, outside Open vSwitch's:
        inferred from libvirt's and the kernel's documentation), so it misleads and breaks HA
        as soon as the NIC is moved to a Linux bridge. A macvtap NIC must trust guest RX
        filters for the guest to change its MAC.""",
    remediation="virsh edit DOMAIN: remove the <filterref> that drops HA frames from the HA NICs "
    "(or use one that lets them through); on macvtap set trustGuestRxFilters='yes'.",
    source=FGT_GUIDE + "; libvirt formatnwfilter (filtering chains, priorities, rules; "
    "clean-traffic, no-mac-spoofing, no-arp-mac-spoofing, no-other-l2-traffic); libvirt "
    "firewall.rst; pytest_kvmha/vendors",
)
def no_mac_spoofing_filter(cluster: Cluster, member: Member) -> Verdict:
    if heartbeat_mode(cluster) != "broadcast":
        return skipped("unicast heartbeat: no virtual MACs, MAC filters allowed")
    dom = member.domain()
    problems, fixes = [], []
    for k in range(len(cluster.pairs())):
        nic = member.nic(k)
        if nic.filterref:
            drops = _filter_drops(cluster, member, k, nic)
            if drops:
                try:
                    ovs = cluster.placement(member, k).virtualport == "openvswitch"
                except MissingFacts:
                    ovs = False
                note = f" ({_OVS_NOTE})" if ovs else ""
                problems.append(f"NIC #{k + 1} ({nic.mac}) filter {'; '.join(drops)}{note}")
                fixes.append(
                    command(
                        "virsh",
                        "edit",
                        dom.name,
                        note=f"NIC {nic.mac}: remove <filterref filter={xml_attr(nic.filterref)}/>",
                    )
                )
        if nic.type == "direct" and not nic.trust_guest_rx_filters:
            problems.append(
                f"NIC #{k + 1} ({nic.mac}) is macvtap without trustGuestRxFilters='yes'"
            )
            fixes.append(
                command(
                    "virsh",
                    "edit",
                    dom.name,
                    note=f"NIC {nic.mac}: <interface type='direct' trustGuestRxFilters='yes'>",
                )
            )
    if problems:
        return failed(
            f"{dom.name}: " + "; ".join(problems),
            expected="no filter on HA NICs that drops the frames the vendor's HA sends",
            found="; ".join(problems),
            remediation="\n".join(fixes),
        )
    return passed(
        f"{dom.name}: no filter on its {len(cluster.pairs())} HA NICs drops the vendor's HA frames"
    )


@check(
    "KVMHA-HB-003",
    title="Unicast heartbeat cluster has exactly two members",
    severity="high",
    scope=Scope.CLUSTER,
    rationale="FortiGate-VM unicast HA supports only two members (and active-passive only).",
    remediation="Use broadcast heartbeat for more than two members, or reduce the cluster to two.",
    source="FortiGate-VM KVM Administration Guide, High availability (Unicast)",
)
def unicast_two_members(cluster: Cluster) -> Verdict:
    if heartbeat_mode(cluster) != "unicast":
        return skipped("broadcast heartbeat")
    n = len(cluster.members)
    if n != 2:
        return failed(
            f"unicast heartbeat with {n} members", expected="2 members", found=f"{n} members"
        )
    return passed("unicast heartbeat with 2 members")
