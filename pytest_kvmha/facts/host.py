"""Frozen fact objects parsed from an evidence bundle.

Nothing here does I/O: :mod:`pytest_kvmha.parse.host` builds these from raw bundle sections and the
checks read them. ``None`` always means "not known" (the section was missing or broken), which
checks must turn into an ``error`` finding, never a ``pass``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pytest_kvmha.facts.trace import TraceEvidence

from pytest_kvmha.facts.bond import BondState
from pytest_kvmha.facts.firewall import FirewallConfig
from pytest_kvmha.facts.ha_status import HaStatusRead

EMPTY: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class PciAddress:
    domain: int
    bus: int
    slot: int
    function: int

    def __str__(self) -> str:
        return f"{self.domain:04x}:{self.bus:02x}:{self.slot:02x}.{self.function:x}"


@dataclass(frozen=True, slots=True)
class PciController:
    """A ``<controller type='pci'>``: on q35 each PCIe NIC sits behind a pcie-root-port."""

    index: int
    model: str
    chassis: int | None
    port: int | None
    address: PciAddress | None


@dataclass(frozen=True, slots=True)
class VlanSetting:
    """A libvirt ``<vlan>`` element: the tags and whether it is a trunk."""

    tags: tuple[int, ...]
    trunk: bool = False
    native: int | None = None


@dataclass(frozen=True, slots=True)
class DomainNic:
    """One ``<interface>`` of a domain, in document order (``index`` is 0-based)."""

    index: int
    type: str  # bridge | network | direct | ethernet | user | ...
    mac: str | None
    model: str | None
    source_bridge: str | None
    source_network: str | None
    source_portgroup: str | None
    source_dev: str | None  # macvtap parent
    source_mode: str | None  # macvtap mode
    virtualport: str | None  # openvswitch | 802.1Qbh | ...
    vlan: VlanSetting | None
    target_dev: str | None
    filterref: str | None
    trust_guest_rx_filters: bool
    address: PciAddress | None
    mtu: int | None = None  # <mtu size='N'/> (libvirt 3.1.0+); None: not set
    # <interface type='hostdev'>: the host PCI device passed through (<source><address/>), an
    # SR-IOV virtual function as a rule (libvirt formatdomain, "PCI Passthrough")
    source_address: PciAddress | None = None


@dataclass(frozen=True, slots=True)
class Domain:
    name: str
    uuid: str
    active: bool
    machine: str | None
    nics: tuple[DomainNic, ...]
    controllers: tuple[PciController, ...]
    source: str  # "live" or "inactive": which XML the facts were read from
    inactive_nics: tuple[DomainNic, ...] | None = None
    paused: bool = False
    inactive_xml: str = field(default="", repr=False, compare=False)  # raw, for plans and restores

    @property
    def is_q35(self) -> bool:
        return bool(self.machine and "q35" in self.machine)

    def controller(self, index: int) -> PciController | None:
        return next((c for c in self.controllers if c.index == index), None)


@dataclass(frozen=True, slots=True)
class LibvirtNetwork:
    name: str
    uuid: str
    forward_mode: str | None
    bridge: str | None
    virtualport: str | None
    portgroups: Mapping[str, VlanSetting | None]
    default_portgroup: str | None
    vlan: VlanSetting | None


@dataclass(frozen=True, slots=True)
class NwRule:
    """One ``<rule>`` of an nwfilter (libvirt formatnwfilter, "Filtering rules"): its first
    protocol element (``mac``, ``arp``, ``ip``, ...; None: no element, every frame) and that
    element's attributes; ``negated``: ``match='no'``."""

    action: str  # drop | reject | accept | return | continue
    direction: str  # in | out | inout
    priority: int  # default 500; lower runs first
    protocol: str | None
    attrs: Mapping[str, str]
    negated: bool = False


