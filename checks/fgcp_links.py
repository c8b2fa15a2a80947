"""FGCP's other links and primary selection, from the FortiGates' ``config system ha``.

KVMHA-FW-005 wires the heartbeat interfaces (hbdev). These checks read what else the section
names: session-sync and monitored interfaces (wired pairs too), reserved management interfaces
(no HA link, no pair), how many heartbeat links there are, and whether override can pick the
primary. Like the KVMHA-FW checks they skip when the inventory declares no configuration, err
when one is declared but unreadable, and skip cOS Core clusters (no such settings). The vendor
facts and their documents are in :mod:`pytest_kvmha.vendors.fortigate`.
"""

from __future__ import annotations

from pytest_kvmha.facts.firewall import FgcpFacts
from pytest_kvmha.model import FIREWALL_CONFIG, Scope, Verdict, check, failed, passed, skipped
from pytest_kvmha.topology import Cluster, Member
from pytest_kvmha.vendors import fortigate

from .firewall_agreement import show
from .firewall_wiring import cluster_facts, locate, pair_wiring, segment_problems, where

FGT_HA = "FortiOS CLI Reference 6.2.6 / 7.6.5, config system ha"
SYNC_SOURCE = (
    f"{FGT_HA} (session-sync-dev, monitor); FortiOS 5.0 Help, Using multiple FortiGate "
    "interfaces for session synchronization; FortiGate-7000F Handbook 6.2.16, Link failover "
    "(port monitoring or interface monitoring); FortiGate-VM KVM Administration Guide (portN is "
    "the N-th NIC)"
)
MGMT_SOURCE = (
    f"{FGT_HA} (ha-mgmt-status, config ha-mgmt-interfaces); FortiOS 7.2.4 Administration "
    "Guide, Out-of-band management with reserved management interfaces, and In-band management; "
    "Fortinet Community, Technical Tip: HA Reserved Management Interface (190132)"
)
HB_SOURCE = (
    "Fortinet Community, Technical Tip: Best practices for Heartbeat interfaces in FGCP high "
    "availability (192732); FortiOS 6.4.7 Administration Guide, FGCP (Critical cluster "
    "components)"
)
OVERRIDE_SOURCE = (
    "FortiOS 5.0 Help, HA override; Points to remember about primary unit selection when "
    "override is enabled; Primary unit selection and device priority (default 128)"
)

Fgcp = list[tuple[Member, FgcpFacts]]


def _fgcp(cluster: Cluster) -> Fgcp | Verdict:
    got = cluster_facts(cluster)
    if isinstance(got, Verdict):
        return got
    fgcp = [(m, f) for m, f in got if isinstance(f, FgcpFacts)]
    if len(fgcp) != len(got):
        return skipped("not every member runs FortiOS (cOS Core has no such FGCP settings)")
    return fgcp


def _names(values: tuple[str, ...]) -> str:
    return " ".join(show(v) for v in values) or "none"


