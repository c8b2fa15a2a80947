"""Heartbeat requirements: promiscuous uplinks, no MAC-spoofing filters, unicast limits.

Which heartbeat a cluster is judged for is ``topology.heartbeat_mode``: the firewalls' own
configuration when every member's is known and they agree (FGCP ``unicast-hb``; cOS Core is
broadcast-style), else the inventory's ``heartbeat`` (KVMHA-FW-003 reports a contradiction)."""

from __future__ import annotations

from pytest_kvmha.facts import HostFacts, OvsBridge, OvsPort
from pytest_kvmha.model import MissingFacts, Scope, Verdict, check, failed, passed, skipped
from pytest_kvmha.remediation import command, comment, xml_attr
from pytest_kvmha.topology import Cluster, Member, heartbeat_mode, require_links, uplinks

FGT_GUIDE = "FortiGate-VM KVM Administration Guide, High availability (Heartbeat, Promiscuous mode)"
SPOOFING_FILTERS = ("no-mac-spoofing", "clean-traffic")


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


def _nested_filters(host: HostFacts, name: str) -> list[str]:
    """The filter chain from ``name`` down to any MAC-spoofing filter (empty if none)."""
    filters = host.nwfilters
    if filters is None:
        raise MissingFacts(host.problems.get("nwfilters", f"{host.name}: no nwfilter facts"))
    todo, seen, undefined = [(name, [name])], set(), []
    while todo:
        current, chain = todo.pop()
        if current in SPOOFING_FILTERS:
            return chain
        if current in seen:
            continue
        seen.add(current)
        flt = filters.get(current)
        if flt is None:
            undefined.append(current)  # keep walking: a spoofing filter elsewhere still counts
            continue
        todo += [(ref, chain + [ref]) for ref in flt.references]
    if undefined:
        raise MissingFacts(
            f"{host.name}: nwfilter {', '.join(repr(u) for u in undefined)} is referenced but not defined"
        )
    return []


@check(
    "KVMHA-HB-002",
    title="No MAC-spoofing filter on HA NICs (broadcast heartbeat)",
    severity="high",
    scope=Scope.MEMBER,
    rationale="""
        In broadcast mode FGCP and cOS Core put a shared virtual MAC on each data interface.
        libvirt's no-mac-spoofing (and clean-traffic, which includes it and drops non-IP
        frames such as EtherType 0x8890 heartbeats) would drop that traffic. A macvtap NIC
        must trust guest RX filters for the guest to change its MAC.""",
    remediation="virsh edit DOMAIN: remove <filterref filter='clean-traffic'/> (or any filter "
    "that nests no-mac-spoofing) from the HA NICs; on macvtap set trustGuestRxFilters='yes'.",
    source=FGT_GUIDE + "; libvirt formatnwfilter (clean-traffic, no-mac-spoofing)",
)
def no_mac_spoofing_filter(cluster: Cluster, member: Member) -> Verdict:
    if heartbeat_mode(cluster) != "broadcast":
        return skipped("unicast heartbeat: no virtual MACs, MAC filters allowed")
    dom = member.domain()
    problems, fixes = [], []
    for k in range(len(cluster.pairs())):
        nic = member.nic(k)
        if nic.filterref:
            chain = _nested_filters(member.host, nic.filterref)
            if chain:
                problems.append(f"NIC #{k + 1} ({nic.mac}) filter {' -> '.join(chain)}")
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
            expected="no filter nesting no-mac-spoofing on HA NICs",
            found="; ".join(problems),
            remediation="\n".join(fixes),
        )
    return passed(f"{dom.name}: no MAC-spoofing filter on its {len(cluster.pairs())} HA NICs")


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
