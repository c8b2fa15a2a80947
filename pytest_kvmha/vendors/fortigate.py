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


# --- configuration reading: CLI words and firmware defaults -------------------------------------
# (what the parser and KVMHA-FW-002 need to read a FortiOS configuration as the CLI does; kept
# apart from the frame and MAC facts above)

# FortiOS 5.0 Help, "Using the CLI: Command syntax: Terminology": "Valid command lines must be
# unambiguous if abbreviated"; Fortinet's own tips write "config sys ha", "conf sys int",
# "show full sys ha". A word resolves to the one known word it starts; an exact word wins over
# longer ones ("ha" is "ha", not "ha-monitor"). These are the words of the paths this tool reads
# and their siblings, so that an abbreviation the CLI would find ambiguous is refused here too:
# the top-level categories and the "config system" tables of the FortiOS 7.x CLI reference
# ("config system" section list; FortiProxy 2.0 CLI reference lists the same system tables).
# The lists are not the whole command tree: a word that abbreviates a command missing here is
# taken as the one listed word it starts (the CLI could refuse it as ambiguous).
CLI_STATEMENTS = (
    # FortiOS Administration Guide "CLI basics" / Container FortiOS CLI reference "Subcommands"
    "config", "edit", "next", "end", "set", "unset", "append", "select", "unselect", "clear",
    "abort", "delete", "purge", "rename", "move", "clone", "get", "show",
)  # fmt: skip
CLI_TOP = (
    "alertemail", "antivirus", "application", "authentication", "automation", "casb",
    "certificate", "dlp", "dnsfilter", "emailfilter", "endpoint-control", "ethernet-oam",
    "extension-controller", "file-filter", "firewall", "ftp-proxy", "global", "icap", "ips",
    "log", "monitoring", "report", "router", "rule", "sctp-filter", "ssh-filter",
    "switch-controller", "system", "user", "vdom", "videofilter", "virtual-patch", "voip",
    "vpn", "waf", "wanopt", "web-proxy", "webfilter", "wireless-controller", "ztna",
)  # fmt: skip
CLI_SYSTEM = (
    "accprofile", "acme", "admin", "affinity-interrupt", "alarm", "alias", "api-user",
    "arp-table", "auto-install", "auto-script", "automation-action", "automation-destination",
    "automation-stitch", "automation-trigger", "autoupdate", "central-management",
    "cluster-sync", "console", "csf", "custom-language", "ddns", "dedicated-mgmt", "dhcp",
    "dhcp6", "dns", "dns-database", "dns-server", "dns64", "email-server", "external-resource",
    "fips-cc", "fortiguard", "fortimanager", "fortisandbox", "fsso-polling", "ftm-push",
    "geneve", "geoip-country", "geoip-override", "global", "gre-tunnel", "ha", "ha-monitor",
    "ike", "interface", "ipam", "ipip-tunnel", "ips", "ips-urlfilter-dns", "ipsec-aggregate",
    "ipv6-neighbor-cache", "ipv6-tunnel", "link-monitor", "lte-modem", "mac-address-table",
    "modem", "nat64", "netflow", "network-visibility", "npu", "ntp", "object-tagging",
    "password-policy", "password-policy-guest-admin", "pppoe-interface", "probe-response",
    "proxy-arp", "ptp", "replacemsg", "replacemsg-group", "replacemsg-image",
    "resource-limits", "saml", "sdn-connector", "sdwan", "session-helper", "session-ttl",
    "settings", "sflow", "sit-tunnel", "sms-server", "snmp", "sso-admin", "standalone-cluster",
    "storage", "stp", "switch-interface", "vdom", "vdom-dns", "vdom-exception", "vdom-link",
    "vdom-netflow", "vdom-property", "vdom-radius-server", "vdom-sflow", "virtual-switch",
    "virtual-wire-pair", "vxlan", "wccp", "zone",
)  # fmt: skip
# the next word of a path, by the words before it ("" = the top level)
CLI_PATHS: dict[str, tuple[str, ...]] = {"": CLI_TOP, "system": CLI_SYSTEM}

# Firmware defaults of "config system ha" that "show" leaves out ("show" prints what differs from
# the defaults, "show full-configuration" every key: Fortinet tip "Collecting information for HA
# issues" uses "show full sys ha"). KVMHA-FW-002 compares a key left out as its default.
# group-id: default 0 (FortiOS CLI reference 7.4 "config system ha"; 0-1023 since 7.0.2).
DEFAULT_GROUP_ID = 0
# hb-interval: default 2, range 1-20, in units of 100 ms (FortiOS 5.0 Help, "Changing the
# heartbeat interval"; 7.x "HA heartbeat interface": 200 ms by default).
DEFAULT_HB_INTERVAL = 2
# hb-interval-in-milliseconds [100ms|10ms], default 100ms: the unit of hb-interval (CLI
# reference 7.4.1 / 7.6.5 "config system ha"; not in 6.2/6.4, where the unit is 100 ms).
HB_INTERVAL_UNITS_MS = {"100ms": 100, "10ms": 10}
DEFAULT_HB_INTERVAL_UNIT = "100ms"
# hb-lost-threshold: the sources disagree. 6 in the FortiOS 5.0 Help ("Changing the lost
# heartbeat threshold"); "6 (this can differ by model. For example, for VM models, the default
# can be 20)" in the Fortinet tip "Changing the HA heartbeat timers to prevent false failover";
# 20 in the current API schema. A key left out is "the default", equal to either value.
DEFAULT_HB_LOST_THRESHOLDS = (6, 20)
# Heartbeat Ethertypes and their keys, hex without 0x as the CLI writes them (FortiOS
# Administration Guide "HA heartbeat interface Ethertypes"; CLI reference "config system ha":
# ha-eth-type 8890, hc-eth-type 8891, l2ep-eth-type 8893).
DEFAULT_ETH_TYPES = {"ha-eth-type": 0x8890, "hc-eth-type": 0x8891, "l2ep-eth-type": 0x8893}
# hbdev without a priority ("set hbdev "port3""): the documents give the syntax as pairs of
# name and priority (CLI reference 7.4.1, range 0-512 in older references) and say nothing of a
# name alone. It is read as a heartbeat interface whose priority is not given, and a priority
# is compared only where both members give one.

# Multi-VDOM mode (#config-version=...:vdom=1): "system ha" and "system interface" live under
# "config global"; at the top level of such a console the CLI refuses "show system ha". The
# exact text is not in the documents read; FortiOS prints "Command fail. Return code <n>" for a
# refused command and "command parse error before '<word>'" for an unknown one (both seen in
# Fortinet tips). Either in a console's answer means the command was not run.
CLI_REFUSED = ("Command fail. Return code", "command parse error before")
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
