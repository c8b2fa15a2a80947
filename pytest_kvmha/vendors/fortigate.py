"""What FortiGate (FortiOS, FGCP clustering) puts on the wire and calls its interfaces.

Each fact names the Fortinet document it comes from; the planner and the checks ask here
instead of spelling a vendor's numbers out themselves. Where two documents disagree, both
readings are kept and the caller traces both.

The model, per interface of a member (names as FortiOS shows them, ``portN``):

- heartbeat interfaces (``hbdev``): heartbeat, "hc" and configuration-sync frames, from the
  interface's own MAC; session sync too unless ``session-sync-dev`` is set;
- ``session-sync-dev`` interfaces: session-sync frames from their own MAC;
- data interfaces (neither heartbeat nor reserved management): the cluster's virtual MAC,
  which the primary uses for all its traffic (gratuitous ARPs first) and which moves to the
  other member on failover;
- reserved management interfaces (``ha-mgmt-interfaces``): their own MAC only;
- unicast heartbeat (``unicast-hb enable``): IPv4 between the heartbeat interface addresses, no
  virtual MACs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# FortiOS 8.0.0 Administration Guide, "Heartbeat packet EtherTypes" (table); FortiOS 5.0 Help,
# "HA heartbeat and communication between cluster units: Heartbeat packet Ethertypes".
# 0x8890: the heartbeat (units find each other and check each other's status); key
# ``ha-eth-type``, default 8890.
HEARTBEAT = 0x8890
# 0x8891, key ``hc-eth-type``, default 8891. The sources disagree on what it is for: the 5.0
# Help (and FortiOS's own help string for the key) says "HA heartbeat packets for Transparent
# mode clusters", the 8.0.0 guide says "Traffic redistribution from primary to subordinate"
# (active-active). Either way the frame must pass, so it is traced in both readings' place.
HC = 0x8891
# 0x8892: session synchronization, over the heartbeat interfaces unless ``session-sync-dev`` is
# set. The 8.0.0 table names no key that changes it. (IEEE assigned 0x8892 to PROFINET, so
# capture tools name these frames so.)
SESSION_SYNC = 0x8892
# 0x8893: HA telnet sessions, i.e. configuration synchronization (and ``execute ha manage``);
# key ``l2ep-eth-type``, default 8893.
CONFIG_SYNC = 0x8893

# The keys of ``config system ha`` that override the defaults above: 4 hex digits, no ``0x``
# (FortiOS API schema for system/ha, FIELDS_WITH_DEFAULTS: "ha-eth-type": "8890",
# "hc-eth-type": "8891", "l2ep-eth-type": "8893").
ETHERTYPE_KEYS = {"ha-eth-type": HEARTBEAT, "hc-eth-type": HC, "l2ep-eth-type": CONFIG_SYNC}

# What each frame is called in findings (the text names the frame that died).
NAMES = {
    HEARTBEAT: "heartbeat",
    HC: "hc (transparent-mode heartbeat / A-A traffic redistribution)",
    SESSION_SYNC: "session sync",
    CONFIG_SYNC: "config sync",
}

# FortiOS 5.0 Help, "Cluster virtual MAC addresses: How the virtual MAC address is determined":
# ``00-09-0f-09-<group-id hex>-<vcluster integer><idx>``. FortiOS 7.0 New Features, "Extended
# HA VMAC address range 7.0.2": group ids 256-1023 use the prefix e0:23:ff:fc; Fortinet
# Community, "Technical Tip: HA Cluster virtual MAC addresses" (194239) splits them into
# e0:23:ff:fc (256-511), e0:23:ff:fd (512-767), e0:23:ff:fe (768-1023). The two disagree for
# 512-1023: the tip's split is the only one in which 1024 ids fit one byte, so it is used, and
# the 7.0.2 page's single prefix is traced as well (:func:`virtual_macs`).
_PREFIXES = ("00:09:0f:09", "e0:23:ff:fc", "e0:23:ff:fd", "e0:23:ff:fe")
EXTENDED_PREFIX = "e0:23:ff:fc"  # the 7.0.2 New Features reading: one prefix for 256-1023
MAX_GROUP_ID = 1023  # CLI Reference 7.x config system ha: group-id 0-1023 (0-255 before 7.0.2)


def virtual_mac(group_id: int, index: int, prefix: str | None = None) -> str:
    """FGCP virtual MAC of interface index ``index`` in virtual cluster 1 (vcluster integer 0:
    the only one a FortiGate-VM without virtual clustering has; the sources disagree on
    vcluster 2's offset, 0x20 or 0x80, and it is not modelled)."""
    if not 0 <= group_id <= MAX_GROUP_ID:
        raise ValueError(f"FGCP group-id {group_id} is outside 0..{MAX_GROUP_ID}")
    head = prefix or _PREFIXES[group_id // 256]
    return f"{head}:{group_id % 256:02x}:{index & 0xFF:02x}"


def virtual_macs(group_id: int, index: int) -> tuple[str, ...]:
    """Every reading of the virtual MAC: one, except for group ids 512-1023 where the 7.0.2 page
    (e0:23:ff:fc) and the community tip (fd / fe) disagree."""
    macs = [virtual_mac(group_id, index)]
    if group_id >= 256 and (other := virtual_mac(group_id, index, EXTENDED_PREFIX)) not in macs:
        macs.append(other)
    return tuple(macs)


# The interface index of the formula is FortiOS's internal index ("hash map order",
# ``phy_index`` in ``diagnose sys ha mac``: Fortinet Community, "Technical Tip: Verifying
# physical and HA Virtual MAC addresses of FortiGate interfaces"). On a FortiGate-VM portN is
# taken as index N-1: the 6.0 Cookbook's example counts 00, 01, 02 up the ports, but no document
# states it for the VM (an estimate, named so in findings).
def interface_index(interface: str) -> int | None:
    n = nic_number(interface)
    return n - 1 if n is not None else None


@dataclass(frozen=True, slots=True)
class Ethertypes:
    """The four FGCP Ethertypes of one cluster, defaults or as ``config system ha`` sets them."""

    heartbeat: int = HEARTBEAT
    hc: int = HC
    session_sync: int = SESSION_SYNC
    config_sync: int = CONFIG_SYNC

    def heartbeat_link(self, with_session_sync: bool) -> tuple[tuple[int, str], ...]:
        """(Ethertype, name) of the frames on a heartbeat interface."""
        out = [
            (self.heartbeat, NAMES[HEARTBEAT]),
            (self.hc, NAMES[HC]),
            (self.config_sync, NAMES[CONFIG_SYNC]),
        ]
        if with_session_sync:
            out.append((self.session_sync, NAMES[SESSION_SYNC]))
        return tuple(out)


# Destinations. An FGCP heartbeat capture (FortiOS 4.x, ``diagnose sniffer packet``; a
# third-party write-up, no Fortinet document states it for 6.x/7.x) shows 0x8890 broadcast to
# ff:ff:ff:ff:ff:ff from the unit's own MAC, and 0x8893 unicast between the two units' MACs.
# FortiGate-VM KVM Administration Guide, "High availability": heartbeat links need MAC
# spoofing and promiscuous mode allowed. Fortinet Community, "Disabling EtherType 0x8892
# (PROFINET) Broadcasts for Session-Sync" calls the session-sync frames broadcasts. So:
# heartbeat, hc and session sync are traced broadcast; config sync both to the peer's MAC (the
# capture) and broadcast (nothing else states its destination).

# FortiOS 7.2.10 Administration Guide, "Cluster virtual MAC addresses": "The MAC address of a
# reserved management interface does not change to a VMAC address" (``ha-mgmt-interfaces``).
# No Fortinet document read says that hbdev interfaces get no VMAC; ``diagnose sys ha mac``
# lists one for the ``ha`` port. The planner follows the KVM guide's split (heartbeat links:
# the members' own MACs; data interfaces: the virtual MAC) and names it as a choice.
#
# FortiGate-VM KVM Administration Guide, "High availability": unicast heartbeat has two members,
# no virtual MACs, and the heartbeat interfaces in one network with addresses
# (``unicast-hb-peerip``). FortiOS 6.4.0 "Ports and protocols", FGCP: the heartbeat listens on
# TCP/703 (unicast/cloud HA), TCP/23 or Ethernet 0x8890.
UNICAST_HEARTBEAT_TCP_PORT = 703

# SR-IOV virtual functions as FortiGate-VM interfaces. Fortinet Community, "Technical Tip:
# Permanent mac address is changed to the FGCP virtual address" (194975): a VF used for the HA
# links of a FortiGate-VM on KVM takes the FGCP virtual MAC as its hardware address and the
# cluster goes out of sync; "With SRIOV, the only method for HA interface is to use unicast ha".
# The host side it shows for a VF carrying a virtual MAC: "spoof checking off, ... trust on".
SRIOV_HEARTBEAT = "unicast"

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
# group-id: default 0 (FortiOS CLI reference 7.4 "config system ha"; 0-1023 since 7.0.2; the
# FortiOS API schema default; FortiOS 6.0 Cookbook "Configuring clustering").
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
# The Ethertype keys and their defaults when "show" leaves them out: ETHERTYPE_KEYS above.
DEFAULT_ETH_TYPES = ETHERTYPE_KEYS
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
# In multi-VDOM mode the global settings are read inside "config global" ... "end": Fortinet,
# "Transparent Mode for FortiOS 5.6.3", "High Availability in Transparent Mode: Virtual
# Clustering", shows "FGT1 (global) # show system ha" followed by the "config system ha" block
# (the prompt gains "(global)" inside "config global"; "end" leaves it). The console wraps its
# read in these two words when the first read says VDOMs are on (or was refused).
CONFIG_GLOBAL, LEAVE_GLOBAL = "config global", "end"

# --- firmware, model and VDOM mode (KVMHA-FIRM-001) --------------------------------------------
# FGCP members must be the same model with the same firmware: FortiOS 7.4.1 Administration
# Guide, "FGCP HA between FortiGates of the same model with different AC and DC PSUs" ("The
# cluster members must be the same model with the same firmware installed"); the VDOM setup is
# part of the synchronized configuration (CLI reference "config system ha", vcluster settings).
#
# "get system status" (FortiOS 6.0.0 CLI Reference, "system status", example output): a
# "Version: <model> v<version>,build<NNNN>,<yymmdd> (<release>)" line ("Version: Fortigate-620B
# v4.0,build0271,100330 (MR2)") and "Virtual domain configuration: disable" among "Key: value"
# lines. Only "disable" is in the example; any other value ("multiple", "split-task" in later
# releases) is read as VDOMs on, so the console then reads in global scope (fail closed).
STATUS_COMMAND = "get system status"
STATUS_VERSION = re.compile(
    r"(?P<model>\S+) v(?P<version>\d+\.\d+(?:\.\d+)?),build(?P<build>\d+),(?P<date>\d+)\b"
)
STATUS_VDOM_KEY = "Virtual domain configuration"
STATUS_VDOM_OFF = "disable"
# The configuration file header: "#config-version=<model>-<version>-FW-build<NNNN>-<yymmdd>:
# opmode=<n>:vdom=<0|1>:user=<name>". No Fortinet document read describes it; a third-party
# write-up ("What are the parts of a FortiGate backup configuration file header?", hackfaqs.com)
# reads the fields so (vdom=0 single VDOM, vdom=1 VDOMs on, or a VDOM's name in a VDOM-only
# backup), and every backup seen has that shape. The model there is the platform code (FGVMK6),
# not the name "get system status" prints (FortiGate-VM64-KVM): models are compared only
# between like sources.
HEADER = re.compile(
    r"#config-version=(?P<model>[A-Za-z0-9_]+(?:-[A-Za-z0-9_]+)*?)-(?P<version>\d+\.\d+\.\d+)"
    r"-FW-build(?P<build>\d+)-(?P<date>\d{6})(?P<fields>(?::[^:\s]*)*)\s*"
)
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


def port_name(n: int) -> str:
    """The FortiGate-VM interface of the VM's ``n``-th NIC (1-based)."""
    return f"port{n}"


# The MTU of an interface without ``set mtu-override enable`` / ``set mtu N``: "the default
# <value> is 1500" (FortiGate-6000 7.4.1 Administration Guide, "Setting the MTU for a data
# interface"); ``set mtu`` is only accepted after ``mtu-override enable``, so a ``show`` without
# it means 1500. The FortiGate-VM guides name no other default.
DEFAULT_MTU = 1500


# --- the cluster as the units report it: "get system ha status" --------------------------------
# (read over the same read-only console as the configuration; parsed by parse/fortios_hastatus.py)

HA_STATUS_COMMAND = "get system ha status"
# FortiOS 6.0 Handbook, "CLI HA status" (field table): "HA Health Status: Indicates if all cluster
# units are operating normally (OK) or if a problem was detected with the cluster. For example,
# a message similar to ERROR <serial-number> is lost @ <date> <time> appears if one the
# subordinate units leaves the cluster"; "Mode: The HA mode of the cluster, for example, HA A-P
# or HA A-A" (the 5.0 Help's example prints "a-p"); "Group: The group ID of the cluster".
HA_HEALTH_OK = "OK"
HA_HEALTH_ERROR = "ERROR"
# Standalone: "set mode standalone" (CLI reference, config system ha); the status prints the
# mode as the configuration names it, or as "HA A-P"/"HA A-A" in a cluster. Read as standalone:
# any Mode line that says "standalone".
HA_MODE_STANDALONE = "standalone"
# The units' roles. FortiOS 6.0 CLI Reference, "system ha status": "vcluster 1 also lists the
# primary unit (master) and subordinate units (slave)", printed "Master"/"Slave"; FortiOS 6.4
# renamed them "Primary"/"Secondary" (FortiGate-7000E 6.4.13 Handbook, "Confirming that the
# FortiGate-7000E HA cluster is synchronized": "Primary: <serial>, operating cluster index = 0",
# "Secondary: ..."; the 6.2 FortiGate-6000 Handbook's same page still prints Master/Slave).
# Both spellings are read, as the same two roles.
HA_ROLES = {
    "master": "primary",
    "primary": "primary",
    "slave": "secondary",
    "secondary": "secondary",
}
# The state of the unit logged into, on its "vcluster 1: <state> <address>" line (6.0 CLI
# Reference, "system ha status": "The HA state (hello, work, or standby) and HA heartbeat IP
# address of the cluster unit that you have logged into"; the primary is "work", a subordinate
# "standby" in active-passive and "work" in active-active mode). "hello": still looking for
# the other units (not part of a cluster yet).
HA_STATES = ("hello", "work", "standby")
HA_STATE_SEARCHING = "hello"
# The same page: the list under "vcluster 1" starts with "the cluster unit that you have logged
# into" (it tells which serial number is this unit's own).
# "Configuration Status:" lists "<serial>(updated N seconds ago): in-sync" per unit (6.2
# FortiGate-6000 Handbook and 6.4 FortiGate-7000 Handbooks, "Confirming that the ... HA cluster
# is synchronized": "shows if the configuration is synchronized (configuration status)"). The
# documents read show only "in-sync"; any other word is read as not in sync.
HA_IN_SYNC = "in-sync"
# FortiOS 6.0 CLI Reference, "system console": "output {standard | more}: Set console output to
# standard (no pause) or more (pause after each screen is full, resume on keypress). This
# setting applies to show or get commands only. The default is more." The pause prints
# "--More--" (FortiWeb 7.2 CLI Reference, "system console", the same option). A paged answer is
# not the whole answer: the account needs "set output standard".
CLI_PAGER = "--More--"

# ``set mtu N`` is accepted from 68 bytes up to 9216 on models with jumbo frames (FortiOS 6.0
# Handbook, "Interface MTU packet size": "68 to 1500 bytes for static mode", "up to 9216 bytes
# for NP2, NP4, and NP6-accelerated interfaces"; FortiGate-6000 guide above: 256 to 9216).
MTU_RANGE = (68, 9216)

# --- the other interfaces "config system ha" names, and primary selection -----------------------
# session-sync-dev: "only the selected interfaces are used for session synchronization and not
# the HA heartbeat link [...] The interfaces to use for session synchronization must be
# connected together either directly [...] or using switches. If one of the interfaces becomes
# disconnected the cluster uses the remaining interfaces [...] If all of the session
# synchronization interfaces become disconnected, session synchronization reverts back to using
# the HA heartbeat link" (FortiOS 5.0 Help, "Using multiple FortiGate interfaces for session
# synchronization"; Fortinet Community "Technical Tip: HA session-sync-dev configuration").
# A virtual NIC stays "connected" wherever the host plugs it, so that fallback never happens.
#
# monitor: link failover; "You should only monitor interfaces that are connected to networks,
# because a failover may occur if you monitor an unconnected interface" (FortiGate-7000F
# Handbook 6.2.16, "Link failover (port monitoring or interface monitoring)"); failed monitored
# interfaces come first in primary selection (FortiOS 5.0 Help, "Points to remember about
# primary unit selection when override is enabled").
#
# Reserved management interfaces (``set ha-mgmt-status enable`` + ``config ha-mgmt-interfaces``;
# FortiOS CLI Reference 6.2.6 / 7.6.5 "config system ha": "Reserve interfaces to manage
# individual cluster units"): each unit's own address, not synchronized, no virtual MAC
# (Administration Guide 7.0.1 / 7.2.4, "Out-of-band management with reserved management
# interfaces"); in-band management is the alternative that does "not require reserving an
# interface exclusively for management access" (Administration Guide 7.0.0, "In-band
# management"); "The interface must not be referenced in any config to be set as a reserved
# management interface" (Fortinet Community, "Technical Tip: HA Reserved Management
# Interface", 190132). So a reserved interface is no HA link and needs no pair, and naming it
# as hbdev, session-sync-dev or monitor contradicts the reservation. ha-mgmt-status defaults
# to disable (a ``show full-configuration`` prints ``set ha-mgmt-status disable``).
#
# Heartbeat links: "Configure at least two heartbeat interfaces and set these interfaces to
# have different priorities" (Fortinet Community, "Technical Tip: Best practices for Heartbeat
# interfaces in FGCP high availability", 192732); "We recommend double back-to-back heartbeat
# connections" (FortiOS 6.4.7 Administration Guide, "FGCP"). Unicast heartbeat addresses one
# peer (``unicast-hb-peerip``), and the KVM guide's unicast example has one hbdev: the
# recommendation is applied to broadcast heartbeat only.
RECOMMENDED_HEARTBEAT_LINKS = 2
#
# Device priority: "By default, the device priority for all cluster units is 128" (FortiOS 5.0
# Help, "Primary unit selection and device priority"). override: "disabled by default"; with it
# the FGCP compares "Failed Monitored Interfaces > Device Priority > Age > Serial number" and
# renegotiates at every event that may change the result; "For override to be effective, you
# must also set the device priority highest on the cluster unit that you want to always be the
# primary unit", and "Frequent negotiations may cause frequent traffic interruptions" (FortiOS
# 5.0 Help / 5.4 Online Help, "HA override"; FortiGate-7000 Handbooks, "Primary ... selection
# with override enabled").
DEFAULT_PRIORITY = 128
# "The unit priority range is 0 to 255" (FortiGate-100A Administration Guide, "Unit Priority")
PRIORITY_RANGE = (0, 255)
