"""Inventories (TOML): the hosts to audit and the clusters on them, validated.

Without an inventory, :mod:`pytest_kvmha.topology.discovery` finds the clusters instead.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pytest_kvmha.config.firewalls import FirewallSource, check_console
from pytest_kvmha.config.hosts import check_virsh_uri, host_name_from_spec
from pytest_kvmha.config.names import has_control, host_name_problem
from pytest_kvmha.config.redact import redact
from pytest_kvmha.config.target import HostTarget
from pytest_kvmha.config.toml import TomlLines, at, load_toml

VENDORS = ("cos-core", "fortigate")
NETWORK_SCHEMES = ("ssh", "paramiko")  # host[:port] in the URL; checked before any contact
HEARTBEATS = ("broadcast", "unicast")
CLUSTER_KEYS = ("vendor", "heartbeat", "group_id", "members", "pairs", "uplinks", "trunk_bridge")
PAIR_KEYS = ("name", "bridge", "vlan", "heartbeat")
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
    # The firewall's own HA configuration: a saved file (absolute path) or a
    # read-only CLI over SSH (ssh://user@addr[:port]); at most one of them.
    config: str | None = None
    console: str | None = None


@dataclass(frozen=True, slots=True)
class PairSpec:
    name: str
    bridge: str | None = None
    vlan: int | None = None
    # ``heartbeat = true``: the pair carries the cluster's heartbeat (FGCP hbdev, cOS Core sync);
    # false: a data pair; None: not said (for clusters without firewall configurations the
    # planner then traces both kinds of traffic on it)
    heartbeat: bool | None = None


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
    # FGCP group-id / cOS Core cluster ID, for clusters whose members' configurations are not
    # read (the configurations decide when every member has one); None: the vendor default
    group_id: int | None = None

    def as_json(self) -> dict[str, Any]:
        extra = {"group_id": self.group_id} if self.group_id is not None else {}
        return {
            "name": self.name,
            "vendor": self.vendor,
            "heartbeat": self.heartbeat,
            "discovered": self.discovered,
            "members": [{"host": m.host, "domain": m.domain, "role": m.role} for m in self.members],
            "pairs": [
                {"name": p.name, "bridge": p.bridge, "vlan": p.vlan}
                | ({"heartbeat": p.heartbeat} if p.heartbeat is not None else {})
                for p in self.pairs
            ],
        } | extra

    def label(self, member: MemberSpec) -> str:
        """The member's name in subjects and node ids: its domain, or ``domain@host`` when
        another member has a domain of that name (fw-a on kvm-a and fw-a on kvm-b): every
        finding's node id must stay unique, or the gate and the reports mix the two up."""
        if sum(m.domain == member.domain for m in self.members) > 1:
            return f"{member.domain}@{member.host}"
        return member.domain


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
    if scheme in NETWORK_SCHEMES:
        parts = urlsplit(spec)
        shown = redact(spec)
        if not parts.hostname:  # "ssh://" would become a host named "ssh"
            raise InventoryError(
                f"{where}: host spec {shown!r} names no host (expected {scheme}://[user@]host[:port])"
            )
        try:
            port = parts.port
        except ValueError:  # not a number, or past 65535
            port = -1
        if port is not None and not 1 <= port <= 65535:
            raise InventoryError(f"{where}: host spec {shown!r}: port must be a number in 1..65535")
    return spec


def _known_keys(table: dict[str, Any], keys: Sequence[str], where: str) -> None:
    for key in table:
        if key not in keys:
            raise InventoryError(f"{where}: unknown key '{key}' (expected {', '.join(keys)})")


def _one_of(value: str, choices: Sequence[str], key: str, where: str) -> None:
    if value not in choices:
        raise InventoryError(
            f"{where}: key '{key}' must be one of {', '.join(choices)}, not {value!r}"
        )


def _str(table: dict[str, Any], key: str, where: str, *, required: bool = True) -> str | None:
    value = table.get(key)
    if value is None:
        if required:
            raise InventoryError(f"{where}: missing key '{key}'")
        return None
    if not isinstance(value, str) or not value:
        raise InventoryError(f"{where}: key '{key}' must be a non-empty string")
    if has_control(value):
        raise InventoryError(f"{where}: key '{key}' contains control characters: {value!r}")
    return value


