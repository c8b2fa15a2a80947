"""What the switch itself does to a pair's frames: spanning tree, bonded uplinks, MTU."""

from __future__ import annotations

from pytest_kvmha.config.inventory import PairSpec
from pytest_kvmha.facts import HostFacts, OvsPort
from pytest_kvmha.facts.bond import BondState
from pytest_kvmha.model import MissingFacts, Scope, Verdict, check, failed, passed, skipped
from pytest_kvmha.remediation import command, comment
from pytest_kvmha.topology import Cluster, member_firewall, require_links, require_ovs, stp
from pytest_kvmha.topology.pairpath import pair_paths
from pytest_kvmha.vendors import cos_core, fortigate

from .firewall_wiring import configured_mtu

OVS_DB = "ovs-vswitchd.conf.db(5)"
STP_SOURCE = (
    f"{OVS_DB} (Bridge stp_enable, rstp_enable, STP/RSTP Configuration; Port other_config "
    "stp-enable, rstp-enable, rstp-port-admin-edge; Port status stp_state, rstp_status); "
    "FortiOS Handbook, Layer-2 switches (Forwarding delay on layer 2 switches); Fortinet "
    "Community, Technical Tip: HA with third-party products (edge ports)"
)


@check(
    "KVMHA-OVS-003",
    title="No spanning-tree delay on the bridges a pair crosses",
    severity="high",
    scope=Scope.PAIR,
    rationale="""
        With STP on a bridge, every port that joins it (a member's vnet port at each VM start,
        an uplink after a link flap) listens and learns for twice the forward delay (15 s each
        by default) before it forwards, and a topology change starts it again: heartbeats are
        lost and both members go active. RSTP ports also discard until they are found to be
        edge ports. Fortinet asks for edge (PortFast) ports towards HA members; in Open vSwitch
        that is RSTP's rstp-port-admin-edge=true (classic STP has no edge port), or spanning
        tree off on the port or the bridge.""",
    remediation="ovs-vsctl set Bridge BRIDGE stp_enable=false rstp_enable=false (or, where a "
    "loop must be broken, RSTP with other_config:rstp-port-admin-edge=true on the member and "
    "uplink ports).",
    source=STP_SOURCE,
)
def spanning_tree(cluster: Cluster, index: int, pair: PairSpec) -> Verdict:
    problems: list[str] = []
    fixes: list[str] = []
    crossed: set[str] = set()
    paths = pair_paths(cluster, index)
    if not paths:
        return skipped(f"pair {pair.name}: no member NIC on an OVS bridge (see KVMHA-OVS-002)")
    for path in paths:
        host = path.host
        stp.require_stp_facts(host)
        on = [br for br in path.bridges if stp.mode(br) is not None]
        crossed |= {f"{br.name} on {host.name}" for br in path.bridges}
        if path.placement.port is None and on and on[0] is path.bridges[0]:
            problems.append(
                f"{path.member.label} is not running: its port will join {on[0].name} on "
                f"{host.name} with {stp.mode(on[0]).upper()} on"  # type: ignore[union-attr]
            )
        for port, br in path.ports():
            why = stp.waits(br, port)
            if why is None:
                continue
            now = stp.state(port)
            problems.append(
                f"port {port.name} on {br.name} ({host.name}): {why}"
                + (f", now {now}" if now else "")
            )
        for br in on:
            fix = command(
                "ovs-vsctl",
                "set",
                "Bridge",
                br.name,
                "stp_enable=false",
                "rstp_enable=false",
                note=f"on {host.name}",
            )
            if fix not in fixes:
                fixes.append(fix)
    if problems:
        return failed(
            f"pair {pair.name}: spanning tree delays forwarding: " + "; ".join(problems),
            expected="no STP/RSTP on the pair's bridges, or ports that forward at once",
            found="; ".join(problems),
            remediation="\n".join(fixes) or None,
        )
    return passed(f"pair {pair.name}: no spanning-tree delay on {', '.join(sorted(crossed))}")


BOND_SOURCE = (
    f"{OVS_DB} (Port interfaces: several make a bond; bond_mode, lacp, other_config "
    "lacp-fallback-ab); ovs-vswitchd(8) (bond/show, lacp/show); Open vSwitch "
    "Documentation/topics/bonding.rst"
)


