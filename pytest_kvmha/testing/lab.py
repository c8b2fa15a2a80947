"""Namespace lab: simulated KVM + Open vSwitch hypervisor hosts on one machine.

Each lab host is a network namespace ``<prefix>-hN`` plus a private mount namespace (held open by
a *keeper* process, see :mod:`.keeper`) in which per-host copies are bind-mounted over::

    /run/libvirt  /etc/libvirt  /var/lib/libvirt  /var/log/libvirt  /var/cache/libvirt
    /run/openvswitch (== /var/run/openvswitch)  /var/lib/dpkg/status  /etc/machine-id
    /root/.bashrc (a tiny one, see ``light_bashrc``)

Inside that namespace pair the host runs its own ``ovsdb-server`` + ``ovs-vswitchd`` (userspace
datapath), ``virtlogd``, ``libvirtd`` (qemu driver) and ``sshd`` listening on ``10.250.N.2``.
So ``ssh -F <lab.ssh_config> root@10.250.N.2 virsh list`` sees only that host's domains,
``ovs-vsctl`` that host's switch, ``dpkg-query`` that host's package state.

The lab code itself reaches a host with ``nsenter --target <keeper pid> --mount --net`` (no ssh).

Teardown kills only processes the lab started or processes living in the lab's own namespaces
(:mod:`.cleanup`), closes ssh ControlMasters with ``ssh -O exit`` and reports anything left
behind. ssh ControlMaster processes started by the caller are the caller's business:
:meth:`Lab.stop` closes them with ``ssh -O exit`` (and reaps them if they were reparented to this
process).

Command line (:mod:`.cli`)::

    python -m pytest_kvmha.testing up --hosts 2 --workdir /tmp/kvmha-lab
    python -m pytest_kvmha.testing down --workdir /tmp/kvmha-lab
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from . import sshd
from .cleanup import mounts_under, remove_stale_namespaces, stop_host, verify_host_gone
from .daemons import DAEMONS, boot_host, spawn_libvirtd
from .errors import LabError
from .host import LabHost
from .processes import kill_and_wait, run
from .requirements import missing_requirements

STATE_FILE = "lab.json"


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
            sshd.make_ssh_material(self._wd / "ssh", self.identity_file)
            self.hosts = [
                self._new_host(i) for i in range(self.first_host, self.first_host + self.n_hosts)
            ]
            in_use = run(["ip", "-o", "-4", "addr", "show"], check=False).stdout
            for h in self.hosts:
                if re.search(rf"\binet 10\.250\.{h.index}\.1/", in_use):
                    raise LabError(
                        f"10.250.{h.index}.1 is already in use (another lab running?); "
                        "use another first_host"
                    )
            self._write_state()
            for h in self.hosts:
                t = time.monotonic()
                self._start_host(h)
                self._write_state()
                self.timings[f"{h.name}_start"] = time.monotonic() - t
                t = time.monotonic()
                h.virsh("list", "--all", "--name")  # first connection: qemu capabilities probe
                self.timings[f"{h.name}_first_virsh"] = time.monotonic() - t
            sshd.write_ssh_config(self.ssh_config, self.hosts, self.identity_file, self.control_dir)
            self._write_state()
            t = time.monotonic()
            sshd.open_masters(self.ssh_config, self.hosts, self._masters)
            self.timings["ssh_masters"] = time.monotonic() - t
        except BaseException:
            self.stop()
            raise
        self.timings["start_total"] = time.monotonic() - t0

    def _prepare_system(self) -> None:
        """System prerequisites shared by all hosts (user, mount-point directories)."""
        if run(["getent", "passwd", "libvirt-qemu"], check=False).returncode != 0:
            run(
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

    def _start_host(self, h: LabHost) -> None:
        assert self.libvirt_cache is not None  # set by _prepare_system
        boot_host(
            h,
            libvirt_cache=self.libvirt_cache,
            light_bashrc=self.light_bashrc,
            save=self._write_state,
        )
        sshd.start_sshd(h, self._wd / "ssh", self._write_state)

    # ---- operations ----------------------------------------------------------------------------

    def wire(self, a: LabHost, a_if: str, b: LabHost, b_if: str) -> None:
        """Create a veth pair ``a_if`` (in host ``a``) <-> ``b_if`` (in host ``b``), both up.

        Add the ends to OVS bridges yourself, e.g. ``a.add_port("br1-internal", a_if)``.
        """
        if a is b:
            run(["ip", "-n", a.netns, "link", "add", a_if, "type", "veth", "peer", "name", b_if])
        else:
            run(
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
        run(["ip", "-n", a.netns, "link", "set", a_if, "up"])
        run(["ip", "-n", b.netns, "link", "set", b_if, "up"])
        self.wires.append((a.name, a_if, b.name, b_if))

    def stop_sshd(self, host: LabHost) -> None:
        """Stop ``host``'s sshd (and its ControlMaster) to simulate an unreachable host."""
        self._ssh_exit(host)
        pid = host.pids.get("sshd")
        if pid is not None:
            problems = kill_and_wait({pid: "sshd"})
            if problems:
                raise LabError("; ".join(problems))
            del host.pids["sshd"]
            self._write_state()

    def start_sshd(self, host: LabHost) -> None:
        """Start ``host``'s sshd again after :meth:`stop_sshd` (and its ControlMaster)."""
        if "sshd" in host.pids:
            return
        sshd.start_sshd(host, self._wd / "ssh", self._write_state)
        old = self._masters.pop(host.name, None)
        if old is not None and old.poll() is None:
            old.kill()
        if old is not None:
            old.wait()
        sshd.open_masters(self.ssh_config, [host], self._masters)
        self._write_state()

    def start_restricted_sshd(
        self, host: LabHost, port: int, force_command: str, confdir: Path
    ) -> int:
        """Start an extra sshd on ``host``'s management address and ``port`` that accepts the
        lab's key and runs ``force_command`` (a shell command line) for every session, like an
        appliance's restricted CLI account; its files go to ``confdir`` (created). Returns its
        PID: ending it is the caller's business (:meth:`stop` ends it with the host)."""
        return sshd.start_restricted_sshd(host, self._wd / "ssh", port, force_command, confdir)

    def stop_libvirtd(self, host: LabHost) -> None:
        """Stop ``host``'s libvirtd (by its PID) to simulate a host whose libvirt cannot be
        read. Running qemu domains keep running; :meth:`start_libvirtd` reconnects to them."""
        pid = host.pids.get("libvirtd")
        if pid is not None:
            problems = kill_and_wait({pid: DAEMONS["libvirtd"][1]})
            if problems:
                raise LabError("; ".join(problems))
            del host.pids["libvirtd"]
            self._write_state()

    def start_libvirtd(self, host: LabHost, timeout: float = 60) -> None:
        """Start ``host``'s libvirtd again after :meth:`stop_libvirtd`; returns once it answers."""
        if "libvirtd" in host.pids:
            return
        spawn_libvirtd(host, self._write_state)
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
        sshd.close_master(self.ssh_config, self.control_dir, host, self._masters)
        return []

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
        masters = sshd.master_pids(self.control_dir) if self.workdir is not None else []
        if masters:
            attempt("ssh masters", kill_and_wait, {p: "ssh" for p in masters})
        for h in self.hosts:
            attempt(f"{h.name}: stop", stop_host, h)
        for h in self.hosts:
            attempt(f"{h.name}: verify", verify_host_gone, h)
        if self.workdir is not None:
            attempt("verify mounts", mounts_under, self.workdir)
            attempt("remove workdir", self._remove_workdir)
        self.hosts = []
        self.wires = []
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
        return lab


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
    return cleaned + remove_stale_namespaces(prefix)
