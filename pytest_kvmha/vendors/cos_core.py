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

# Property names, checked against what could be found (4 December 2026): the cOS Core CLI
# Reference Guide's HighAvailability and EthernetInterface pages were NOT reached (searched: the
# CLI Reference Guide, "HighAvailability", "EthernetInterface", "PCIBus", "PCISlot", "PCIPort",
# "ClusterID", "SyncIface", "HASyncInterface", "HAType"; only the 10.20.01 guide's cover was
# found). What the documents read do confirm, and what they do not:
# - the object names: "show HighAvailability" and "show Interface EthernetInterface" are the
#   commands this tool sends; no document read prints their output. UNCONFIRMED.
# - the cluster ID, the master/slave role and the sync interface as HA settings: cOS Core
#   14.00 Administration Guide, 12.3 "HA Setup" (12.3.1 Hardware Setup, 12.3.3 Manual HA Setup)
#   names them as settings, not as CLI properties. The property names ClusterID, SyncIface and
#   NodeID are UNCONFIRMED; each fact accepts the variants seen in Clavister material and in
#   captures. cOS Stream (another product: its 4.00 Administration Guide, "Preconditions for
#   Creating an HA Cluster", shows "show Interface EthernetInterface if1" with HAType,
#   EthernetDevice, PrivateIP) is not taken as cOS Core's.
HA_ROLE_PROPERTIES = ("NodeID", "Role", "NodeType", "HANodeType")
HA_SYNC_PROPERTIES = ("SyncIface", "SyncInterface", "SyncIf", "HASyncInterface")
# - the PCI address: cOS Core 14.00 Administration Guide, 12.3.1 "Hardware Setup": with two
#   virtual firewalls "the bus, slot and port number of each interface in an interface pair
#   should be the same"; the cOS Core KVM Installation Guide, ch. 7, says the same ("Interface
#   pairs should have matching bus, slot, port"). Neither names the CLI properties: PCIBus /
#   PCISlot / PCIPort (or Bus / Slot / Port) are UNCONFIRMED and all are accepted, values
#   decimal or 0x-hex; "port" is read as the PCI function of the NIC's libvirt address (also
#   unconfirmed: the guides do not say). Where an EthernetInterface shows them, its NIC is the
#   one at that address (KVMHA-FW-005 and the vendor model of topology/traffic.py), not the
#   N-th in list order.
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


# --- the cluster as the nodes report it: the CLI's ``ha`` command -------------------------------
# (read over the same read-only console as the configuration; parsed by parse/cos_status.py)
#
# The cOS Core CLI Reference page of ``ha`` was not reached; its output is documented in two OEM
# builds of cOS Core and in Clavister's REST API guide, which agree:
# - D-Link NetDefendOS Firmware User Manual, 11.3.3 "Verifying the Cluster is Functioning":
#   ``gw-world:/> ha`` prints "This device is an HA MASTER", "This device is currently ACTIVE
#   (will forward traffic)", "HA cluster peer is ALIVE";
# - RadiSys SEG-100 manual, ch. 9 "High Availability: Verifying synchronization": "This device is
#   a standalone system (HA not configured)" when not clustered; "This device is a HA MASTER",
#   "This device is currently Active (for 48s)", "HA cluster peer is ALIVE", "HA object sync:
#   100%" ("whether the system objects are fully synchronized between the peers"); the slave
#   "This device is a HA SLAVE", "This device is currently Inactive (for 47s)";
# - Clavister cOS Core REST API Guide 15.00, ch. 11 "High Availability Status": /api/oper/ha
#   returns "the values that might also be provided by using the cOS Core CLI ha command":
#   enabled, active, role (master/slave), peer alive (true/false).
# So: "a"/"an", upper or mixed case, an optional "(...)" after the state, and an optional sync
# line are all read. The words for a peer that is not alive are in none of them (the REST API
# says "alive": false): "NOT ALIVE" and "DEAD" are read as not alive (UNVERIFIED), any other
# word is not understood (an error, never a pass).
HA_STATUS_COMMAND = "ha"
HA_PEER_ALIVE = "ALIVE"
HA_PEER_NOT_ALIVE = ("NOT ALIVE", "DEAD")
HA_OBJECT_SYNC_FULL = 100  # percent
