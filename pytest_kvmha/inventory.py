"""Inventories (TOML) and cluster discovery."""

from __future__ import annotations

import sys
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .bundle import host_name_problem
from .collect import HostTarget, host_name_from_spec
from .facts import HostFacts

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
            if key not in ("spec", "libvirt"):
                raise InventoryError(f"{where}: unknown key '{key}' (expected spec, libvirt)")
        spec = check_spec(_str(table, "spec", where) or "", where)
        if spec.startswith("replay://") and not Path(spec[len("replay://") :]).is_absolute():
            spec = "replay://" + str(base / spec[len("replay://") :])
        hosts.append(HostTarget(name, spec, _str(table, "libvirt", where, required=False)))
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
        heartbeat = _str(table, "heartbeat", where, required=False) or "broadcast"
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
            members.append(MemberSpec(host, _str(m, "domain", mwhere) or "", role))
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
            )
        )
    return Inventory(tuple(hosts), tuple(clusters), source)


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


def discover_clusters(hosts: Iterable[HostFacts]) -> tuple[ClusterSpec, ...]:
    """Domains whose k-th NICs sit on bridges of the same names form a cluster.

    Two such domains make a cluster named ``<domA>+<domB>`` (sorted). Three or more with one
    signature are kept together so that KVMHA-TOPO-001 reports them, rather than guessed apart.
    """
    groups: dict[tuple[str, ...], list[tuple[str, str]]] = defaultdict(list)
    for host in hosts:
        for dom in (host.domains or {}).values():
            bridges = tuple(_nic_bridge(host, nic) or "" for nic in dom.nics)
            if bridges and all(bridges):
                groups[bridges].append((dom.name, host.name))
    clusters = []
    for bridges, members in groups.items():
        if len(members) < 2:
            continue
        members.sort()
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
                    MemberSpec(h, d, "master" if i == 0 else "slave" if i == 1 else "member")
                    for i, (d, h) in enumerate(members)
                ),
                pairs=tuple(PairSpec(n, b) for n, b in zip(pair_names, bridges, strict=False)),
                discovered=True,
            )
        )
    return tuple(sorted(clusters, key=lambda c: c.name))
