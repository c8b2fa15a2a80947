"""How each interface pair is wired: one OVS bridge per pair, virtualport binding, PCI, model."""

from __future__ import annotations

from pytest_kvmha.config.inventory import PairSpec
from pytest_kvmha.config.spelling import close_match, listing
from pytest_kvmha.model import Scope, Verdict, check, failed, passed
from pytest_kvmha.remediation import command, comment, xml_attr
from pytest_kvmha.topology import Cluster, Member, persistent, require_ovs
from pytest_kvmha.topology.cluster import Placement

COS_GUIDE = "Clavister cOS Core KVM Installation Guide, ch. 7 (Configuring Open vSwitch for HA)"


@check(
    "KVMHA-OVS-002",
    title="Each interface pair has its own OVS bridge",
    severity="critical",
    scope=Scope.PAIR,
    rationale="""
        The two NICs of a pair must meet on one virtual switch, and that switch must carry only
        that pair: two pairs on one bridge leak heartbeats and shared MACs across interfaces.""",
    remediation="ovs-vsctl add-br BRIDGE, then attach both NICs of the pair to it "
    "(virsh edit DOMAIN: <source bridge='BRIDGE'/>).",
    source=COS_GUIDE,
)
def pair_has_own_bridge(cluster: Cluster, index: int, pair: PairSpec) -> Verdict:
    placements = cluster.placements(index)
    names = {m.label: p.bridge_name for m, p in placements}
    problems = []
    for m, p in placements:
        if p.bridge is None:
            where = p.bridge_name or "no bridge"
            problems.append(
                f"{m.label} NIC #{index + 1} is on {where}, not an OVS bridge on {m.host.name}"
            )
    if len(set(names.values())) > 1:
        problems.append("bridges differ: " + ", ".join(f"{d} on {b}" for d, b in names.items()))
    typo = _misspelt_bridge(placements, pair)
    if typo is not None:  # the inventory's bridge is a typo: no creating the misspelt bridge
        problem, match = typo
        return failed(
            problem,
            expected=f"both NICs on the declared OVS bridge {pair.bridge}, which exists",
            found=", ".join(f"{d}: {b}" for d, b in names.items()),
            remediation=comment(
                f"did you mean {match}? correct the inventory: cluster {cluster.name}, "
                f'pair {pair.name}: bridge = "{match}"'
            ),
        )
    if pair.bridge and any(b != pair.bridge for b in names.values()):
        problems.append(f"declared bridge is {pair.bridge}")
    for k, other in enumerate(cluster.pairs()):
        if k == index:
            continue
        for m, p in placements:
            if k >= len(m.domain().nics) or p.bridge_name is None:
                continue
            mine = cluster.placement(m, k)
            if mine.bridge_name == p.bridge_name:
                problems.append(
                    f"{p.bridge_name} on {m.host.name} is also used by pair {other.name}"
                )
                break
    if problems:
        want = pair.bridge or next(iter(names.values())) or f"br-{pair.name.lower()}"
        fixes = [
            command("ovs-vsctl", "--may-exist", "add-br", want, note=f"on {host}")
            for host in dict.fromkeys(
                m.host.name for m, _ in placements if require_ovs(m.host).bridge(want) is None
            )
        ]
        fixes += [
            command(
                "virsh",
                "edit",
                m.label,
                note=f"on {m.host.name}, NIC #{index + 1}: <source bridge={xml_attr(want)}/>",
            )
            for m, p in placements
            if p.bridge_name != want
        ]
        return failed(
            "; ".join(dict.fromkeys(problems)),
            expected=f"both NICs on one OVS bridge{' ' + pair.bridge if pair.bridge else ''} used by no other pair",
            found=", ".join(f"{d}: {b}" for d, b in names.items()),
            remediation="\n".join(fixes),
        )
    return passed(f"pair {pair.name} on its own OVS bridge {next(iter(names.values()))}")


def _misspelt_bridge(
    placements: list[tuple[Member, Placement]], pair: PairSpec
) -> tuple[str, str] | None:
    """(problem, close match) when the pair's declared bridge exists on none of the members'
    hosts and a bridge there is a close match of its name (a typo in the inventory)."""
    if not pair.bridge:
        return None
    hosts = {m.host.name: require_ovs(m.host) for m, _ in placements}
    if any(ovs.bridge(pair.bridge) is not None for ovs in hosts.values()):
        return None
    # the bridges the pair's NICs are on first: the likeliest meaning of the typo
    candidates = [p.bridge_name for _, p in placements if p.bridge_name] + [
        b.name for ovs in hosts.values() for b in ovs.bridges
    ]
    match = close_match(pair.bridge, candidates)
    if match is None:
        return None
    have = "; ".join(
        f"{host} has bridges {listing(b.name for b in ovs.bridges)}" for host, ovs in hosts.items()
    )
    problem = f"declared bridge {pair.bridge} does not exist on {', '.join(hosts)} ({have})"
    return f"{problem}: did you mean {match}?", match