def _bond_problems(port: OvsPort, bond: BondState | None) -> list[str]:
    if bond is None:
        return [f"bond {port.name}: not listed by ovs-appctl bond/show"]
    out = []
    names = {i.name for i in port.interfaces}
    shown = {m.name for m in bond.members}
    if names != shown:
        out.append(
            f"bond {port.name}: OVSDB has {', '.join(sorted(names))}, bond/show "
            f"{', '.join(sorted(shown))}"
        )
    down = [m.name for m in bond.members if not m.enabled]
    if down:
        out.append(f"bond {port.name}: member {', '.join(down)} disabled")
    if port.lacp in ("active", "passive"):
        if bond.lacp_negotiated is not True:
            fallback = (port.other_config or {}).get("lacp-fallback-ab") == "true"
            out.append(
                f"bond {port.name}: LACP not negotiated (lacp_status {bond.lacp_status})"
                + ("" if fallback else ": without lacp-fallback-ab every frame in is dropped")
            )
        lost = [
            f"{m.name} ({m.lacp or 'not in lacp/show'})"
            for m in bond.members
            if m.lacp is None or not m.lacp.startswith("current") or "detached" in m.lacp
        ]
        if lost:
            out.append(f"bond {port.name}: LACP member {', '.join(lost)}")
    return out


@check(
    "KVMHA-OVS-004",
    title="Bonded uplinks of the pair bridges have every member up",
    severity="medium",
    scope=Scope.CLUSTER_HOST,
    rationale="""
        A bond (an OVS port with several NICs) is how production servers join their uplinks:
        the pair's frames leave by whichever member the bond chooses. With a member down the
        pair still works, but the next NIC, cable or switch port failure takes both members'
        heartbeats with it. With LACP on, a member that has not negotiated carries nothing, and
        a bond whose LACP never negotiated drops every frame that arrives (unless
        lacp-fallback-ab is set).""",
    remediation="Bring the member's link up (ip link set dev NIC up; check cable and switch "
    "port), and for LACP make the switch ports one LACP group (ovs-appctl lacp/show BOND).",
    source=BOND_SOURCE,
)
def bonds_healthy(cluster: Cluster, host: HostFacts) -> Verdict:
    require_ovs(host)
    bonds: dict[str, OvsPort] = {}
    for index in range(len(cluster.pairs())):
        for path in pair_paths(cluster, index, host):
            bonds.update((p.name, p) for p, _ in path.uplinks if p.is_bond)
    if not bonds:
        return skipped(f"{host.name}: no bonded uplink on the pair bridges")
    ovs = host.ovs
    assert ovs is not None
    if ovs.bonds is None:
        raise MissingFacts(f"{host.name}: {ovs.bonds_problem or 'bond state not collected'}")
    problems = [
        x for name in sorted(bonds) for x in _bond_problems(bonds[name], ovs.bonds.get(name))
    ]
    if problems:
        return failed(
            f"{host.name}: " + "; ".join(problems) + " (redundancy lost)",
            expected="every member of each bonded uplink enabled (and, with LACP, negotiated)",
            found="; ".join(problems),
            remediation="\n".join(
                comment(f"on {host.name}: ovs-appctl bond/show {name}; bring its members up")
                for name in sorted(bonds)
            ),
        )
    return passed(
        f"{host.name}: bonded uplinks healthy: "
        + ", ".join(
            f"{n} ({', '.join(i.name for i in bonds[n].interfaces)})" for n in sorted(bonds)
        )
    )


MTU_SOURCE = (
    f"{OVS_DB} (Interface mtu, mtu_request); libvirt formatdomain (<interface><mtu size>), "
    "src/util/virnetdevtap.c (the tap copies the bridge MTU at start when <mtu> is unset); "
    "FortiGate-6000 7.4.1 Administration Guide, Setting the MTU for a data interface; FortiOS "
    "6.0 Handbook, Interface MTU packet size; RadiSys SEG-100 manual (an OEM cOS Core), Ethernet "
    "interface properties (MTU)"
)


