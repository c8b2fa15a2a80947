"""Spanning tree on the bridges a pair's frames cross: which ports wait before forwarding.

Read from ovs-vswitchd.conf.db(5): Bridge ``stp_enable``/``rstp_enable`` ("STP and RSTP are
mutually exclusive. If both are enabled, RSTP will be used."); Port ``other_config``
``stp-enable``/``rstp-enable`` (``false`` disables it on the port) and ``rstp-port-admin-edge``
(RSTP only: classic STP has no edge port); Port ``status:stp_state`` (lower-case ``disabled
listening learning forwarding blocking``) and ``rstp_status:rstp_port_state`` (``Disabled
Learning Forwarding Discarding``). "Bond, internal, and mirror ports are not supported and
will not participate in the spanning tree." ofproto/ofproto-dpif-xlate.c prints ``>> STP not
in forwarding state, skipping output`` (``RSTP ...`` likewise) when it skips an output port,
and nothing at all when the ingress port is not forwarding (``may_receive()``).
"""

from __future__ import annotations

from pytest_kvmha.facts import HostFacts, OvsBridge, OvsPort
from pytest_kvmha.facts.trace import TraceResult
from pytest_kvmha.model import MissingFacts
from pytest_kvmha.topology.traceplan import Leg

STP_COLUMNS = ("Bridge.stp_enable", "Bridge.rstp_enable", "Port.other_config", "Port.status")
TRACE_NOTES = ("STP not in forwarding state", "RSTP not in forwarding state")


def require_stp_facts(host: HostFacts) -> None:
    ovs = host.ovs
    missing = [c for c in STP_COLUMNS + ("Port.rstp_status",) if ovs and c in ovs.missing_columns]
    if missing:
        raise MissingFacts(
            f"{host.name}: OVS columns {', '.join(missing)} not collected (a bundle recorded "
            "before spanning tree was read: record it again)"
        )


def mode(bridge: OvsBridge) -> str | None:
    """``rstp``, ``stp`` or None (no spanning tree on ``bridge``)."""
    if bridge.stp_enable is None or bridge.rstp_enable is None:
        raise MissingFacts(f"bridge {bridge.name}: stp_enable/rstp_enable not collected")
    if bridge.rstp_enable:
        return "rstp"
    return "stp" if bridge.stp_enable else None


def participates(port: OvsPort) -> bool:
    """Bonds and internal ports take no part in the spanning tree."""
    return not port.is_bond and all(i.type != "internal" for i in port.interfaces)


def waits(bridge: OvsBridge, port: OvsPort) -> str | None:
    """Why ``port`` does not forward at once after a start or topology change, or None."""
    kind = mode(bridge)
    if kind is None or not participates(port):
        return None
    if port.other_config is None:
        raise MissingFacts(f"port {port.name}: other_config not collected")
    conf = port.other_config
    if kind == "rstp":
        if conf.get("rstp-enable") == "false" or conf.get("rstp-port-admin-edge") == "true":
            return None
        return "RSTP on, not an admin edge port"
    if conf.get("stp-enable") == "false":
        return None
    delay = (bridge.other_config or {}).get("stp-forward-delay", "15")
    return f"STP on (listening + learning: 2 x {delay} s forward delay)"


def state(port: OvsPort) -> str | None:
    """The port's spanning-tree state when it is not forwarding now, else None."""
    stp = (port.status or {}).get("stp_state")
    if stp is not None and stp != "forwarding":
        return f"STP state {stp}"
    rstp = (port.rstp_status or {}).get("rstp_port_state")
    if rstp is not None and rstp.lower() != "forwarding":
        return f"RSTP state {rstp}"
    return None


def trace_stop(leg: Leg, result: TraceResult) -> str | None:
    """Where spanning tree stopped the traced frame of ``leg``: a skipped output, the ingress
    port, or the patch port into a bridge the frame had to enter (the peer's, an uplink's)."""
    notes = [n for r in result.rules for n in r.notes if any(t in n for t in TRACE_NOTES)]
    assert leg.spec is not None
    traced = leg.spec.bridge
    if notes:
        return f"spanning tree: {notes[0].strip('<> ')} (bridge {traced})"
    ovs = leg.host.ovs
    br = ovs.bridge(traced) if ovs else None
    if ovs is None or br is None:
        return None
    port_no = _in_port(result.flow)
    for port in br.ports:
        if any(i.ofport == port_no for i in port.interfaces) and (why := state(port)):
            return f"spanning tree: ingress port {port.name} is not forwarding ({why})"
    needed = [leg.target] if leg.target else list(leg.uplinks)
    for name in needed:
        target = ovs.bridge_of_port(name)
        if target is None or target.name == traced:
            continue
        for port in target.ports:
            if any(i.type == "patch" for i in port.interfaces) and (why := state(port)):
                return (
                    f"spanning tree: patch port {port.name} into bridge {target.name} is not "
                    f"forwarding ({why})"
                )
    return None


def _in_port(flow: str) -> int | None:
    for part in flow.split(","):
        key, _, value = part.partition("=")
        if key.strip() == "in_port" and value.isdigit():
            return int(value)
    return None
