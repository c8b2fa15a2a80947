"""The firewalls' own HA configuration, cross-checked with the host wiring.

Facts come from each member's FortiOS configuration or cOS Core ``show`` output (inventory keys
``config``/``console``), parsed by :mod:`pytest_kvmha.parse.firewall`. A check that needs them is
``skip`` when the inventory declares none for the cluster, ``error`` when one was declared and
could not be read or parsed, never ``pass``.
"""

from __future__ import annotations

from pytest_kvmha.facts.firewall import CosHaFacts, FgcpFacts, FirewallFacts
from pytest_kvmha.model import FIREWALL_CONFIG, Scope, Verdict, check, failed, passed, skipped
from pytest_kvmha.topology import Cluster, Member, member_firewall
from pytest_kvmha.vendors import cos_core

from .firewall_agreement import cos_agreement, fgcp_agreement
from .firewall_agreement import show as _show
from .firewall_wiring import (
    Locator,
    cluster_facts,
    fgcp_locator,
    nic_index,
    pair_wiring,
    where,
)

FGT_HA = "FortiOS CLI reference: config system ha, config system interface"
FGT_VM = "FortiGate-VM KVM Administration Guide, High availability (Unicast / Broadcast)"
COS_HA = "Clavister cOS Core Administration Guide, High Availability (HA setup, sync interface)"
COS_KVM = "Clavister cOS Core KVM Installation Guide, ch. 7 (Configuring Open vSwitch for HA)"


def _describe(facts: FirewallFacts) -> str:
    if isinstance(facts, FgcpFacts):
        if not facts.ha_section:
            return "FortiOS configuration without 'config system ha'"
        hb = ", ".join(_show(h.interface) for h in facts.hbdev) or "no hbdev"
        return (
            f"FGCP group-id {facts.group_id if facts.group_id is not None else '0 (default)'} "
            f"group-name {_show(facts.group_name) if facts.group_name else '(default)'}, "
            f"mode {_show(facts.mode or 'standalone')}, {facts.heartbeat} heartbeat over {hb}"
        )
    return (
        f"cOS Core cluster ID {facts.cluster_id}, {facts.role or 'role not shown'}, "
        f"sync interface {_show(facts.sync_interface) if facts.sync_interface else 'not shown'}"
    )


@check(
    "KVMHA-FW-001",
    needs=[FIREWALL_CONFIG],
    title="The firewall's HA configuration was read",
    severity="high",
    scope=Scope.MEMBER,
    rationale="""
        The firewall side of the cluster (FGCP group, heartbeat interfaces, unicast peers; cOS
        Core cluster ID, master/slave, sync interface) is only known from the firewall's own
        configuration. A configuration that was declared but cannot be read or parsed leaves
        every check that needs it unevaluated: that is an error, not a pass.""",
    remediation='Give the member a readable configuration: config = "PATH" (a FortiOS backup, '
    "or cOS Core 'show HighAvailability' and 'show Interface EthernetInterface' output), or "
    "console = \"ssh://user@addr\" with a read-only account that may run 'show'.",
    source=FGT_HA + "; " + COS_HA,
)
def config_read(cluster: Cluster, member: Member) -> Verdict:
    facts = member_firewall(member)
    if facts is None:
        return skipped(f"no 'config' or 'console' declared for {member.label}")
    return passed(f"{member.label}: {_describe(facts)}")


@check(
    "KVMHA-FW-002",
    needs=[FIREWALL_CONFIG],
    title="The members are configured as one HA cluster",
    severity="critical",
    scope=Scope.CLUSTER,
    rationale="""
        FGCP members form a cluster only with the same group-id, group-name and mode, and they
        must heartbeat over the same interfaces (hbdev) with the same unicast-hb setting,
        timers (hb-interval in milliseconds, hb-lost-threshold) and heartbeat Ethertypes. A key
        that 'show' leaves out is compared as its documented default, so a 'show' and a 'show
        full-configuration' of one setup agree. A cOS Core cluster is one master and one slave
        with the same cluster ID, and the same sync interface on both is recommended. Members
        that disagree split-brain or never see each other, whatever the host does.""",
    remediation="Make the HA settings the same on both members: FortiOS 'config system ha' "
    "(group-id, group-name, mode, hbdev, unicast-hb, hb-interval, hb-interval-in-milliseconds, "
    "hb-lost-threshold, ha-eth-type, hc-eth-type, l2ep-eth-type); cOS Core HighAvailability "
    "(ClusterID, SyncIface, one Master and one Slave).",
    source=FGT_HA + "; " + COS_HA,
)
def members_agree(cluster: Cluster) -> Verdict:
    got = cluster_facts(cluster)
    if isinstance(got, Verdict):
        return got
    fgcp = [(m, f) for m, f in got if isinstance(f, FgcpFacts)]
    cos = [(m, f) for m, f in got if isinstance(f, CosHaFacts)]
    if fgcp and cos:
        return failed(
            "members run different firewalls: "
            + ", ".join(
                f"{m.label} {'FortiOS' if isinstance(f, FgcpFacts) else 'cOS Core'}" for m, f in got
            )
        )
    problems = fgcp_agreement(fgcp) if fgcp else cos_agreement(cos)
    if problems:
        return failed(
            "; ".join(problems),
            expected="the same cluster settings on every member",
            found="; ".join(problems),
        )
    return passed(f"{cluster.name}: {_describe(got[0][1])} on every member")


