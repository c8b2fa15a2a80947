"""Inventories (TOML) and cluster discovery."""

from __future__ import annotations

import sys
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pytest_kvmha.bundle.store import host_name_problem
from pytest_kvmha.config.firewalls import FirewallSource, check_console
from pytest_kvmha.config.hosts import check_virsh_uri, host_name_from_spec
from pytest_kvmha.config.target import HostTarget
from pytest_kvmha.facts import HostFacts

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

VENDORS = ("cos-core", "fortigate")
HEARTBEATS = ("broadcast", "unicast")
SCHEMES = (
    "local",
    "ssh",
    "paramiko",
    "ansible",
    "replay",
    "docker",
    "podman",
    "kubectl",
    "winrm",
    "lxc",
    "salt",
    "openshift",
    "chroot",
)


class InventoryError(Exception):
    """A usage error in an inventory; the message names the file, table and key."""


@dataclass(frozen=True, slots=True)
class MemberSpec:
    host: str
    domain: str
    role: str
    # The firewall's own HA configuration (issue 10): a saved file (absolute path) or a
    # read-only CLI over SSH (ssh://user@addr[:port]); at most one of them.
    config: str | None = None
    console: str | None = None


@dataclass(frozen=True, slots=True)
class PairSpec:
    name: str
    bridge: str | None = None
    vlan: int | None = None


@dataclass(frozen=True, slots=True)
class ClusterSpec:
    name: str
    vendor: str
    heartbeat: str
    members: tuple[MemberSpec, ...]
    pairs: tuple[PairSpec, ...]
    discovered: bool = False
    # Provisioning only (two servers): each host's physical uplink, and the bridge that trunks it.
    uplinks: Mapping[str, str] = field(default_factory=dict)
    trunk_bridge: str | None = None
    heartbeat_declared: bool = False  # the inventory said "heartbeat = ..." (else the default)

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "vendor": self.vendor,
            "heartbeat": self.heartbeat,
            "discovered": self.discovered,
            "members": [{"host": m.host, "domain": m.domain, "role": m.role} for m in self.members],
            "pairs": [{"name": p.name, "bridge": p.bridge, "vlan": p.vlan} for p in self.pairs],
        }


@dataclass(frozen=True, slots=True)
class Inventory:
    hosts: tuple[HostTarget, ...]
    clusters: tuple[ClusterSpec, ...]
    path: str | None = None


def check_spec(spec: str, where: str) -> str:
    scheme = spec.split("://", 1)[0] if "://" in spec else ""
    if scheme not in SCHEMES:
        raise InventoryError(
            f"{where}: host spec {spec!r} must be a testinfra URL (ssh://[user@]host[:port], "
            "local://, paramiko://, ansible://...) or replay://DIR"
        )
    return spec


def _str(table: dict[str, Any], key: str, where: str, *, required: bool = True) -> str | None:
    value = table.get(key)
    if value is None:
        if required:
            raise InventoryError(f"{where}: missing key '{key}'")
        return None
    if not isinstance(value, str) or not value:
        raise InventoryError(f"{where}: key '{key}' must be a non-empty string")
    if any(ord(c) < 32 or 0x7F <= ord(c) <= 0x9F or c in "\u2028\u2029" for c in value):
        raise InventoryError(f"{where}: key '{key}' contains control characters: {value!r}")
    return value


