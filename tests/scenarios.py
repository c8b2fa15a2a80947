"""Named HA cluster layouts built on the namespace lab, good and broken, with what an audit of
each must find. The audit's end-to-end tests and the provisioning tests share them.

Every scenario uses two lab hosts, named ``kvm-a`` and ``kvm-b`` in its inventory, and one
cluster ``edge-fw`` with two interface pairs ``If1`` (br1-internal) and ``If2`` (br2-external);
a scenario with a ``second`` cluster adds ``core-fw`` with one pair ``Core1`` on br1-internal.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from lxml import etree

from pytest_kvmha.testing import Lab, LabHost, LabNic, firewall_domain_xml

CLUSTER = "edge-fw"
HOSTS = ("kvm-a", "kvm-b")
PAIRS = (("If1", "br1-internal", 101), ("If2", "br2-external", 102))
SECOND = "core-fw"  # the second cluster of a scenario that has one
# the cluster-scope checks of the firewalls' own configuration and consoles: skipped where none
# is declared
FIREWALL_CLUSTER_CHECKS = (
    *("KVMHA-FW-002", "KVMHA-FW-003", "KVMHA-FW-004", "KVMHA-FW-005"),
    *("KVMHA-FGCP-001", "KVMHA-FGCP-002", "KVMHA-FGCP-003", "KVMHA-FGCP-004"),
    *("KVMHA-FIRM-001", "KVMHA-HA-001"),
)
SECOND_PAIRS = (("Core1", "br1-internal", 101),)
TRUNK_BRIDGE = "br-trunk"
UPLINK = ("up-a", "up-b")  # the wire between the servers: its end on kvm-a, on kvm-b
# wiring="per-pair": one wire per pair, each end on that pair's bridge (kvm-a end, kvm-b end)
PAIR_UPLINKS = (("up1-a", "up1-b"), ("up2-a", "up2-b"))
# "bonded" trunk wiring: two wires, bonded on each side into the port named UPLINK[h]
BOND_WIRES = (("bond-a1", "bond-b1"), ("bond-a2", "bond-b2"))

Key = tuple[str, str]  # (check id, subject)
PASSTHROUGH = "KVMHA-SRIOV-001"
IDENTITY = "KVMHA-ID-001"  # its subjects are the segments (pytest_kvmha.topology.segments)


@dataclass(frozen=True)
class Member:
    host: int  # 0 = kvm-a, 1 = kvm-b
    domain: str
    role: str
    nics: tuple[LabNic, ...]
    start: bool = True
    machine: str = "pc"
    via_network: bool = False  # NICs use libvirt networks (one per pair) with OVS virtualport

    def xml(self) -> str:
        xml = firewall_domain_xml(self.domain, self.nics, machine=self.machine)
        if not self.via_network:
            return xml
        root = etree.fromstring(xml.encode())
        for iface in root.iter("interface"):
            source = iface.find("source")
            vport = iface.find("virtualport")
            assert source is not None
            iface.set("type", "network")
            source.attrib["network"] = network_name(source.attrib.pop("bridge"))
            if vport is not None:  # comes from the network
                iface.remove(vport)
        return etree.tostring(root, encoding="unicode")


def network_name(bridge: str) -> str:
    return f"ha-{bridge}"


def network_xml(bridge: str) -> str:
    """A libvirt network over an existing OVS bridge (libvirt formatnetwork, 'bridge' mode)."""
    return (
        f"<network>\n  <name>{network_name(bridge)}</name>\n  <forward mode='bridge'/>\n"
        f"  <bridge name='{bridge}'/>\n  <virtualport type='openvswitch'/>\n</network>\n"
    )


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    members: tuple[Member, Member]
    vendor: str = "cos-core"
    heartbeat: str = "broadcast"
    package_installed: tuple[tuple[int, str], ...] = ()  # (host, package)
    promisc_off: tuple[tuple[int, str], ...] = ()  # (host, ifname)
    unreachable: tuple[int, ...] = ()  # hosts whose sshd is stopped
    bare: bool = False  # no OVS bridges at all; on two servers the wire stays outside OVS
    # two servers: "trunk" (one wire on a trunk bridge, patch ports to the pair bridges) or
    # "per-pair" (one wire per pair bridge, trunking that pair's VLAN)
    wiring: str = "trunk"
    trunks: tuple[tuple[int, str, str], ...] = ()  # (host, uplink, trunks) set after building
    # "trunk" wiring: each pair's VLAN is the access tag of its patch port on the trunk bridge
    # (members untagged) instead of the members' own tags
    patch_tags: bool = False
    port_tags: tuple[tuple[int, str, int], ...] = ()  # (host, port, tag) set after building
    # (host, port, "column=value") set on an OVS Port after building (e.g. an access uplink)
    port_settings: tuple[tuple[int, str, str], ...] = ()
    # (host, bridge, flow) OpenFlow rules added after building (``ovs-ofctl add-flow``), as an
    # SDN controller or a forgotten debugging session leaves them
    flows: tuple[tuple[int, str, str], ...] = ()
    # (host, bridge, "column=value") set on an OVS Bridge after building (e.g. stp_enable=true)
    bridge_settings: tuple[tuple[int, str, str], ...] = ()
    bonded: bool = False  # "trunk" wiring over a bond of two wires (BOND_WIRES) on each side
    links_down: tuple[tuple[int, str], ...] = ()  # (host, ifname) set down after building
    mtus: tuple[tuple[int, str, int], ...] = ()  # (host, ifname, MTU) set after building
    # the members of a second cluster (SECOND, pairs SECOND_PAIRS), defined after the first's
    second: tuple[Member, ...] = ()
    group_ids: tuple[int | None, int | None] = (None, None)  # inventory group_id of each cluster
    expected: Mapping[Key, str] = field(default_factory=dict)  # every finding's status

    @property
    def two_servers(self) -> bool:
        return self.members[0].host != self.members[1].host

    def round_trips(self, host: int) -> int:
        """Round trips an audit makes to lab host ``host``: the batch, plus the trace phase
        where the host holds a port of the cluster and every member runs and is reachable."""
        traced = not self.unreachable and all(m.start for m in self.members)
        return 1 + (traced and any(m.host == host for m in self.members))

    def inventory(self, lab: Lab) -> str:
        """The scenario's inventory (TOML) for this lab."""
        lines = []
        for i, name in enumerate(HOSTS):
            lines += [f"[hosts.{name}]", f"spec = {json.dumps(lab.hosts[i].spec)}", ""]
        lines += self._cluster(CLUSTER, self.members, PAIRS, self.group_ids[0], self.two_servers)
        if self.second:
            lines += [
                "",
                *self._cluster(SECOND, self.second, SECOND_PAIRS, self.group_ids[1], True),
            ]
        if self.two_servers and self.bare:  # for provisioning: which NIC joins the servers,
            # and where; only bare servers need it (a plan repairs the wiring that exists)
            i = lines.index("]")
            lines[i + 1 : i + 1] = [
                f'uplinks = {{ {HOSTS[0]} = "{UPLINK[0]}", {HOSTS[1]} = "{UPLINK[1]}" }}',
                f'trunk_bridge = "{TRUNK_BRIDGE}"',
            ]
        return "\n".join(lines) + "\n"

    def _cluster(
        self,
        name: str,
        members: tuple[Member, ...],
        pairs: tuple[tuple[str, str, int], ...],
        group_id: int | None,
        vlans: bool,
    ) -> list[str]:
        """One cluster's inventory table: members, group_id when given, pairs (with their VLAN
        when ``vlans``)."""
        lines = [
            f"[clusters.{name}]",
            f"vendor = {json.dumps(self.vendor)}",
            f"heartbeat = {json.dumps(self.heartbeat)}",
            *([f"group_id = {group_id}"] if group_id is not None else []),
            "members = [",
        ]
        for m in members:
            lines.append(
                f"  {{ host = {json.dumps(HOSTS[m.host])}, domain = {json.dumps(m.domain)}, "
                f"role = {json.dumps(m.role)} }},"
            )
        lines.append("]")
        for pair, bridge, vlan in pairs:
            lines += [
                "",
                f"[[clusters.{name}.pairs]]",
                f"name = {json.dumps(pair)}",
                f"bridge = {json.dumps(bridge)}",
            ]
            if vlans:
                lines.append(f"vlan = {vlan}")
        return lines

    def build(self, lab: Lab) -> None:
        """Create the scenario on a started, empty lab (see :func:`reset`)."""
        hosts = {m.host for m in self.members}
        for h in hosts if not self.bare else ():
            host = lab.hosts[h]
            for _, bridge, _ in PAIRS:
                host.add_bridge(bridge)
        if self.two_servers:
            a, b = lab.hosts[0], lab.hosts[1]
        if self.two_servers and self.bonded:
            for end_a, end_b in BOND_WIRES:
                lab.wire(a, end_a, b, end_b)
        elif self.two_servers and (self.bare or self.wiring == "trunk"):
            lab.wire(a, UPLINK[0], b, UPLINK[1])
        if self.two_servers and not self.bare and self.wiring == "per-pair":
            for k, (_, bridge, vlan) in enumerate(PAIRS):
                lab.wire(a, PAIR_UPLINKS[k][0], b, PAIR_UPLINKS[k][1])
                for host, uplink in ((a, PAIR_UPLINKS[k][0]), (b, PAIR_UPLINKS[k][1])):
                    host.add_port(bridge, uplink, f"trunks=[{vlan}]")
        elif self.two_servers and not self.bare:
            trunks = "trunks=[" + ",".join(str(v) for _, _, v in PAIRS) + "]"
            for side, (host, uplink) in enumerate(((a, UPLINK[0]), (b, UPLINK[1]))):
                host.add_bridge(TRUNK_BRIDGE)
                if self.bonded:
                    members = [wire[side] for wire in BOND_WIRES]
                    host.ovs_vsctl(
                        "--may-exist", "add-bond", TRUNK_BRIDGE, uplink, *members, trunks
                    )
                else:
                    host.add_port(TRUNK_BRIDGE, uplink, trunks)
                for k, (_, bridge, _) in enumerate(PAIRS, start=1):
                    inner, outer = f"patch-{k}-in", f"patch-{k}-out"
                    host.patch(bridge, inner, TRUNK_BRIDGE, outer)
        for h in sorted({m.host for m in self.members if m.via_network}):
            for _, bridge, _ in PAIRS:
                _define_network(lab.hosts[h], network_xml(bridge))
        for m in self.members + self.second:
            lab.hosts[m.host].define_domain(m.xml(), start=m.start)
        for h, package in self.package_installed:
            lab.hosts[h].set_package_installed(package, True)
        for h, uplink, trunks in self.trunks:
            lab.hosts[h].ovs_vsctl("set", "Port", uplink, f"trunks={trunks}")
        for h in sorted({m.host for m in self.members}) if self.patch_tags else ():
            for k, (_, _, vlan) in enumerate(PAIRS, start=1):
                lab.hosts[h].ovs_vsctl("set", "Port", f"patch-{k}-out", f"tag={vlan}")
        for h, port, tag in self.port_tags:
            lab.hosts[h].ovs_vsctl("set", "Port", port, f"tag={tag}")
        for h, port, setting in self.port_settings:
            lab.hosts[h].ovs_vsctl("set", "Port", port, setting)
        for h, bridge, flow in self.flows:
            lab.hosts[h].run(["ovs-ofctl", "add-flow", bridge, flow])
        for h, bridge, setting in self.bridge_settings:
            lab.hosts[h].ovs_vsctl("set", "Bridge", bridge, setting)
        for h, ifname, mtu in self.mtus:
            lab.hosts[h].run(["ip", "link", "set", "dev", ifname, "mtu", str(mtu)])
        for h, ifname in self.links_down:
            lab.hosts[h].run(["ip", "link", "set", "dev", ifname, "down"])
        for h, ifname in self.promisc_off:
            lab.hosts[h].set_promisc(ifname, False)
        for h in self.unreachable:
            lab.stop_sshd(lab.hosts[h])