@check(
    "KVMHA-FGCP-001",
    needs=[FIREWALL_CONFIG],
    title="FGCP session-sync and monitored interfaces are wired interface pairs",
    severity="high",
    scope=Scope.CLUSTER,
    rationale="""
        With session-sync-dev set, only those interfaces carry session synchronization
        (Ethertype 0x8892), and they must be connected to each other; FortiOS falls back to the
        heartbeat links only when all of them are disconnected. A virtual NIC is never
        disconnected, wherever the host plugs it: a session-sync interface that is not one pair
        on its own bridge (and, across two servers, its own VLAN) loses every synchronized
        session without a word, and the next failover drops them. Monitored interfaces decide
        failover and primary selection (a failed monitored interface comes first): Fortinet
        asks to monitor only interfaces that are connected to networks, so each must be the
        same NIC pair of both members, on one bridge and one VLAN.""",
    remediation="Name the same portN on both members and wire that NIC pair: session-sync "
    "interfaces on an OVS bridge of their own (their own VLAN between servers), monitored "
    "interfaces on the pair's bridge and VLAN; or change config system ha 'set session-sync-dev' "
    "/ 'set monitor' to the interfaces that are wired so.",
    source=SYNC_SOURCE,
)
def sync_and_monitor_pairs(cluster: Cluster) -> Verdict:
    if isinstance(got := _fgcp(cluster), Verdict):
        return got
    pairs = cluster.pairs()

    def pair_name(k: int) -> str:
        return pairs[k].name if k < len(pairs) else f"NIC #{k + 1}"

    problems: list[str] = []
    wired: list[str] = []
    roles = (
        ("session-sync interface", "session-sync-dev", "session_sync_dev"),
        ("monitored interface", "monitor", "monitor"),
    )
    for what, key, attr in roles:
        named = {m.label: tuple(getattr(f, attr)) for m, f in got}
        if not any(named.values()):
            continue
        if len({frozenset(v) for v in named.values()}) > 1:
            problems.append(
                f"the members set different {key}: "
                + ", ".join(f"{label} {_names(v)}" for label, v in named.items())
            )
            continue
        for name in next(iter(named.values())):
            at = {m.label: locate(m, name, what, problems) for m, _ in got}
            if None in at.values():
                continue
            ks = set(at.values())
            if len(ks) > 1:
                problems.append(
                    f"{what} {show(name)} is not one pair: "
                    + ", ".join(f"{label} NIC #{k + 1}" for label, k in at.items() if k is not None)
                )
                continue
            k = ks.pop()
            assert k is not None
            if k >= len(pairs):
                problems.append(f"{what} {show(name)} is NIC #{k + 1}: no declared pair")
                continue
            found = (pair_wiring if attr == "session_sync_dev" else segment_problems)(
                cluster, k, pair_name
            )
            problems += [f"{what} {show(name)}: {p}" for p in found]
            wired.append(f"{key} {show(name)} = {pair_name(k)} on {where(cluster, k)}")
    if problems:
        return failed(
            "; ".join(dict.fromkeys(problems)),
            expected="each session-sync-dev and monitor interface one wired pair of every member",
            found="; ".join(dict.fromkeys(problems)),
        )
    if not wired:
        return skipped(
            "no session-sync-dev or monitor set: session synchronization runs over the "
            "heartbeat links (KVMHA-FW-005)"
        )
    return passed("; ".join(wired))


@check(
    "KVMHA-FGCP-002",
    needs=[FIREWALL_CONFIG],
    title="A reserved FGCP management interface is no HA link",
    severity="medium",
    scope=Scope.CLUSTER,
    rationale="""
        A reserved management interface (ha-mgmt-status enable, config ha-mgmt-interfaces)
        gives each member its own address: it keeps its own MAC (no virtual MAC), its settings
        are not synchronized, and Fortinet reserves it exclusively for management (an interface
        referenced anywhere else cannot be reserved). It carries no HA frames and needs no
        interface pair. Naming it as a heartbeat, session-sync or monitored interface too
        contradicts the reservation: management traffic and cluster traffic share a link the
        design keeps apart, and which of the two readings the firmware applies is not
        documented.""",
    remediation="Remove the reserved interface from config system ha 'set hbdev', 'set "
    "session-sync-dev' and 'set monitor' (or from config ha-mgmt-interfaces).",
    source=MGMT_SOURCE,
)
def management_not_ha_link(cluster: Cluster) -> Verdict:
    if isinstance(got := _fgcp(cluster), Verdict):
        return got
    if not any(f.mgmt_interfaces for _, f in got):
        return skipped(
            "no reserved management interface (ha-mgmt-status enable with ha-mgmt-interfaces)"
        )
    problems = []
    for m, f in got:
        hbdev = {h.interface for h in f.hbdev}
        for name in f.mgmt_interfaces:
            also = [
                key
                for key, names in (
                    ("hbdev", hbdev),
                    ("session-sync-dev", set(f.session_sync_dev)),
                    ("monitor", set(f.monitor)),
                )
                if name in names
            ]
            if also:
                problems.append(
                    f"{m.label}: {show(name)} is reserved for management and also in "
                    + ", ".join(also)
                )
    if problems:
        return failed(
            "; ".join(problems),
            expected="reserved management interfaces in no hbdev, session-sync-dev or monitor",
            found="; ".join(problems),
        )
    shown = ", ".join(f"{m.label} {_names(f.mgmt_interfaces)}" for m, f in got)
    return passed(
        f"reserved for management: {shown}; no HA link, so no interface pair or HA frames "
        "are asked of them"
    )