def load_inventory(path: str | Path) -> Inventory:
    path = Path(path)
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InventoryError(f"{path}: no such inventory file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InventoryError(f"{path}: unreadable: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise InventoryError(f"{path}: not valid TOML: {exc}") from None
    return parse_inventory(doc, str(path))


def parse_inventory(doc: dict[str, Any], source: str, *, base: Path | None = None) -> Inventory:
    known = {"hosts", "clusters"}
    for key in doc:
        if key not in known:
            raise InventoryError(
                f"{source}: unknown top-level table '{key}' (expected hosts, clusters)"
            )
    hosts_table = doc.get("hosts") or {}
    if not isinstance(hosts_table, dict) or not hosts_table:
        raise InventoryError(f"{source}: table [hosts] is missing or empty")
    base = base if base is not None else Path(source).parent
    hosts = []
    for name, table in hosts_table.items():
        where = f"{source}: [hosts.{name}]"
        if (problem := host_name_problem(name)) is not None:
            raise InventoryError(f"{where}: host name {problem} (it names the host's directory)")
        if not isinstance(table, dict):
            raise InventoryError(f"{where}: must be a table")
        for key in table:
            if key not in ("spec", "libvirt", "virsh_uri"):
                raise InventoryError(
                    f"{where}: unknown key '{key}' (expected spec, libvirt, virsh_uri)"
                )
        spec = check_spec(_str(table, "spec", where) or "", where)
        if spec.startswith("replay://") and not Path(spec[len("replay://") :]).is_absolute():
            spec = "replay://" + str(base / spec[len("replay://") :])
        libvirt = _str(table, "libvirt", where, required=False)
        virsh_uri = _str(table, "virsh_uri", where, required=False)
        if virsh_uri is not None:
            if libvirt is not None:
                raise InventoryError(
                    f"{where}: keys 'libvirt' and 'virsh_uri' exclude each other "
                    "(libvirt reads through libvirt-python here, virsh_uri pins the host's virsh)"
                )
            try:
                check_virsh_uri(virsh_uri)
            except ValueError as exc:
                raise InventoryError(f"{where}: key 'virsh_uri': {exc}") from None
        hosts.append(HostTarget(name, spec, libvirt, virsh_uri))
    host_names = {h.name for h in hosts}
    clusters = []
    clusters_table = doc.get("clusters") or {}
    if not isinstance(clusters_table, dict):
        raise InventoryError(f"{source}: [clusters] must be a table")
    for cname, table in clusters_table.items():
        where = f"{source}: [clusters.{cname}]"
        if any(ord(c) < 32 or c == "\x7f" for c in cname):
            raise InventoryError(f"{source}: cluster name {cname!r} contains control characters")
        if not isinstance(table, dict):
            raise InventoryError(f"{where}: must be a table")
        for key in table:
            if key not in ("vendor", "heartbeat", "members", "pairs", "uplinks", "trunk_bridge"):
                raise InventoryError(
                    f"{where}: unknown key '{key}' "
                    "(expected vendor, heartbeat, members, pairs, uplinks, trunk_bridge)"
                )
        vendor = _str(table, "vendor", where) or ""
        if vendor not in VENDORS:
            raise InventoryError(
                f"{where}: key 'vendor' must be one of {', '.join(VENDORS)}, not {vendor!r}"
            )
        declared = _str(table, "heartbeat", where, required=False)
        heartbeat = declared or "broadcast"
        if heartbeat not in HEARTBEATS:
            raise InventoryError(
                f"{where}: key 'heartbeat' must be one of {', '.join(HEARTBEATS)}, not {heartbeat!r}"
            )
        members_raw = table.get("members")
        if not isinstance(members_raw, list) or not members_raw:
            raise InventoryError(f"{where}: key 'members' must be a non-empty array of tables")
        members = []
        for i, m in enumerate(members_raw):
            mwhere = f"{where}: members[{i}]"
            if not isinstance(m, dict):
                raise InventoryError(f"{mwhere}: must be a table {{ host = ..., domain = ... }}")
            host = _str(m, "host", mwhere) or ""
            if host not in host_names:
                raise InventoryError(
                    f"{mwhere}: key 'host' names unknown host {host!r} (not in [hosts])"
                )
            role = _str(m, "role", mwhere, required=False) or ("master" if i == 0 else "slave")
            domain = _str(m, "domain", mwhere) or ""
            config, console = _firewall_keys(m, mwhere, vendor, base)
            members.append(MemberSpec(host, domain, role, config, console))
        pairs = []
        pairs_raw = table.get("pairs", [])
        if not isinstance(pairs_raw, list):
            raise InventoryError(
                f"{where}: key 'pairs' must be an array of tables ([[clusters.{cname}.pairs]])"
            )
        for i, p in enumerate(pairs_raw):
            pwhere = f"{where}: pairs[{i}]"
            if not isinstance(p, dict):
                raise InventoryError(f"{pwhere}: must be a table")
            vlan = p.get("vlan")
            if vlan is not None and (
                not isinstance(vlan, int) or isinstance(vlan, bool) or not 1 <= vlan <= 4094
            ):
                raise InventoryError(f"{pwhere}: key 'vlan' must be an integer 1..4094")
            pairs.append(
                PairSpec(
                    _str(p, "name", pwhere, required=False) or f"If{i + 1}",
                    _str(p, "bridge", pwhere, required=False),
                    vlan,
                )
            )
        if len({p.name for p in pairs}) != len(pairs):
            raise InventoryError(f"{where}: pair names must be unique")
        uplinks = table.get("uplinks", {})
        if not isinstance(uplinks, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and v for k, v in uplinks.items()
        ):
            raise InventoryError(f"{where}: key 'uplinks' must be a table host = \"ifname\"")
        for host in uplinks:
            if host not in host_names:
                raise InventoryError(f"{where}: key 'uplinks' names unknown host {host!r}")
        clusters.append(
            ClusterSpec(
                cname,
                vendor,
                heartbeat,
                tuple(members),
                tuple(pairs),
                False,
                dict(uplinks),
                _str(table, "trunk_bridge", where, required=False),
                heartbeat_declared=declared is not None,
            )
        )
    return Inventory(_with_firewalls(hosts, clusters), tuple(clusters), source)


MEMBER_KEYS = ("host", "domain", "role", "config", "console", "vendor")


def _firewall_keys(
    m: dict[str, Any], where: str, vendor: str, base: Path
) -> tuple[str | None, str | None]:
    """A member's ``config`` (made absolute: relative to the inventory file) and ``console``."""
    for key in m:
        if key not in MEMBER_KEYS:
            raise InventoryError(
                f"{where}: unknown key '{key}' (expected {', '.join(MEMBER_KEYS)})"
            )
    own = _str(m, "vendor", where, required=False)
    if own is not None and own != vendor:
        raise InventoryError(
            f"{where}: key 'vendor' is {own!r}, but the cluster's vendor is {vendor!r}"
        )
    config = _str(m, "config", where, required=False)
    console = _str(m, "console", where, required=False)
    if config is not None and console is not None:
        raise InventoryError(
            f"{where}: keys 'config' and 'console' exclude each other "
            "(a saved configuration, or read-only CLI access over SSH)"
        )
    if config is not None:
        config = str(base / Path(config).expanduser())
    if console is not None:
        try:
            check_console(console)
        except ValueError as exc:
            raise InventoryError(f"{where}: key 'console': {exc}") from None
    return config, console


def _with_firewalls(hosts: list[HostTarget], clusters: list[ClusterSpec]) -> tuple[HostTarget, ...]:
    """Each host learns the firewall configurations to collect with it (its members')."""
    sources: dict[str, list[FirewallSource]] = {}
    for c in clusters:
        for m in c.members:
            if m.config is not None or m.console is not None:
                sources.setdefault(m.host, []).append(
                    FirewallSource(m.domain, c.vendor, m.config, m.console)
                )
    return tuple(replace(h, firewalls=tuple(sources.get(h.name, ()))) for h in hosts)


def inventory_from_specs(specs: Iterable[str]) -> Inventory:
    """``--kvmha-host`` specs without an inventory: hosts named after the spec's host part."""
    hosts: list[HostTarget] = []
    seen: dict[str, int] = {}
    for spec in specs:
        check_spec(spec, "--kvmha-host")
        name = host_name_from_spec(spec)
        if (problem := host_name_problem(name)) is not None:
            raise InventoryError(f"--kvmha-host {spec}: host name {problem}")
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:
            name = f"{name}-{seen[name]}"
        hosts.append(HostTarget(name, spec))
    return Inventory(tuple(hosts), ())


def _nic_bridge(host: HostFacts, nic: Any) -> str | None:
    if nic.source_bridge:
        return str(nic.source_bridge)
    if nic.source_network and host.networks and nic.source_network in host.networks:
        return host.networks[nic.source_network].bridge
    return None


def _on_ovs(host: HostFacts, nic: Any, bridge: str) -> bool:
    """Whether the NIC sits on an Open vSwitch bridge: one the host's OVS knows, or bound to OVS
    by its own or its network's ``<virtualport type='openvswitch'/>`` (OVS facts may be missing)."""
    if host.ovs is not None and host.ovs.bridge(bridge) is not None:
        return True
    if nic.virtualport == "openvswitch":
        return True
    network = (host.networks or {}).get(nic.source_network or "")
    return network is not None and network.virtualport == "openvswitch"


# Why a domain is no pairing candidate (counted per host in the discovery outcome).
FEW_NICS = "fewer than 2 NICs"
NO_BRIDGE = "a NIC on no bridge"
NO_OVS = "no NIC on an OVS bridge"
MAX_NAMES = 10  # domain names listed in one line of text; the JSON report lists them all


def name_list(names: Iterable[str]) -> str:
    """Names for a message, the first few only: a host with hundreds of VMs must stay readable."""
    names = list(names)
    shown = ", ".join(names[:MAX_NAMES])
    return shown + (f" and {len(names) - MAX_NAMES} more" if len(names) > MAX_NAMES else "")


@dataclass(frozen=True, slots=True)
class AmbiguousLayout:
    """A NIC-to-bridge layout shared by three or more domains: no pair can be told apart."""

    members: tuple[tuple[str, str], ...]  # (host, domain), sorted by domain
    layout: tuple[str, ...]  # the bridge of each NIC, in NIC order
    reason: str

    def as_json(self) -> dict[str, Any]:
        return {
            "domains": [d for _, d in self.members],
            "hosts": sorted({h for h, _ in self.members}),
            "members": [{"host": h, "domain": d} for h, d in self.members],
            "layout": list(self.layout),
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class Discovery:
    """What discovery saw: the pairs it formed, the layouts it would not guess, and per host how
    many domains it read (``None``: libvirt was not read) and why the others are no candidates."""

    clusters: tuple[ClusterSpec, ...]
    ambiguous: tuple[AmbiguousLayout, ...]
    domains: Mapping[str, int | None]
    skipped: Mapping[str, Mapping[str, int]]  # host -> reason -> domains

    def describe(self) -> str:
        """One sentence for the "no HA cluster found" error."""
        parts = []
        for host, n in self.domains.items():
            if n is None:
                parts.append(f"domains of {host} not read")
                continue
            why = ", ".join(f"{k} {r}" for r, k in self.skipped.get(host, {}).items())
            noun = "domain" if n == 1 else "domains"
            parts.append(f"{n} {noun} read on {host}" + (f" ({why})" if why else ""))
        text = "; ".join(parts) or "no host was read"
        text += ", none pair up"
        for a in self.ambiguous:
            text += (
                f"; {len(a.members)} domains share one layout ({', '.join(a.layout)}): "
                + name_list(f"{d}@{h}" for h, d in a.members)
            )
        return text

    def as_json(self) -> dict[str, Any]:
        return {
            "clusters": [c.name for c in self.clusters],
            "ambiguous": [a.as_json() for a in self.ambiguous],
            "domains": dict(self.domains),
            "skipped": {h: dict(r) for h, r in self.skipped.items()},
        }


def _layout(host: HostFacts, dom: Any) -> tuple[tuple[str, ...] | None, str | None]:
    """A domain's NIC-to-bridge layout, or why the domain cannot be an HA member."""
    if len(dom.nics) < 2:
        return None, FEW_NICS
    bridges = tuple(_nic_bridge(host, nic) or "" for nic in dom.nics)
    if not all(bridges):
        return None, NO_BRIDGE
    if not any(_on_ovs(host, nic, b) for nic, b in zip(dom.nics, bridges, strict=True)):
        return None, NO_OVS
    return bridges, None


def discover(hosts: Iterable[HostFacts]) -> Discovery:
    """Find HA pairs among the domains of ``hosts`` (on one server or across servers).

    A domain is a candidate when it has at least two NICs, each on a bridge, at least one of them
    an Open vSwitch bridge: a firewall joins networks, and the pairs of an HA cluster sit on OVS.
    Single-NIC VMs (dozens on ``virbr0`` or a LAN bridge) never are. Two candidates whose whole
    NIC-to-bridge layout (the bridge of NIC 1, NIC 2, ...) is the same form a cluster named
    ``<domA>+<domB>``. A layout shared by three or more domains is ambiguous: no cluster is
    guessed; it is reported so that the user can write an inventory. A server on one of the
    pair's bridges has another layout, so it never joins.
    """
    groups: dict[tuple[str, ...], list[tuple[str, str]]] = defaultdict(list)
    counts: dict[str, int | None] = {}
    skipped: dict[str, dict[str, int]] = {}
    for host in hosts:
        if host.status != "ok" or host.domains is None:
            counts[host.name] = None  # said in the error items of that host
            continue
        counts[host.name] = len(host.domains)
        for dom in host.domains.values():
            bridges, why = _layout(host, dom)
            if bridges is None:
                reasons = skipped.setdefault(host.name, {})
                reasons[str(why)] = reasons.get(str(why), 0) + 1
            else:
                groups[bridges].append((dom.name, host.name))
    clusters: list[ClusterSpec] = []
    ambiguous: list[AmbiguousLayout] = []
    for bridges, members in groups.items():
        members.sort()
        if len(members) > 2:
            ambiguous.append(
                AmbiguousLayout(
                    tuple((h, d) for d, h in members),
                    bridges,
                    f"{len(members)} domains share this NIC-to-bridge layout and an HA cluster "
                    "is exactly two: name the pair in an inventory (--kvmha-inventory)",
                )
            )
            continue
        if len(members) < 2:
            continue
        pair_names: list[str] = []
        for b in bridges:
            name = (
                b
                if b not in pair_names
                else f"{b}#{sum(1 for n in pair_names if n.split('#')[0] == b) + 1}"
            )
            pair_names.append(name)
        clusters.append(
            ClusterSpec(
                name="+".join(d for d, _ in members),
                vendor="unknown",
                heartbeat="broadcast",
                members=tuple(
                    MemberSpec(h, d, "master" if i == 0 else "slave")
                    for i, (d, h) in enumerate(members)
                ),
                pairs=tuple(PairSpec(n, b) for n, b in zip(pair_names, bridges, strict=False)),
                discovered=True,
            )
        )
    # Names must be unique (they are node ids): one domain name on two hosts gets its host.
    names = [c.name for c in clusters]
    clusters = [
        c
        if names.count(c.name) == 1 and len({m.domain for m in c.members}) == 2
        else replace(c, name="+".join(f"{m.domain}@{m.host}" for m in c.members))
        for c in clusters
    ]
    return Discovery(
        tuple(sorted(clusters, key=lambda c: c.name)),
        tuple(sorted(ambiguous, key=lambda a: a.members)),
        counts,
        skipped,
    )


def discover_clusters(hosts: Iterable[HostFacts]) -> tuple[ClusterSpec, ...]:
    """The clusters :func:`discover` finds (exactly two members each)."""
    return discover(hosts).clusters