@dataclass(frozen=True, slots=True)
class NwFilter:
    name: str
    references: tuple[str, ...]
    chain: str = "root"
    priority: int | None = None  # the chain's priority; None: its protocol's default
    # rules and filterrefs in document order: an NwRule, or (filter name, priority) of a ref
    entries: tuple[NwRule | tuple[str, int], ...] = ()


@dataclass(frozen=True, slots=True)
class OvsInterface:
    name: str
    uuid: str
    type: str  # "" or "system" for a NIC, "internal", "patch", "tap", ...
    options: Mapping[str, str]
    external_ids: Mapping[str, str]
    ofport: int | None
    error: str | None
    mtu: int | None = None  # what OVS reports (read-only); None: none, or not collected
    mtu_request: int | None = None  # the knob a client sets

    @property
    def peer(self) -> str | None:
        return self.options.get("peer") if self.type == "patch" else None

    @property
    def attached_mac(self) -> str | None:
        mac = self.external_ids.get("attached-mac")
        return mac.lower() if mac else None


@dataclass(frozen=True, slots=True)
class OvsPort:
    name: str
    uuid: str
    bridge: str | None
    tag: int | None
    trunks: tuple[int, ...]
    vlan_mode: str | None
    interfaces: tuple[OvsInterface, ...]
    # None: the column was not collected (see OvsState.missing_columns)
    other_config: Mapping[str, str] | None = None
    status: Mapping[str, str] | None = None  # stp_state etc. while STP runs
    rstp_status: Mapping[str, str] | None = None  # rstp_port_state etc. while RSTP runs
    bond_mode: str | None = None
    lacp: str | None = None  # active | passive | off; None: unset (off)

    @property
    def is_bond(self) -> bool:
        """A Port with several interfaces is a bond (ovs-vswitchd.conf.db(5), Port interfaces)."""
        return len(self.interfaces) > 1

    @property
    def effective_vlan_mode(self) -> str:
        if self.vlan_mode:
            return self.vlan_mode
        return "access" if self.tag is not None else "trunk"

    def carries_vlan(self, vlan: int) -> bool:
        """Whether frames of ``vlan`` leave through this port tagged (ovs-vswitchd.conf.db(5))."""
        mode = self.effective_vlan_mode
        if mode in ("access", "dot1q-tunnel"):
            return False
        if self.tag == vlan:
            # OVS always trunks a port's native VLAN: tagged on native-tagged, untagged on
            # native-untagged (then it does not cross the link tagged).
            return mode == "native-tagged"
        return not self.trunks or vlan in self.trunks


@dataclass(frozen=True, slots=True)
class OvsBridge:
    name: str
    uuid: str
    datapath_type: str
    ports: tuple[OvsPort, ...]
    stp_enable: bool | None = None  # None: not collected
    rstp_enable: bool | None = None
    other_config: Mapping[str, str] | None = None