def reset(lab: Lab) -> None:
    """Return every lab host to empty: no domains, no bridges, no wires, no extra packages."""
    for host in lab.hosts:
        _reset_host(host)


def build_scenario(lab: Lab, scenario: Scenario, directory: Path) -> Path:
    """Reset the lab, build ``scenario`` on it and write its inventory to
    ``directory/clusters.toml`` (returned)."""
    reset(lab)
    scenario.build(lab)
    inventory = directory / "clusters.toml"
    inventory.write_text(scenario.inventory(lab))
    return inventory


def _define_network(host: LabHost, xml: str) -> None:
    path = host.hostdir / "network.xml"
    path.write_text(xml)
    try:
        host.virsh("net-define", str(path))
    finally:
        path.unlink(missing_ok=True)
    name = xml.split("<name>")[1].split("</name>")[0]
    host.virsh("net-start", name)


def _reset_host(host: LabHost) -> None:
    for uuid in host.virsh("list", "--uuid").split():
        host.virsh("destroy", uuid)
    for uuid in host.virsh("list", "--all", "--uuid").split():
        host.virsh("undefine", uuid)
    for uuid in host.virsh("net-list", "--uuid").split():
        host.virsh("net-destroy", uuid)
    for uuid in host.virsh("net-list", "--all", "--uuid").split():
        host.virsh("net-undefine", uuid)
    for bridge in host.ovs_vsctl("list-br").split():
        host.ovs_vsctl("--if-exists", "del-br", bridge)
    for ifname in UPLINK + tuple(i for wire in PAIR_UPLINKS + BOND_WIRES for i in wire):
        host.run(["ip", "link", "del", ifname], check=False)
    host.set_package_installed("bridge-utils", False, purged=True)


