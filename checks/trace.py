"""The heartbeat path proven by Open vSwitch itself: ``ofproto/trace`` through the real tables.

The other checks read configuration (bridges, tags, trunks, flags). This one asks the switch
where a heartbeat frame would go, with the OpenFlow rules that are really installed (an SDN
controller's, a forgotten debugging rule), without sending a packet. The traces are planned by
:mod:`pytest_kvmha.topology.traceplan` and recorded by the collector's trace phase.
"""

from __future__ import annotations

from pytest_kvmha.config.inventory import PairSpec
from pytest_kvmha.facts import HostFacts
from pytest_kvmha.facts.trace import TraceResult, TraceRule
from pytest_kvmha.model import MissingFacts, Scope, Verdict, check, failed, passed, skipped
from pytest_kvmha.remediation import command, comment, inert
from pytest_kvmha.topology import Cluster, Member
from pytest_kvmha.topology.bonds import port_name as bond_port
from pytest_kvmha.topology.stp import trace_stop
from pytest_kvmha.topology.traceplan import Leg, NotTraceable, member_legs

OVS_TRACE = (
    "ovs-vswitchd(8) (ofproto/trace, dpif/show); ovs-fields(7); FortiOS Administration Guide, "
    "Heartbeat packet EtherTypes (0x8890-0x8893) and Cluster virtual MAC addresses; cOS Core "
    "Administration Guide, HA Mechanisms (UDP 999 heartbeats); see pytest_kvmha/vendors"
)


def _trace(leg: Leg) -> TraceResult:
    """The recorded trace of ``leg``; MissingFacts (an error, never a pass) when there is none."""
    host = leg.host
    if host.status != "ok":
        raise MissingFacts(host.error or f"{host.name}: {host.status}")
    ev = host.traces
    if ev is None and "traces" in host.problems:
        raise MissingFacts(host.problems["traces"])
    if ev is None:
        raise MissingFacts(
            f"{host.name}: no heartbeat traces recorded (the trace phase did not run or did not "
            "answer: a bundle recorded without it, or the host failed in its second round trip)"
        )
    if ev.dpif_problem is not None:
        raise MissingFacts(f"{host.name}: cannot map datapath ports: {ev.dpif_problem}")
    assert leg.spec is not None
    run = ev.runs.get(leg.spec.key)
    if run is None:  # the key covers the switch configuration (TraceSpec.key)
        raise MissingFacts(
            f"{host.name}: no trace of {leg.frame.label} on bridge {leg.spec.bridge} recorded "
            "for the switch configuration in the evidence (traced on other ports, VLANs, "
            "patches or bonds, or not traced)"
        )
    if run.result is None:
        raise MissingFacts(
            f"{host.name}: trace on bridge {leg.spec.bridge} could not run: {run.problem}"
        )
    return run.result


def _name(host: HostFacts, bridge: str, port: int) -> str:
    assert host.traces is not None and host.traces.dpif is not None
    name = host.traces.dpif.name(bridge, port)
    if name is None:
        raise MissingFacts(
            f"{host.name}: datapath port {port} of bridge {bridge} is not in dpif/show"
        )
    return bond_port(host, name)


def _where(result: TraceResult) -> str:
    """Where the frame died: the rule that dropped it, else what NORMAL said."""
    rule = result.drop_rule()
    if rule is not None:
        return f"dropped by rule {inert(rule.describe())}"
    notes = result.drop_notes()
    last = result.rules[-1] if result.rules else None
    at = f" in bridge {inert(last.bridge)}" if last is not None else ""
    if notes:
        return f"dropped{at}: {inert(notes[0].strip('<> '))}"
    return f"dropped{at}"


def _del_flow(rule: TraceRule, host: str) -> str:
    """The command that removes ``rule`` (as the trace printed it), quoted: host text."""
    spec = ",".join(
        x for x in (f"table={rule.table}" if rule.table else "", f"priority={rule.priority}") if x
    )
    if rule.match:
        spec += "," + rule.match.replace(", ", ",")
    try:
        return command("ovs-ofctl", "del-flows", rule.bridge, "--strict", spec, note=f"on {host}")
    except ValueError:  # control characters in host text: show it, never as a command
        return comment(f"on {host}: remove the rule {rule.describe()} of bridge {rule.bridge}")


def _culprits(result: TraceResult, host: str) -> list[str]:
    """del-flows for the explicit rules that dropped or re-tagged the frame."""
    rules = [r for r in result.rules if (r.drops or r.rewrites_vlan) and r.priority is not None]
    return [_del_flow(r, host) for r in rules]


