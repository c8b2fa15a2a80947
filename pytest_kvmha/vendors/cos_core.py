"""What Clavister cOS Core puts on the wire for HA and calls its interfaces.

Each fact names the Clavister document it comes from; the planner and the checks ask here
instead of spelling a vendor's numbers out themselves. Where a document could not be read to
the end, the fact says so and the planner traces every reading.

The model, per interface pair of a cluster: heartbeats on every physical interface (the sync
interface included, twice as often there), from each member; data traffic on the other
interfaces from the cluster's shared MAC, used by the active member and moved on failover.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

# cOS Core Administration Guide, "HA Mechanisms" (Heartbeat Characteristics): "The source IP is
# the interface address of the sending firewall. The destination IP is the broadcast address on
# the sending interface. The IP TTL is always 255 [...] It is a UDP packet, sent from port 999,
# to port 999." (Heartbeat Frequency): "Heartbeats are sent over the sync interface as well as
# all other interfaces", "the sync interface sends twice as many heartbeats". Clavister KB "cOS
# Core High Availability Cluster troubleshooting": "Heartbeats are NOT sent out on non-physical
# interfaces such as VLAN's, IPSec tunnels, GRE tunnels".
HEARTBEAT_ETHERTYPE = 0x0800
HEARTBEAT_UDP_PORT = 999
HEARTBEAT_TTL = 255
# The same section goes on with the destination MAC, but the sentence was cut off in every copy
# read; an older note calls it a multicast address (unconfirmed). The destination IP is a
# broadcast address, so the Ethernet broadcast is traced, and named unconfirmed in findings.
HEARTBEAT_DST_MAC = "ff:ff:ff:ff:ff:ff"
HEARTBEAT_DST_MAC_CONFIRMED = False

# Shared MACs: "The first part of the constructed address is always 10:00:00. The second part is
# based on the configuration and contains the cluster ID." The active unit "broadcasts
# gratuitous ARP queries on all interfaces using the shared MAC address as the sender" (RadiSys
# SEG-100 manual, an OEM build of cOS Core, ch. 9 "High Availability: Shared IP addresses and
# ARP"). cOS Core 15.00 Administration Guide, 13.7 "HA Advanced Settings": "Use Unique Shared
# Mac: Use a unique shared MAC address for each interface", default enabled. The byte layout
# after 10:00:00 is not documented in what was read: the planner uses 10:00:00:c1:4a:<cluster
# id> for the interfaces (the layout an older note gives, unconfirmed), so a rule on the
# 10:00:00 prefix or on the whole address is caught only if the layout is right; the label
# says so.
SHARED_MAC_PREFIX = "10:00:00"
DEFAULT_CLUSTER_ID = 0  # D-Link NetDefendOS (OEM cOS Core) manual §11.3: "the default value is 0"


def shared_mac(cluster_id: int) -> str:
    """The shared MAC as traced (see the note above: only the 10:00:00 prefix is confirmed)."""
    return f"{SHARED_MAC_PREFIX}:c1:4a:{cluster_id & 0xFF:02x}"


def nic_number(ethernet: Sequence[str], interface: str) -> int:
    """N for one of the Ethernet interfaces ``show Interface EthernetInterface`` lists: the
    N-th of them is the VM's N-th NIC (cOS Core KVM Installation Guide, ch. 7)."""
    return list(ethernet).index(interface) + 1


# --- configuration reading: property names ------------------------------------------------------
# (what the parser needs to read "show HighAvailability" / "show Interface EthernetInterface";
# kept apart from the frame and MAC facts above)

# The cOS Core CLI Reference Guide's HighAvailability and EthernetInterface pages were not
# reached: the property names below are UNVERIFIED. Each fact accepts the variants seen in
# Clavister material and in captures (cOS Stream, a different product, is not used).
HA_ROLE_PROPERTIES = ("NodeID", "Role", "NodeType", "HANodeType")
HA_SYNC_PROPERTIES = ("SyncIface", "SyncInterface", "SyncIf")
# cOS Core 14.00 Administration Guide, 12.3 "HA Setup" (Hardware Setup): in virtual
# environments "the bus, slot and port number of each interface in an interface pair should be
# the same"; the CLI shows them on an EthernetInterface when the firewall knows them. Names
# UNVERIFIED (PCIBus/PCISlot/PCIPort, or Bus/Slot/Port), values decimal or 0x-hex. "port" is
# read as the PCI function of the NIC's libvirt address (UNVERIFIED: the guide does not say).
PCI_PROPERTIES = {
    "bus": ("PCIBus", "Bus", "PciBus"),
    "slot": ("PCISlot", "Slot", "PciSlot"),
    "port": ("PCIPort", "Port", "PciPort", "PCIFunction"),
}
# --- secrets in ``show`` output and CLI scripts -------------------------------------------------
# Property names whose value is a secret: cOS Core CLI Reference Guide, IPsecTunnel (``PSK``,
# ``PreSharedKey``), PSK objects (``PSKAscii``/``PSKHex``), RadiusServer and LDAP (``SharedSecret``,
# ``SharedSecret2`` of the second server, ``Password``), SNMP (``Community``, ``AuthKey``,
# ``PrivKey``), ``Key`` of key objects. The guide does not list every object's secret; every
# property whose name says PSK, password, passphrase, secret, key or community is one here (fail
# closed: no HA property has such a name), with or without a ``-`` in it (``PreShared-Key``).
SECRET_PROPERTY = re.compile(
    r"psk|pass(?:word|phrase|wd)|pwd|secret|pre-?shared|key|community", re.IGNORECASE
)
# The MTU of an Ethernet interface. The RadiSys SEG-100 manual (an OEM build of cOS Core), ch. 3
# "Ethernet interface properties", lists MTU among an EthernetInterface's principal properties:
# "This determines the maximum size of packets in bytes that can be sent on this interface. By
# default, the interface uses the maximum size supported." cOS Stream documents
# ``set Interface EthernetInterface if1 MTU=9000`` (cOS Stream 4.00 Administration Guide,
# "Jumbo Frames"). cOS Core's own CLI reference page was not reached: the property name MTU is
# UNVERIFIED, and so is the default: "the maximum size supported" is the NIC driver's, which
# for a virtio NIC is what the host gives it (the path KVMHA-OVS-005 measures), so an interface
# that shows no MTU is taken at 1500, Ethernet's own payload size (IEEE 802.3).
MTU_PROPERTY = "MTU"
DEFAULT_MTU = 1500