def _nics(vlans: tuple[int | None, int | None] = (None, None)) -> tuple[LabNic, ...]:
    out = []
    for k, (_, bridge, _) in enumerate(PAIRS):
        out.append(LabNic(bridge=bridge, slot=3 + k, vlan=vlans[k]))
    return tuple(out)


def _with(nics: tuple[LabNic, ...], index: int, **changes: object) -> tuple[LabNic, ...]:
    return tuple(replace(n, **changes) if k == index else n for k, n in enumerate(nics))  # type: ignore[arg-type]


def _expect(
    *, two_servers: bool, hosts: tuple[str, ...], domains: tuple[str, str]
) -> dict[Key, str]:
    """The findings of a conforming cluster."""
    e: dict[Key, str] = {}
    for h in HOSTS:
        e[("KVMHA-PKG-001", h)] = "pass"
        e[("KVMHA-OVS-001", h)] = "pass"
    e[("KVMHA-TOPO-001", CLUSTER)] = "pass"
    e[("KVMHA-TOPO-002", CLUSTER)] = "pass" if two_servers else "fail"
    e[("KVMHA-HB-003", CLUSTER)] = "skip"
    for check in FIREWALL_CLUSTER_CHECKS:
        e[(check, CLUSTER)] = "skip"  # no firewall configuration (or console) declared
    for d in domains:
        e[("KVMHA-HB-002", d)] = "pass"
        e[("KVMHA-FW-001", d)] = "skip"
    for h in hosts:
        e[("KVMHA-HB-001", h)] = "pass" if two_servers else "skip"
        e[("KVMHA-OVS-004", h)] = "skip"  # no bonded uplink
        e[("KVMHA-VLAN-002", h)] = "pass" if two_servers else "skip"
    for _, bridge, vlan in PAIRS:  # one cluster: no other one shares its segments
        e[(IDENTITY, f"vlan{vlan}@kvm-a+kvm-b" if two_servers else f"kvm-a:{bridge}:untagged")] = (
            "pass"
        )
    for name, _, _ in PAIRS:
        for check in (
            "KVMHA-OVS-002",
            "KVMHA-OVS-003",
            "KVMHA-OVS-005",
            "KVMHA-VIRT-002",
            "KVMHA-VIRT-003",
        ):
            e[(check, name)] = "pass"
        e[("KVMHA-VLAN-001", name)] = "pass" if two_servers else "skip"
        for d in domains:
            e[("KVMHA-VIRT-001", f"{d}:{name}")] = "pass"
            e[("KVMHA-TRACE-001", f"{d}:{name}")] = "pass"
            e[(PASSTHROUGH, f"{d}:{name}")] = "skip"  # an OVS port, no passthrough NIC
    return e