@check(
    "KVMHA-FGCP-003",
    needs=[FIREWALL_CONFIG],
    title="FGCP has at least two heartbeat links",
    severity="low",
    scope=Scope.CLUSTER,
    rationale="""
        Fortinet recommends at least two heartbeat interfaces with different priorities (and
        double back-to-back heartbeat connections): with one, a single NIC, vNIC, bridge or
        uplink fault stops every heartbeat and both members become primary. Unicast heartbeat
        addresses one peer address, so it is not judged here.""",
    remediation='config system ha: set hbdev "portA" 50 "portB" 40, with each portN a wired '
    "interface pair of its own (see KVMHA-FW-005).",
    source=HB_SOURCE,
)
def two_heartbeat_links(cluster: Cluster) -> Verdict:
    if isinstance(got := _fgcp(cluster), Verdict):
        return got
    if any(f.unicast_hb for _, f in got):
        return skipped("unicast heartbeat: one peer address (unicast-hb-peerip), one link")
    want = fortigate.RECOMMENDED_HEARTBEAT_LINKS
    shown = ", ".join(f"{m.label} {_names(tuple(h.interface for h in f.hbdev))}" for m, f in got)
    few = [m.label for m, f in got if len({h.interface for h in f.hbdev}) < want]
    if few:
        return failed(
            f"fewer than {want} heartbeat interfaces (hbdev): {shown}",
            expected=f"at least {want} hbdev interfaces on every member",
            found=shown,
        )
    return passed(f"heartbeat interfaces: {shown}")


@check(
    "KVMHA-FGCP-004",
    needs=[FIREWALL_CONFIG],
    title="With FGCP override, one member has the highest priority",
    severity="medium",
    scope=Scope.CLUSTER,
    rationale="""
        override enable makes device priority decide the primary before age and serial number,
        and makes the cluster renegotiate at every event that may change the result (a unit
        joining, a link failing or coming back). Fortinet: for override to be effective the
        unit that should be primary must have the highest priority. With the highest priority
        shared (equal priorities, or both left at the default 128) age and then serial number
        decide, not the configuration, and the cluster still renegotiates at every event:
        frequent negotiations and failovers for nothing.""",
    remediation="config system ha: set priority 200 on the member that should be primary "
    "(higher than every other member's), or set override disable on every member.",
    source=OVERRIDE_SOURCE,
)
def override_priority(cluster: Cluster) -> Verdict:
    if isinstance(got := _fgcp(cluster), Verdict):
        return got
    on = [m.label for m, f in got if f.override]
    if not on:
        return skipped("override not enabled (the default): age decides before priority")
    prio = {
        m.label: f.priority if f.priority is not None else fortigate.DEFAULT_PRIORITY
        for m, f in got
    }
    top = max(prio.values())
    tied = [label for label, p in prio.items() if p == top]
    shown = ", ".join(
        f"{m.label} {prio[m.label]}" + (" (default)" if f.priority is None else "") for m, f in got
    )
    if len(tied) > 1:
        return failed(
            f"override enabled on {', '.join(on)}, but {' and '.join(tied)} share the highest "
            f"priority ({shown}): age and serial number pick the primary, and the cluster "
            "renegotiates at every event",
            expected="one member with a priority above every other member's",
            found=f"priorities {shown}",
        )
    return passed(f"override on {', '.join(on)}: {tied[0]} has the highest priority ({shown})")
