"""A fleet of light simulated hypervisors for ``scripts/bench.py --fleet N``.

Each fleet host is a network namespace ``kvmha-<tag>-<i>`` with a management veth
(``10.251.0.0/16``, one /30 per host: apart from the lab slots' ``10.250.x.y``) and three processes:

* a REAL ``ovsdb-server`` + ``ovs-vswitchd`` (userspace ``netdev`` datapath, one handler and one
  revalidator thread) holding that host's pair bridges, VM ports (tap devices), patch ports and
  the trunk uplinks (veth pairs to the next and previous host of a ring);
* a REAL ``sshd`` (started inside a private mount namespace where the host's ``/etc/machine-id``,
  ``/run/openvswitch`` and a tiny ``/root/.bashrc`` are bind-mounted) whose sessions get
  ``LIBVIRT_DEFAULT_URI=test:///<host>/node.xml``: libvirt through the TEST driver, no libvirtd.

Read-only files are shared by all hosts (host key, authorized_keys, sshd_config, bashrc, an empty
OVS database template). Cluster ``c<i>-<c>`` has its master on host i and its slave on the next
host of the ring (on host i itself when N = 1), 2-4 NICs, one OVS bridge and VLAN per pair,
reached through patch ports and a trunk uplink per neighbour.

Everything pure (the layout, the test-driver XML, the OVS transaction, the inventory, the expected
findings, the table) is separate from :class:`Fleet`, which starts and stops the processes.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid as uuidlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import quoteattr

# the namespace lab's process helpers: same kind of daemons, same namespaces, ended by PID
from pytest_kvmha.testing import LabError, processes
from pytest_kvmha.testing.requirements import find_binary

OVS_SCHEMA = Path("/usr/share/openvswitch/vswitch.ovsschema")
STATE_FILE = "fleet.json"
SUBNET = "10.251"  # the lab slots use 10.250.x.y: never the same addresses
MAX_BLOCKS = 16384  # /30 blocks in 10.251.0.0/16
_NS = uuidlib.UUID("6b1c3f2e-3c1d-4f0a-9d55-6b3e2f0c9a10")  # uuid5 namespace: stable UUIDs

# --------------------------------------------------------------------------------------------
# Layout (pure)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FleetHost:
    index: int  # 1-based
    name: str  # inventory name
    netns: str
    root_if: str  # root side of the management veth
    root_addr: str
    addr: str  # where sshd listens

    @property
    def spec(self) -> str:
        return f"ssh://root@{self.addr}"


@dataclass(frozen=True)
class FleetNic:
    bridge: str
    vlan: int | None
    tap: str  # <target dev>, the OVS port
    mac: str
    slot: int
    interface_id: str


@dataclass(frozen=True)
class FleetDomain:
    name: str
    uuid: str
    host: int
    nics: tuple[FleetNic, ...]


@dataclass(frozen=True)
class FleetPair:
    name: str
    bridge: str
    vlan: int | None


@dataclass(frozen=True)
class FleetCluster:
    name: str
    master: FleetDomain
    slave: FleetDomain
    pairs: tuple[FleetPair, ...]
    defect_pair: int | None  # index of the pair whose slave NIC sits in the wrong PCI slot

    @property
    def two_servers(self) -> bool:
        return self.master.host != self.slave.host


@dataclass(frozen=True)
class Uplink:
    name: str  # veth end in this host
    bridge: str  # the trunk bridge it is on
    vlans: tuple[int, ...]


@dataclass(frozen=True)
class FleetPlan:
    tag: str
    hosts: tuple[FleetHost, ...]
    clusters: tuple[FleetCluster, ...]
    vms: tuple[FleetDomain, ...]  # ordinary VMs (one NIC on br-vm each)

    def host(self, index: int) -> FleetHost:
        return self.hosts[index - 1]

    def next_host(self, index: int) -> int:
        return index % len(self.hosts) + 1

    def prev_host(self, index: int) -> int:
        return (index - 2) % len(self.hosts) + 1

    def domains_on(self, index: int) -> list[FleetDomain]:
        out = [d for c in self.clusters for d in (c.master, c.slave) if d.host == index]
        return out + [v for v in self.vms if v.host == index]

    def uplinks(self, index: int) -> list[Uplink]:
        """The host's trunk uplinks: to the next host (carrying the VLANs of the clusters it is
        master of) and from the previous one (those of the previous host's clusters)."""
        if len(self.hosts) < 2:
            return []
        mine = tuple(p.vlan for c in self.clusters if c.master.host == index for p in c.pairs)
        prev = self.prev_host(index)
        theirs = tuple(p.vlan for c in self.clusters if c.master.host == prev for p in c.pairs)
        return [
            Uplink("up-next", "tr-next", tuple(v for v in mine if v is not None)),
            Uplink("up-prev", "tr-prev", tuple(v for v in theirs if v is not None)),
        ]

    @property
    def defects(self) -> list[FleetCluster]:
        return [c for c in self.clusters if c.defect_pair is not None]


def _block_addr(block: int, last: int) -> str:
    value = block * 4 + last
    return f"{SUBNET}.{value >> 8}.{value & 255}"


def plan_fleet(
    n: int,
    *,
    tag: str = "fleet",
    veth_prefix: str = "kvfl",
    first_block: int = 1,
    clusters_per_host: int = 2,
    vms_per_host: int = 2,
    defect_every: int = 10,
) -> FleetPlan:
    """The fleet's layout. Host ``i`` is master of ``clusters_per_host`` clusters whose slaves run
    on host ``i+1`` (ring); with ``defect_every`` > 0, hosts 2, 2+k, 2+2k, ... get one planted
    defect: in their first cluster the slave's NIC of pair If2 sits in another PCI slot."""
    if not 1 <= n or first_block + n > MAX_BLOCKS:
        raise ValueError(f"fleet size must be 1..{MAX_BLOCKS - first_block - 1}")
    if not re.fullmatch(r"[a-z][a-z0-9]{0,9}", tag) or not re.fullmatch(r"[a-z]{1,6}", veth_prefix):
        raise ValueError("tag: 1-10 lowercase letters/digits; veth_prefix: 1-6 letters")
    hosts = tuple(
        FleetHost(
            index=i,
            name=f"fleet-h{i}",
            netns=f"kvmha-{tag}-{i}",
            root_if=f"{veth_prefix}{i}",
            root_addr=_block_addr(first_block + i, 1),
            addr=_block_addr(first_block + i, 2),
        )
        for i in range(1, n + 1)
    )
    clusters: list[FleetCluster] = []
    for i in range(1, n + 1):
        j = i % n + 1
        for c in range(clusters_per_host):
            nics = 2 + (i + c) % 3
            two = i != j
            pairs = tuple(
                FleetPair(f"If{k + 1}", f"ha{i}-{c}-{k + 1}", 100 + 8 * c + k if two else None)
                for k in range(nics)
            )
            defect = 1 if defect_every and c == 0 and (i - 2) % defect_every == 0 else None
            doms = []
            for side, host in (("a", i), ("b", j)):
                name = f"fw{i}-{c}{side}"
                doms.append(
                    FleetDomain(
                        name,
                        str(uuidlib.uuid5(_NS, f"{tag}/{name}")),
                        host,
                        tuple(
                            FleetNic(
                                bridge=p.bridge,
                                vlan=p.vlan,
                                tap=f"v{i}c{c}n{k}{side}",
                                mac=_mac(i, 16 * c + k, 0 if side == "a" else 1),
                                slot=3 + k + (4 if side == "b" and defect == k else 0),
                                interface_id=str(uuidlib.uuid5(_NS, f"{tag}/{name}/{k}")),
                            )
                            for k, p in enumerate(pairs)
                        ),
                    )
                )
            clusters.append(FleetCluster(f"c{i}-{c}", doms[0], doms[1], pairs, defect))
    vms = tuple(
        FleetDomain(
            f"vm{i}-{v}",
            str(uuidlib.uuid5(_NS, f"{tag}/vm{i}-{v}")),
            i,
            (
                FleetNic(
                    "br-vm",
                    None,
                    f"v{i}vm{v}",
                    _mac(i, 0xF0, v),
                    3,
                    str(uuidlib.uuid5(_NS, f"{tag}/vm{i}-{v}/0")),
                ),
            ),
        )
        for i in range(1, n + 1)
        for v in range(vms_per_host)
    )
    return FleetPlan(tag, hosts, tuple(clusters), vms)


def _mac(host: int, a: int, b: int) -> str:
    return f"52:54:{host >> 8 & 255:02x}:{host & 255:02x}:{a & 255:02x}:{b & 255:02x}"


def node_xml(plan: FleetPlan, index: int) -> str:
    """The libvirt test driver's node file of host ``index``: its domains, all running."""
    out = ["<node>"]
    for dom in plan.domains_on(index):
        out += [
            "  <domain type='test'>",
            f"    <name>{dom.name}</name>",
            f"    <uuid>{dom.uuid}</uuid>",
            "    <memory unit='MiB'>64</memory>",
            "    <vcpu>1</vcpu>",
            "    <os><type arch='x86_64' machine='pc'>hvm</type></os>",
            "    <devices>",
        ]
        for nic in dom.nics:
            out += [
                "      <interface type='bridge'>",
                f"        <mac address={quoteattr(nic.mac)}/>",
                f"        <source bridge={quoteattr(nic.bridge)}/>",
            ]
            if nic.vlan is not None:
                out.append(f"        <vlan><tag id='{nic.vlan}'/></vlan>")
            out += [
                "        <virtualport type='openvswitch'>",
                f"          <parameters interfaceid={quoteattr(nic.interface_id)}/>",
                "        </virtualport>",
                # not vnetN: libvirt drops such auto-generated names from the XML it parses
                f"        <target dev={quoteattr(nic.tap)}/>",
                "        <model type='virtio'/>",
                f"        <address type='pci' domain='0x0000' bus='0x00' slot='{nic.slot:#04x}'"
                " function='0x0'/>",
                "      </interface>",
            ]
        out += ["    </devices>", "  </domain>"]
    out.append("</node>")
    return "\n".join(out) + "\n"


def ovs_transaction(plan: FleetPlan, index: int, machine_id: str) -> list[str]:
    """ONE ``ovs-vsctl`` argument list that gives host ``index``'s switch all its bridges and
    ports (run with ``--no-wait`` before ovs-vswitchd starts: it then configures everything at
    once)."""
    host = plan.host(index)
    args = [
        "--",
        "init",
        "--",
        "set",
        "Open_vSwitch",
        ".",
        "other_config:n-handler-threads=1",
        "other_config:n-revalidator-threads=1",
        f"external_ids:hostname={host.name}",
        f"external_ids:system-id={machine_id}",
    ]
    bridges: dict[str, None] = {}
    for dom in plan.domains_on(index):
        for nic in dom.nics:
            bridges.setdefault(nic.bridge)
    uplinks = plan.uplinks(index)
    for up in uplinks:
        bridges.setdefault(up.bridge)
    for br in bridges:
        args += ["--", "--may-exist", "add-br", br, "--", "set", "Bridge", br]
        args.append("datapath_type=netdev")
    for dom in plan.domains_on(index):
        for nic in dom.nics:
            args += ["--", "add-port", nic.bridge, nic.tap]
            if nic.vlan is not None:
                args.append(f"tag={nic.vlan}")
            args += [
                "--",
                "set",
                "Interface",
                nic.tap,
                f'external_ids:attached-mac="{nic.mac}"',
                f"external_ids:iface-id={nic.interface_id}",
                "external_ids:iface-status=active",
                f"external_ids:vm-id={dom.uuid}",
            ]
    for c in plan.clusters if uplinks else ():
        for dom, trunk in ((c.master, "tr-next"), (c.slave, "tr-prev")):
            if dom.host != index:
                continue
            for k, pair in enumerate(c.pairs, start=1):
                inner, outer = f"pi{c.name}-{k}", f"po{c.name}-{k}"
                args += ["--", "add-port", pair.bridge, inner]
                args += ["--", "set", "Interface", inner, "type=patch", f"options:peer={outer}"]
                args += ["--", "add-port", trunk, outer]
                args += ["--", "set", "Interface", outer, "type=patch", f"options:peer={inner}"]
    for up in uplinks:
        args += ["--", "add-port", up.bridge, up.name]
        if up.vlans:
            args.append("trunks=[" + ",".join(str(v) for v in up.vlans) + "]")
    return args


def inventory_toml(plan: FleetPlan) -> str:
    """The plugin's inventory of the fleet (virsh's URI comes from the login's
    LIBVIRT_DEFAULT_URI, as on a host whose root sets it)."""
    lines = []
    for h in plan.hosts:
        lines += [f"[hosts.{h.name}]", f"spec = {json.dumps(h.spec)}", ""]
    for n, c in enumerate(plan.clusters, 1):
        # the ring carries VLAN 100+8c+k from host to host, so clusters share segments: each
        # gets a cluster ID of its own (KVMHA-ID-001)
        lines += [
            f'[clusters."{c.name}"]',
            'vendor = "cos-core"',
            'heartbeat = "broadcast"',
            f"group_id = {n}",
            "members = [",
            f'  {{ host = "{plan.host(c.master.host).name}", domain = "{c.master.name}", role = "master" }},',
            f'  {{ host = "{plan.host(c.slave.host).name}", domain = "{c.slave.name}", role = "slave" }},',
            "]",
        ]
        for p in c.pairs:
            lines += [f'[[clusters."{c.name}".pairs]]', f'name = "{p.name}"']
            lines.append(f'bridge = "{p.bridge}"')
            if p.vlan is not None:
                lines.append(f"vlan = {p.vlan}")
        lines.append("")
    return "\n".join(lines)


# (check, cluster or else host, subject) -> the statuses that are right. HOST-000 "nwfilters" may be
# an error: the test driver has no nwfilter API, and virsh nwfilter-list fails on it.
Key = tuple[str, str, str]
NWFILTER_KEY = "nwfilters"
IDENTITY = "KVMHA-ID-001"  # subjects are segments (topology.segments): checked by status only


def expected_findings(plan: FleetPlan) -> dict[Key, frozenset[str]]:
    """Every finding an audit of the fleet must produce, with its status."""
    e: dict[Key, frozenset[str]] = {}
    ok, fail, skip = frozenset({"pass"}), frozenset({"fail"}), frozenset({"skip"})
    for h in plan.hosts:
        e[("KVMHA-PKG-001", h.name, h.name)] = ok
        e[("KVMHA-OVS-001", h.name, h.name)] = ok
    for c in plan.clusters:
        two = c.two_servers
        e[("KVMHA-TOPO-001", c.name, c.name)] = ok
        e[("KVMHA-TOPO-002", c.name, c.name)] = ok if two else fail
        e[("KVMHA-HB-003", c.name, c.name)] = skip
        for fw in (
            *("KVMHA-FW-002", "KVMHA-FW-003", "KVMHA-FW-004", "KVMHA-FW-005"),
            *("KVMHA-FGCP-001", "KVMHA-FGCP-002", "KVMHA-FGCP-003", "KVMHA-FGCP-004"),
            *("KVMHA-FIRM-001", "KVMHA-HA-001"),
        ):
            e[(fw, c.name, c.name)] = skip  # the fleet declares no firewall configurations
        for d in (c.master, c.slave):
            e[("KVMHA-HB-002", c.name, d.name)] = ok
            e[("KVMHA-FW-001", c.name, d.name)] = skip
        for idx in {c.master.host, c.slave.host}:
            host = plan.host(idx).name
            e[("KVMHA-HB-001", c.name, host)] = ok if two else skip
            e[("KVMHA-VLAN-002", c.name, host)] = ok if two else skip
            e[("KVMHA-OVS-004", c.name, host)] = skip  # no bonded uplinks in the fleet
        for k, p in enumerate(c.pairs):
            e[("KVMHA-OVS-002", c.name, p.name)] = ok
            e[("KVMHA-OVS-003", c.name, p.name)] = ok  # no spanning tree on the fleet's bridges
            e[("KVMHA-OVS-005", c.name, p.name)] = ok  # 1500 all along
            e[("KVMHA-VIRT-002", c.name, p.name)] = fail if c.defect_pair == k else ok
            e[("KVMHA-VIRT-003", c.name, p.name)] = ok
            e[("KVMHA-VLAN-001", c.name, p.name)] = ok if two else skip
            for d in (c.master, c.slave):
                e[("KVMHA-VIRT-001", c.name, f"{d.name}:{p.name}")] = ok
                e[("KVMHA-SRIOV-001", c.name, f"{d.name}:{p.name}")] = skip  # OVS ports
                # ofproto/trace through each host's real OpenFlow tables: the path is there
                e[("KVMHA-TRACE-001", c.name, f"{d.name}:{p.name}")] = ok
    return e


def compare_findings(
    expected: Mapping[Key, frozenset[str]], report: Mapping[str, object]
) -> list[str]:
    """Differences between an audit's JSON report and what the fleet was built to have (empty:
    exactly as built). Each HOST-000 ``nwfilters`` error is allowed (and also its absence)."""
    problems: list[str] = []
    seen: set[Key] = set()
    findings = report.get("findings")
    if not isinstance(findings, list):
        return ["report has no findings list"]
    # the checks that do not apply to a cluster at all are no findings: their skips are listed
    # under not_applicable by node id (kvmha/<cluster>/<CHECK>[<subject>])
    skipped: list[dict[str, object]] = []
    for na in report.get("not_applicable") or []:  # type: ignore[attr-defined]
        for nodeid in na["nodeids"]:
            _, cluster, rest = str(nodeid).split("/", 2)
            check, _, subject = rest.partition("[")
            skipped.append(
                {"check": check, "cluster": cluster, "subject": subject[:-1], "status": "skip"}
            )
    for f in [*findings, *skipped]:
        where = f.get("cluster") or f.get("host") or ""
        key = (str(f["check"]), str(where), str(f["subject"]))
        status = str(f["status"])
        if key in seen:
            problems.append(f"{key}: reported twice")
        seen.add(key)
        if key[0] == "KVMHA-HOST-000" and key[2] == NWFILTER_KEY and status == "error":
            continue
        if key[0] == IDENTITY:  # one per segment the ring's VLANs make: each must pass
            if status != "pass":
                problems.append(f"{key}: {status}, expected pass: {f.get('detail')}")
            continue
        want = expected.get(key)
        if want is None:
            problems.append(f"{key}: unexpected {status}: {f.get('detail')}")
        elif status not in want:
            problems.append(
                f"{key}: {status}, expected {'/'.join(sorted(want))}: {f.get('detail')}"
            )
    for key in expected.keys() - seen:
        problems.append(f"{key}: missing")
    return problems


def testinfra_spec(plan: FleetPlan, ssh_config: Path) -> dict[str, object]:
    """What the plain testinfra module knows about the fleet (as a testinfra user keeps it in
    a vars file): per host its uplinks, per cluster its members and pairs."""
    return {
        "ssh_config": str(ssh_config),
        "hosts": {
            h.addr: {
                "name": h.name,
                "uplinks": [
                    {"name": u.name, "vlans": list(u.vlans)} for u in plan.uplinks(h.index)
                ],
            }
            for h in plan.hosts
        },
        "clusters": [
            {
                "name": c.name,
                "members": [
                    {"spec": plan.host(d.host).spec, "domain": d.name} for d in (c.master, c.slave)
                ],
                "pairs": [{"name": p.name, "bridge": p.bridge, "vlan": p.vlan} for p in c.pairs],
            }
            for c in plan.clusters
        ],
    }


def expected_testinfra_failures(plan: FleetPlan) -> int:
    """Tests of the plain testinfra module that must fail: one per planted defect (PCI
    addresses) and one per single-server cluster (members on different servers)."""
    return len(plan.defects) + sum(1 for c in plan.clusters if not c.two_servers)


# --------------------------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------------------------


class FleetError(RuntimeError):
    pass


def _run(argv: Sequence[str], *, input: str | None = None, timeout: float = 120) -> str:
    try:
        return processes.run(argv, input=input, timeout=timeout).stdout
    except LabError as exc:
        raise FleetError(str(exc)) from None


_SSHD_CONFIG = """\
# shared by every fleet host; ListenAddress, PidFile and SetEnv come with -o
Port 22
HostKey {ssh}/host_ed25519
AuthorizedKeysFile {ssh}/authorized_keys
UsePAM no
StrictModes no
PermitRootLogin yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
PrintMotd no
PrintLastLog no
MaxSessions 50
# VERBOSE logs one "Starting session: command" line per remote command: the count
LogLevel VERBOSE
"""


@dataclass
class Fleet:
    """The fleet's processes: ``start()`` (cleans stale leftovers of the same tag first),
    ``stop()`` (never raises, returns leftovers). One per ``workdir``."""

    plan: FleetPlan
    workdir: Path
    parallel: int = 8
    timings: dict[str, float] = field(default_factory=dict)
    _procs: dict[int, dict[str, subprocess.Popen[bytes]]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # ---- paths ---------------------------------------------------------------------------
    @property
    def ssh_dir(self) -> Path:
        return self.workdir / "ssh"

    @property
    def ssh_config(self) -> Path:
        return self.ssh_dir / "config"

    @property
    def control_dir(self) -> Path:
        return self.workdir / "cm"

    def hostdir(self, index: int) -> Path:
        return self.workdir / f"h{index}"

    def sshd_log(self, index: int) -> Path:
        return self.hostdir(index) / "sshd.log"

    def __enter__(self) -> Fleet:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        problems = self.stop()
        if problems and exc[0] is None:
            raise FleetError("fleet teardown left: " + "; ".join(problems))

    # ---- start ---------------------------------------------------------------------------
    def start(self) -> None:
        if os.geteuid() != 0:
            raise FleetError("the fleet needs root (network namespaces)")
        for binary in ("ip", "unshare", "ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "virsh"):
            if find_binary(binary) is None:  # the lab's lookup: PATH, then sbin
                raise FleetError(f"the fleet needs {binary!r}")
        t0 = time.monotonic()
        stale = cleanup_stale(self.plan.tag, self.workdir)
        if stale:
            print(f"fleet: cleaned {len(stale)} stale leftovers of an earlier run")
        try:
            self._prepare()
            self._write_state()
            self._make_namespaces()
            self.timings["namespaces_s"] = time.monotonic() - t0
            with ThreadPoolExecutor(self.parallel) as pool:
                list(pool.map(self._start_host, [h.index for h in self.plan.hosts]))
            self.timings["start_s"] = time.monotonic() - t0
        except BaseException:
            self.stop()
            raise

    def _prepare(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.ssh_dir.mkdir(mode=0o700, exist_ok=True)
        self.control_dir.mkdir(mode=0o700, exist_ok=True)
        for key in ("id_ed25519", "host_ed25519"):
            if not (self.ssh_dir / key).exists():
                _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.ssh_dir / key)])
        (self.ssh_dir / "authorized_keys").write_text((self.ssh_dir / "id_ed25519.pub").read_text())
        (self.ssh_dir / "sshd_config").write_text(_SSHD_CONFIG.format(ssh=self.ssh_dir))
        (self.workdir / "bashrc").write_text("# kvmha fleet: minimal root bashrc\n")
        # ControlPath as testinfra users set it (testinfra passes ControlMaster=auto but no
        # path); each measured run starts without a master (see close_masters)
        (self.ssh_config).write_text(
            "Host *\n"
            "    User root\n"
            f"    IdentityFile {self.ssh_dir / 'id_ed25519'}\n"
            "    IdentitiesOnly yes\n"
            "    StrictHostKeyChecking no\n"
            "    UserKnownHostsFile /dev/null\n"
            "    LogLevel ERROR\n"
            f"    ControlPath {self.control_dir}/%C\n"
            "    ConnectTimeout 30\n"
        )
        template = self.workdir / "empty.db"
        if not template.exists():
            _run(["ovsdb-tool", "create", str(template), str(OVS_SCHEMA)])
        for d in ("/run/openvswitch", "/run/sshd"):
            Path(d).mkdir(parents=True, exist_ok=True)

    def _make_namespaces(self) -> None:
        """All namespaces, management veths and ring wires in a few ``ip -batch`` calls."""
        plan = self.plan
        root = []
        for h in plan.hosts:
            root += [
                f"netns add {h.netns}",
                f"link add {h.root_if} type veth peer name mgmt0 netns {h.netns}",
                f"addr add {h.root_addr}/30 dev {h.root_if}",
                f"link set {h.root_if} up",
            ]
        if len(plan.hosts) > 1:
            for h in plan.hosts:
                nxt = plan.host(plan.next_host(h.index))
                root.append(
                    f"link add up-next netns {h.netns} type veth peer name up-prev netns {nxt.netns}"
                )
        _run(["ip", "-batch", "-"], input="\n".join(root) + "\n")

        def inside(h: FleetHost) -> None:
            lines = [
                f"addr add {h.addr}/30 dev mgmt0",
                "link set mgmt0 up",
                "link set lo up",
            ]
            for dom in plan.domains_on(h.index):
                for nic in dom.nics:
                    lines += [f"tuntap add dev {nic.tap} mode tap", f"link set {nic.tap} up"]
            lines += [f"link set {u.name} up" for u in plan.uplinks(h.index)]
            _run(["ip", "-n", h.netns, "-batch", "-"], input="\n".join(lines) + "\n")

        with ThreadPoolExecutor(self.parallel) as pool:
            list(pool.map(inside, plan.hosts))

    def _spawn(self, index: int, key: str, argv: list[str], env: dict[str, str]) -> None:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
            start_new_session=True,  # Ctrl-C reaches us, not the daemons: we stop them in order
        )
        with self._lock:
            self._procs.setdefault(index, {})[key] = proc
            self._write_state()

    def _start_host(self, index: int) -> None:
        h = self.plan.host(index)
        hd = self.hostdir(index)
        ovs = hd / "ovs"
        ovs.mkdir(parents=True, exist_ok=True)
        (hd / "node.xml").write_text(node_xml(self.plan, index))
        machine_id = uuidlib.uuid5(_NS, f"{self.plan.tag}/machine/{index}").hex
        (hd / "machine-id").write_text(machine_id + "\n")
        shutil.copyfile(self.workdir / "empty.db", ovs / "conf.db")
        env = {
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": "/root",
            "LC_ALL": "C",
            "OVS_RUNDIR": str(ovs),
            "OVS_LOGDIR": str(ovs),
            "OVS_DBDIR": str(ovs),
        }
        netns = ["ip", "netns", "exec", h.netns]
        db = f"unix:{ovs}/db.sock"
        self._spawn(
            index,
            "ovsdb-server",
            netns
            + [
                "ovsdb-server",
                str(ovs / "conf.db"),
                f"--remote=punix:{ovs}/db.sock",
                f"--pidfile={ovs}/ovsdb-server.pid",
                f"--log-file={ovs}/ovsdb-server.log",
                "-vconsole:off",
                "--no-chdir",
            ],
            env,
        )
        _wait(lambda: (ovs / "db.sock").exists(), f"{h.name}: ovsdb-server socket")
        _run(
            ["ovs-vsctl", f"--db={db}", "--no-wait", *ovs_transaction(self.plan, index, machine_id)]
        )
        self._spawn(
            index,
            "ovs-vswitchd",
            netns
            + [
                "ovs-vswitchd",
                db,
                f"--pidfile={ovs}/ovs-vswitchd.pid",
                f"--log-file={ovs}/ovs-vswitchd.log",
                "-vconsole:off",
                "--no-chdir",
                "--disable-system",
                "--disable-system-route",
            ],
            env,
        )
        # waits until ovs-vswitchd has applied the whole configuration (cur_cfg catches up)
        _run(
            [
                "ovs-vsctl",
                f"--db={db}",
                "--timeout=120",
                "set",
                "Open_vSwitch",
                ".",
                "external_ids:fleet=ready",
            ],
            timeout=150,
        )
        binds = [
            (hd / "machine-id", "/etc/machine-id"),
            (ovs, "/run/openvswitch"),
            (self.workdir / "bashrc", "/root/.bashrc"),
        ]
        mounts = " && ".join(f"mount --bind {shlex.quote(str(s))} {d}" for s, d in binds)
        sshd = [
            "/usr/sbin/sshd",
            "-D",
            "-f",
            str(self.ssh_dir / "sshd_config"),
            "-o",
            f"ListenAddress={h.addr}",
            "-o",
            f"PidFile={hd / 'sshd.pid'}",
            "-o",
            f"SetEnv=LIBVIRT_DEFAULT_URI=test://{hd / 'node.xml'}",
            "-E",
            str(self.sshd_log(index)),
        ]
        self._spawn(
            index,
            "sshd",
            netns
            + ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c"]
            + [f"{mounts} && exec {shlex.join(sshd)}"],
            env={k: v for k, v in env.items() if not k.startswith("OVS_")},
        )
        _wait(lambda: _port_open(h.addr), f"{h.name}: sshd on {h.addr}:22")

    # ---- measurement helpers ---------------------------------------------------------------
    def memory_per_host(self) -> dict[str, float]:
        """Mean PSS and RSS (MB) of one host's daemons, and the size of its own files."""
        pss = rss = 0
        for procs in self._procs.values():
            for p in procs.values():
                for pid in [p.pid, *_children(p.pid)]:
                    try:
                        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
                    except OSError:
                        continue
                    pss += _kb(text, "Pss")
                    rss += _kb(text, "Rss")
        files = sum(
            f.stat().st_size
            for h in self.plan.hosts
            for f in self.hostdir(h.index).rglob("*")
            if f.is_file()
        )
        n = len(self.plan.hosts)
        return {
            "pss_mb": round(pss / 1024 / n, 2),
            "rss_mb": round(rss / 1024 / n, 2),
            "files_kb": round(files / 1024 / n, 1),
        }

    def idle_cpu(self, seconds: float = 3.0) -> float:
        """CPU (in cores) the fleet's daemons use while nobody audits them: the background
        every measured run competes with."""

        def ticks() -> int:
            total = 0
            for procs in self._procs.values():
                for p in procs.values():
                    try:
                        fields = Path(f"/proc/{p.pid}/stat").read_text().rsplit(")", 1)[1].split()
                    except OSError:
                        continue
                    total += int(fields[11]) + int(fields[12])  # utime + stime
            return total

        before = ticks()
        time.sleep(seconds)
        return round((ticks() - before) / os.sysconf("SC_CLK_TCK") / seconds, 3)

    def log_offsets(self) -> dict[int, int]:
        return {h.index: _size(self.sshd_log(h.index)) for h in self.plan.hosts}

    def sessions_since(self, offsets: Mapping[int, int]) -> dict[int, tuple[int, int]]:
        """Per host (commands, connections) that sshd logged after ``offsets``."""
        out = {}
        for h in self.plan.hosts:
            with open(self.sshd_log(h.index), "rb") as fh:
                fh.seek(offsets.get(h.index, 0))
                text = fh.read().decode("utf-8", "replace")
            out[h.index] = (
                text.count("Starting session: command"),
                text.count("Accepted publickey for root"),
            )
        return out

    def close_masters(self) -> None:
        """End every ssh ControlMaster a measured run left (testinfra asks for ControlPersist):
        the next run starts cold."""
        socks = [p for p in self.control_dir.iterdir()] if self.control_dir.exists() else []

        def close(sock: Path) -> None:
            subprocess.run(
                ["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "fleet"],
                capture_output=True,
                timeout=20,
                check=False,
            )

        with ThreadPoolExecutor(16) as pool:
            list(pool.map(close, socks))
        left: dict[int, str | None] = {
            pid: "ssh" for pid in processes.pids_naming(str(self.ssh_config), "ssh")
        }
        processes.kill_and_wait(left, timeout=5)
        for sock in self.control_dir.iterdir():
            sock.unlink(missing_ok=True)

    # ---- stop ----------------------------------------------------------------------------
    def stop(self) -> list[str]:
        problems: list[str] = []
        try:
            self.close_masters()
        except Exception as exc:  # noqa: BLE001 - teardown goes on
            problems.append(f"ssh masters: {exc}")
        pids: dict[int, str | None] = {}
        for procs in self._procs.values():
            for key, proc in procs.items():
                pids[proc.pid] = key if key != "sshd" else None  # sshd's comm after exec: sshd
        problems += processes.kill_and_wait(pids, timeout=10)
        for procs in self._procs.values():
            for proc in procs.values():
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    problems.append(f"pid {proc.pid} did not exit")
        self._procs.clear()
        problems += _remove_namespaces([h.netns for h in self.plan.hosts])
        for h in self.plan.hosts:
            if Path(f"/sys/class/net/{h.root_if}").exists():
                subprocess.run(["ip", "link", "del", h.root_if], capture_output=True, check=False)
                if Path(f"/sys/class/net/{h.root_if}").exists():
                    problems.append(f"veth {h.root_if} left")
        shutil.rmtree(self.workdir, ignore_errors=True)
        return problems

    def _write_state(self) -> None:
        state = {
            "tag": self.plan.tag,
            "netns": [h.netns for h in self.plan.hosts],
            "root_ifs": [h.root_if for h in self.plan.hosts],
            "pids": {str(p.pid): k for procs in self._procs.values() for k, p in procs.items()},
        }
        tmp = self.workdir / (STATE_FILE + ".tmp")
        tmp.write_text(json.dumps(state))
        tmp.replace(self.workdir / STATE_FILE)


def _remove_namespaces(names: Iterable[str]) -> list[str]:
    """Kill whatever still lives in these network namespaces (ssh sessions), then delete them
    (their veths go with them)."""
    names = [n for n in names if Path(f"/run/netns/{n}").exists()]
    if not names:
        return []
    inodes = {}
    for n in names:
        try:
            inodes[os.stat(f"/run/netns/{n}").st_ino] = n
        except OSError:
            pass
    members: dict[int, str | None] = {
        p: None
        for p in processes.pids()
        if p != os.getpid() and processes.ns_inode(p, "net") in inodes
    }
    problems = processes.kill_and_wait(members, timeout=5)
    subprocess.run(
        ["ip", "-batch", "-", "-force"],
        input="".join(f"netns del {n}\n" for n in names),
        capture_output=True,
        text=True,
        check=False,
    )
    problems += [f"netns {n} left" for n in names if Path(f"/run/netns/{n}").exists()]
    return problems


def cleanup_stale(tag: str, workdir: Path) -> list[str]:
    """Remove what a crashed or interrupted fleet of this ``tag`` left: the processes recorded
    in its state file (if their comm still matches), anything in namespaces ``kvmha-<tag>-N``,
    those namespaces, and the workdir."""
    cleaned: list[str] = []
    state_file = workdir / STATE_FILE
    root_ifs: list[str] = []
    if state_file.exists():
        try:
            state = json.loads(state_file.read_text())
            root_ifs = [str(i) for i in state.get("root_ifs", [])]
            pids: dict[int, str | None] = {
                int(p): (k if k != "sshd" else "sshd") for p, k in state.get("pids", {}).items()
            }
            cleaned += [f"pid {p}" for p in pids if processes.comm(p) is not None]
            processes.kill_and_wait(pids, timeout=10)
        except (OSError, ValueError) as exc:
            cleaned.append(f"unreadable state file {state_file}: {exc}")
    pattern = re.compile(rf"^kvmha-{re.escape(tag)}-\d+$")
    listing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False)
    stale = [
        ln.split()[0]
        for ln in listing.stdout.splitlines()
        if ln.split() and pattern.match(ln.split()[0])
    ]
    cleaned += [f"netns {n}" for n in stale]
    _remove_namespaces(stale)
    for ifname in root_ifs:  # gone with their namespace, but the kernel may take a moment
        if Path(f"/sys/class/net/{ifname}").exists():
            subprocess.run(["ip", "link", "del", ifname], capture_output=True, check=False)
    if workdir.exists():
        shutil.rmtree(workdir, ignore_errors=True)
        cleaned.append(f"workdir {workdir}")
    return cleaned


