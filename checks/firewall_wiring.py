"""Where the interfaces a firewall's configuration names are on the host: the members' facts,
the NIC behind an interface name (and the name of a NIC), and what makes a NIC pair a wired
link. Shared by the KVMHA-FW and KVMHA-FGCP checks and the MTU check; no checks here.

FortiGate-VM's ``portN`` and cOS Core's N-th Ethernet interface are the VM's N-th NIC in PCI
order (FortiGate-VM KVM Administration Guide; cOS Core KVM Installation Guide, ch. 7); where cOS
Core shows an interface's PCI bus, slot and port, that address decides.
"""

from __future__ import annotations

from collections.abc import Callable

from pytest_kvmha.facts.firewall import FgcpFacts, FirewallFacts
from pytest_kvmha.model import MissingFacts, Verdict, skipped
from pytest_kvmha.topology import Cluster, Member, member_firewall, nic_at_pci, nic_in_pci_order
from pytest_kvmha.topology.traffic import interface_of
from pytest_kvmha.vendors import cos_core, fortigate

from .firewall_agreement import show


def declared(m: Member) -> bool:
    return m.spec.config is not None or m.spec.console is not None


def cluster_facts(cluster: Cluster) -> list[tuple[Member, FirewallFacts]] | Verdict:
    """Every member's facts; a skip verdict when no member declares a configuration. Raises
    MissingFacts (an error finding) when one is declared and unreadable, or some member has none."""
    if not any(declared(m) for m in cluster.members):
        return skipped(
            f"no firewall configuration declared for {cluster.name} "
            "(inventory member keys 'config' or 'console')"
        )
    out = []
    for m in cluster.members:
        facts = member_firewall(m)
        if facts is None:
            raise MissingFacts(
                f"{m.label} on {m.host.name} declares no 'config' or 'console': the members' "
                "configurations cannot be compared"
            )
        out.append((m, facts))
    return out


# where an interface's NIC is: the N-th NIC in PCI order, or the NIC at a PCI (bus, slot, port)
# the firewall shows
Locator = tuple[str, int] | tuple[str, tuple[int, int, int]]


def fgcp_locator(m: Member, name: str, what: str, problems: list[str]) -> Locator | None:
    """Where FortiGate interface ``name`` (a ``what``: "heartbeat interface", ...) is."""
    number = fortigate.nic_number(name)
    if number is None:
        problems.append(
            f"{m.label}: {what} {show(name)} is not a portN interface (cannot tell its NIC)"
        )
        return None
    return ("order", number)


def nic_index(m: Member, name: str, where: Locator, problems: list[str]) -> int | None:
    """The pair index of the NIC at ``where``; None (and a problem) when there is none."""
    _, at = where
    try:
        if isinstance(at, tuple):
            return nic_at_pci(m, *at)
        return nic_in_pci_order(m, at)
    except IndexError:
        if isinstance(at, tuple):
            problems.append(
                f"{m.label}: {show(name)} is at PCI bus {at[0]} slot {at[1]} port {at[2]} "
                f"(as the firewall shows it), but no one NIC of {m.label} has that address"
            )
        else:
            problems.append(
                f"{m.label}: {show(name)} would be NIC #{at}, but {m.label} has "
                f"{len(m.domain().nics)} NICs: no interface pair"
            )
        return None


def locate(m: Member, name: str, what: str, problems: list[str]) -> int | None:
    """The pair index of FortiGate interface ``name`` on ``m``; None with a problem."""
    where = fgcp_locator(m, name, what, problems)
    return nic_index(m, name, where, problems) if where is not None else None


def configured_mtu(m: Member, facts: FirewallFacts, index: int) -> tuple[int, str]:
    """(MTU, what says so) of the firewall interface on NIC ``index`` of ``m``."""
    name = interface_of(m, index, facts)
    if isinstance(facts, FgcpFacts):
        mtu, how = facts.mtu.get(name), "mtu-override"
        default, vendor = fortigate.DEFAULT_MTU, "FortiOS"
    else:
        mtu, how = facts.mtu.get(name), "MTU"
        default, vendor = cos_core.DEFAULT_MTU, "cOS Core"
    if mtu is None:
        return default, f"{m.label} {show(name)} {default} ({vendor} default)"
    return mtu, f"{m.label} {show(name)} {mtu} ({how})"


def segment_problems(cluster: Cluster, k: int, pair_name: Callable[[int], str]) -> list[str]:
    """Problems of pair ``k`` as one segment: both NICs on one bridge and, across two servers,
    on one VLAN."""
    problems = []
    placements = cluster.placements(k)
    bridges = {m.label: p.bridge_name for m, p in placements}
    for label, b in bridges.items():
        if b is None:
            problems.append(f"{label}'s NIC #{k + 1} ({pair_name(k)}) is on no bridge")
    if None in bridges.values():
        return problems
    if len(set(bridges.values())) > 1:
        problems.append(
            f"{pair_name(k)} is not on one bridge: "
            + ", ".join(f"{label} {b}" for label, b in bridges.items())
        )
    vlans = {m.label: p.vlan for m, p in placements}
    if cluster.two_servers() and (None in vlans.values() or len(set(vlans.values())) > 1):
        problems.append(
            f"{pair_name(k)} has no VLAN of its own between the servers: "
            + ", ".join(
                f"{label} {v if v is not None else 'untagged'}" for label, v in vlans.items()
            )
        )
    return problems


def pair_wiring(cluster: Cluster, k: int, pair_name: Callable[[int], str]) -> list[str]:
    """Problems of pair ``k`` as a heartbeat/sync pair: one bridge, its own, its own VLAN."""
    problems = segment_problems(cluster, k, pair_name)
    if any(p.bridge_name is None for _, p in cluster.placements(k)):
        return problems
    two = cluster.two_servers()
    for other in range(len(cluster.pairs())):
        if other == k:
            continue
        for m, p in cluster.placements(k):
            if other >= len(m.domain().nics):
                continue
            q = cluster.placement(m, other)
            if q.bridge_name == p.bridge_name:
                problems.append(
                    f"bridge {p.bridge_name} on {m.host.name} also carries {pair_name(other)}"
                )
            elif two and p.vlan is not None and q.vlan == p.vlan:
                problems.append(f"VLAN {p.vlan} also carries {pair_name(other)} on {m.host.name}")
    return problems


def where(cluster: Cluster, k: int) -> str:
    """The bridges (and VLANs) pair ``k`` is on, for a pass message."""
    return ", ".join(
        dict.fromkeys(
            f"bridge {p.bridge_name}" + (f" VLAN {p.vlan}" if p.vlan is not None else "")
            for _, p in cluster.placements(k)
        )
    )
