"""The evidence contract: what the sections of a bundle are called and what they may hold.

Written once, here, for both sides: the collector (:mod:`pytest_kvmha.collect`) that asks the
host and records its answers, and the parsers (:mod:`pytest_kvmha.parse`) that read them back.
The fixed shell scripts (:mod:`pytest_kvmha.collect.script`) print these same section names.
"""

from __future__ import annotations

import re

# --- the output framing of a host script ---------------------------------------------------------
# Every marker line starts with this prefix and a random boundary of lowercase hex, drawn anew
# for each command: a host cannot print a marker it has not been told.
BOUNDARY_PREFIX = "KVMHA"
BOUNDARY_HEX = re.compile(r"[0-9a-f]{16,64}")

# --- sections of the batch script ----------------------------------------------------------------
IDENTITY = "identity"  # machine-id, then hostname
PACKAGES = "packages"  # manager=..., then package<TAB>rc<TAB>status lines
OVS_VERSION = "ovs-version"  # ovs-vsctl --version
OVS_VSWITCHD = "ovs-vswitchd"  # ovs-appctl version: does the daemon answer
OVS_TABLES_SECTION = "ovs-tables"  # one ovs-vsctl for all tables, split into ovs-<table>
LINKS = "links"  # ip -d -j link show
LIBVIRT_URI = "libvirt-uri"  # where the URI came from, then the URI
VIRSH_DOMAINS = "virsh-domains"
VIRSH_ACTIVE = "virsh-active"
VIRSH_PAUSED = "virsh-paused"
VIRSH_NETWORKS = "virsh-networks"
VIRSH_NWFILTERS = "virsh-nwfilters"
NWFILTER_FETCHED = "nwfilter-fetched"  # the UUIDs of the filters followed from domain NICs
OVS_BONDS = "ovs-bonds"  # ovs-appctl bond/show: every bond's state (empty without bonds)
OVS_LACP = "ovs-lacp"  # ovs-appctl lacp/show: every LACP port's negotiation (empty without)
MKTEMP = "mktemp"  # only when the script could not make its private directory
# Dumps of many UUIDs over one virsh connection come as ``batch-<kind>`` and are recorded as
# ``<kind>/<uuid>``, one section per object.
BATCH_PREFIX = "batch-"
BATCHED = ("domain-inactive", "domain-live", "network", "nwfilter")

# The Open vSwitch columns the collector lists and the parser checks, all of them; each table
# is recorded as the raw JSON of ``ovs-vsctl --format=json list TABLE`` in ``ovs-<table>``.
# Restricting columns keeps bundles small on hosts with hundreds of ports.
OVS_COLUMNS = {
    "Open_vSwitch": ("_uuid", "ovs_version", "cur_cfg", "next_cfg"),
    "Bridge": (
        "_uuid",
        "name",
        "ports",
        "datapath_type",
        "stp_enable",
        "rstp_enable",
        "other_config",
    ),
    "Port": (
        "_uuid",
        "name",
        "interfaces",
        "tag",
        "trunks",
        "vlan_mode",
        "other_config",
        "status",
        "rstp_status",
        "bond_mode",
        "lacp",
    ),
    "Interface": (
        "_uuid",
        "name",
        "type",
        "options",
        "external_ids",
        "ofport",
        "error",
        "mac_in_use",
        "mtu",
        "mtu_request",
    ),
}
# Columns added after bundles were first recorded: a bundle without them is read, and the facts
# they give are "not collected" (OvsState.missing_columns), so the checks that need them err.
OVS_LATER_COLUMNS = {
    "Bridge": ("stp_enable", "rstp_enable", "other_config"),
    "Port": ("other_config", "status", "rstp_status", "bond_mode", "lacp"),
    "Interface": ("mtu", "mtu_request"),
}


def ovs_section(table: str) -> str:
    return f"ovs-{table}"


# --- sections of the trace script ----------------------------------------------------------------
DPIF_SECTION = "trace-dpif"  # ``ovs-appctl dpif/show``
TRACE_PREFIX = "trace/"  # ``trace/<key>``: one ofproto/trace per key (see traceplan.TraceSpec)

# What may reach the host as ofproto/trace arguments. Bridge names come from the host's OVSDB
# and are hostile: only plain names are traced (they travel as quoted positional arguments of a
# fixed script; this keeps anything a shell or ovs-appctl's own parser would read out of them).
BRIDGE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")
_MAC = r"[0-9a-f]{2}(?::[0-9a-f]{2}){5}"
_IP = r"\d{1,3}(?:\.\d{1,3}){3}"
# The only flows the planner writes: an OpenFlow port number, an optional VLAN, two MACs, an
# Ethertype, and optionally IPv4 addresses, protocol, TTL and ports, or ARP opcode and sender
# (see traceplan.flow and topology.traffic.Frame).
FLOW = re.compile(
    rf"in_port=\d{{1,5}}(?:,dl_vlan=\d{{1,4}})?,dl_src={_MAC},dl_dst={_MAC},dl_type=0x[0-9a-f]{{4}}"
    rf"(?:,nw_src={_IP})?(?:,nw_dst={_IP})?(?:,nw_proto=\d{{1,3}})?(?:,nw_ttl=\d{{1,3}})?"
    rf"(?:,udp_src=\d{{1,5}})?(?:,(?:tp|udp)_dst=\d{{1,5}})?(?:,arp_op=\d)?(?:,arp_sha={_MAC})?"
)
TRACE_KEY = re.compile(r"t[0-9a-f]{20}")
