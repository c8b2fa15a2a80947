"""Namespace lab: simulated KVM + Open vSwitch hypervisor hosts on one machine.

Each lab host is a network namespace ``<prefix>-hN`` plus a private mount namespace (held open by
a *keeper* process) in which per-host copies are bind-mounted over::

    /run/libvirt  /etc/libvirt  /var/lib/libvirt  /var/log/libvirt  /var/cache/libvirt
    /run/openvswitch (== /var/run/openvswitch)  /var/lib/dpkg/status  /etc/machine-id
    /root/.bashrc (a tiny one, see ``light_bashrc``)

Inside that namespace pair the host runs its own ``ovsdb-server`` + ``ovs-vswitchd`` (userspace
datapath), ``virtlogd``, ``libvirtd`` (qemu driver) and ``sshd`` listening on ``10.250.N.2``.
So ``ssh -F <lab.ssh_config> root@10.250.N.2 virsh list`` sees only that host's domains,
``ovs-vsctl`` that host's switch, ``dpkg-query`` that host's package state.

The lab code itself reaches a host with ``nsenter --target <keeper pid> --mount --net`` (no ssh).

Teardown kills only processes the lab started (by PID, after checking ``/proc/PID/comm``) or
processes living in the lab's own namespaces, deletes the namespaces (and with them every veth),
closes ssh ControlMasters with ``ssh -O exit`` and reports anything left behind.

Trap: PID 1 on some CI machines does not reap orphans. Each host's keeper process is therefore a
*child subreaper* (``PR_SET_CHILD_SUBREAPER``) that launches the host's daemons and reaps every
orphan below them (otherwise libvirt waits ~40 s twice for its zombie qemu capability probe).
ssh ControlMaster processes started by the caller are the caller's business: :meth:`Lab.stop`
closes them with ``ssh -O exit`` (and reaps them if they were reparented to this process).

Command line::

    python -m pytest_kvmha.testing.lab up --hosts 2 --workdir /tmp/kvmha-lab
    python -m pytest_kvmha.testing.lab down --workdir /tmp/kvmha-lab
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid as uuidlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import quoteattr

__all__ = [
    "Lab",
    "LabError",
    "LabHost",
    "LabNic",
    "cleanup_stale",
    "firewall_domain_xml",
    "missing_requirements",
]

#: Binaries the lab needs on the machine.
REQUIRED_BINARIES: tuple[str, ...] = (
    "ip",
    "nsenter",
    "unshare",
    "ovsdb-server",
    "ovsdb-tool",
    "ovs-vswitchd",
    "ovs-vsctl",
    "ovs-appctl",
    "libvirtd",
    "virtlogd",
    "virsh",
    "sshd",
    "ssh",
    "ssh-keygen",
    "qemu-system-x86_64",
)

OVS_SCHEMA = Path("/usr/share/openvswitch/vswitch.ovsschema")
STATE_FILE = "lab.json"

# Error markers that ovs-vsctl prints while still exiting 0.
_OVS_STDERR_ERRORS = (
    "failed to open datapath",
    "could not open network device",
    "error detected while setting up",
    "could not add network device",
    "ovs-vsctl: ",
)

_PR_SET_CHILD_SUBREAPER = 36
_PR_GET_CHILD_SUBREAPER = 37
KEEPER_COMM = "kvmha-keeper"

# The keeper holds a host's private mount namespace, launches that host's daemons and, as a child
# subreaper, reaps every orphan below it (daemonized libvirtd/ovs/sshd, qemu). Without an active
# reaper, libvirt waits for its (zombie) qemu capability probe to vanish: ~80 s instead of ~1 s.
# Protocol: one JSON line per command on stdin {"id", "argv", "env", "out", "err"}; one JSON line
# {"id", "rc"} on stdout when the command exits. EOF on stdin: keep reaping until SIGTERM.
_KEEPER_SCRIPT = r"""
import ctypes, json, os, sys, threading, time
libc = ctypes.CDLL(None)
libc.prctl(36, 1, 0, 0, 0)
libc.prctl(15, b"kvmha-keeper", 0, 0, 0)
lock = threading.Lock()
pending = {}
out = os.fdopen(1, "w", buffering=1)
def reply(cid, rc):
    out.write(json.dumps({"id": cid, "rc": rc}) + "\n")
