"""Ending a lab host, and finding what a lab (or a crashed one) left behind.

Only processes the lab started (by PID, after checking ``/proc/PID/comm``) or processes living in
the lab's own namespaces are ended; deleting a namespace takes its veths with it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from .daemons import DAEMONS
from .host import LabHost
from .keeper import KEEPER_COMM
from .processes import alive, comm, kill_and_wait, ns_inode, pids, run

_STOP_ORDER = ("sshd", "libvirtd", "virtlogd", "ovs-vswitchd", "ovsdb-server")


def stop_host(h: LabHost) -> list[str]:
    """Destroy ``h``'s domains, end its daemons, keeper and everything else in its
    namespaces, delete the namespace and the management veth. Returns problems."""
    problems: list[str] = []
    keeper = h.keeper_pid
    keeper_ok = keeper is not None and comm(keeper) == KEEPER_COMM
    if keeper_ok and h.pids.get("libvirtd") and alive(h.pids["libvirtd"]):
        try:
            for dom in h.virsh("list", "--name").split():
                h.run(["virsh", "-c", "qemu:///system", "destroy", dom], check=False)
        except Exception as exc:  # noqa: BLE001
            problems.append(f"{h.name}: destroying domains: {exc}")
    vswitchd = h.pids.get("ovs-vswitchd")
    if keeper_ok and vswitchd and comm(vswitchd) == "ovs-vswitchd":
        # removes the switch's taps with it
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
    for daemon in _STOP_ORDER:
        pid = h.pids.get(daemon)
        if pid:
            problems += kill_and_wait({pid: DAEMONS[daemon][1]})
    # anything else living in this host's namespaces (qemu, ssh sessions, helpers)
    problems += kill_and_wait({p: None for p in ns_members(h)})
    if keeper:
        problems += kill_and_wait({keeper: KEEPER_COMM})
    problems += h.release_keeper()
    if Path(f"/run/netns/{h.netns}").exists():
        proc = run(["ip", "netns", "del", h.netns], check=False)
        if proc.returncode != 0:
            problems.append(f"{h.name}: ip netns del: {proc.stderr.strip()}")
    if Path(f"/sys/class/net/{h.root_veth}").exists():
        run(["ip", "link", "del", h.root_veth], check=False)
    h.keeper_pid = None
    h.pids.clear()
    return problems


def verify_host_gone(h: LabHost) -> list[str]:
    """What is left of ``h``'s namespace and management veth."""
    problems = []
    if Path(f"/run/netns/{h.netns}").exists():
        problems.append(f"netns {h.netns} still exists")
    if Path(f"/sys/class/net/{h.root_veth}").exists():
        problems.append(f"veth {h.root_veth} still exists")
    return problems


def ns_members(h: LabHost) -> list[int]:
    """PIDs (other than the keeper) living in the host's network or mount namespace."""
    targets: set[int] = set()
    try:
        net_ino = os.stat(f"/run/netns/{h.netns}").st_ino
    except OSError:
        net_ino = None
    mnt_ino = ns_inode(h.keeper_pid, "mnt") if h.keeper_pid else None
    me = os.getpid()
    for pid in pids():
        if pid in (me, h.keeper_pid):
            continue
        if (net_ino is not None and ns_inode(pid, "net") == net_ino) or (
            mnt_ino is not None and ns_inode(pid, "mnt") == mnt_ino
        ):
            targets.add(pid)
    return sorted(targets)


def mounts_under(path: Path) -> list[str]:
    """Mounts in this mount namespace whose source or target is under ``path``."""
    problems = []
    needle = str(path)
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        if len(fields) > 4 and (fields[3].startswith(needle) or fields[4].startswith(needle)):
            problems.append(f"mount left: {fields[4]}")
    return problems


def remove_stale_namespaces(prefix: str) -> list[str]:
    """End every process in namespaces ``<prefix>-h*``, delete those namespaces and the
    root-side veths ``<prefix>-h*m``. Returns what was removed."""
    cleaned: list[str] = []
    pattern = re.compile(rf"^{re.escape(prefix)}-h\d+$")
    listing = run(["ip", "netns", "list"], check=False).stdout
    for line in listing.splitlines():
        name = line.split()[0] if line.split() else ""
        if not pattern.match(name):
            continue
        try:
            ino = os.stat(f"/run/netns/{name}").st_ino
        except OSError:
            ino = None
        if ino is not None:
            members = [p for p in pids() if p != os.getpid() and ns_inode(p, "net") == ino]
            # The keeper shares no net ns with others but is a member too: kill all of them.
            kill_and_wait({p: None for p in members})
        run(["ip", "netns", "del", name], check=False)
        cleaned.append(f"netns {name}")
    for ifname in os.listdir("/sys/class/net"):
        if re.fullmatch(rf"{re.escape(prefix)}-h\d+m", ifname):
            run(["ip", "link", "del", ifname], check=False)
            cleaned.append(f"veth {ifname}")
    return cleaned
