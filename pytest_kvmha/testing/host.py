"""One simulated hypervisor host of the lab: commands in its namespaces, and its state."""

from __future__ import annotations

import json
import re
import secrets
import selectors
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .errors import LabError
from .processes import clean_env
from .processes import run as run_command

# Error markers that ovs-vsctl prints while still exiting 0.
_OVS_STDERR_ERRORS = (
    "failed to open datapath",
    "could not open network device",
    "error detected while setting up",
    "could not add network device",
    "ovs-vsctl: ",
)


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

    @property
    def root_veth(self) -> str:
        """Root-namespace end of the host's management veth."""
        return f"{self.name}m"

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
                    "env": env if env is not None else clean_env(),
                    "out": str(out),
                    "err": str(err),
                }
            )
            + "\n"
        )
        keeper.stdin.flush()
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

    def spawn_checked(self, argv: Sequence[str], env: dict[str, str] | None = None) -> None:
        """:meth:`spawn`, raising :class:`LabError` unless the command exits 0."""
        rc, out, err = self.spawn(argv, env=env)
        if rc != 0:
            raise LabError(
                f"{self.name}: {list(argv)!r} failed with rc={rc}: {(err or out).strip()}"
            )

    def adopt_keeper(self, keeper: subprocess.Popen[str]) -> None:
        """Make ``keeper`` this host's keeper (the ``nsenter`` target and :meth:`spawn` channel)."""
        self._keeper = keeper
        self.keeper_pid = keeper.pid
        self.pids["keeper"] = keeper.pid

    def release_keeper(self) -> list[str]:
        """Close the channel to the keeper started by this process and wait for it to exit
        (after it was signalled). Returns problems."""
        keeper = self._keeper
        if keeper is None:
            return []
        problems = []
        for stream in (keeper.stdin, keeper.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass
        try:
            keeper.wait(timeout=5)
        except subprocess.TimeoutExpired:
            problems.append(f"{self.name}: keeper {self.keeper_pid} did not exit")
        self._keeper = None
        return problems

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
        return run_command(
            self._nsenter() + list(argv),
            check=check,
            input=input,
            env=clean_env(),
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

    def patch(self, bridge: str, inner: str, trunk: str, outer: str) -> None:
        """Join ``bridge`` to ``trunk`` by a pair of patch ports, ``inner`` on ``bridge`` and
        ``outer`` on ``trunk``, each the other's peer (idempotent)."""
        words: list[str] = []
        for br, port, peer in ((bridge, inner, outer), (trunk, outer, inner)):
            words += ["--", "--may-exist", "add-port", br, port]
            words += ["--", "set", "Interface", port, "type=patch", f"options:peer={peer}"]
        self.ovs_vsctl(*words[1:])

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