@check(
    "KVMHA-FW-003",
    needs=[FIREWALL_CONFIG],
    title="The declared heartbeat is the one the firewalls use",
    severity="high",
    scope=Scope.CLUSTER,
    rationale="""
        The host is judged for the heartbeat the cluster uses: broadcast heartbeat (FGCP's
        default, and cOS Core's shared MACs) needs promiscuous uplinks and no MAC-spoofing
        filters; unicast heartbeat (FGCP 'unicast-hb enable') needs neither but allows two members
        only. When the firewalls' configuration is known it decides; an inventory that declares
        the other mode audits the host against the wrong requirements.""",
    remediation='Declare heartbeat = "broadcast" or "unicast" in the inventory as the '
    "firewalls use it (or leave it out: the configuration decides), or change 'set unicast-hb' "
    "on both FortiGates.",
    source=FGT_VM,
)
def heartbeat_matches_config(cluster: Cluster) -> Verdict:
    got = cluster_facts(cluster)
    if isinstance(got, Verdict):
        return got
    modes = {m.label: f.heartbeat for m, f in got}
    if len(set(modes.values())) > 1:
        found = ", ".join(f"{k} {v}" for k, v in modes.items())
        return failed(
            f"the members' configurations disagree on the heartbeat: {found}",
            expected="one heartbeat mode on every member",
            found=found,
        )
    mode = next(iter(modes.values()))
    spec = cluster.spec
    if spec.heartbeat_declared and spec.heartbeat != mode:
        return failed(
            f'the inventory declares heartbeat = "{spec.heartbeat}", but the firewalls\' '
            f"configuration uses {mode} heartbeat",
            expected=f'heartbeat = "{mode}" (from the configuration)',
            found=f'heartbeat = "{spec.heartbeat}" (inventory)',
            remediation=f'[clusters.{cluster.name}]: heartbeat = "{mode}"',
        )
    how = (
        "the inventory declares the same"
        if spec.heartbeat_declared
        else "the inventory declares none"
    )
    return passed(f"{mode} heartbeat from the firewalls' configuration ({how})")


@check(
    "KVMHA-FW-004",
    needs=[FIREWALL_CONFIG],
    title="FGCP unicast heartbeat peers address each other",
    severity="critical",
    scope=Scope.CLUSTER,
    rationale="""
        With unicast heartbeat each FortiGate sends to unicast-hb-peerip, which must be the other
        member's address on its heartbeat interface; both heartbeat interfaces need IP addresses
        on one network. A wrong peer address means no heartbeat: both members become primary.""",
    remediation="config system ha: set unicast-hb-peerip <the peer's heartbeat address>; "
    'config system interface: edit "portN" / set ip A.B.C.D M.M.M.M on both heartbeat '
    "interfaces, in one subnet.",
    source=FGT_VM + "; " + FGT_HA,
)
def unicast_peers(cluster: Cluster) -> Verdict:
    got = cluster_facts(cluster)
    if isinstance(got, Verdict):
        return got
    fgcp = [(m, f) for m, f in got if isinstance(f, FgcpFacts)]
    if len(fgcp) != len(got):
        return skipped("cOS Core: no unicast heartbeat settings")
    if not any(f.unicast_hb for _, f in fgcp):
        return skipped("broadcast heartbeat (unicast-hb not enabled): no peer addresses")
    problems = []
    for m, f in fgcp:
        if not f.unicast_hb:
            problems.append(f"{m.label} does not enable unicast-hb")
    if len(fgcp) != 2:
        problems.append(f"unicast heartbeat with {len(fgcp)} members (FGCP allows 2)")
        return failed("; ".join(problems), expected="2 members", found=f"{len(fgcp)} members")
    hb_addrs = {}
    for m, f in fgcp:
        if not f.hbdev:
            problems.append(f"{m.label} has no hbdev")
        addrs = []
        for h in f.hbdev:
            addr = f.addresses.get(h.interface)
            if addr is None:
                problems.append(
                    f"{m.label}: heartbeat interface {_show(h.interface)} has no address"
                )
            else:
                addrs.append(addr)
        hb_addrs[m.label] = addrs
    (a, fa), (b, fb) = fgcp
    for (m, f), (o, _) in (((a, fa), (b, fb)), ((b, fb), (a, fa))):
        peer = f.unicast_hb_peerip
        theirs = hb_addrs[o.label]
        if peer is None or int(peer) == 0:
            problems.append(f"{m.label}: unicast-hb-peerip is not set")
        elif peer not in {x.ip for x in theirs}:
            shown = ", ".join(str(x.ip) for x in theirs) or "none"
            problems.append(
                f"{m.label}: unicast-hb-peerip {peer} is not {o.label}'s heartbeat address ({shown})"
            )
    if hb_addrs[a.label] and hb_addrs[b.label]:
        x, y = hb_addrs[a.label][0], hb_addrs[b.label][0]
        if y.ip not in x.network or x.ip not in y.network:
            problems.append(f"heartbeat addresses not in one subnet: {a.label} {x}, {b.label} {y}")
    if problems:
        return failed(
            "; ".join(problems),
            expected="each unicast-hb-peerip = the other member's heartbeat address, one subnet",
            found="; ".join(problems),
        )
    return passed(
        f"{a.label} {hb_addrs[a.label][0]} <-> {b.label} {hb_addrs[b.label][0]}: peers address each other"
    )


