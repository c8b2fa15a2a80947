"""What Clavister cOS Core puts on the wire for HA and calls its interfaces.

Each fact names the Clavister document it comes from; the planner and the checks ask here
instead of spelling a vendor's numbers out themselves.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

# cOS Core Administration Guide, "HA Mechanisms" (Heartbeat Characteristics): cluster
# heartbeats are IP, UDP from port 999 to port 999 with TTL 255, sent to the broadcast address
# of each interface (and twice as often on the sync interface). They are traced as IPv4 frames
# to the Ethernet broadcast address.
HEARTBEAT_ETHERTYPE = 0x0800


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