def _traced(base: Mapping[Key, str], status: str, *subjects: str) -> dict[Key, str]:
    """``base`` with KVMHA-TRACE-001 of ``subjects`` (``domain:pair``) set to ``status``."""
    out = dict(base)
    for subject in subjects:
        assert ("KVMHA-TRACE-001", subject) in out, subject
        out[("KVMHA-TRACE-001", subject)] = status
    return out


_NOT_RUNNING = ("fw-master:If1", "fw-master:If2", "fw-slave:If1", "fw-slave:If2")
_TWO_IF2 = ("fw-a:If2", "fw-b:If2")


_SINGLE = (
    Member(0, "fw-master", "master", _nics()),
    Member(0, "fw-slave", "slave", _nics()),
)
_TWO = (
    Member(0, "fw-a", "master", _nics((101, 102))),
    Member(1, "fw-b", "slave", _nics((101, 102))),
)
SINGLE_OK = _expect(two_servers=False, hosts=("kvm-a",), domains=("fw-master", "fw-slave"))
TWO_OK = _expect(two_servers=True, hosts=HOSTS, domains=("fw-a", "fw-b"))


def _variant(base: Mapping[Key, str], **changes: str) -> dict[Key, str]:
    out = dict(base)
    for key, status in changes.items():
        check, subject = key.split("__")
        out[(check.replace("_", "-"), subject.replace("_", "-").replace("-COLON-", ":"))] = status
    return out