@dataclass(frozen=True, slots=True)
class OvsState:
    installed: bool
    db_answers: bool
    vswitchd_answers: bool
    version: str | None
    bridges: tuple[OvsBridge, ...]
    problem: str | None = None  # why the state is incomplete, if it is
    # "Table.column" of the columns an older bundle does not carry: their facts are unknown
    missing_columns: tuple[str, ...] = ()
    # bond/show + lacp/show by bond (Port) name; None: not collected, see ``bonds_problem``
    bonds: Mapping[str, BondState] | None = None
    bonds_problem: str | None = None
    # Lookup indexes, derived from ``bridges``: joins stay linear on hosts with thousands of ports.
    _by_name: Mapping[str, OvsBridge] = field(init=False, repr=False, compare=False)
    _port_by_iface: Mapping[str, OvsPort] = field(init=False, repr=False, compare=False)
    _ports_by_mac: Mapping[str, tuple[tuple[OvsPort, str | None], ...]] = field(
        init=False, repr=False, compare=False
    )
    _bridge_by_port: Mapping[str, OvsBridge] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_iface: dict[str, OvsPort] = {}
        by_mac: dict[str, list[tuple[OvsPort, str | None]]] = {}
        by_port: dict[str, OvsBridge] = {}
        for bridge in self.bridges:
            for port in bridge.ports:
                by_port.setdefault(port.name, bridge)
                for iface in port.interfaces:
                    by_iface.setdefault(iface.name, port)
                    if iface.attached_mac:
                        by_mac.setdefault(iface.attached_mac, []).append(
                            (port, iface.external_ids.get("vm-id"))
                        )
        object.__setattr__(self, "_by_name", MappingProxyType({b.name: b for b in self.bridges}))
        object.__setattr__(self, "_port_by_iface", MappingProxyType(by_iface))
        object.__setattr__(
            self, "_ports_by_mac", MappingProxyType({k: tuple(v) for k, v in by_mac.items()})
        )
        object.__setattr__(self, "_bridge_by_port", MappingProxyType(by_port))

    def bridge(self, name: str) -> OvsBridge | None:
        return self._by_name.get(name)

    def port_of_interface(self, ifname: str) -> OvsPort | None:
        return self._port_by_iface.get(ifname)

    def port_by_mac(self, mac: str, vm_uuid: str | None = None) -> OvsPort | None:
        for port, vm in self._ports_by_mac.get(mac.lower(), ()):
            if vm_uuid is None or vm is None or vm.lower() == vm_uuid.lower():
                return port
        return None

    def bridge_of_port(self, port_name: str) -> OvsBridge | None:
        return self._bridge_by_port.get(port_name)


@dataclass(frozen=True, slots=True)
class VirtualFunction:
    """One SR-IOV VF of a physical NIC, as ``ip -d -j link`` lists it on the PF
    (``vfinfo_list``; the text form's ``vf N link/ether MAC ..., spoof checking on, link-state
    auto, trust off``). None: not reported (older drivers and iproute2 leave fields out)."""

    vf: int
    mac: str | None
    vlan: int | None  # the VLAN the PF tags the VF's frames with; None / 0: none
    spoofchk: bool | None
    trust: bool | None
    link_state: str | None


@dataclass(frozen=True, slots=True)
class Link:
    name: str
    flags: frozenset[str]
    promiscuity: int | None
    kind: str | None
    mac: str | None
    mtu: int | None = None
    vfs: tuple[VirtualFunction, ...] = ()  # the SR-IOV VFs of a PF (none: not a PF, or none set)

    @property
    def promiscuous(self) -> bool:
        return "PROMISC" in self.flags or bool(self.promiscuity)


@dataclass(frozen=True, slots=True)
class PackageState:
    manager: str | None  # dpkg | rpm | pacman | apk
    installed: Mapping[str, bool]  # package name -> installed; absent = unknown


@dataclass(frozen=True, slots=True)
class HostFacts:
    """Everything known about one hypervisor host, parsed from its evidence bundle."""

    name: str
    spec: str
    status: str  # ok | unreachable | error
    error: str | None
    identity: str | None = None  # machine-id (or hostname): tells physical servers apart
    packages: PackageState | None = None
    ovs: OvsState | None = None
    links: Mapping[str, Link] | None = None
    domains: Mapping[str, Domain] | None = None
    networks: Mapping[str, LibvirtNetwork] | None = None
    nwfilters: Mapping[str, NwFilter] | None = None
    problems: Mapping[str, str] = field(default_factory=lambda: EMPTY)  # section -> what is wrong
    libvirt_uri: str | None = None  # the URI libvirt was read through (None: not recorded)
    libvirt_uri_from: str | None = None  # inventory | env | libvirt.conf | default
    # The firewall configurations collected with this host, by fwconfig.firewall_key(domain)
    firewalls: Mapping[str, FirewallConfig] = field(default_factory=lambda: MappingProxyType({}))
    # The HA status each console reported (get system ha status, cOS Core ha), by the same key
    ha_status: Mapping[str, HaStatusRead] = field(default_factory=lambda: MappingProxyType({}))
    traces: TraceEvidence | None = None  # ofproto/trace of heartbeat paths (None: not traced)
