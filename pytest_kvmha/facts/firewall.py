"""Frozen facts about a firewall's own HA configuration (FortiOS FGCP, cOS Core HA).

Built by :mod:`pytest_kvmha.parse.firewall` from the configuration text in a member's evidence
section; read by ``checks/firewall.py`` and by the heartbeat checks (the configuration decides
broadcast vs unicast heartbeat when it is known). Nothing here does I/O.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field

FORTIGATE, COS_CORE = "fortigate", "cos-core"


@dataclass(frozen=True, slots=True)
class HbDev:
    """One FGCP heartbeat interface (``set hbdev "port3" 50``) and its priority (None: the
    configuration names the interface without one)."""

    interface: str
    priority: int | None


@dataclass(frozen=True, slots=True)
class Firmware:
    """A FortiGate's model and firmware as one source gives them: the configuration file's
    ``#config-version`` header, or a console's ``get system status`` (vendors.fortigate)."""

    source: str  # "config header" | "get system status"
    model: str  # as that source spells it (header: FGVMK6; status: FortiGate-VM64-KVM)
    version: str  # "7.2.5"
    build: int
    vdoms: bool | None  # VDOMs on (multi or split), as the source says; None: it does not say


@dataclass(frozen=True, slots=True)
class FgcpFacts:
    """``config system ha`` of one FortiGate, with the addresses of ``config system interface``.

    ``None`` means the key is not in the text: ``show`` leaves out keys at their default, so
    ``None`` is "the firmware's default". The facts keep what was shown; KVMHA-FW-002 fills in
    the documented defaults (:mod:`pytest_kvmha.vendors.fortigate`) when it compares.
    """

    group_id: int | None
    group_name: str | None
    mode: str | None  # standalone | a-p | a-a | ...; None: not shown (default standalone)
    hbdev: tuple[HbDev, ...]
    unicast_hb: bool  # "set unicast-hb enable"; not shown = disabled (FortiOS default)
    unicast_hb_peerip: ipaddress.IPv4Address | None
    unicast_hb_netmask: ipaddress.IPv4Address | None
    hb_interval: int | None
    hb_lost_threshold: int | None
    # interface name -> its IPv4 address with prefix (``set ip A.B.C.D M.M.M.M``); absent or
    # 0.0.0.0 = no address
    addresses: Mapping[str, ipaddress.IPv4Interface]
    ha_section: bool = True  # False: the text has no "config system ha" at all
    # --- read as shown; None / absent = not shown (the firmware default applies) ---
    hb_interval_unit: str | None = None  # hb-interval-in-milliseconds: "100ms" | "10ms"
    # ``ha-eth-type`` / ``hc-eth-type`` / ``l2ep-eth-type`` as numbers; None: not shown (the
    # documented defaults 0x8890 / 0x8891 / 0x8893 apply, see vendors.fortigate)
    ha_eth_type: int | None = None
    hc_eth_type: int | None = None
    l2ep_eth_type: int | None = None
    session_sync_dev: tuple[str, ...] = ()  # ``set session-sync-dev``; () = heartbeat links
    # reserved management interfaces (``config ha-mgmt-interfaces`` / ``set ha-mgmt-interface``),
    # only when ``set ha-mgmt-status enable`` reserves them (default disable)
    mgmt_interfaces: tuple[str, ...] = ()
    # model, firmware and VDOM mode, one per source found in the text (header, status)
    firmware: tuple[Firmware, ...] = ()
    monitor: tuple[str, ...] = ()  # ``set monitor "port1" "port2"``: link-monitored interfaces
    override: bool | None = None  # ``set override enable|disable``; None: not shown (disable)
    priority: int | None = None  # ``set priority N``; None: not shown (the default, 128)
    # interface name -> its MTU where ``config system interface`` sets ``mtu-override enable``
    # (with ``set mtu N``); an interface not here has the default MTU
    mtu: Mapping[str, int] = field(default_factory=dict)

    @property
    def heartbeat(self) -> str:
        return "unicast" if self.unicast_hb else "broadcast"

    @property
    def eth_types(self) -> Mapping[str, int]:
        """The Ethertype keys the configuration shows, by their CLI names."""
        shown = {
            "ha-eth-type": self.ha_eth_type,
            "hc-eth-type": self.hc_eth_type,
            "l2ep-eth-type": self.l2ep_eth_type,
        }
        return {key: value for key, value in shown.items() if value is not None}


@dataclass(frozen=True, slots=True)
class CosHaFacts:
    """The HighAvailability object of one cOS Core firewall and its Ethernet interfaces."""

    cluster_id: int | None
    role: str | None  # "master" | "slave" (NodeID / Role / NodeType property); None: not shown
    sync_interface: str | None
    ethernet: tuple[str, ...]  # EthernetInterface names in the order shown (1st, 2nd, ...)
    enabled: bool | None = None
    # interface name -> (bus, slot, port) where the firewall shows its PCI address; then that,
    # not the list order, says which NIC it is
    pci: Mapping[str, tuple[int, int, int]] = field(default_factory=dict)
    # interface name -> the MTU its EthernetInterface shows (property MTU); absent: not shown
    mtu: Mapping[str, int] = field(default_factory=dict)

    @property
    def heartbeat(self) -> str:
        # cOS Core has no unicast mode: shared MACs on every pair need broadcast-style host
        # settings (promiscuous uplinks, no MAC-spoofing filters), as FGCP's broadcast mode does.
        return "broadcast"


FirewallFacts = FgcpFacts | CosHaFacts


@dataclass(frozen=True, slots=True)
class FirewallConfig:
    """One member's firewall configuration as collected: parsed facts, or why there are none."""

    domain: str
    vendor: str  # fortigate | cos-core | auto (not declared: told from the text)
    facts: FirewallFacts | None
    problem: str | None  # unreadable or malformed (names the member and the line)

    @property
    def detected_vendor(self) -> str | None:
        if isinstance(self.facts, FgcpFacts):
            return FORTIGATE
        if isinstance(self.facts, CosHaFacts):
            return COS_CORE
        return None