def _member_mtu(cluster: Cluster, index: int) -> tuple[int, str]:
    """The MTU the members use on pair ``index``: their configurations' where the inventory
    declares them (the largest, if they differ), else the vendor's default."""
    said = [
        configured_mtu(m, facts, index)
        for m in cluster.members
        if (facts := member_firewall(m)) is not None
    ]
    if said:
        return max(mtu for mtu, _ in said), ", ".join(why for _, why in said)
    vendor = cluster.spec.vendor
    if vendor == "fortigate":
        return fortigate.DEFAULT_MTU, "FortiOS default (no set mtu-override)"
    if vendor == "cos-core":
        return cos_core.DEFAULT_MTU, "cOS Core Ethernet default"
    return max(fortigate.DEFAULT_MTU, cos_core.DEFAULT_MTU), "the vendors' default"


def _link_mtu(host: HostFacts, ifname: str, iface_mtu: int | None) -> int:
    link = require_links(host).get(ifname)
    if link is not None and link.mtu is not None:
        return link.mtu
    if iface_mtu is not None:
        return iface_mtu
    raise MissingFacts(f"{host.name}: no MTU known for {ifname} (ip link, OVS Interface mtu)")


@check(
    "KVMHA-OVS-005",
    title="The MTU along each pair's path is the members' MTU, the same on both servers",
    severity="high",
    scope=Scope.PAIR,
    rationale="""
        Heartbeats are small, but session and configuration synchronization frames fill the
        MTU. A smaller MTU anywhere on the path (the member's tap, the domain's <mtu>, an
        uplink or a bond member on one server) drops exactly those frames: the cluster forms
        and then falls out of sync. The members' MTU is what their configuration sets on the
        pair's interface where the inventory declares it (FortiOS 'set mtu-override enable' /
        'set mtu N'; cOS Core's EthernetInterface MTU), else 1500, the vendors' default.""",
    remediation="ip link set dev NIC mtu 1500 (or ovs-vsctl set Interface NIC mtu_request=1500) "
    "on the uplink that is smaller, and persist it in the host's network configuration.",
    source=MTU_SOURCE,
)
def path_mtu(cluster: Cluster, index: int, pair: PairSpec) -> Verdict:
    want, why = _member_mtu(cluster, index)
    two = cluster.two_servers()
    small: list[str] = []
    fixes: list[str] = []
    lowest: dict[str, tuple[int, str]] = {}
    for path in pair_paths(cluster, index):
        host = path.host
        elements: list[tuple[int, str, str | None]] = []  # (mtu, what, ifname to fix)
        if path.placement.nic.mtu is not None:
            elements.append((path.placement.nic.mtu, f"{path.member.label} <mtu>", None))
        if path.placement.port is not None:
            for i in path.placement.port.interfaces:
                elements.append((_link_mtu(host, i.name, i.mtu), f"tap {i.name}", None))
        for port, br in path.uplinks if two else ():
            for i in port.interfaces:
                where = f"uplink {i.name}" + (f" (bond {port.name})" if port.is_bond else "")
                elements.append((_link_mtu(host, i.name, i.mtu), f"{where} on {br.name}", i.name))
        if not elements:
            continue
        least = min(elements, key=lambda e: e[0])
        lowest[host.name] = (least[0], least[1])
        for mtu, what, ifname in elements:
            if mtu < want:
                small.append(f"{what} on {host.name}: {mtu}")
                if ifname is not None:
                    fixes.append(
                        command(
                            "ip", "link", "set", "dev", ifname, "mtu", want, note=f"on {host.name}"
                        )
                    )
    problems = []
    if small:
        problems.append(f"smaller than {want} ({why}): " + ", ".join(small))
    if two and len({m for m, _ in lowest.values()}) > 1:
        problems.append(
            "path MTU differs between the servers: "
            + ", ".join(f"{h} {m} ({w})" for h, (m, w) in sorted(lowest.items()))
        )
    if problems:
        return failed(
            f"pair {pair.name}: " + "; ".join(problems),
            expected=f"every element of the path at least {want}, the same on both servers",
            found="; ".join(problems),
            remediation="\n".join(dict.fromkeys(fixes)) or None,
        )
    if not lowest:
        return skipped(
            f"pair {pair.name}: no member runs and none sets <mtu> (a tap's MTU is set at start)"
        )
    return passed(
        f"pair {pair.name}: path MTU "
        + ", ".join(f"{m} on {h}" for h, (m, _) in sorted(lowest.items()))
        + f" (members: {want}, {why})"
    )
