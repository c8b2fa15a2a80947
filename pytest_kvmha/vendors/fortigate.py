"""What FortiGate (FortiOS, FGCP clustering) puts on the wire and calls its interfaces.

Each fact names the Fortinet document it comes from; the planner and the checks ask here
instead of spelling a vendor's numbers out themselves.
"""

from __future__ import annotations

import re

# FortiOS Administration Guide, "HA heartbeat interface" and "Heartbeat packet EtherTypes":
# FGCP heartbeats are layer 2 frames with EtherType 0x8890 (heartbeat, ``ha-eth-type``) and
# 0x8891 (``hc-eth-type``: traffic redistribution; the transparent-mode heartbeat of older
# releases), broadcast on the heartbeat interfaces. Both are traced.
HEARTBEAT_ETHERTYPES = (0x8890, 0x8891)


def virtual_mac(group_id: int, index: int) -> str:
    """FGCP virtual MAC ``00:09:0f:09:<group-id>:<index>``, shared by both members.

    FortiOS Administration Guide, "Cluster virtual MAC addresses": ``00-09-0f-09-<group-id in
    hex>-<vcluster integer + interface index>`` for group IDs 0-255 in virtual cluster 1."""
    return f"00:09:0f:09:{group_id & 0xFF:02x}:{index & 0xFF:02x}"


# FortiGate-VM KVM Administration Guide: the VM's interfaces port1, port2 ... are its NICs in
# PCI order, so portN is the N-th NIC.
_PORT = re.compile(r"port([1-9][0-9]{0,2})")


def nic_number(interface: str) -> int | None:
    """N for a FortiGate-VM interface ``portN`` (the VM's N-th NIC); None for any other name."""
    match = _PORT.fullmatch(interface)
    return int(match.group(1)) if match is not None else None


# The MTU of an interface without ``set mtu-override enable`` / ``set mtu N``: "the default
# <value> is 1500" (FortiGate-6000 7.4.1 Administration Guide, "Setting the MTU for a data
# interface"); ``set mtu`` is only accepted after ``mtu-override enable``, so a ``show`` without
# it means 1500. The FortiGate-VM guides name no other default.
DEFAULT_MTU = 1500
