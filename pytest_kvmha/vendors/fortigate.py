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


# --- secrets in a configuration ----------------------------------------------------------------
# The ``set`` keys whose value is a secret. FortiOS CLI Reference: "system snmp user"
# (``set auth-pwd {password}``, ``set priv-pwd {password}``), "system api-user"
# (``set api-key {password-2}``), "vpn ipsec manualkey" (``set authkey``, ``set enckey``;
# ``auth-key``/``enc-key`` in manualkey-interface), "router key-chain" (``set key-string``),
# "system admin" (``set password``), "vpn ipsec phase1-interface" (``set psksecret``,
# ``set ppk-secret``), "vpn certificate local" (``set private-key``, ``set password``). The
# reference lists many more; every key that names a password, secret, passphrase, PSK or key is
# a secret here too (fail closed: what is removed is never an HA fact).
SECRET_KEYS = frozenset(
    {"key", "private-key", "passwd", "psksecret", "ppk-secret", "auth-pwd", "priv-pwd"}
    | {"api-key", "authkey", "enckey", "auth-key", "enc-key", "key-string"}
)
SECRET_KEY_PARTS = ("password", "secret", "passphrase", "psk", "pwd", "passwd")
# FortiOS CLI Reference, "system snmp community": ``edit <id>`` then ``set name <string>``, the
# SNMP v1/v2c community name, which is the shared secret of those protocol versions.
SNMP_COMMUNITY_PATH = "system snmp community"


def is_secret_key(key: str) -> bool:
    """Whether a FortiOS ``set`` key holds a secret (see :data:`SECRET_KEYS`)."""
    k = key.lower()
    return (
        k in SECRET_KEYS
        or any(part in k for part in SECRET_KEY_PARTS)
        or k.endswith("key")
        or k.startswith("key-")
        or "-key-" in k
    )