def _segments(
    base: Mapping[Key, str], drop: tuple[str, ...] = (), add: tuple[str, ...] = ()
) -> dict[Key, str]:
    """``base`` with the KVMHA-ID-001 findings of segments ``drop`` gone and ``add`` passing
    (one cluster: whatever the segments, none is shared)."""
    out = {k: v for k, v in base.items() if k not in {(IDENTITY, d) for d in drop}}
    assert len(out) == len(base) - len(drop), drop
    return out | {(IDENTITY, a): "pass" for a in add}


def _bare_two() -> dict[Key, str]:
    e = dict(TWO_OK)
    for key in e:
        if key[0] in (
            "KVMHA-HB-001",
            "KVMHA-OVS-002",
            "KVMHA-VIRT-001",
            "KVMHA-VLAN-001",
            "KVMHA-VLAN-002",
        ):
            e[key] = "fail"
        if key[0] == "KVMHA-TRACE-001":
            e[key] = "skip"  # stopped domains: no port to trace from
        if key[0] in ("KVMHA-OVS-003", "KVMHA-OVS-004", "KVMHA-OVS-005"):
            e[key] = "skip"  # no OVS bridge: no switch path to judge
    # on no OVS bridge: no segment (the only cluster: nothing else could share one)
    return _segments(e, drop=("vlan101@kvm-a+kvm-b", "vlan102@kvm-a+kvm-b"))


def _unreachable_b() -> dict[Key, str]:
    e = dict(TWO_OK)
    for key in list(e):
        check, subject = key
        if check.startswith(("KVMHA-FW-", "KVMHA-FGCP-", "KVMHA-FIRM-", "KVMHA-HA-")):
            continue  # no firewall configuration declared: skipped, whatever the host
        if (
            subject in ("kvm-b", "fw-b")
            or subject.startswith("fw-b:")
            or check
            in (
                "KVMHA-TOPO-001",
                "KVMHA-TOPO-002",
                "KVMHA-OVS-002",
                "KVMHA-OVS-003",
                "KVMHA-OVS-005",
                "KVMHA-VIRT-002",
                "KVMHA-VIRT-003",
                "KVMHA-VLAN-001",
                "KVMHA-VLAN-002",
                "KVMHA-TRACE-001",
            )
        ):
            e[key] = "error"
    return e


# core-fw: fw-c on kvm-a, fw-d on kvm-b, one NIC each on br1-internal in VLAN 101, where
# edge-fw's If1 is: one segment (VLAN 101 between the servers) for both clusters
_CORE = (
    Member(0, "fw-c", "master", (LabNic(bridge="br1-internal", slot=3, vlan=101),)),
    Member(1, "fw-d", "slave", (LabNic(bridge="br1-internal", slot=3, vlan=101),)),
)