def reader():
    for line in sys.stdin:
        if not line.strip():
            continue
        cmd = json.loads(line)
        with lock:
            try:
                fa = [(os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
                      (os.POSIX_SPAWN_OPEN, 1, cmd["out"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644),
                      (os.POSIX_SPAWN_OPEN, 2, cmd["err"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)]
                pid = os.posix_spawnp(cmd["argv"][0], cmd["argv"], cmd["env"], file_actions=fa)
                pending[pid] = cmd["id"]
            except OSError as exc:
                open(cmd["err"], "w").write(str(exc))
                reply(cmd["id"], 127)
threading.Thread(target=reader, daemon=True).start()
while True:
    try:
        pid, status = os.waitpid(-1, 0)
    except ChildProcessError:
        time.sleep(0.05)
        continue
    except InterruptedError:
        continue
    with lock:
        cid = pending.pop(pid, None)
        if cid is not None:
            reply(cid, os.waitstatus_to_exitcode(status))
"""


class LabError(RuntimeError):
    """A lab operation failed (a command on a lab host, a daemon that did not come up, ...)."""


SLOT_WIDTH = 16  # host indices per lab slot: slot k uses 10.250.(16k+1 .. 16k+15)


def lab_slot() -> int:
    """Which slot of host indices and prefixes this process's labs use (``KVMHA_LAB_SLOT``,
    default 0), so that several test runs on one machine never share a namespace or address."""
    raw = os.environ.get("KVMHA_LAB_SLOT", "0") or "0"
    if not raw.isdigit() or not 0 <= int(raw) <= 14:
        raise LabError(f"KVMHA_LAB_SLOT must be 0..14, not {raw!r}")
    return int(raw)


def slot_prefix(prefix: str) -> str:
    """``prefix`` made distinct per slot (slot 0 keeps it as it is)."""
    slot = lab_slot()
    return f"{prefix}{slot}" if slot else prefix


def slot_index(n: int) -> int:
    """Host index ``n`` (1..15) within this process's slot."""
    if not 1 <= n < SLOT_WIDTH:
        raise ValueError(f"host index {n} must be 1..{SLOT_WIDTH - 1} within a slot")
    return lab_slot() * SLOT_WIDTH + n


def missing_requirements() -> list[str]:
    """Return human-readable reasons why a lab cannot run here (empty list: it can)."""
    reasons: list[str] = []
    if os.geteuid() != 0:
        reasons.append("the namespace lab needs root")
    for binary in REQUIRED_BINARIES:
        if shutil.which(binary) is None and not Path("/usr/sbin", binary).exists():
            reasons.append(f"binary {binary!r} not found")
    if not OVS_SCHEMA.exists():
        reasons.append(f"{OVS_SCHEMA} not found")
    return reasons


# --------------------------------------------------------------------------------------------
# Domain XML
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LabNic:
    """One ``<interface type='bridge'>`` of a lab firewall domain.

    ``slot`` is the PCI slot on bus 0 for ``machine="pc"`` (i440fx). For ``machine="q35"`` each NIC
    sits behind its own ``pcie-root-port``; the root port's index is ``bus`` if non-zero, else
    ``slot``; the NIC then gets ``bus=<that index>``, ``slot=0`` (a root port has one slot).
    """

    bridge: str
    slot: int
    model: str = "virtio"
    vlan: int | None = None
    virtualport: bool = True
    filterref: str | None = None
    mac: str | None = None
    bus: int = 0
    function: int = 0


CONSOLE_PASSWORD = "kvmha-pw"  # qemu VNC passwords are at most 8 characters


def _q35_port_index(nic: LabNic) -> int:
    return nic.bus if nic.bus else nic.slot


def firewall_domain_xml(
    name: str,
    nics: Sequence[LabNic],
    *,
    machine: str = "pc",
    uuid: str | None = None,
    console_password: str | None = CONSOLE_PASSWORD,
) -> str:
    """Return a minimal libvirt domain XML for a lab "firewall" VM.

    ``type='qemu'``, 64 MiB, 1 vCPU, no disk, no memballoon, a VNC console with password
    ``console_password`` (None: no graphics). ``machine`` is the
    QEMU machine type (``"pc"``, ``"q35"``, or a versioned name such as ``"pc-q35-7.2"``); any
    machine whose name contains ``q35`` gets one ``pcie-root-port`` controller per NIC bus
    (``index``, ``<target chassis=index port=0x10+index-1/>``).
    """
    q35 = "q35" in machine
    lines = [
        "<domain type='qemu'>",
        f"  <name>{_xml_text(name)}</name>",
    ]
    if uuid:
        lines.append(f"  <uuid>{_xml_text(uuid)}</uuid>")
    lines += [
        "  <memory unit='MiB'>64</memory>",
        "  <currentMemory unit='MiB'>64</currentMemory>",
        "  <vcpu>1</vcpu>",
        "  <os>",
        f"    <type arch='x86_64' machine={quoteattr(machine)}>hvm</type>",
        "  </os>",
        "  <on_poweroff>destroy</on_poweroff>",
        "  <on_reboot>restart</on_reboot>",
        "  <on_crash>destroy</on_crash>",
        "  <devices>",
    ]
    if q35:
        seen: set[int] = set()
        for nic in nics:
            index = _q35_port_index(nic)
            if index in seen:
                continue
            seen.add(index)
            if index < 1:
                raise ValueError(f"q35 root-port index must be >= 1 (nic {nic})")
            lines += [
                f"    <controller type='pci' index='{index}' model='pcie-root-port'>",
                f"      <target chassis='{index}' port='{0x10 + index - 1:#x}'/>",
                "    </controller>",
            ]
    for nic in nics:
        lines.append("    <interface type='bridge'>")
        if nic.mac:
            lines.append(f"      <mac address={quoteattr(nic.mac)}/>")
        lines.append(f"      <source bridge={quoteattr(nic.bridge)}/>")
        if nic.vlan is not None:
            lines.append(f"      <vlan><tag id='{int(nic.vlan)}'/></vlan>")
        if nic.virtualport:
            lines.append("      <virtualport type='openvswitch'/>")
        lines.append(f"      <model type={quoteattr(nic.model)}/>")
        if nic.filterref:
            lines.append(f"      <filterref filter={quoteattr(nic.filterref)}/>")
        if q35:
            bus, slot = _q35_port_index(nic), (nic.slot if nic.bus else 0)
        else:
            bus, slot = nic.bus, nic.slot
        lines.append(
            f"      <address type='pci' domain='0x0000' bus='{bus:#04x}' slot='{slot:#04x}'"
            f" function='{nic.function:#x}'/>"
        )
        lines.append("    </interface>")
    if console_password is not None:
        # A secure attribute, left out of XML dumped without --security-info: provisioning
        # must carry it through plans, backups and restores.
        lines.append(
            "    <graphics type='vnc' autoport='yes' listen='127.0.0.1'"
            f" passwd={quoteattr(console_password)}/>"
        )
    lines += [
        "    <memballoon model='none'/>",
        "  </devices>",
        "</domain>",
    ]
    return "\n".join(lines) + "\n"


def _xml_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# --------------------------------------------------------------------------------------------
# Process helpers
# --------------------------------------------------------------------------------------------


def _run(
    argv: Sequence[str],
    *,
    check: bool = True,
    input: str | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        list(argv),
        check=False,
        input=input,
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        stdin=None if input is not None else subprocess.DEVNULL,
    )
    if check and proc.returncode != 0:
        raise LabError(
            f"command {list(argv)!r} failed with rc={proc.returncode}: "
            f"{(proc.stderr or proc.stdout).strip()}"
        )
    return proc


def _comm(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return None


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def _alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie."""
    return Path(f"/proc/{pid}").exists() and not _is_zombie(pid)


def _ppid(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


def _ns_inode(pid: int | str, kind: str) -> int | None:
    try:
        return os.stat(f"/proc/{pid}/ns/{kind}").st_ino
    except OSError:
        return None


def _pids() -> Iterator[int]:
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            yield int(entry)


def _reap(pid: int) -> None:
    """Reap ``pid`` if it is a zombie child of this process."""
    if _ppid(pid) == os.getpid():
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass


def _wait_gone(pids: list[int], timeout: float) -> None:
    """Reap and wait until none of ``pids`` is alive, or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pid in pids:
            _reap(pid)
        if not any(_alive(pid) for pid in pids):
            return
        time.sleep(0.05)


def _kill_and_wait(pids: dict[int, str | None], timeout: float = 5.0) -> list[str]:
    """SIGTERM each pid whose comm still matches (None: any), wait, then SIGKILL; reap."""
    problems: list[str] = []
    targets: list[int] = []
    for pid, comm in pids.items():
        actual = _comm(pid)
        if actual is None:
            continue
        if comm is not None and actual != comm:
            continue  # PID reused by something else: not ours
        targets.append(pid)
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    _wait_gone(targets, timeout)
    for pid in targets:
        if _alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    _wait_gone(targets, 3)
    for pid in targets:
        if _alive(pid):
            problems.append(f"process {pid} ({_comm(pid)}) survived SIGKILL")
    return problems


def _clean_env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OVS_", "LIBVIRT_", "VIRSH_", "SSH_AUTH"))
    }
    env["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    env["HOME"] = "/root"
    env["LC_ALL"] = "C"
    return env


# --------------------------------------------------------------------------------------------
# Lab host
# --------------------------------------------------------------------------------------------

#: (directory inside the host, name of the per-host copy under the host dir)
_BIND_DIRS: tuple[tuple[str, str], ...] = (
    ("/run/libvirt", "run-libvirt"),
    ("/etc/libvirt", "etc-libvirt"),
    ("/var/lib/libvirt", "lib-libvirt"),
    ("/var/log/libvirt", "log-libvirt"),
    ("/run/openvswitch", "ovs"),
)

# Daemons: key -> (pidfile relative to host dir, expected /proc/PID/comm)
_DAEMONS: dict[str, tuple[str, str]] = {
    "sshd": ("sshd/sshd.pid", "sshd"),
    "libvirtd": ("run-libvirt/libvirtd.pid", "libvirtd"),
    "virtlogd": ("run-libvirt/virtlogd.pid", "virtlogd"),
    "ovs-vswitchd": ("ovs/ovs-vswitchd.pid", "ovs-vswitchd"),
    "ovsdb-server": ("ovs/ovsdb-server.pid", "ovsdb-server"),
}


@dataclass
class LabHost:
    """One simulated hypervisor host of a :class:`Lab`.

    Attributes:
        name: lab host name, also an ssh_config ``Host`` alias (``<prefix>-hN``).
        index: N (1-based).
        mgmt_addr: the host's management address ``10.250.N.2`` (sshd listens there).
        spec: testinfra host spec ``ssh://root@10.250.N.2``.
        netns: network namespace name (same as ``name``).
        hostdir: per-host state directory in the lab workdir.
        keeper_pid: PID of the process holding the host's mount namespace (``nsenter`` target).
    """

    name: str
    index: int
    mgmt_addr: str
    spec: str
    netns: str
    hostdir: Path
    keeper_pid: int | None = None
    machine_id: str = ""
    pids: dict[str, int] = field(default_factory=dict)
    _keeper: subprocess.Popen[str] | None = field(default=None, repr=False, compare=False)
    _keeper_seq: int = field(default=0, repr=False, compare=False)

    def spawn(
        self, argv: Sequence[str], *, env: dict[str, str] | None = None, timeout: float = 60
    ) -> tuple[int, str, str]:
        """Run ``argv`` as a child of this host's keeper (use this for daemons that fork into
        the background, so the keeper reaps them). Returns ``(rc, stdout, stderr)`` of the
        launched command once it exits (a daemonizing command exits after detaching).

        Only available in the process that started the lab.
        """
        keeper = self._keeper
        if keeper is None or keeper.stdin is None or keeper.stdout is None:
            raise LabError(f"{self.name}: no keeper channel (lab started by another process?)")
        self._keeper_seq += 1
        cid = self._keeper_seq
        out = self.hostdir / f".spawn-{cid}.out"
        err = self.hostdir / f".spawn-{cid}.err"
        keeper.stdin.write(
            json.dumps(
                {
                    "id": cid,
                    "argv": list(argv),
                    "env": env if env is not None else _clean_env(),
                    "out": str(out),
                    "err": str(err),
                }
            )
            + "\n"
        )
        keeper.stdin.flush()
        import selectors

        sel = selectors.DefaultSelector()
        sel.register(keeper.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        try:
            while True:
                if not sel.select(max(0.0, deadline - time.monotonic())):
                    raise LabError(f"{self.name}: {list(argv)!r} did not finish in {timeout}s")
                line = keeper.stdout.readline()
                if not line:
                    raise LabError(f"{self.name}: keeper died")
                reply = json.loads(line)
                if reply["id"] == cid:
                    break
        finally:
            sel.close()
        texts = []
        for f in (out, err):
            try:
                texts.append(f.read_text())
                f.unlink()
            except OSError:
                texts.append("")
        return int(reply["rc"]), texts[0], texts[1]

    def _spawn_checked(self, argv: Sequence[str], env: dict[str, str] | None = None) -> None:
        rc, out, err = self.spawn(argv, env=env)
        if rc != 0:
            raise LabError(
                f"{self.name}: {list(argv)!r} failed with rc={rc}: {(err or out).strip()}"
            )

    # ---- running commands ------------------------------------------------------------------

    def _nsenter(self) -> list[str]:
        if self.keeper_pid is None:
            raise LabError(f"lab host {self.name} is not running")
        return ["nsenter", f"--target={self.keeper_pid}", "--mount", "--net", "--"]

    def run(
        self,
        argv: Sequence[str],
        *,
        check: bool = True,
        input: str | None = None,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` (no shell) inside this host's namespaces and capture text output.

        Raises :class:`LabError` if ``check`` and the exit status is non-zero.
        """
        return _run(
            self._nsenter() + list(argv),
            check=check,
            input=input,
            env=_clean_env(),
            timeout=timeout,
        )

    def ovs_vsctl(self, *args: str) -> str:
        """Run ``ovs-vsctl --timeout=30 ARGS`` on this host; return stdout.

        Raises :class:`LabError` on a non-zero exit status and also when stderr reports an error
        that ovs-vsctl does not reflect in its exit status (e.g. "failed to open datapath").
        """
        proc = self.run(["ovs-vsctl", "--timeout=30", *args], check=False)
        err = proc.stderr.lower()
        if proc.returncode != 0 or any(marker in err for marker in _OVS_STDERR_ERRORS):
            raise LabError(
                f"{self.name}: ovs-vsctl {' '.join(args)} failed (rc={proc.returncode}): "
                f"{proc.stderr.strip()}"
            )
        return proc.stdout

    def virsh(self, *args: str) -> str:
        """Run ``virsh -c qemu:///system ARGS`` on this host; return stdout (raise on error)."""
        proc = self.run(["virsh", "-q", "-c", "qemu:///system", *args], check=False)
        if proc.returncode != 0:
            raise LabError(
                f"{self.name}: virsh {' '.join(args)} failed (rc={proc.returncode}): "
                f"{proc.stderr.strip()}"
            )
        return proc.stdout

    # ---- state changes ---------------------------------------------------------------------

    def add_bridge(self, name: str, datapath_type: str = "netdev") -> None:
        """Create OVS bridge ``name`` (idempotent). Here only ``netdev`` works (no kernel module);
        production hosts use ``system``, so the type stays a parameter."""
        self.ovs_vsctl(
            "--may-exist",
            "add-br",
            name,
            "--",
            "set",
            "bridge",
            name,
            f"datapath_type={datapath_type}",
        )

    def add_port(self, bridge: str, port: str, *settings: str) -> None:
        """Add ``port`` to ``bridge``; ``settings`` are extra ``ovs-vsctl set Port`` column
        assignments such as ``"tag=42"`` or ``"trunks=[42,123]"``."""
        args = ["--may-exist", "add-port", bridge, port]
        if settings:
            args += ["--", "set", "Port", port, *settings]
        self.ovs_vsctl(*args)

    def define_domain(self, xml: str, *, start: bool = True) -> None:
        """``virsh define`` the domain XML (via a file in the host dir); then, if ``start``,
        ``virsh start --paused`` it (plugs its vnet ports into OVS, burns no CPU)."""
        name_match = re.search(r"<name>([^<]+)</name>", xml)
        if not name_match:
            raise ValueError("domain XML has no <name>")
        name = name_match.group(1)
        tmp = self.hostdir / "xml"
        tmp.mkdir(exist_ok=True)
        path = tmp / f"{secrets.token_hex(4)}.xml"
        path.write_text(xml)
        try:
            self.virsh("define", str(path))
        finally:
            path.unlink(missing_ok=True)
        if start:
            self.virsh("start", "--paused", name)

    def set_package_installed(
        self, package: str, installed: bool, *, version: str = "1.0-1lab", purged: bool = False
    ) -> None:
        """Edit this host's dpkg status copy.

        ``installed=True`` writes a complete stanza with ``Status: install ok installed``.
        ``installed=False`` writes ``Status: deinstall ok config-files`` (what ``apt-get remove``
        leaves), or, with ``purged=True``, drops the stanza so ``dpkg-query -W`` finds nothing.
        The file is rewritten in place (same inode) because it is bind-mounted.
        """
        status_file = self.hostdir / "dpkg-status"
        text = status_file.read_text()
        stanzas = [s for s in re.split(r"\n\s*\n", text) if s.strip()]
        kept = [s for s in stanzas if not re.match(rf"Package: {re.escape(package)}\n", s + "\n")]
        if installed or not purged:
            status = "install ok installed" if installed else "deinstall ok config-files"
            kept.append(
                "\n".join(
                    [
                        f"Package: {package}",
                        f"Status: {status}",
                        "Priority: optional",
                        "Section: net",
                        "Installed-Size: 100",
                        "Maintainer: kvmha lab <root@localhost>",
                        "Architecture: amd64",
                        f"Version: {version}",
                        f"Description: {package} (simulated by the kvmha namespace lab)",
                    ]
                )
            )
        with open(status_file, "r+") as fh:  # keep the inode: it is bind-mounted
            fh.seek(0)
            fh.write("\n\n".join(s.strip("\n") for s in kept) + "\n")
            fh.truncate()

    def set_promisc(self, ifname: str, on: bool) -> None:
        """``ip link set dev IFNAME promisc on|off`` inside this host."""
        self.run(["ip", "link", "set", "dev", ifname, "promisc", "on" if on else "off"])

    def to_state(self) -> dict[str, object]:
        return {
            "name": self.name,
            "index": self.index,
            "mgmt_addr": self.mgmt_addr,
            "spec": self.spec,
            "netns": self.netns,
            "hostdir": str(self.hostdir),
            "keeper_pid": self.keeper_pid,
            "machine_id": self.machine_id,
            "pids": self.pids,
        }

    @classmethod
    def from_state(cls, data: dict[str, object]) -> LabHost:
        return cls(
            name=str(data["name"]),
            index=int(data["index"]),  # type: ignore[call-overload]
            mgmt_addr=str(data["mgmt_addr"]),
            spec=str(data["spec"]),
            netns=str(data["netns"]),
            hostdir=Path(str(data["hostdir"])),
            keeper_pid=data.get("keeper_pid"),  # type: ignore[arg-type]
            machine_id=str(data.get("machine_id", "")),
            pids={str(k): int(v) for k, v in dict(data.get("pids") or {}).items()},  # type: ignore[call-overload]
        )


# --------------------------------------------------------------------------------------------
# Lab
# --------------------------------------------------------------------------------------------


class Lab:
    """A set of simulated hypervisor hosts; use as a context manager or call start()/stop().

    Args:
        workdir: directory for all lab state (keep it short: ssh ControlPath sockets live under
            it). Default: a fresh ``/tmp/kvmha-XXXX`` removed again by :meth:`stop`.
        hosts: number of hosts (1..63), named ``<prefix>-h1`` ...
        prefix: namespace/interface name prefix (at most 10 characters); stale namespaces
            ``<prefix>-h*`` from a crashed run are removed by :meth:`start`.
        libvirt_cache: directory shared by all hosts as ``/var/cache/libvirt`` (the qemu
            capabilities cache). Pass a persistent directory to skip the ~8 s qemu probe on later
            runs; default: a directory in the workdir.
        light_bashrc: bind-mount a tiny ``/root/.bashrc`` inside the hosts so that commands over
            ssh do not pay for the machine's interactive shell setup (pyenv etc.).
        first_host: index N of the first host (hosts are N, N+1, ...; address 10.250.N.2).
            Labs running at the same time need disjoint index ranges (and distinct prefixes).
    """

    def __init__(
        self,
        workdir: Path | None = None,
        *,
        hosts: int = 2,
        prefix: str = "kvmha",
        libvirt_cache: Path | None = None,
        light_bashrc: bool = True,
        first_host: int = 1,
    ) -> None:
        if not 1 <= hosts or not 1 <= first_host or first_host + hosts - 1 > 254:
            raise ValueError("host indices must stay within 1..254")
        if not re.fullmatch(r"[a-z][a-z0-9]{0,9}", prefix):
            raise ValueError("prefix: 1-10 lowercase letters/digits, starting with a letter")
        self.prefix = prefix
        self._own_workdir = workdir is None
        self.workdir = Path(workdir) if workdir is not None else None
        self.n_hosts = hosts
        self.first_host = first_host
        self.libvirt_cache = libvirt_cache
        self.light_bashrc = light_bashrc
        self.hosts: list[LabHost] = []
        self.wires: list[tuple[str, str, str, str]] = []
        self.timings: dict[str, float] = {}
        self._masters: dict[str, subprocess.Popen[bytes]] = {}
        self._started = False

    # ---- paths -------------------------------------------------------------------------------

    @property
    def ssh_config(self) -> Path:
        """ssh_config file with one ``Host <name> <ip>`` entry per lab host."""
        return self._wd / "ssh" / "config"

    @property
    def identity_file(self) -> Path:
        """Private ed25519 key accepted by every lab host's sshd for root."""
        return self._wd / "ssh" / "id_ed25519"

    @property
    def control_dir(self) -> Path:
        return self._wd / "cm"

    @property
    def _wd(self) -> Path:
        if self.workdir is None:
            raise LabError("lab has no workdir yet (call start())")
        return self.workdir

    def host(self, name_or_index: str | int) -> LabHost:
        """Look a host up by name, management address or 1-based index."""
        for h in self.hosts:
            if name_or_index in (h.name, h.index, h.mgmt_addr):
                return h
        raise KeyError(name_or_index)

    # ---- context manager -------------------------------------------------------------------

    def __enter__(self) -> Lab:  # noqa: PYI034
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        problems = self.stop()
        if problems and exc[0] is None:
            raise LabError("lab teardown left problems: " + "; ".join(problems))

    # ---- start -------------------------------------------------------------------------------

    def start(self) -> None:
        """Start all hosts. On failure everything started so far is torn down and the error
        re-raised."""
        reasons = missing_requirements()
        if reasons:
            raise LabError("cannot start the lab: " + "; ".join(reasons))
        t0 = time.monotonic()
        try:
            if self.workdir is None:
                self.workdir = Path(tempfile.mkdtemp(prefix="kvmha-", dir="/tmp"))
            self.workdir.mkdir(parents=True, exist_ok=True)
            stale = cleanup_stale(self.prefix, self.workdir)
            if stale:
                self.timings["stale_cleanup_items"] = float(len(stale))
            self._prepare_system()
            self._make_ssh_material()
            self.hosts = [
                self._new_host(i) for i in range(self.first_host, self.first_host + self.n_hosts)
            ]
            in_use = _run(["ip", "-o", "-4", "addr", "show"], check=False).stdout
            for h in self.hosts:
                if re.search(rf"\binet 10\.250\.{h.index}\.1/", in_use):
                    raise LabError(
                        f"10.250.{h.index}.1 is already in use (another lab running?); "
                        "use another first_host"
                    )
            self._started = True
            self._write_state()
            for h in self.hosts:
                t = time.monotonic()
                self._start_host(h)
                self._write_state()
                self.timings[f"{h.name}_start"] = time.monotonic() - t
                t = time.monotonic()
                h.virsh("list", "--all", "--name")  # first connection: qemu capabilities probe
                self.timings[f"{h.name}_first_virsh"] = time.monotonic() - t
            self._write_ssh_config()
            self._write_state()
            t = time.monotonic()
            self._start_ssh_masters()
            self.timings["ssh_masters"] = time.monotonic() - t
        except BaseException:
            self.stop()
            raise
        self.timings["start_total"] = time.monotonic() - t0

    def _prepare_system(self) -> None:
        """System prerequisites shared by all hosts (user, mount-point directories)."""
        if _run(["getent", "passwd", "libvirt-qemu"], check=False).returncode != 0:
            _run(
                [
                    "useradd",
                    "--system",
                    "--no-create-home",
                    "--user-group",
                    "--shell",
                    "/usr/sbin/nologin",
                    "libvirt-qemu",
                ],
                check=False,
            )
        for d in (
            "/run/libvirt",
            "/etc/libvirt",
            "/var/lib/libvirt",
            "/var/log/libvirt",
            "/var/cache/libvirt",
            "/run/openvswitch",
            "/run/sshd",
        ):
            Path(d).mkdir(parents=True, exist_ok=True)
        cache = self.libvirt_cache or (self._wd / "cache-libvirt")
        cache.mkdir(parents=True, exist_ok=True)
        self.libvirt_cache = cache
        self.control_dir.mkdir(mode=0o700, exist_ok=True)

    def _make_ssh_material(self) -> None:
        sshdir = self._wd / "ssh"
        sshdir.mkdir(mode=0o700, exist_ok=True)
        for key, path in (("client", self.identity_file), ("host", sshdir / "host_ed25519")):
            if not path.exists():
                _run(
                    [
                        "ssh-keygen",
                        "-q",
                        "-t",
                        "ed25519",
                        "-N",
                        "",
                        "-C",
                        f"kvmha-lab-{key}",
                        "-f",
                        str(path),
                    ]
                )
        (sshdir / "authorized_keys").write_text(Path(str(self.identity_file) + ".pub").read_text())

    def _write_ssh_config(self) -> None:
        blocks = [
            "# generated by pytest_kvmha.testing.lab; ControlPath must stay short (unix socket limit)\n"
        ]
        for h in self.hosts:
            blocks.append(
                f"Host {h.name} {h.mgmt_addr}\n"
                f"    HostName {h.mgmt_addr}\n"
                "    User root\n"
                "    Port 22\n"
                f"    IdentityFile {self.identity_file}\n"
                "    IdentitiesOnly yes\n"
                "    StrictHostKeyChecking no\n"
                "    UserKnownHostsFile /dev/null\n"
                "    LogLevel ERROR\n"
                "    ControlMaster auto\n"
                f"    ControlPath {self.control_dir}/%C\n"
                "    ControlPersist 60\n"
                "    ConnectTimeout 10\n"
            )
        self.ssh_config.write_text("\n".join(blocks))

    def _new_host(self, index: int) -> LabHost:
        name = f"{self.prefix}-h{index}"
        addr = f"10.250.{index}.2"
        return LabHost(
            name=name,
            index=index,
            mgmt_addr=addr,
            spec=f"ssh://root@{addr}",
            netns=name,
            hostdir=self._wd / name,
        )

    def _root_veth(self, h: LabHost) -> str:
        return f"{h.name}m"

    def _start_host(self, h: LabHost) -> None:
        hd = h.hostdir
        hd.mkdir(parents=True, exist_ok=True)
        # -- files and directories of this host --------------------------------------------
        for _, sub in _BIND_DIRS:
            (hd / sub).mkdir(exist_ok=True)
        etc = hd / "etc-libvirt"
        if Path("/etc/libvirt").is_dir():
            shutil.copytree("/etc/libvirt", etc, dirs_exist_ok=True, symlinks=True)
        qemu_conf = etc / "qemu.conf"
        conf = qemu_conf.read_text() if qemu_conf.exists() else ""
        conf = re.sub(r"(?m)^\s*(user|group)\s*=.*$", "", conf)
        qemu_conf.write_text(conf + '\nuser = "root"\ngroup = "root"\n')
        (hd / "dpkg-status").write_bytes(Path("/var/lib/dpkg/status").read_bytes())
        h.machine_id = uuidlib.uuid4().hex
        (hd / "machine-id").write_text(h.machine_id + "\n")
        (hd / "bashrc").write_text("# kvmha lab: minimal root bashrc\n")
        # -- network namespace + management veth -------------------------------------------
        _run(["ip", "netns", "add", h.netns])
        root_if = self._root_veth(h)
        _run(
            [
                "ip",
                "link",
                "add",
                root_if,
                "type",
                "veth",
                "peer",
                "name",
                "mgmt0",
                "netns",
                h.netns,
            ]
        )
        _run(["ip", "addr", "add", f"10.250.{h.index}.1/30", "dev", root_if])
        _run(["ip", "link", "set", root_if, "up"])
        _run(["ip", "-n", h.netns, "addr", "add", f"{h.mgmt_addr}/30", "dev", "mgmt0"])
        _run(["ip", "-n", h.netns, "link", "set", "mgmt0", "up"])
        _run(["ip", "-n", h.netns, "link", "set", "lo", "up"])
        # -- keeper: holds the private mount namespace -------------------------------------
        keeper = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                h.netns,
                "unshare",
                "--mount",
                "--propagation",
                "private",
                "--",
                sys.executable,
                "-c",
                _KEEPER_SCRIPT,
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            text=True,
            bufsize=1,
        )
        h._keeper = keeper
        h.keeper_pid = keeper.pid
        h.pids["keeper"] = keeper.pid
        self._write_state()
        my_mnt = _ns_inode("self", "mnt")
        deadline = time.monotonic() + 10
        while True:
            if keeper.poll() is not None:
                raise LabError(f"{h.name}: keeper exited with rc={keeper.returncode}")
            if _comm(keeper.pid) == KEEPER_COMM and _ns_inode(keeper.pid, "mnt") != my_mnt:
                break
            if time.monotonic() > deadline:
                raise LabError(f"{h.name}: keeper did not enter its namespaces")
            time.sleep(0.01)
        # -- bind mounts ----------------------------------------------------------------------
        binds: list[tuple[str, str]] = [(str(hd / sub), target) for target, sub in _BIND_DIRS]
        binds += [
            (str(self.libvirt_cache), "/var/cache/libvirt"),
            (str(hd / "dpkg-status"), "/var/lib/dpkg/status"),
            (str(hd / "machine-id"), "/etc/machine-id"),
        ]
        if self.light_bashrc and Path("/root/.bashrc").exists():
            binds.append((str(hd / "bashrc"), "/root/.bashrc"))
        for src, dst in binds:
            h.run(["mount", "--bind", src, dst])
        # -- Open vSwitch ---------------------------------------------------------------------
        ovs = "/run/openvswitch"
        _run(["ovsdb-tool", "create", str(hd / "ovs" / "conf.db"), str(OVS_SCHEMA)])
        ovs_env = [
            "env",
            f"OVS_RUNDIR={ovs}",
            f"OVS_LOGDIR={ovs}",
            f"OVS_DBDIR={ovs}",
            f"OVS_SYSCONFDIR={ovs}",
        ]
        h._spawn_checked(
            ovs_env
            + [
                "ovsdb-server",
                f"{ovs}/conf.db",
                f"--remote=punix:{ovs}/db.sock",
                f"--pidfile={ovs}/ovsdb-server.pid",
                f"--log-file={ovs}/ovsdb-server.log",
                "--detach",
                "-vconsole:off",
            ]
        )
        self._record_pid(h, "ovsdb-server")
        h.run(ovs_env + ["ovs-vsctl", "--no-wait", "init"])
        h.run(
            ovs_env
            + [
                "ovs-vsctl",
                "--no-wait",
                "set",
                "Open_vSwitch",
                ".",
                f"external_ids:hostname={h.name}",
                f"external_ids:system-id={h.machine_id}",
            ]
        )
        h._spawn_checked(
            ovs_env
            + [
                "ovs-vswitchd",
                f"unix:{ovs}/db.sock",
                f"--pidfile={ovs}/ovs-vswitchd.pid",
                f"--log-file={ovs}/ovs-vswitchd.log",
                "--detach",
                "-vconsole:off",
            ]
        )
        self._record_pid(h, "ovs-vswitchd")
        # -- libvirt ----------------------------------------------------------------------------
        h._spawn_checked(["virtlogd", "-d", "-p", "/run/libvirt/virtlogd.pid"])
        self._record_pid(h, "virtlogd")
        h._spawn_checked(ovs_env[:2] + ["libvirtd", "-d", "-p", "/run/libvirt/libvirtd.pid"])
        self._record_pid(h, "libvirtd")
        self._wait_path(h, hd / "run-libvirt" / "libvirt-sock", "libvirtd socket")
        self._start_sshd(h)

    def _start_sshd(self, h: LabHost) -> None:
        hd = h.hostdir
        sshdir = self._wd / "ssh"
        (hd / "sshd").mkdir(exist_ok=True)
        sshd_conf = hd / "sshd" / "sshd_config"
        sshd_conf.write_text(
            "\n".join(
                [
                    "Port 22",
                    f"ListenAddress {h.mgmt_addr}",
                    f"HostKey {sshdir / 'host_ed25519'}",
                    f"PidFile {hd / 'sshd' / 'sshd.pid'}",
                    f"AuthorizedKeysFile {sshdir / 'authorized_keys'}",
                    "UsePAM no",
                    "StrictModes no",
                    "PermitRootLogin yes",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "UseDNS no",
                    "PrintMotd no",
                    "PrintLastLog no",
                    "MaxSessions 50",
                    "MaxStartups 50:30:100",
                    "Subsystem sftp /usr/lib/openssh/sftp-server",
                    "",
                ]
            )
        )
        h._spawn_checked(
            ["/usr/sbin/sshd", "-f", str(sshd_conf), "-E", str(hd / "sshd" / "sshd.log")]
        )
        self._record_pid(h, "sshd")

    def _start_ssh_masters(self, timeout: float = 20, hosts: list[LabHost] | None = None) -> None:
        """Open one ssh ControlMaster per host as a child of this process (not a daemonized
        orphan: PID 1 may not reap), so every later ssh/testinfra call multiplexes over it."""
        hosts = self.hosts if hosts is None else hosts
        for h in hosts:
            proc = subprocess.Popen(
                [
                    "ssh",
                    "-F",
                    str(self.ssh_config),
                    "-o",
                    "ControlMaster=yes",
                    "-o",
                    "ControlPersist=no",
                    "-N",
                    h.mgmt_addr,
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
            self._masters[h.name] = proc
        for h in hosts:
            proc = self._masters[h.name]
            deadline = time.monotonic() + timeout
            while (
                _run(
                    ["ssh", "-F", str(self.ssh_config), "-O", "check", h.mgmt_addr], check=False
                ).returncode
                != 0
            ):
                if proc.poll() is not None:
                    err = proc.stderr.read().decode() if proc.stderr else ""
                    raise LabError(f"{h.name}: ssh master failed: {err.strip()}")
                if time.monotonic() > deadline:
                    raise LabError(f"{h.name}: ssh master not ready after {timeout}s")
                time.sleep(0.05)

    def _wait_path(self, h: LabHost, path: Path, what: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not path.exists():
            if time.monotonic() > deadline:
                raise LabError(f"{h.name}: {what} did not appear ({path})")
            time.sleep(0.02)

    def _record_pid(self, h: LabHost, daemon: str, timeout: float = 15) -> None:
        rel, comm = _DAEMONS[daemon]
        pidfile = h.hostdir / rel
        deadline = time.monotonic() + timeout
        while True:
            try:
                pid = int(pidfile.read_text().split()[0])
                if _comm(pid) == comm:
                    h.pids[daemon] = pid
                    self._write_state()
                    return
            except (OSError, ValueError, IndexError):
                pass
            if time.monotonic() > deadline:
                raise LabError(f"{h.name}: {daemon} did not start (no live pid in {pidfile})")
            time.sleep(0.02)

    # ---- operations ----------------------------------------------------------------------------

    def wire(self, a: LabHost, a_if: str, b: LabHost, b_if: str) -> None:
        """Create a veth pair ``a_if`` (in host ``a``) <-> ``b_if`` (in host ``b``), both up.

        Add the ends to OVS bridges yourself, e.g. ``a.add_port("br1-internal", a_if)``.
        """
        if a is b:
            _run(["ip", "-n", a.netns, "link", "add", a_if, "type", "veth", "peer", "name", b_if])
        else:
            _run(
                [
                    "ip",
                    "link",
                    "add",
                    a_if,
                    "netns",
                    a.netns,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    b_if,
                    "netns",
                    b.netns,
                ]
            )
        _run(["ip", "-n", a.netns, "link", "set", a_if, "up"])
        _run(["ip", "-n", b.netns, "link", "set", b_if, "up"])
        self.wires.append((a.name, a_if, b.name, b_if))

    def ssh(
        self, host: LabHost, *argv: str, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` on ``host`` over ssh with the lab's ssh_config (multiplexed)."""
        return _run(
            ["ssh", "-F", str(self.ssh_config), host.mgmt_addr, "--", *argv],
            check=check,
            timeout=60,
        )

    def stop_sshd(self, host: LabHost) -> None:
        """Stop ``host``'s sshd (and its ControlMaster) to simulate an unreachable host."""
        self._ssh_exit(host)
        pid = host.pids.get("sshd")
        if pid is not None:
            problems = _kill_and_wait({pid: "sshd"})
            if problems:
                raise LabError("; ".join(problems))
            del host.pids["sshd"]
            self._write_state()

    def start_sshd(self, host: LabHost) -> None:
        """Start ``host``'s sshd again after :meth:`stop_sshd` (and its ControlMaster)."""
        if "sshd" in host.pids:
            return
        self._start_sshd(host)
        old = self._masters.pop(host.name, None)
        if old is not None and old.poll() is None:
            old.kill()
        if old is not None:
            old.wait()
        self._start_ssh_masters(hosts=[host])
        self._write_state()

    def stop_libvirtd(self, host: LabHost) -> None:
        """Stop ``host``'s libvirtd (by its PID) to simulate a host whose libvirt cannot be
        read. Running qemu domains keep running; :meth:`start_libvirtd` reconnects to them."""
        pid = host.pids.get("libvirtd")
        if pid is not None:
            problems = _kill_and_wait({pid: _DAEMONS["libvirtd"][1]})
            if problems:
                raise LabError("; ".join(problems))
            del host.pids["libvirtd"]
            self._write_state()

    def start_libvirtd(self, host: LabHost, timeout: float = 60) -> None:
        """Start ``host``'s libvirtd again after :meth:`stop_libvirtd`; returns once it answers."""
        if "libvirtd" in host.pids:
            return
        ovs = "/run/openvswitch"
        host._spawn_checked(
            ["env", f"OVS_RUNDIR={ovs}", "libvirtd", "-d", "-p", "/run/libvirt/libvirtd.pid"]
        )
        self._record_pid(host, "libvirtd")
        deadline = time.monotonic() + timeout
        while True:
            try:
                host.virsh("list", "--all")
                return
            except LabError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    # ---- stop ---------------------------------------------------------------------------------

    def _ssh_exit(self, host: LabHost) -> list[str]:
        if self.workdir is None or not self.ssh_config.exists():
            return []
        masters = self._ssh_master_pids()
        _run(
            ["ssh", "-F", str(self.ssh_config), "-O", "exit", host.mgmt_addr],
            check=False,
            timeout=15,
        )
        for pid in masters:
            _reap(pid)
        proc = self._masters.pop(host.name, None)
        if proc is not None:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
            if proc.stderr is not None:
                proc.stderr.close()
        return []

    def _ssh_master_pids(self) -> list[int]:
        if self.workdir is None:
            return []
        needle = str(self.control_dir).encode()
        found = []
        for pid in _pids():
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if needle in cmdline and _comm(pid) == "ssh":
                found.append(pid)
        return found

    def stop(self) -> list[str]:
        """Tear everything down; never raises. Returns a list of problems (leftovers)."""
        problems: list[str] = []

        def attempt(what: str, fn, *args):  # type: ignore[no-untyped-def]
            try:
                res = fn(*args)
                if isinstance(res, list):
                    problems.extend(res)
            except Exception as exc:  # noqa: BLE001 - teardown must go on
                problems.append(f"{what}: {exc}")

        for h in self.hosts:
            attempt(f"{h.name}: ssh -O exit", self._ssh_exit, h)
        masters = self._ssh_master_pids()
        if masters:
            attempt("ssh masters", _kill_and_wait, {p: "ssh" for p in masters})
        for h in self.hosts:
            attempt(f"{h.name}: stop", self._stop_host, h)
        for h in self.hosts:
            attempt(f"{h.name}: verify", self._verify_host_gone, h)
        if self.workdir is not None:
            attempt("verify mounts", _mounts_under, self.workdir)
            attempt("remove workdir", self._remove_workdir)
        self.hosts = []
        self.wires = []
        self._started = False
        return problems

    def _stop_host(self, h: LabHost) -> list[str]:
        problems: list[str] = []
        keeper = h.keeper_pid
        keeper_ok = keeper is not None and _comm(keeper) == KEEPER_COMM
        if keeper_ok and h.pids.get("libvirtd") and _alive(h.pids["libvirtd"]):
            try:
                for dom in h.virsh("list", "--name").split():
                    h.run(["virsh", "-c", "qemu:///system", "destroy", dom], check=False)
            except Exception as exc:  # noqa: BLE001
                problems.append(f"{h.name}: destroying domains: {exc}")
        vswitchd = h.pids.get("ovs-vswitchd")
        if keeper_ok and vswitchd and _comm(vswitchd) == "ovs-vswitchd":
            h.run(
                [
                    "ovs-appctl",
                    "-t",
                    f"/run/openvswitch/ovs-vswitchd.{vswitchd}.ctl",
                    "exit",
                    "--cleanup",
                ],
                check=False,
                timeout=15,
            )
        order = ["sshd", "libvirtd", "virtlogd", "ovs-vswitchd", "ovsdb-server"]
        for daemon in order:
            pid = h.pids.get(daemon)
            if pid:
                problems += _kill_and_wait({pid: _DAEMONS[daemon][1]})
        # anything else living in this host's namespaces (qemu, ssh sessions, helpers)
        problems += _kill_and_wait({p: None for p in _ns_members(h)})
        if keeper:
            problems += _kill_and_wait({keeper: KEEPER_COMM})
        if h._keeper is not None:
            for stream in (h._keeper.stdin, h._keeper.stdout):
                try:
                    if stream is not None:
                        stream.close()
                except OSError:
                    pass
            try:
                h._keeper.wait(timeout=5)
            except subprocess.TimeoutExpired:
                problems.append(f"{h.name}: keeper {keeper} did not exit")
            h._keeper = None
        if Path(f"/run/netns/{h.netns}").exists():
            proc = _run(["ip", "netns", "del", h.netns], check=False)
            if proc.returncode != 0:
                problems.append(f"{h.name}: ip netns del: {proc.stderr.strip()}")
        root_if = self._root_veth(h)
        if Path(f"/sys/class/net/{root_if}").exists():
            _run(["ip", "link", "del", root_if], check=False)
        h.keeper_pid = None
        h.pids.clear()
        return problems

    def _verify_host_gone(self, h: LabHost) -> list[str]:
        problems = []
        if Path(f"/run/netns/{h.netns}").exists():
            problems.append(f"netns {h.netns} still exists")
        if Path(f"/sys/class/net/{self._root_veth(h)}").exists():
            problems.append(f"veth {self._root_veth(h)} still exists")
        return problems

    def _remove_workdir(self) -> None:
        wd = self._wd
        if self._own_workdir:
            shutil.rmtree(wd, ignore_errors=True)
            return
        for name in [h.name for h in self.hosts] + ["ssh", "cm", STATE_FILE]:
            p = wd / name
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            elif p.exists():
                p.unlink()
        cache = wd / "cache-libvirt"
        if self.libvirt_cache == cache and cache.exists():
            shutil.rmtree(cache, ignore_errors=True)

    # ---- state file (for the CLI) ------------------------------------------------------------

    def _write_state(self) -> None:
        if self.workdir is None:
            return
        data = {
            "prefix": self.prefix,
            "first_host": self.first_host,
            "own_workdir": self._own_workdir,
            "libvirt_cache": str(self.libvirt_cache) if self.libvirt_cache else None,
            "hosts": [h.to_state() for h in self.hosts],
            "wires": self.wires,
            "ssh_config": str(self.ssh_config),
            "identity_file": str(self.identity_file),
        }
        tmp = self.workdir / (STATE_FILE + ".tmp")
        tmp.write_text(json.dumps(data, indent=2))
        tmp.replace(self.workdir / STATE_FILE)

    @classmethod
    def attach(cls, workdir: Path) -> Lab:
        """Re-create a :class:`Lab` object for a lab started by another process (state file)."""
        data = json.loads((Path(workdir) / STATE_FILE).read_text())
        lab = cls(
            Path(workdir),
            hosts=max(1, len(data["hosts"])),
            prefix=data["prefix"],
            first_host=int(data.get("first_host", 1)),
        )
        lab._own_workdir = bool(data.get("own_workdir"))
        lab.libvirt_cache = Path(data["libvirt_cache"]) if data.get("libvirt_cache") else None
        lab.hosts = [LabHost.from_state(d) for d in data["hosts"]]
        lab.wires = [tuple(w) for w in data.get("wires", [])]  # type: ignore[misc]
        lab._started = True
        return lab


def _ns_members(h: LabHost) -> list[int]:
    """PIDs (other than the keeper) living in the host's network or mount namespace."""
    targets: set[int] = set()
    try:
        net_ino = os.stat(f"/run/netns/{h.netns}").st_ino
    except OSError:
        net_ino = None
    mnt_ino = _ns_inode(h.keeper_pid, "mnt") if h.keeper_pid else None
    me = os.getpid()
    for pid in _pids():
        if pid in (me, h.keeper_pid):
            continue
        if (net_ino is not None and _ns_inode(pid, "net") == net_ino) or (
            mnt_ino is not None and _ns_inode(pid, "mnt") == mnt_ino
        ):
            targets.add(pid)
    return sorted(targets)


def _mounts_under(path: Path) -> list[str]:
    """Mounts in this mount namespace whose source or target is under ``path``."""
    problems = []
    needle = str(path)
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        if len(fields) > 4 and (fields[3].startswith(needle) or fields[4].startswith(needle)):
            problems.append(f"mount left: {fields[4]}")
    return problems


def cleanup_stale(prefix: str, workdir: Path | None = None) -> list[str]:
    """Remove leftovers of a crashed lab with this ``prefix``: processes in namespaces
    ``<prefix>-h*``, the namespaces, root-side veths ``<prefix>-h*m`` and, if ``workdir`` holds a
    state file, the daemons and ssh masters recorded there. Returns what was cleaned."""
    cleaned: list[str] = []
    state_dirs: list[tuple[Path, bool]] = []
    if workdir is not None and (Path(workdir) / STATE_FILE).exists():
        state_dirs.append((Path(workdir), False))
    # default temp workdirs of crashed labs with the same prefix
    for candidate in Path(tempfile.gettempdir()).glob("kvmha-*"):
        state = candidate / STATE_FILE
        if workdir is not None and candidate == Path(workdir):
            continue
        try:
            data = json.loads(state.read_text())
        except (OSError, ValueError):
            continue
        if data.get("prefix") == prefix and data.get("own_workdir"):
            state_dirs.append((candidate, True))
    for state_dir, own in state_dirs:
        try:
            old = Lab.attach(state_dir)
            old._own_workdir = own
            problems = old.stop()
            cleaned.append(f"stopped lab from state file {state_dir}/{STATE_FILE}")
            cleaned += problems
        except Exception as exc:  # noqa: BLE001
            cleaned.append(f"state file {state_dir}: {exc}")
    pattern = re.compile(rf"^{re.escape(prefix)}-h\d+$")
    listing = _run(["ip", "netns", "list"], check=False).stdout
    for line in listing.splitlines():
        name = line.split()[0] if line.split() else ""
        if not pattern.match(name):
            continue
        try:
            ino = os.stat(f"/run/netns/{name}").st_ino
        except OSError:
            ino = None
        if ino is not None:
            members = [p for p in _pids() if p != os.getpid() and _ns_inode(p, "net") == ino]
            # The keeper shares no net ns with others but is a member too: kill all of them.
            _kill_and_wait({p: None for p in members})
        _run(["ip", "netns", "del", name], check=False)
        cleaned.append(f"netns {name}")
    for ifname in os.listdir("/sys/class/net"):
        if re.fullmatch(rf"{re.escape(prefix)}-h\d+m", ifname):
            _run(["ip", "link", "del", ifname], check=False)
            cleaned.append(f"veth {ifname}")
    return cleaned


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def _supervise(lab: Lab, ready_w: int) -> None:
    """Body of the background process started by ``up``: owns (and reaps) the lab daemons."""
    stop_requested = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stop_requested
        stop_requested = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        lab.start()
        msg = json.dumps({"ok": True, "timings": lab.timings})
    except Exception as exc:  # noqa: BLE001
        msg = json.dumps({"ok": False, "error": str(exc)})
        os.write(ready_w, msg.encode())
        os._exit(1)
    state = json.loads((lab._wd / STATE_FILE).read_text())
    state["supervisor_pid"] = os.getpid()
    (lab._wd / STATE_FILE).write_text(json.dumps(state, indent=2))
    os.write(ready_w, msg.encode())
    os.close(ready_w)
    while not stop_requested:
        signal.pause()
    problems = lab.stop()
    (lab._wd.parent / f".{lab._wd.name}.down.json").write_text(json.dumps(problems))
    os._exit(0)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m pytest_kvmha.testing.lab up|down`` entry point."""
    parser = argparse.ArgumentParser(prog="python -m pytest_kvmha.testing.lab")
    sub = parser.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up", help="start a lab in the background")
    up.add_argument("--hosts", type=int, default=2)
    up.add_argument("--workdir", type=Path, default=Path("/tmp/kvmha-lab"))
    up.add_argument("--prefix", default="kvmha")
    up.add_argument("--first-host", type=int, default=1)
    up.add_argument("--libvirt-cache", type=Path, default=None)
    down = sub.add_parser("down", help="stop the lab recorded in WORKDIR")
    down.add_argument("--workdir", type=Path, default=Path("/tmp/kvmha-lab"))
    args = parser.parse_args(argv)

    if args.cmd == "up":
        lab = Lab(
            args.workdir,
            hosts=args.hosts,
            prefix=args.prefix,
            libvirt_cache=args.libvirt_cache,
            first_host=args.first_host,
        )
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            os.setsid()
            devnull = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(devnull, fd)
            _supervise(lab, w)
            os._exit(0)
        os.close(w)
        chunks = []
        while True:
            chunk = os.read(r, 65536)
            if not chunk:
                break
            chunks.append(chunk)
        result = json.loads(b"".join(chunks) or b'{"ok": false, "error": "supervisor died"}')
        if not result["ok"]:
            print(f"lab start failed: {result['error']}", file=sys.stderr)
            return 1
        started = Lab.attach(args.workdir)
        print(f"ssh_config: {started.ssh_config}")
        for h in started.hosts:
            print(f"{h.name}: {h.spec}  (ssh -F {started.ssh_config} {h.name})")
        print("timings: " + ", ".join(f"{k}={v:.2f}s" for k, v in result["timings"].items()))
        return 0

    state_path = args.workdir / STATE_FILE
    if not state_path.exists():
        print(f"no lab state in {args.workdir}", file=sys.stderr)
        return 1
    state = json.loads(state_path.read_text())
    sup = state.get("supervisor_pid")
    result_file = args.workdir.parent / f".{args.workdir.name}.down.json"
    if sup and _comm(sup) is not None and _comm(sup).startswith("python"):  # type: ignore[union-attr]
        os.kill(sup, signal.SIGTERM)
        deadline = time.monotonic() + 120
        while _alive(sup) and time.monotonic() < deadline:
            time.sleep(0.1)
        problems = (
            json.loads(result_file.read_text())
            if result_file.exists()
            else ["supervisor did not report"]
        )
        result_file.unlink(missing_ok=True)
    else:
        problems = Lab.attach(args.workdir).stop()
    for p in problems:
        print(f"problem: {p}", file=sys.stderr)
    print("lab stopped" + (" with problems" if problems else ""))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