@check(
    "KVMHA-VIRT-001",
    title="NIC is bound to its OVS bridge with virtualport type openvswitch",
    severity="critical",
    scope=Scope.MEMBER_NIC,
    rationale="""
        Without <virtualport type='openvswitch'/> libvirt treats an OVS bridge as a Linux
        bridge: the domain fails to start ('Unable to add bridge ... port vnet0: Operation not
        supported') or the NIC ends up outside OVS.""",
    remediation="virsh edit DOMAIN: <interface type='bridge'><source bridge='BRIDGE'/>"
    "<virtualport type='openvswitch'/>...</interface>",
    source=COS_GUIDE + "; libvirt formatdomain (Interfaces: virtualport)",
)
def nic_on_ovs(cluster: Cluster, member: Member, index: int, pair: PairSpec) -> Verdict:
    dom = member.domain()
    p = cluster.placement(member, index)
    nic = p.nic
    where = f"{dom.name} NIC #{index + 1} ({nic.mac or 'no MAC'})"
    problems = []
    if nic.type not in ("bridge", "network"):
        kind = {"hostdev": " (an SR-IOV VF / passthrough NIC", "direct": " (macvtap"}.get(nic.type)
        see = f"{kind}: see KVMHA-SRIOV-001)" if kind else ""
        problems.append(f"type='{nic.type}', not a bridge or OVS-backed network{see}")
    if p.bridge is None:
        problems.append(
            f"source {p.configured_bridge or '(none)'} is not an OVS bridge on {member.host.name}"
        )
    if p.virtualport != "openvswitch":
        problems.append(f"virtualport is {p.virtualport or 'missing'}")
    if dom.active and p.port is None and not problems:
        problems.append(f"running, but no OVS port carries MAC {nic.mac} (target {nic.target_dev})")
    saved = persistent(member.host, dom, index)
    if dom.active and dom.inactive_nics is not None and index >= len(dom.inactive_nics):
        # Hot-plugged with --live only: the next start brings the domain up without it.
        problems.append("not in the persistent XML: the NIC is gone at the next start")
    if saved is not None and not problems:
        # Right now, but not in the persistent XML: it breaks at the next start.
        snic, snet = saved
        svport = snic.virtualport or (snet.virtualport if snet else None)
        sbridge = snic.source_bridge or (snet.bridge if snet else None)
        if svport != "openvswitch":
            problems.append(
                "persistent XML lacks <virtualport type='openvswitch'/>: the NIC fails at the next start"
            )
        if sbridge != p.bridge_name:
            problems.append(
                f"persistent XML puts it on {sbridge}: it moves there at the next start"
            )
    if problems:
        bridge = p.bridge_name or pair.bridge
        source = (
            f"<source bridge={xml_attr(bridge)}/>"
            if bridge
            else "<source bridge=.../> (the pair's OVS bridge)"
        )
        return failed(
            f"{where}: " + "; ".join(problems),
            expected=f"type='bridge' on OVS bridge {bridge or '(the pair bridge)'} with "
            "<virtualport type='openvswitch'/>",
            found=f"type='{nic.type}' source={p.configured_bridge} virtualport={p.virtualport}",
            remediation=command(
                "virsh",
                "edit",
                dom.name,
                note=f"NIC {nic.mac}: <interface type='bridge'>"
                f"{source}<virtualport type='openvswitch'/>",
            ),
        )
    port = f", port {p.port.name}" if p.port else ""
    return passed(f"{where} on OVS bridge {p.bridge_name}{port} with virtualport openvswitch")


def _root_port(member: Member, bus: int) -> str | None:
    ctrl = member.domain().controller(bus)
    if ctrl is None:
        return None
    return (
        f"{ctrl.model} index={ctrl.index} chassis={ctrl.chassis} port={ctrl.port} at {ctrl.address}"
    )