def _hb_interfaces(m: Member, f: FirewallFacts, problems: list[str]) -> list[tuple[str, Locator]]:
    """(interface name, where its NIC is) of the member's heartbeat/sync interfaces."""
    out: list[tuple[str, Locator]] = []
    if isinstance(f, FgcpFacts):
        if not f.hbdev:
            problems.append(f"{m.label} has no heartbeat interface (hbdev)")
        for h in f.hbdev:
            if (loc := fgcp_locator(m, h.interface, "heartbeat interface", problems)) is not None:
                out.append((h.interface, loc))
        return out
    if f.sync_interface is None:
        problems.append(f"{m.label}: sync interface not shown")
    elif f.sync_interface not in f.ethernet:
        problems.append(
            f"{m.label}: sync interface {_show(f.sync_interface)} is not one of its Ethernet "
            f"interfaces ({', '.join(_show(e) for e in f.ethernet) or 'none shown'})"
        )
    elif f.sync_interface in f.pci:
        out.append((f.sync_interface, ("pci", f.pci[f.sync_interface])))
    else:
        out.append((f.sync_interface, ("order", cos_core.nic_number(f.ethernet, f.sync_interface))))
    return out


@check(
    "KVMHA-FW-005",
    needs=[FIREWALL_CONFIG],
    title="The heartbeat/sync interface is a wired interface pair",
    severity="critical",
    scope=Scope.CLUSTER,
    rationale="""
        FortiGate-VM's portN and cOS Core's N-th Ethernet interface are the VM's N-th NIC in PCI
        order. The heartbeat (FGCP hbdev) or sync interface of both members must be the same
        interface pair: both NICs on one bridge that carries no other pair and, across two
        servers, on their own VLAN. Otherwise heartbeats never reach the peer, or leak into
        another pair's broadcast domain.""",
    remediation="Use the same portN / sync interface on both members, and wire that NIC pair "
    "on its own OVS bridge (and its own VLAN between servers); or change hbdev / SyncIface to "
    "the interface that is wired so.",
    source=FGT_VM + "; " + COS_KVM,
)
def heartbeat_is_pair(cluster: Cluster) -> Verdict:
    got = cluster_facts(cluster)
    if isinstance(got, Verdict):
        return got
    problems: list[str] = []
    pairs = cluster.pairs()

    def pair_name(k: int) -> str:
        return pairs[k].name if k < len(pairs) else f"NIC #{k + 1}"

    per_member: list[list[tuple[str, int]]] = []
    for m, f in got:
        mapped = []
        for name, loc in _hb_interfaces(m, f, problems):
            if (index := nic_index(m, name, loc, problems)) is not None:
                mapped.append((name, index))
        per_member.append(mapped)
    wired = []
    if not problems:
        for j in range(max(len(x) for x in per_member)):
            row = [
                (m, x[j] if j < len(x) else None) for (m, _), x in zip(got, per_member, strict=True)
            ]
            ks = {e[1] for _, e in row if e is not None}
            shown = ", ".join(
                f"{m.label} {_show(e[0])} = NIC #{e[1] + 1} ({pair_name(e[1])})"
                if e
                else f"{m.label} none"
                for m, e in row
            )
            if len(ks) > 1 or any(e is None for _, e in row):
                problems.append(f"heartbeat interfaces are not one pair: {shown}")
                continue
            k = ks.pop()
            problems += pair_wiring(cluster, k, pair_name)
            wired.append(f"{pair_name(k)} ({shown}) on {where(cluster, k)}")
    if problems:
        return failed(
            "; ".join(dict.fromkeys(problems)),
            expected="the heartbeat/sync interface of both members on one pair with its own bridge",
            found="; ".join(dict.fromkeys(problems)),
        )
    return passed("heartbeat over " + "; ".join(wired))