def _two_clusters(shared: str) -> dict[Key, str]:
    """two-ok plus core-fw (conforming) on If1's segment; that segment's KVMHA-ID-001 ``shared``.
    Subjects the clusters have in common (their hosts) have one status in both."""
    e = dict(TWO_OK)
    e[(IDENTITY, "vlan101@kvm-a+kvm-b")] = shared
    for check in ("KVMHA-TOPO-001", "KVMHA-TOPO-002"):
        e[(check, SECOND)] = "pass"
    for check in ("KVMHA-HB-003", *FIREWALL_CLUSTER_CHECKS):
        e[(check, SECOND)] = "skip"
    for m in _CORE:
        e[("KVMHA-HB-002", m.domain)] = "pass"
        e[("KVMHA-FW-001", m.domain)] = "skip"
    for name, _, _ in SECOND_PAIRS:
        for check in ("KVMHA-OVS-002", "KVMHA-OVS-003", "KVMHA-OVS-005", "KVMHA-VLAN-001"):
            e[(check, name)] = "pass"
        for check in ("KVMHA-VIRT-002", "KVMHA-VIRT-003"):
            e[(check, name)] = "pass"
        for m in _CORE:
            e[(PASSTHROUGH, f"{m.domain}:{name}")] = "skip"
            e[("KVMHA-VIRT-001", f"{m.domain}:{name}")] = "pass"
            e[("KVMHA-TRACE-001", f"{m.domain}:{name}")] = "pass"
    return e


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "single-ok", "both members on kvm-a, one bridge per pair", _SINGLE, expected=SINGLE_OK
        ),
        Scenario(
            "two-ok",
            "members on kvm-a and kvm-b, VLAN 101/102 per pair over a trunk "
            "bridge joined by patch ports",
            _TWO,
            vendor="fortigate",
            expected=TWO_OK,
        ),
        Scenario(
            "bridge-utils",
            "single-ok, but bridge-utils is installed on kvm-a",
            _SINGLE,
            package_installed=((0, "bridge-utils"),),
            expected=_variant(SINGLE_OK, KVMHA_PKG_001__kvm_a="fail"),
        ),
        Scenario(
            "shared-bridge",
            "single-ok, but both pairs sit on br1-internal",
            tuple(replace(m, nics=_with(m.nics, 1, bridge="br1-internal")) for m in _SINGLE),  # type: ignore[arg-type]
            expected=_segments(
                _variant(SINGLE_OK, KVMHA_OVS_002__If1="fail", KVMHA_OVS_002__If2="fail"),
                drop=("kvm-a:br2-external:untagged",),
            ),
        ),
        Scenario(
            "missing-virtualport",
            "single-ok, but fw-slave's If2 NIC lacks <virtualport type='openvswitch'/> "
            "(so it cannot start: judged from its inactive XML)",
            (
                _SINGLE[0],
                replace(_SINGLE[1], nics=_with(_SINGLE[1].nics, 1, virtualport=False), start=False),
            ),
            expected=_traced(
                _variant(SINGLE_OK, KVMHA_VIRT_001__fw_slave_COLON_If2="fail"),
                "skip",
                *_NOT_RUNNING,
            ),
        ),
        Scenario(
            "slot-mismatch",
            "single-ok, but fw-slave's If2 NIC is in PCI slot 5, not 4",
            (_SINGLE[0], replace(_SINGLE[1], nics=_with(_SINGLE[1].nics, 1, slot=5))),
            expected=_variant(SINGLE_OK, KVMHA_VIRT_002__If2="fail"),
        ),
        Scenario(
            "promisc-off",
            "two-ok, but the uplink on kvm-a is not promiscuous",
            _TWO,
            vendor="fortigate",
            promisc_off=((0, UPLINK[0]),),
            expected=_variant(TWO_OK, KVMHA_HB_001__kvm_a="fail"),
        ),
        Scenario(
            "vlan-clash",
            "two-ok, but both pairs use VLAN 101",
            tuple(replace(m, nics=_nics((101, 101))) for m in _TWO),  # type: ignore[arg-type]
            vendor="fortigate",
            expected=_segments(
                _traced(
                    _variant(TWO_OK, KVMHA_VLAN_001__If1="fail", KVMHA_VLAN_001__If2="fail"),
                    "fail",
                    *_TWO_IF2,
                ),
                drop=("vlan102@kvm-a+kvm-b",),
            ),
        ),
        Scenario(
            "q35-ok",
            "single-ok on q35 machines: each NIC behind its own pcie-root-port",
            tuple(
                replace(
                    m,
                    machine="q35",
                    nics=tuple(replace(n, slot=k + 1) for k, n in enumerate(m.nics)),
                )
                for m in _SINGLE
            ),  # type: ignore[arg-type]
            expected=SINGLE_OK,
        ),
        Scenario(
            "network-ok",
            "single-ok, NICs through libvirt networks (forward bridge) with OVS virtualport",
            tuple(replace(m, via_network=True) for m in _SINGLE),  # type: ignore[arg-type]
            expected=SINGLE_OK,
        ),
        Scenario(
            "mac-filter",
            "single-ok, but fw-slave's If1 NIC has <filterref filter='clean-traffic'/> (nests "
            "no-mac-spoofing); defined, not started (no ebtables here)",
            (
                _SINGLE[0],
                replace(
                    _SINGLE[1],
                    nics=_with(_SINGLE[1].nics, 0, filterref="clean-traffic"),
                    start=False,
                ),
            ),
            expected=_traced(
                _variant(SINGLE_OK, KVMHA_HB_002__fw_slave="fail"), "skip", *_NOT_RUNNING
            ),
        ),
        Scenario(
            "q35-misaligned",
            "q35-ok, but fw-slave's If2 NIC sits behind root port 5 (bus 0x05), not 2",
            (
                replace(
                    _SINGLE[0],
                    machine="q35",
                    nics=tuple(replace(n, slot=k + 1) for k, n in enumerate(_SINGLE[0].nics)),
                ),
                replace(
                    _SINGLE[1],
                    machine="q35",
                    nics=(replace(_SINGLE[1].nics[0], slot=1), replace(_SINGLE[1].nics[1], slot=5)),
                ),
            ),
            expected=_variant(SINGLE_OK, KVMHA_VIRT_002__If2="fail"),
        ),
        Scenario(
            "two-bare",
            "two servers with nothing set up: no OVS bridges, NICs on unknown bridges without "
            "virtualport or VLAN (so stopped), the wire between the servers outside OVS",
            tuple(
                replace(
                    m,
                    nics=tuple(replace(n, vlan=None, virtualport=False) for n in m.nics),
                    start=False,
                )
                for m in _TWO
            ),  # type: ignore[arg-type]
            vendor="fortigate",
            bare=True,
            expected=_bare_two(),
        ),
        Scenario(
            "per-pair-ok",
            "two-ok, but wired with one uplink per pair bridge (up1-*, up2-*) trunking that "
            "pair's VLAN, no trunk bridge",
            _TWO,
            vendor="fortigate",
            wiring="per-pair",
            expected=TWO_OK,
        ),
        Scenario(
            "per-pair-missing-vlan",
            "per-pair-ok, but kvm-a's If2 uplink up2-a trunks VLAN 103, not 102",
            _TWO,
            vendor="fortigate",
            wiring="per-pair",
            trunks=((0, PAIR_UPLINKS[1][0], "[103]"),),
            expected=_segments(
                _traced(_variant(TWO_OK, KVMHA_VLAN_002__kvm_a="fail"), "fail", *_TWO_IF2),
                add=("kvm-a:br2-external:vlan102",),
            ),
        ),
        Scenario(
            "per-pair-promisc-off",
            "per-pair-ok, but kvm-b's If2 uplink up2-b is not promiscuous",
            _TWO,
            vendor="fortigate",
            wiring="per-pair",
            promisc_off=((1, PAIR_UPLINKS[1][1]),),
            expected=_variant(TWO_OK, KVMHA_HB_001__kvm_b="fail"),
        ),
        Scenario(
            "trunk-missing-vlan",
            "two-ok, but kvm-b's uplink up-b on the trunk bridge trunks only VLAN 101",
            _TWO,
            vendor="fortigate",
            trunks=((1, UPLINK[1], "[101]"),),
            expected=_segments(
                _traced(_variant(TWO_OK, KVMHA_VLAN_002__kvm_b="fail"), "fail", *_TWO_IF2),
                add=("kvm-b:br2-external:vlan102",),
            ),
        ),
        Scenario(
            "wrong-member-tag",
            "two-ok, but fw-b's If2 port (and XML) carries VLAN 103, not 102",
            (_TWO[0], replace(_TWO[1], nics=_nics((101, 103)))),
            vendor="fortigate",
            expected=_segments(
                _traced(_variant(TWO_OK, KVMHA_VLAN_001__If2="fail"), "fail", *_TWO_IF2),
                add=("kvm-b:br2-external:vlan103",),
            ),
        ),
        Scenario(
            "patch-tag-wrong",
            "two-ok, but each pair's VLAN is the tag of its patch port on br-trunk (members "
            "untagged), and kvm-b's patch-2-out carries VLAN 103, not 102",
            tuple(replace(m, nics=_nics()) for m in _TWO),  # type: ignore[arg-type]
            vendor="fortigate",
            patch_tags=True,
            port_tags=((1, "patch-2-out", 103),),
            expected=_segments(
                _traced(_variant(TWO_OK, KVMHA_VLAN_001__If2="fail"), "fail", *_TWO_IF2),
                add=("kvm-b:br2-external:vlan103",),
            ),
        ),
        Scenario(
            "trace-drop",
            "two-ok, but on kvm-b an OpenFlow rule on br1-internal drops Ethertype 0x8890 (the "
            "FGCP heartbeat): the configuration is right, the heartbeats never arrive",
            _TWO,
            vendor="fortigate",
            flows=((1, "br1-internal", "priority=100,dl_type=0x8890,actions=drop"),),
            expected=_traced(TWO_OK, "fail", "fw-a:If1", "fw-b:If1"),
        ),
        Scenario(
            "trace-vlan-rewrite",
            "two-ok, but on kvm-a an OpenFlow rule on br-trunk re-tags If1's 0x8890 frames from "
            "VLAN 101 to 201 and sends them out of up-a",
            _TWO,
            vendor="fortigate",
            flows=(
                (
                    0,
                    TRUNK_BRIDGE,
                    "priority=100,in_port=patch-1-out,dl_vlan=101,dl_type=0x8890,"
                    f"actions=mod_vlan_vid:201,output:{UPLINK[0]}",
                ),
            ),
            expected=_traced(TWO_OK, "fail", "fw-a:If1"),
        ),
        Scenario(
            "uplink-access",
            "two-ok, but kvm-b's uplink up-b is an access port of VLAN 101, not a trunk",
            _TWO,
            vendor="fortigate",
            port_settings=((1, UPLINK[1], "vlan_mode=access"), (1, UPLINK[1], "tag=101")),
            # VLAN 101 leaves kvm-b untagged and 102 not at all: both stay on kvm-b
            expected=_segments(
                _traced(
                    _variant(TWO_OK, KVMHA_VLAN_002__kvm_b="fail"),
                    "fail",
                    "fw-a:If1",
                    "fw-b:If1",
                    *_TWO_IF2,
                ),
                add=("kvm-b:br1-internal:vlan101", "kvm-b:br2-external:vlan102"),
            ),
        ),
        Scenario(
            "stp-on",
            "two-ok, but STP is on on kvm-b's br1-internal (its ports still listening)",
            _TWO,
            vendor="fortigate",
            bridge_settings=((1, "br1-internal", "stp_enable=true"),),
            expected=_traced(
                _variant(TWO_OK, KVMHA_OVS_003__If1="fail"), "fail", "fw-a:If1", "fw-b:If1"
            ),
        ),
        Scenario(
            "bond-ok",
            "two-ok, but the servers are joined by two wires, bonded on each side (add-bond "
            "up-a bond-a1 bond-a2, active-backup)",
            _TWO,
            vendor="fortigate",
            bonded=True,
            expected=_variant(TWO_OK, KVMHA_OVS_004__kvm_a="pass", KVMHA_OVS_004__kvm_b="pass"),
        ),
        Scenario(
            "bond-member-down",
            "bond-ok, but the second wire is down (bond-a2 set down on kvm-a)",
            _TWO,
            vendor="fortigate",
            bonded=True,
            links_down=((0, BOND_WIRES[1][0]),),
            expected=_variant(TWO_OK, KVMHA_OVS_004__kvm_a="fail", KVMHA_OVS_004__kvm_b="fail"),
        ),
        Scenario(
            "mtu-step",
            "two-ok, but kvm-a's uplink up-a has MTU 1400",
            _TWO,
            vendor="fortigate",
            mtus=((0, UPLINK[0], 1400),),
            expected=_variant(TWO_OK, KVMHA_OVS_005__If1="fail", KVMHA_OVS_005__If2="fail"),
        ),
        Scenario(
            "two-clusters-one-group",
            "two-ok, plus a second FortiGate cluster core-fw (fw-c on kvm-a, fw-d on kvm-b) on "
            "br1-internal VLAN 101 as edge-fw's If1, both declaring group_id 7: one segment, "
            "one group-id, colliding virtual MACs",
            _TWO,
            vendor="fortigate",
            second=_CORE,
            group_ids=(7, 7),
            expected=_two_clusters("fail"),
        ),
        Scenario(
            "unreachable",
            "two-ok, but kvm-b's sshd is down",
            _TWO,
            vendor="fortigate",
            unreachable=(1,),
            expected=_unreachable_b(),
        ),
    )
}

# Broken layouts that a plan makes conform (the others conform already, are unreachable, or are
# refused: q35-misaligned, where libvirt put the slave's USB controller at the master's NIC address).
FIXABLE = (
    "two-bare",
    "shared-bridge",
    "missing-virtualport",
    "slot-mismatch",
    "promisc-off",
    "vlan-clash",
    "mac-filter",
    "per-pair-missing-vlan",
    "per-pair-promisc-off",
    "trunk-missing-vlan",
    "wrong-member-tag",
    "patch-tag-wrong",
)
