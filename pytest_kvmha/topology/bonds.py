"""Bonded uplinks in traces: a bond is one port of several interfaces.

ofproto/trace names a frame's exit by the datapath port of the member the bond chose
(ofproto-dpif-xlate.c ``output_normal()``); ``dpif/show`` maps that number to the member's
interface name, and this maps it back to its bond. A frame enters a bond only by its active
member: "Drop all packets which arrive on backup members" (active-backup), and broadcasts on
an inactive member of any mode are dropped (ofproto/bond.c ``bond_check_admissibility()``),
so a trace into a bond starts at the member ``bond/show`` calls active.
"""

from __future__ import annotations

from pytest_kvmha.facts import HostFacts, OvsPort
from pytest_kvmha.model import MissingFacts


def port_name(host: HostFacts, ifname: str) -> str:
    """The port an interface belongs to when it is a bond member, else the interface's name."""
    port = host.ovs.port_of_interface(ifname) if host.ovs else None
    return port.name if port is not None and port.is_bond else ifname


def entry_ofport(host: HostFacts, port: OvsPort) -> int | None:
    """The OpenFlow port a frame from the wire arrives by on ``port``: for a bond its active
    member (bond/show); None for a plain port (its interface's own ofport applies)."""
    if not port.is_bond:
        return None
    ovs = host.ovs
    if ovs is None or ovs.bonds is None:
        problem = ovs.bonds_problem if ovs else None
        raise MissingFacts(f"{host.name}: bond {port.name}: {problem or 'bond state unknown'}")
    bond = ovs.bonds.get(port.name)
    active = bond.active if bond is not None else None
    if active is None:
        raise MissingFacts(f"{host.name}: bond {port.name} has no active member (bond/show)")
    for iface in port.interfaces:
        if iface.name == active.name and iface.ofport is not None and iface.ofport > 0:
            return iface.ofport
    raise MissingFacts(f"{host.name}: bond {port.name}: active member {active.name} has no ofport")