@check(
    "KVMHA-VIRT-002",
    title="Both NICs of a pair have the same PCI address",
    severity="high",
    scope=Scope.PAIR,
    rationale="""
        cOS Core maps interfaces by PCI bus, slot and function: 'Interface pairs should have
        matching bus, slot, port', else the cluster pairs the wrong interfaces. On q35 the
        pcie-root-port behind each NIC (index, chassis, port) must match too.""",
    remediation="virsh edit the slave: give the NIC the master's <address type='pci' .../> "
    "(and on q35 the same pcie-root-port controller).",
    source=COS_GUIDE + " ('Interface pairs should have matching bus, slot, port')",
)
def pci_addresses_match(cluster: Cluster, index: int, pair: PairSpec) -> Verdict:
    nics = [(m, m.nic(index)) for m in cluster.members]
    addrs = {m.label: n.address for m, n in nics}
    found = ", ".join(f"{d}: {a or 'no PCI address'}" for d, a in addrs.items())
    if any(a is None for a in addrs.values()):
        return failed(
            f"NIC #{index + 1} has no PCI address: {found}",
            expected="a PCI address on each",
            found=found,
        )
    if len(set(addrs.values())) > 1:
        first, a0 = nics[0][0], nics[0][1].address
        fixes = [
            command(
                "virsh",
                "edit",
                m.label,
                note=f"NIC {n.mac}: <address type='pci' "
                f"domain='0x{a0.domain:04x}' bus='0x{a0.bus:02x}' slot='0x{a0.slot:02x}' "
                f"function='0x{a0.function:x}'/>",
            )
            for m, n in nics[1:]
            if a0 is not None and n.address != a0
        ]
        if a0 is not None and any(m.domain().is_q35 for m, _ in nics):
            # Moved onto the master's bus, the NIC sits behind that bus's controller: unless
            # it matches the master's, the pair is still misaligned after the move.
            master = _root_port(first, a0.bus)
            differ = [m for m, _ in nics[1:] if _root_port(m, a0.bus) != master]
            if differ:
                fixes.append(_copy_root_port(first, differ, a0.bus))
        return failed(
            f"pair {pair.name}: PCI addresses differ ({found})",
            expected=f"the same address on both (as {first.label}: {a0})",
            found=found,
            remediation="\n".join(fixes),
        )
    if any(m.domain().is_q35 for m, _ in nics):
        bus = nics[0][1].address.bus if nics[0][1].address else 0
        ports = {m.label: _root_port(m, bus) for m, _ in nics}
        if len(set(ports.values())) > 1:
            found = "; ".join(f"{d}: {p or 'no controller'}" for d, p in ports.items())
            return failed(
                f"pair {pair.name}: the PCI controllers behind bus {bus:#04x} differ ({found})",
                expected="the same pcie-root-port (index, chassis, port) on both",
                found=found,
                remediation=_copy_root_port(nics[0][0], [m for m, _ in nics[1:]], bus),
            )
    return passed(f"pair {pair.name}: both NICs at {next(iter(addrs.values()))}")


def _copy_root_port(master: Member, others: list[Member], bus: int) -> str:
    """``virsh edit`` lines that give the other members the master's controller for ``bus``."""
    ctrl = master.domain().controller(bus)
    target = (
        f"<target chassis='{ctrl.chassis}' port='{ctrl.port:#x}'/>"
        if ctrl is not None and ctrl.chassis is not None and ctrl.port is not None
        else "its <target chassis=... port=.../>"
    )
    model = xml_attr(ctrl.model if ctrl is not None else "pcie-root-port")
    if ctrl is not None and ctrl.address is not None:
        target += f" at PCI address {ctrl.address}"
    return "\n".join(
        command(
            "virsh",
            "edit",
            m.label,
            note=f"on {m.host.name}: copy {master.label}'s <controller type='pci' index='{bus}' "
            f"model={model}> with {target}",
        )
        for m in others
    )


@check(
    "KVMHA-VIRT-003",
    title="Both NICs of a pair use the same model",
    severity="medium",
    scope=Scope.PAIR,
    rationale="""
        Different NIC models enumerate differently in the guest (virtio vs e1000 names and
        drivers), so the members disagree on which interface is which.""",
    remediation="virsh edit the slave: <model type='MODEL'/> as on the master.",
    source=COS_GUIDE + "; libvirt formatdomain (Interfaces: model)",
)
def nic_models_match(cluster: Cluster, index: int, pair: PairSpec) -> Verdict:
    models = {m.label: m.nic(index).model or "default" for m in cluster.members}
    found = ", ".join(f"{d}: {v}" for d, v in models.items())
    if len(set(models.values())) > 1:
        first = next(iter(models.values()))
        return failed(
            f"pair {pair.name}: NIC models differ ({found})",
            expected=f"{first} on both",
            found=found,
            remediation="\n".join(
                command(
                    "virsh",
                    "edit",
                    m.label,
                    note=f"NIC #{index + 1}: <model type={xml_attr(first)}/>",
                )
                for m in cluster.members
                if models[m.label] != first
            ),
        )
    return passed(f"pair {pair.name}: both NICs are {next(iter(models.values()))}")