def _judge(leg: Leg) -> tuple[str | None, list[str]]:
    """(problem or None, remediation lines) for one leg."""
    host = leg.host.name
    if leg.kind == "no-uplink":
        return (
            f"no uplink reaches {leg.peer}'s bridge on {host}, so nothing from the other "
            "server can arrive there (see KVMHA-VLAN-002)",
            [comment(f"on {host}: add the NIC that reaches the other server to the pair bridge")],
        )
    result = _trace(leg)
    assert leg.spec is not None
    bridge = leg.spec.bridge
    start_vlan = leg.vlan if leg.kind == "from-uplink" else None
    outs = [(_name(leg.host, bridge, d.port), d.vlan) for d in result.deliveries(start_vlan)]
    _consistent(leg.host, result, outs)
    fixes = _culprits(result, host)
    rewrote = [r for r in result.vlan_rules()]
    via = f" after rule {inert(rewrote[0].describe())}" if rewrote else ""
    where = f"on {host}"
    if leg.kind in ("peer", "from-uplink"):
        entry = (
            f"entering by {leg.uplink} with VLAN {leg.vlan} " if leg.kind == "from-uplink" else ""
        )
        got = [v for n, v in outs if n == leg.target]
        if None in got:
            return None, []
        if got:
            return (
                f"{entry}{where}: reaches {leg.peer}'s port {leg.target} tagged with VLAN "
                f"{got[0]}{via} (left tagged: the member expects it untagged)",
                fixes,
            )
        if result.dropped:
            return f"{entry}{where}: {_where(result)}{via}", fixes or _trunk_hint(leg)
        went = ", ".join(sorted({n for n, _ in outs}))
        died = _where(result) if result.drop_rule() is not None or not outs else ""
        return (
            f"{entry}{where}: never reaches {leg.peer}'s port {leg.target}"
            + (f": {died}" if died else "")
            + via
            + (f" (it leaves only by {went})" if outs else ""),
            fixes or _trunk_hint(leg),
        )
    # kind == "uplink": it must leave by an uplink with the pair's VLAN
    ups = [(n, v) for n, v in outs if n in leg.uplinks]
    if any(v == leg.vlan for _, v in ups):
        return None, []
    if ups:
        n, v = ups[0]
        if v is None:
            what = f"left untagged by {n} (expected VLAN {leg.vlan})"
        elif rewrote:
            what = f"VLAN rewritten to {v}{via}, left by {n} (expected VLAN {leg.vlan})"
        elif leg.vlan is None:
            what = f"left by {n} tagged with VLAN {v} (expected untagged)"
        else:
            what = f"left by {n} with VLAN {v}, not the pair's VLAN {leg.vlan}"
        return f"{where}: {what}", fixes or _trunk_hint(leg)
    other = _other_uplinks(leg, [n for n, _ in outs])
    if other:
        return (
            f"{where}: left by the wrong uplink {', '.join(other)} "
            f"(expected {', '.join(leg.uplinks) or 'an uplink of the pair bridge'}){via}",
            fixes,
        )
    if not leg.uplinks:
        return (
            f"{where}: no uplink on bridge {bridge} or the bridges patched to it: it cannot "
            "leave the server (see KVMHA-VLAN-002)",
            [comment(f"on {host}: add the NIC that reaches the other server to bridge {bridge}")],
        )
    if result.dropped:
        return f"{where}: {_where(result)}{via}", fixes or _trunk_hint(leg)
    died = f": {_where(result)}" if result.drop_rule() is not None else ""
    return (
        f"{where}: does not leave by {', '.join(leg.uplinks)}"
        f"{f' with VLAN {leg.vlan}' if leg.vlan is not None else ''}{died}{via} "
        f"(it only reaches {', '.join(sorted({n for n, _ in outs}))}; see KVMHA-VLAN-002)",
        fixes or _trunk_hint(leg),
    )


def _consistent(host: HostFacts, result: TraceResult, outs: list[tuple[str, int | None]]) -> None:
    """MissingFacts when the trace contradicts the collected port configuration.

    The trace phase is a second round trip: a port reconfigured in between (or evidence
    edited after the recording) leaves a trace of another configuration under the same key,
    since the key is a digest of bridge and flow. Where only NORMAL switched the frame, OVS
    tags a frame on egress only with a VLAN the port carries (ovs-vswitchd.conf.db(5), Port:
    vlan_mode, trunks); a tagged delivery by a port that does not carry that VLAN is a trace
    of other evidence, judged as none (an error, never a pass)."""
    if host.ovs is None or any(a != "NORMAL" for r in result.rules for a in r.actions):
        return  # explicit OpenFlow actions may output any VLAN anywhere
    for name, vlan in outs:
        bridge = host.ovs.bridge_of_port(name)
        port = next((p for p in bridge.ports if p.name == name), None) if bridge else None
        if vlan is not None and port is not None and not port.carries_vlan(vlan):
            raise MissingFacts(
                f"{host.name}: the recorded trace leaves by {name} tagged with VLAN {vlan}, "
                f"which {name} does not carry ({port.effective_vlan_mode}, trunks "
                f"{list(port.trunks) or 'all'}): the trace is of another configuration"
            )


