"""Booting one lab host: its files, network namespace, keeper, bind mounts, Open vSwitch and
libvirt daemons (sshd is in :mod:`.sshd`).

Every daemon is launched by the host's keeper, so the keeper reaps it, and its PID is recorded
(``save`` writes the lab's state file) as soon as it is known, so that a crash half way through
still leaves a state file from which everything can be found and ended.
"""

from __future__ import annotations

import re
import shutil
import uuid as uuidlib
from collections.abc import Callable
from pathlib import Path

from .errors import LabError
from .host import LabHost
from .keeper import start_keeper, wait_entered
from .processes import run, wait_for, wait_pidfile
from .requirements import OVS_SCHEMA

#: (directory inside the host, name of the per-host copy under the host dir)
BIND_DIRS: tuple[tuple[str, str], ...] = (
    ("/run/libvirt", "run-libvirt"),
    ("/etc/libvirt", "etc-libvirt"),
    ("/var/lib/libvirt", "lib-libvirt"),
    ("/var/log/libvirt", "log-libvirt"),
    ("/run/openvswitch", "ovs"),
)

#: Daemons: key -> (pidfile relative to host dir, expected /proc/PID/comm)
DAEMONS: dict[str, tuple[str, str]] = {
    "sshd": ("sshd/sshd.pid", "sshd"),
    "libvirtd": ("run-libvirt/libvirtd.pid", "libvirtd"),
    "virtlogd": ("run-libvirt/virtlogd.pid", "virtlogd"),
    "ovs-vswitchd": ("ovs/ovs-vswitchd.pid", "ovs-vswitchd"),
    "ovsdb-server": ("ovs/ovsdb-server.pid", "ovsdb-server"),
}

_OVS = "/run/openvswitch"  # inside the host: its own copy is bind-mounted there
_OVS_ENV = ["env", f"OVS_RUNDIR={_OVS}", f"OVS_LOGDIR={_OVS}", f"OVS_DBDIR={_OVS}"]

Save = Callable[[], None]


def boot_host(h: LabHost, *, libvirt_cache: Path, light_bashrc: bool, save: Save) -> None:
    """Bring host ``h`` up to a running libvirtd (everything but sshd)."""
    _write_host_files(h)
    _make_netns(h)
    keeper = start_keeper(h.netns)
    h.adopt_keeper(keeper)
    save()
    wait_entered(h.name, keeper)
    _bind_mounts(h, libvirt_cache, light_bashrc)
    _start_ovs(h, save)
    h.spawn_checked(["virtlogd", "-d", "-p", "/run/libvirt/virtlogd.pid"])
    record_pid(h, "virtlogd", save)
    spawn_libvirtd(h, save)
    socket = h.hostdir / "run-libvirt" / "libvirt-sock"
    if not wait_for(socket.exists, 30):
        raise LabError(f"{h.name}: libvirtd socket did not appear ({socket})")


def spawn_libvirtd(h: LabHost, save: Save) -> None:
    """Start ``h``'s libvirtd, with the host's switch for libvirt's own ``ovs-vsctl`` calls."""
    h.spawn_checked(_OVS_ENV[:2] + ["libvirtd", "-d", "-p", "/run/libvirt/libvirtd.pid"])
    record_pid(h, "libvirtd", save)


def record_pid(h: LabHost, daemon: str, save: Save, timeout: float = 15) -> None:
    """Wait for ``daemon``'s pidfile to name a live process of the right comm; record it."""
    rel, expected = DAEMONS[daemon]
    pidfile = h.hostdir / rel
    pid = wait_pidfile(pidfile, expected, timeout)
    if pid is None:
        raise LabError(f"{h.name}: {daemon} did not start (no live pid in {pidfile})")
    h.pids[daemon] = pid
    save()


def _write_host_files(h: LabHost) -> None:
    hd = h.hostdir
    hd.mkdir(parents=True, exist_ok=True)
    for _, sub in BIND_DIRS:
        (hd / sub).mkdir(exist_ok=True)
    etc = hd / "etc-libvirt"
    if Path("/etc/libvirt").is_dir():
        shutil.copytree("/etc/libvirt", etc, dirs_exist_ok=True, symlinks=True)
    qemu_conf = etc / "qemu.conf"
    conf = qemu_conf.read_text() if qemu_conf.exists() else ""
    # as root: otherwise every libvirt lookup re-probes qemu (~40 s)
    conf = re.sub(r"(?m)^\s*(user|group)\s*=.*$", "", conf)
    qemu_conf.write_text(conf + '\nuser = "root"\ngroup = "root"\n')
    (hd / "dpkg-status").write_bytes(Path("/var/lib/dpkg/status").read_bytes())
    h.machine_id = uuidlib.uuid4().hex
    (hd / "machine-id").write_text(h.machine_id + "\n")
    (hd / "bashrc").write_text("# kvmha lab: minimal root bashrc\n")


def _make_netns(h: LabHost) -> None:
    """The host's network namespace and its management veth (``10.250.N.1`` <-> ``.2``)."""
    run(["ip", "netns", "add", h.netns])
    root_if = h.root_veth
    run(["ip", "link", "add", root_if, "type", "veth", "peer", "name", "mgmt0", "netns", h.netns])
    run(["ip", "addr", "add", f"10.250.{h.index}.1/30", "dev", root_if])
    run(["ip", "link", "set", root_if, "up"])
    run(["ip", "-n", h.netns, "addr", "add", f"{h.mgmt_addr}/30", "dev", "mgmt0"])
    run(["ip", "-n", h.netns, "link", "set", "mgmt0", "up"])
    run(["ip", "-n", h.netns, "link", "set", "lo", "up"])


def _bind_mounts(h: LabHost, libvirt_cache: Path, light_bashrc: bool) -> None:
    hd = h.hostdir
    binds: list[tuple[str, str]] = [(str(hd / sub), target) for target, sub in BIND_DIRS]
    binds += [
        (str(libvirt_cache), "/var/cache/libvirt"),
        (str(hd / "dpkg-status"), "/var/lib/dpkg/status"),
        (str(hd / "machine-id"), "/etc/machine-id"),
    ]
    if light_bashrc and Path("/root/.bashrc").exists():
        binds.append((str(hd / "bashrc"), "/root/.bashrc"))
    for src, dst in binds:
        h.run(["mount", "--bind", src, dst])


def _start_ovs(h: LabHost, save: Save) -> None:
    run(["ovsdb-tool", "create", str(h.hostdir / "ovs" / "conf.db"), str(OVS_SCHEMA)])
    ovs_env = _OVS_ENV + [f"OVS_SYSCONFDIR={_OVS}"]
    h.spawn_checked(
        ovs_env
        + [
            "ovsdb-server",
            f"{_OVS}/conf.db",
            f"--remote=punix:{_OVS}/db.sock",
            f"--pidfile={_OVS}/ovsdb-server.pid",
            f"--log-file={_OVS}/ovsdb-server.log",
            "--detach",
            "-vconsole:off",
        ]
    )
    record_pid(h, "ovsdb-server", save)
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
    h.spawn_checked(
        ovs_env
        + [
            "ovs-vswitchd",
            f"unix:{_OVS}/db.sock",
            f"--pidfile={_OVS}/ovs-vswitchd.pid",
            f"--log-file={_OVS}/ovs-vswitchd.log",
            "--detach",
            "-vconsole:off",
        ]
    )
    record_pid(h, "ovs-vswitchd", save)
