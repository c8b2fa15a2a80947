"""What Clavister cOS Core puts on the wire for HA and calls its interfaces.

Each fact names the Clavister document it comes from; the planner and the checks ask here
instead of spelling a vendor's numbers out themselves.
"""

from __future__ import annotations

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


# The MTU of an Ethernet interface left at its default. UNVERIFIED for cOS Core: its CLI
# reference was not found; cOS Stream documents ``set Interface EthernetInterface if1 MTU=9000``
# as the change from the Ethernet default (cOS Stream 4.00 Administration Guide, "Jumbo
# Frames"). 1500 is Ethernet's own payload size (IEEE 802.3).
DEFAULT_MTU = 1500
