"""Two-server clusters: a VLAN per pair between the servers, carried by the uplink."""

from __future__ import annotations

from pytest_kvmha.config.inventory import PairSpec
from pytest_kvmha.facts import HostFacts, OvsPort
from pytest_kvmha.model import Scope, Verdict, check, failed, passed, skipped
from pytest_kvmha.remediation import command, comment, xml_attr
from pytest_kvmha.topology import Cluster, Member, Placement, persistent, uplinks, xml_vlan

COS_GUIDE = (
    "Clavister cOS Core KVM Installation Guide, ch. 7 ('A Single Physical Server is Assumed')"
)


def pair_vlans(cluster: Cluster, index: int) -> list[tuple[str, str, Placement]]:
    """(domain, host, placement) of each member NIC of pair ``index``."""
    return [(m.label, m.host.name, p) for m, p in cluster.placements(index)]


@check(
    "KVMHA-VLAN-001",
    title="Each pair has its own VLAN between the servers",
    severity="critical",
    scope=Scope.PAIR,
    rationale="""
        When the members run on two servers, every pair's traffic crosses the same physical
        link; a VLAN ID per pair, the same on both servers, keeps the pairs apart. Two pairs
        on one VLAN merge two HA interfaces into one broadcast domain.""",
    remediation="ovs-vsctl set port VNET tag=VLAN (running) and <vlan><tag id='VLAN'/></vlan> "
    "in the domain XML so it survives restarts.",
    source=COS_GUIDE,
)
def pair_vlan(cluster: Cluster, index: int, pair: PairSpec) -> Verdict:
    if not cluster.two_servers():
        return skipped("single-server cluster: no traffic between servers")
    rows = cluster.placements(index)
    placed = [(m.label, m.host.name, p) for m, p in rows]
    found = ", ".join(
        f"{d}@{h}: {p.vlan if p.vlan is not None else 'untagged'}" for d, h, p in placed
    )
    vlans = {p.vlan for _, _, p in placed}
    problems = []
    if None in vlans:
        problems.append(
            "untagged on " + ", ".join(f"{d}@{h}" for d, h, p in placed if p.vlan is None)
        )
    if len(vlans - {None}) > 1:
        problems.append("VLANs differ between the servers")
    saved = {m.label: _saved_vlan(m, p, index) for m, p in rows}
    for m, p in rows:
        tag = p.port.tag if p.port is not None else None
        if tag is not None and p.vlan == tag and m.domain().active and saved[m.label] != tag:
            now = saved[m.label]
            problems.append(
                f"{m.label}@{m.host.name}: VLAN {tag} is set on the running port only; the "
                f"persistent XML says {now if now is not None else 'untagged'}: lost at the next start"
            )
    if pair.vlan is not None and vlans != {pair.vlan}:
        problems.append(f"declared VLAN is {pair.vlan}")
    # Without a declared VLAN the first member's (the master's) is the reference.
    first = next((p.vlan for _, _, p in placed if p.vlan is not None), None)
    mine = pair.vlan if pair.vlan is not None else first
    if mine is not None:
        for k, other in enumerate(cluster.pairs()):
            if k != index and any(p.vlan == mine for _, _, p in pair_vlans(cluster, k)):
                problems.append(f"VLAN {mine} is also used by pair {other.name}")
    if problems:
        fixes = []
        if mine is None:
            # No VLAN anywhere and none declared: which ID is free is the operator's choice.
            ports = ", ".join(
                f"{p.port.name if p.port is not None else m.label} on {m.host.name}"
                for m, p in rows
            )
            fixes.append(
                comment(
                    f"choose a VLAN ID for pair {pair.name} that no other pair uses, set it on "
                    f"{ports} as the port tag (ovs-vsctl set port) and in each domain's XML "
                    "(a <vlan><tag id=.../></vlan>), or declare it in the inventory"
                )
            )
        want = mine
        for m, p in rows if want is not None else ():
            host, via_patch = m.host.name, (p.vlan_source or "").startswith("patch")
            if via_patch and p.vlan != want:
                fixes.append(
                    comment(f"on {host}: tag the patch port of {p.bridge_name} with VLAN {want}")
                )
                continue
            if p.port is not None and p.vlan != want:
                fixes.append(
                    command(
                        "ovs-vsctl",
                        "set",
                        "port",
                        p.port.name,
                        f"tag={want}",
                        note=f"on {host}, now",
                    )
                )
            if not via_patch and saved[m.label] != want:
                fixes.append(
                    command(
                        "virsh",
                        "edit",
                        m.label,
                        note=f"on {host}, NIC {p.nic.mac}: <vlan><tag id={xml_attr(want)}/></vlan>",
                    )
                )
        return failed(
            f"pair {pair.name}: " + "; ".join(problems),
            expected="one VLAN, the same on both servers, used by no other pair",
            found=found,
            remediation="\n".join(fixes) or None,
        )
    return passed(f"pair {pair.name}: VLAN {mine} on both servers ({placed[0][2].vlan_source})")