def _other_uplinks(leg: Leg, names: list[str]) -> list[str]:
    """Output ports that are physical uplinks of the host, but not the pair's."""
    ovs = leg.host.ovs
    if ovs is None:
        return []
    physical = set()
    for br in ovs.bridges:
        for port in br.ports:
            if port.name != br.name and all(
                i.type in ("", "system") and not i.attached_mac and "vm-id" not in i.external_ids
                for i in port.interfaces
            ):
                physical.add(port.name)
    return sorted({n for n in names if n in physical and n not in leg.uplinks})


def _trunk_hint(leg: Leg) -> list[str]:
    if leg.vlan is None:
        return []
    if leg.kind == "from-uplink" and leg.uplink:
        return [
            comment(
                f"on {leg.host.name}: let {leg.uplink} carry VLAN {leg.vlan} tagged and the "
                f"peer's port {leg.target} be an access port of VLAN {leg.vlan} (see KVMHA-VLAN-001/002)"
            )
        ]
    return [
        comment(
            f"on {leg.host.name}: let an uplink ({', '.join(leg.uplinks) or 'none'}) trunk VLAN "
            f"{leg.vlan} (see KVMHA-VLAN-002)"
        )
    ]


@check(
    "KVMHA-TRACE-001",
    title="Open vSwitch forwards the member's heartbeat to its peer",
    severity="critical",
    scope=Scope.MEMBER_NIC,
    rationale="""
        Configuration can be right while the switch still drops heartbeats: an OpenFlow rule
        left by an SDN controller or a debugging session, a VLAN rewrite, a trunk that lacks
        the pair's VLAN. The peer then stops hearing its partner and both members go active.
        ofproto/trace runs the vendor's heartbeat frames through the bridges' real OpenFlow
        tables (nothing is sent, no flow is added) and shows where each frame leaves: on one
        server into the peer's port; on two servers out of an uplink with the pair's VLAN, and
        from the other server's uplink with that VLAN into the peer's port. The frames are the
        ones the vendor documents for that pair (pytest_kvmha/vendors), decided by the members'
        configurations when all are known: FGCP heartbeat, hc, session sync and config sync
        (0x8890-0x8893 or their configured Ethertypes) on heartbeat interfaces, the virtual
        MAC's gratuitous ARP on data interfaces, unicast heartbeats between the peer
        addresses; cOS Core's UDP 999 heartbeats (TTL 255, to the broadcast address) on every
        interface and the shared MAC on data interfaces.""",
    remediation="Remove the OpenFlow rule that drops or re-tags the heartbeat (ovs-ofctl "
    "del-flows BRIDGE --strict 'priority=P,MATCH'), or make the uplink trunk the pair's VLAN.",
    source=OVS_TRACE,
)
def heartbeat_path(cluster: Cluster, member: Member, index: int, pair: PairSpec) -> Verdict:
    try:
        legs = member_legs(cluster, member, index, pair)
    except NotTraceable as exc:
        return skipped(str(exc))
    if not legs:
        return skipped(
            f"{member.label} sends no HA frame on pair {pair.name} by its vendor's model "
            "(a data pair of a unicast-heartbeat cluster, or a reserved management interface): "
            "nothing to trace"
        )
    changed = sorted(
        {leg.host.name for leg in legs if leg.host.traces and leg.host.traces.simulated}
    )
    if changed:
        return skipped(
            f"a planned change alters {', '.join(changed)}: the heartbeat path can only be "
            "traced on the switch after the change (audit again then)"
        )
    problems: dict[str, list[str]] = {}  # where it dies -> the frames that die there
    fixes: list[str] = []
    lost = 0
    for leg in legs:
        problem, fix = _judge(leg)
        if problem is None:
            continue
        if leg.spec is not None and (stop := trace_stop(leg, _trace(leg))):
            problem = f"on {leg.host.name}: {stop} (see KVMHA-OVS-003)"
        lost += 1
        frames = problems.setdefault(problem, [])
        if leg.frame.label not in frames:
            frames.append(leg.frame.label)
        fixes += [f for f in fix if f not in fixes]
    peers = ", ".join(sorted({leg.peer or "?" for leg in legs}))
    if problems:
        return failed(
            f"{member.label} -> {peers} on pair {pair.name}: "
            + "; ".join(f"{', '.join(frames)}: {p}" for p, frames in problems.items()),
            expected=f"every heartbeat frame of {member.label} reaches {peers} (ofproto/trace)",
            found=f"{lost} of {len(legs)} traced paths lose the frame",
            remediation="\n".join(fixes) or None,
        )
    hosts = ", ".join(sorted({leg.host.name for leg in legs}))
    return passed(
        f"{member.label} -> {peers} on pair {pair.name}: {len(legs)} traced paths deliver ({hosts})"
    )