def load_inventory(path: str | Path) -> Inventory:
    path = Path(path)
    doc = load_toml(path, "inventory", InventoryError)
    return parse_inventory(doc, str(path), lines=TomlLines.read(path))


def _quoted(name: object) -> str:
    return json.dumps(str(name), ensure_ascii=False)


def parse_inventory(
    doc: dict[str, Any],
    source: str,
    *,
    base: Path | None = None,
    lines: TomlLines | None = None,
) -> Inventory:
    """The inventory in ``doc``. An error names ``source``, the entry by its name or 1-based
    position (``cluster "dmz-fw", pair 1``) and, given the file's ``lines``, its line."""
    lines = lines if lines is not None else TomlLines("")
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
        where = f"{source}: host {_quoted(name)}{at(lines.table('hosts', name))}"
        if (problem := host_name_problem(name)) is not None:
            raise InventoryError(f"{where}: host name {problem} (it names the host's directory)")
        if not isinstance(table, dict):
            raise InventoryError(f"{where}: must be a table")
        _known_keys(table, ("spec", "libvirt", "virsh_uri"), where)
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
        where = f"{source}: cluster {_quoted(cname)}{at(lines.table('clusters', cname))}"
        named = f"{source}: cluster {_quoted(cname)}"
        if has_control(cname):
            raise InventoryError(f"{source}: cluster name {cname!r} contains control characters")
        if not isinstance(table, dict):
            raise InventoryError(f"{where}: must be a table")
        _known_keys(table, CLUSTER_KEYS, where)
        vendor = _str(table, "vendor", where) or ""
        _one_of(vendor, VENDORS, "vendor", where)
        declared = _str(table, "heartbeat", where, required=False)
        heartbeat = declared or "broadcast"
        _one_of(heartbeat, HEARTBEATS, "heartbeat", where)
        members_raw = table.get("members")
        if not isinstance(members_raw, list) or not members_raw:
            raise InventoryError(f"{where}: key 'members' must be a non-empty array of tables")
        members: list[MemberSpec] = []
        for i, m in enumerate(members_raw):
            mwhere = f"{named}, member {i + 1}{at(lines.entry(('clusters', cname), 'members', i))}"
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
            if any((m.host, m.domain) == (host, domain) for m in members):
                # one firewall audited (and paired with itself) as two
                raise InventoryError(
                    f"{mwhere}: domain {domain!r} on host {host!r} is already a member of "
                    f"cluster {cname!r}: a cluster's two members are two domains"
                )
            members.append(MemberSpec(host, domain, role, config, console))
        pairs = []
        pairs_raw = table.get("pairs", [])
        if not isinstance(pairs_raw, list):
            raise InventoryError(
                f"{where}: key 'pairs' must be an array of tables ([[clusters.{cname}.pairs]])"
            )
        for i, p in enumerate(pairs_raw):
            pwhere = f"{named}, pair {i + 1}{at(lines.entry(('clusters', cname), 'pairs', i))}"
            if not isinstance(p, dict):
                raise InventoryError(f"{pwhere}: must be a table")
            _known_keys(p, PAIR_KEYS, pwhere)
            hb = p.get("heartbeat")
            if hb is not None and not isinstance(hb, bool):
                raise InventoryError(f"{pwhere}: key 'heartbeat' must be true or false")
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
                    hb,
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
                group_id=_group_id(table, where),
            )
        )
    return Inventory(_with_firewalls(hosts, clusters), tuple(clusters), source)


MEMBER_KEYS = ("host", "domain", "role", "config", "console", "vendor")


def _group_id(table: dict[str, Any], where: str) -> int | None:
    gid = table.get("group_id")
    if gid is None:
        return None
    if not isinstance(gid, int) or isinstance(gid, bool) or not 0 <= gid <= 1023:
        raise InventoryError(f"{where}: key 'group_id' must be an integer 0..1023")
    return gid


def _firewall_keys(
    m: dict[str, Any], where: str, vendor: str, base: Path
) -> tuple[str | None, str | None]:
    """A member's ``config`` (made absolute: relative to the inventory file) and ``console``."""
    _known_keys(m, MEMBER_KEYS, where)
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