def _saved_vlan(member: Member, p: Placement, index: int) -> int | None:
    """The access VLAN the NIC's persistent XML (or its network portgroup) gives it."""
    saved = persistent(member.host, member.domain(), index)
    return xml_vlan(*saved) if saved is not None else xml_vlan(p.nic, p.network)


@check(
    "KVMHA-VLAN-002",
    title="The uplink between the servers carries every pair's VLAN",
    severity="high",
    scope=Scope.CLUSTER_HOST,
    rationale="""
        A pair VLAN that the uplink does not trunk never reaches the other server: the pair
        splits and both members go active.""",
    remediation="ovs-vsctl add port UPLINK trunks VLAN (or clear trunks to carry all VLANs).",
    source=COS_GUIDE + "; ovs-vswitchd.conf.db(5) (Port: trunks, vlan_mode)",
)
def uplink_trunks(cluster: Cluster, host: HostFacts) -> Verdict:
    if not cluster.two_servers():
        return skipped("single-server cluster: no uplink between servers")
    problems, carried, fixes, untagged = [], [], [], []
    # Every VLAN an uplink misses, per uplink: one command per port, since two ``set ...
    # trunks=`` in a row leave only the second VLAN carried.
    missing: dict[str, tuple[OvsPort, list[int]]] = {}
    for k, pair in enumerate(cluster.pairs()):
        for m, p in cluster.placements(k):
            if m.host.name != host.name:
                continue
            vlan = pair.vlan if pair.vlan is not None else p.vlan
            if vlan is None:
                untagged.append(pair.name)
                continue
            if p.bridge is None:
                problems.append(f"pair {pair.name}: {m.label} is not on an OVS bridge")
                continue
            ups = uplinks(host, p.bridge)
            if not ups:
                problems.append(
                    f"pair {pair.name} (VLAN {vlan}): no uplink reachable from {p.bridge.name}"
                )
                fixes.append(
                    comment(
                        f"on {host.name}: add the physical NIC that reaches the other server to "
                        f"bridge {p.bridge.name} as a trunk carrying VLAN {vlan} "
                        "(ovs-vsctl add-port with trunks)"
                    )
                )
            elif not any(port.carries_vlan(vlan) for port, _ in ups):
                names = ", ".join(
                    f"{port.name} ({port.effective_vlan_mode}, trunks {list(port.trunks) or 'all'})"
                    for port, _ in ups
                )
                problems.append(f"pair {pair.name}: VLAN {vlan} not carried by {names}")
                for port, _ in ups:
                    missing.setdefault(port.name, (port, []))[1].append(vlan)
            else:
                carried.append(f"{vlan}")
    fixes += [_carry(port, vlans) for port, vlans in missing.values()]
    if problems:
        return failed(
            f"{host.name}: " + "; ".join(problems),
            expected="each pair VLAN trunked on an uplink between the servers",
            found="; ".join(problems),
            remediation="\n".join(dict.fromkeys(fixes)) or None,
        )
    if not carried:
        return skipped(f"no pair has a VLAN on {host.name} (see KVMHA-VLAN-001): nothing to trunk")
    return passed(f"{host.name}: uplinks carry VLANs {', '.join(sorted(set(carried), key=int))}")


def _carry(port: OvsPort, vlans: list[int]) -> str:
    """One command that makes ``port`` carry every VLAN of ``vlans`` tagged and keeps the VLANs
    it trunks already (ovs-vswitchd.conf.db(5), Port: tag, trunks, vlan_mode)."""
    p, want = port.name, sorted(set(vlans))
    mode = port.effective_vlan_mode
    if mode in ("access", "dot1q-tunnel"):
        # Such a port carries no VLAN tagged: it becomes a trunk of what it must carry. Two
        # commands would not do: a second ``set ... trunks=`` replaces the first one's set.
        trunks = ",".join(str(v) for v in sorted({*port.trunks, *want}))
        return command(
            "ovs-vsctl", "clear", "port", p, "tag", "--", "set", "port", p, "vlan_mode=trunk",
            f"trunks={trunks}",
        )  # fmt: skip
    argv: list[object] = ["ovs-vsctl"]
    if port.tag is not None and port.tag in want:
        # A trunk's native VLAN leaves tagged only in native-tagged mode; it is always trunked.
        argv += ["set", "port", p, "vlan_mode=native-tagged"]
    rest = [v for v in want if v != port.tag and port.trunks and v not in port.trunks]
    if rest:
        # An empty trunks set carries every VLAN: adding to it would narrow it.
        argv += [*(["--"] if len(argv) > 1 else []), "add", "port", p, "trunks", *rest]
    return command(*argv)