def _wait(cond: Callable[[], bool], what: str, timeout: float = 60) -> None:
    if not processes.wait_for(cond, timeout):
        raise FleetError(f"{what} did not come up in {timeout:g} s")


def _port_open(addr: str) -> bool:
    try:
        with socket.create_connection((addr, 22), timeout=0.5):
            return True
    except OSError:
        return False


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    out = []
    for c in text.split():
        out += [int(c), *_children(int(c))]
    return out


def _kb(text: str, key: str) -> int:
    m = re.search(rf"^{key}:\s+(\d+) kB", text, re.M)
    return int(m.group(1)) if m else 0


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


# --------------------------------------------------------------------------------------------
# Peak memory of a process tree
# --------------------------------------------------------------------------------------------

_PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


class TreeMemory:
    """Samples the summed RSS of a process and all its descendants every ``interval`` s; keeps
    the peak (and the peak of its Python processes alone: pytest and its xdist workers)."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self.pid = pid
        self.interval = interval
        self.peak_kb = 0
        self.peak_python_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def sample(self) -> None:
        # Walk the tree through /proc/PID/task/TID/children (a thread's children are listed
        # under that thread): far cheaper than reading every process of the machine, which
        # runs hundreds of fleet daemons. A child with its parent's very command line is a fork
        # (or vfork) that has not exec'd yet: it shares the parent's pages and is not counted
        # (the plugin starts 200 ssh clients at once from one process).
        total = python = 0
        todo: list[tuple[int, bytes]] = [(self.pid, b"")]
        seen: set[int] = set()
        while todo:
            pid, parent_cmdline = todo.pop()
            if pid in seen:
                continue
            seen.add(pid)
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                tasks = os.listdir(f"/proc/{pid}/task")
            except OSError:
                continue
            if cmdline != parent_cmdline:
                rss = int(stat.rsplit(")", 1)[1].split()[21]) * _PAGE_KB
                total += rss
                if stat[stat.index("(") + 1 : stat.rindex(")")].startswith("python"):
                    python += rss
            for tid in tasks:
                try:
                    kids = Path(f"/proc/{pid}/task/{tid}/children").read_text().split()
                except OSError:
                    continue
                todo += [(int(c), cmdline) for c in kids]
        self.peak_kb = max(self.peak_kb, total)
        self.peak_python_kb = max(self.peak_python_kb, python)


# --------------------------------------------------------------------------------------------
# The table
# --------------------------------------------------------------------------------------------


def render_table(rows: Sequence[Mapping[str, object]]) -> str:
    """Markdown table of measured rows (one per fleet size and contender) and the ratios."""
    head = (
        "| N | run | wall s | remote cmds/host | ssh conns/host | peak RSS MB (tree) "
        "| per host MB | pytest RSS MB | result |\n"
        "|---:|---|---:|---:|---:|---:|---:|---:|---|\n"
    )
    lines = []
    for r in rows:
        if r.get("wall_s") is None:
            lines.append(f"| {r['n']} | {r['run']} | {r.get('note', 'n/a')} | | | | | | |")
            continue
        n = int(r["n"])  # type: ignore[call-overload]
        peak = float(r["peak_rss_mb"])  # type: ignore[arg-type]
        lines.append(
            f"| {n} | {r['run']} | {float(r['wall_s']):.2f} | {_num(r['cmds_per_host'])} "  # type: ignore[arg-type]
            f"| {_num(r['conns_per_host'])} | {peak:.0f} | {peak / n:.1f} "
            f"| {float(r['python_rss_mb']):.0f} | {r.get('note', '')} |"  # type: ignore[arg-type]
        )
    out = head + "\n".join(lines) + "\n"
    ratios = ratio_lines(rows)
    if ratios:
        out += "\n" + "\n".join(ratios) + "\n"
    return out


def _num(value: object) -> str:
    f = float(value)  # type: ignore[arg-type]
    return f"{f:.0f}" if f == int(f) else f"{f:.1f}"


def ratio_lines(rows: Sequence[Mapping[str, object]]) -> list[str]:
    """Per N: plugin/floor and testinfra/plugin wall-time ratios (same run, same machine)."""
    by: dict[int, dict[str, float]] = {}
    python_mb: dict[int, dict[str, float]] = {}
    for r in rows:
        if r.get("wall_s") is not None:
            by.setdefault(int(r["n"]), {})[str(r["run"])] = float(r["wall_s"])  # type: ignore[call-overload, arg-type]
            if r.get("python_rss_mb") is not None:
                python_mb.setdefault(int(r["n"]), {})[str(r["run"])] = float(r["python_rss_mb"])  # type: ignore[call-overload, arg-type]
    out = []
    for n, t in sorted(by.items()):
        mem = python_mb.get(n, {})
        parts = []
        floor, plugin, startup = t.get("floor"), t.get("plugin"), t.get("pytest start-up")
        if floor and plugin:
            parts.append(f"plugin/floor {plugin / floor:.1f}x")
            if startup:
                parts.append(f"(plugin - pytest start-up)/floor {(plugin - startup) / floor:.1f}x")
        if plugin and mem.get("plugin") is not None and mem.get("pytest start-up") is not None:
            extra = (mem["plugin"] - mem["pytest start-up"]) / n
            parts.append(f"plugin memory above pytest start-up {extra:.2f} MB/host")
        if floor and t.get("plugin -n auto"):
            parts.append(f"plugin -n auto/floor {t['plugin -n auto'] / floor:.1f}x")
        if plugin and t.get("testinfra"):
            parts.append(f"testinfra/plugin {t['testinfra'] / plugin:.1f}x")
        if plugin and t.get("testinfra -n auto"):
            parts.append(f"testinfra -n auto/plugin {t['testinfra -n auto'] / plugin:.1f}x")
        if parts:
            out.append(f"- N={n}: " + ", ".join(parts))
    return out


# --------------------------------------------------------------------------------------------
# One benchmark run: floor, plugin, plain testinfra
# --------------------------------------------------------------------------------------------

SCRIPTS = Path(__file__).resolve().parent
TESTINFRA_MODULE = SCRIPTS / "bench_fleet_testinfra.py"


def _measure(
    fleet: Fleet, argv: list[str], *, cwd: Path, env: dict[str, str] | None = None
) -> tuple[dict[str, object], subprocess.CompletedProcess[bytes]]:
    """Run ``argv`` cold (no ssh master), timing it, sampling its tree's memory and counting
    what sshd logged on every host meanwhile."""
    fleet.close_masters()
    offsets = fleet.log_offsets()
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        with TreeMemory(proc.pid) as mem:
            out, err = proc.communicate()
    except BaseException:  # Ctrl-C: do not leave the measured run behind
        proc.kill()
        proc.wait()
        raise
    wall = time.perf_counter() - t0
    time.sleep(0.2)  # sshd writes its log lines as sessions start; let the last ones land
    sessions = fleet.sessions_since(offsets)
    fleet.close_masters()
    n = len(fleet.plan.hosts)
    row: dict[str, object] = {
        "n": n,
        "wall_s": round(wall, 3),
        "cmds_per_host": round(sum(c for c, _ in sessions.values()) / n, 2),
        "cmds_max": max(c for c, _ in sessions.values()),
        "conns_per_host": round(sum(c for _, c in sessions.values()) / n, 2),
        "peak_rss_mb": round(mem.peak_kb / 1024, 1),
        "python_rss_mb": round(mem.peak_python_kb / 1024, 1),
        "rc": proc.returncode,
    }
    return row, subprocess.CompletedProcess(argv, proc.returncode, out, err)


def floor_argv(fleet: Fleet) -> list[str]:
    """N parallel ``ssh host true`` (no multiplexing: one connection, one command each)."""
    script = f'for a in "$@"; do ssh -F {shlex.quote(str(fleet.ssh_config))} -o ControlMaster=no "$a" true & done; wait'
    return ["sh", "-c", script, "floor", *(h.addr for h in fleet.plan.hosts)]


def run_floor(fleet: Fleet) -> dict[str, object]:
    row, proc = _measure(fleet, floor_argv(fleet), cwd=fleet.workdir)
    row["run"] = "floor"
    ok = proc.returncode == 0 and row["cmds_per_host"] == 1
    row["note"] = "ok" if ok else f"rc={proc.returncode}"
    return row


def run_startup(fleet: Fleet, python: str) -> dict[str, object]:
    """pytest with its plugins (kvmha, testinfra, xdist) and nothing to run: the part of every
    pytest row that no host causes."""
    rundir = fleet.workdir / "startup"
    rundir.mkdir(exist_ok=True)
    argv = [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(rundir)]
    row, proc = _measure(fleet, argv, cwd=rundir)
    row["run"] = "pytest start-up"
    row["note"] = "ok" if proc.returncode == 5 else f"rc={proc.returncode}"  # 5: no tests
    return row


def run_plugin(fleet: Fleet, python: str, xdist: bool) -> dict[str, object]:
    rundir = fleet.workdir / ("plugin-n" if xdist else "plugin")
    rundir.mkdir(exist_ok=True)
    inv = rundir / "fleet.toml"
    inv.write_text(inventory_toml(fleet.plan))
    report = rundir / "report.json"
    report.unlink(missing_ok=True)
    argv = [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--kvmha-inventory={inv}"]
    argv += [f"--kvmha-ssh-config={fleet.ssh_config}", f"--kvmha-report={report}"]
    if xdist:
        argv += ["-n", "auto"]
    row, proc = _measure(fleet, argv, cwd=rundir)
    row["run"] = "plugin -n auto" if xdist else "plugin"
    if xdist and proc.returncode == 4 and b"xdist" in proc.stderr + proc.stdout:
        # `-n` with an audit is a usage error until the fleet branch lands
        return {"n": row["n"], "run": row["run"], "wall_s": None, "note": "n/a (usage error)"}
    if not report.exists():
        tail = (proc.stdout + proc.stderr).decode(errors="replace").strip().splitlines()[-3:]
        row["note"] = f"no report (rc={proc.returncode}): {' / '.join(tail)}"
        return row
    expected = expected_findings(fleet.plan)
    problems = compare_findings(expected, json.loads(report.read_text()))
    planted = sum(1 for want in expected.values() if want == {"fail"})
    row["findings_problems"] = problems
    row["note"] = (
        f"findings as built ({planted} fail as planted)"
        if not problems
        else f"{len(problems)} findings differ: {problems[0]}"
    )
    return row


def run_testinfra(fleet: Fleet, python: str, xdist: bool) -> dict[str, object]:
    rundir = fleet.workdir / ("testinfra-n" if xdist else "testinfra")
    rundir.mkdir(exist_ok=True)
    spec = rundir / "fleet-vars.json"
    spec.write_text(json.dumps(testinfra_spec(fleet.plan, fleet.ssh_config)))
    junit = rundir / "junit.xml"
    argv = [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:kvmha"]
    argv += [f"--hosts={','.join(h.spec for h in fleet.plan.hosts)}"]
    argv += [f"--ssh-config={fleet.ssh_config}", f"--junitxml={junit}", str(TESTINFRA_MODULE)]
    argv += ["--rootdir", str(rundir)]
    if xdist:
        argv += ["-n", "auto"]
    env = dict(os.environ, KVMHA_FLEET_VARS=str(spec))
    row, proc = _measure(fleet, argv, cwd=rundir, env=env)
    row["run"] = "testinfra -n auto" if xdist else "testinfra"
    counts = _junit_counts(junit)
    want = expected_testinfra_failures(fleet.plan)
    if counts is None:
        tail = (proc.stdout + proc.stderr).decode(errors="replace").strip().splitlines()[-3:]
        row["note"] = f"no junit report (rc={proc.returncode}): {' / '.join(tail)}"
    else:
        row["tests"] = counts
        good = counts["failures"] == want and counts["errors"] == 0
        row["note"] = f"{counts['tests']} tests, {counts['failures']} failed" + (
            " (as planted)" if good else f" (expected {want}, {counts['errors']} errors)"
        )
    return row


def _junit_counts(path: Path) -> dict[str, int] | None:
    from xml.etree import ElementTree

    try:
        root = ElementTree.parse(path).getroot()
    except (OSError, ElementTree.ParseError):
        return None
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    if suite is None:
        return None
    return {k: int(suite.get(k, "0")) for k in ("tests", "failures", "errors", "skipped")}


def bench_fleet(
    sizes: Sequence[int],
    *,
    workdir: Path,
    python: str,
    out: Path,
    skip: Sequence[str] = (),
    defect_every: int = 10,
) -> list[dict[str, object]]:
    """Build each fleet size in turn and measure every contender on it; print the table and
    write the rows as JSON to ``out`` after each size (an interrupted run keeps what it has)."""
    rows: list[dict[str, object]] = []
    interrupted = False

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, on_term)
    try:
        for n in sizes:
            plan = plan_fleet(n, defect_every=defect_every)
            fleet = Fleet(plan, workdir)
            try:
                fleet.start()
                mem = fleet.memory_per_host()
                idle = fleet.idle_cpu()
                print(
                    f"fleet N={n}: up in {fleet.timings['start_s']:.1f} s, per host "
                    f"{mem['pss_mb']} MB PSS ({mem['rss_mb']} MB RSS) + {mem['files_kb']} kB files; "
                    f"idle, its daemons use {idle:.2f} cores",
                    flush=True,
                )
                contenders = [
                    ("floor", lambda f: run_floor(f)),
                    ("pytest start-up", lambda f: run_startup(f, python)),
                    ("plugin", lambda f: run_plugin(f, python, False)),
                    ("plugin -n auto", lambda f: run_plugin(f, python, True)),
                    ("testinfra", lambda f: run_testinfra(f, python, False)),
                    ("testinfra -n auto", lambda f: run_testinfra(f, python, True)),
                ]
                for name, run in contenders:
                    if name in skip:
                        rows.append({"n": n, "run": name, "wall_s": None, "note": "skipped"})
                        continue
                    row = run(fleet)
                    row["fleet_start_s"] = round(fleet.timings["start_s"], 1)
                    row["fleet_host_pss_mb"] = mem["pss_mb"]
                    row["fleet_idle_cores"] = idle
                    rows.append(row)
                    print(f"  {name}: {row.get('wall_s')} s  {row.get('note', '')}", flush=True)
            finally:
                leftovers = fleet.stop()
                if leftovers:
                    print("fleet teardown left: " + "; ".join(leftovers))
            out.write_text(json.dumps(rows, indent=2) + "\n")
    except KeyboardInterrupt:
        interrupted = True
    finally:
        signal.signal(signal.SIGTERM, old)
    out.write_text(json.dumps(rows, indent=2) + "\n")
    print()
    print(render_table(rows))
    print(f"rows written to {out}")
    if interrupted:
        raise KeyboardInterrupt
    return rows
