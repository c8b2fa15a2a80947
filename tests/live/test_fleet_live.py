"""Fleets for real (the engine): an audit of the namespace lab over SSH gives the same
findings, reports and exit status serially and under pytest-xdist, each host is logged into once
per run, and a bastion with ``MaxStartups 5`` in front of more hosts than that is ridden out by
retries (recorded in the bundles), while a refused login or a host key mismatch is not retried.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_kvmha.collect.pool import collect_all
from pytest_kvmha.config.target import CollectOptions, HostTarget
from pytest_kvmha.testing import Lab
from pytest_kvmha.testing.processes import PYTEST
from pytest_kvmha.testing.sshd import sshd_config
from tests.scenarios import SCENARIOS, build_scenario, reset

pytestmark = pytest.mark.live

VOLATILE = ("collect_seconds", "bytes_received", "bytes_sent", "retries", "retry_reasons")


def _no_multiplexing(lab: Lab, path: Path) -> Path:
    """The lab's ssh_config without ControlMaster: every audit opens its own connections
    (so sshd logs each login, and MaxStartups sees each handshake)."""
    lines = lab.ssh_config.read_text().splitlines()
    text = "\n".join(
        "    ControlPath none" if line.strip().startswith("ControlPath") else line for line in lines
    ).replace("ControlMaster auto", "ControlMaster no")
    path.write_text(text + "\n")
    return path


def _audit(cwd: Path, *args: str) -> tuple[int, str, dict[str, Any]]:
    report = cwd / "r.json"
    report.unlink(missing_ok=True)
    proc = subprocess.run(
        [*PYTEST, "-rA", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return proc.returncode, proc.stdout + proc.stderr, json.loads(report.read_text())


def _comparable(report: dict[str, Any]) -> dict[str, Any]:
    report = {k: v for k, v in report.items() if k not in ("generated_at", "duration_s")}
    report["hosts"] = [{k: v for k, v in h.items() if k not in VOLATILE} for h in report["hosts"]]
    return report


def _logins(lab: Lab) -> dict[str, int]:
    return {
        h.name: (h.hostdir / "sshd" / "sshd.log").read_text().count("Accepted publickey")
        for h in lab.hosts
    }


def test_xdist_audit_of_the_lab_equals_the_serial_one(lab: Lab, tmp_path: Path) -> None:
    scenario = SCENARIOS["bridge-utils"]  # one failing host check, the rest passing
    inventory = build_scenario(lab, scenario, tmp_path)
    config = _no_multiplexing(lab, tmp_path / "ssh_config")
    common = (
        f"--kvmha-inventory={inventory}",
        f"--kvmha-ssh-config={config}",
        "--kvmha-report=r.json",
        "--kvmha-report-md=r.md",
    )
    runs = {}
    for mode in ((), ("-n", "2"), ("-n", "2", "--dist", "loadgroup")):
        before = _logins(lab)
        rc, out, report = _audit(tmp_path, "-p", "xdist", *mode, *common)
        after = _logins(lab)
        # each host logged into exactly as often as a serial run does (its batch, and the trace
        # phase where it holds a cluster port), whatever the number of workers
        logins = {h.name: scenario.round_trips(i) for i, h in enumerate(lab.hosts)}
        assert {h: after[h] - before[h] for h in after} == logins, out
        if mode:
            assert "bringing up nodes" in out, out
        findings = {(f["nodeid"], f["status"], f["detail"]) for f in report["findings"]}
        runs[mode] = (rc, findings, _comparable(report), (tmp_path / "r.md").read_text())
    serial = runs[()]
    assert serial[0] == 1 and any(s == "fail" for _, s, _ in serial[1])
    for mode, run in runs.items():
        assert run[0] == serial[0], mode
        assert run[1] == serial[1], mode
        assert run[2] == serial[2], mode
        assert run[3] == serial[3], mode


# --- a bastion with MaxStartups 5 ------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def bastion(lab: Lab, tmp_path: Path) -> Iterator[tuple[str, int]]:
    """An sshd in the root namespace (it reaches every lab host) that drops handshakes beyond
    five at once, as a busy jump host does."""
    port = _free_port()
    d = tmp_path / "bastion"
    d.mkdir()
    conf = d / "sshd_config"
    conf.write_text(
        sshd_config(
            "127.0.0.1",
            lab.identity_file.parent,
            port,
            d / "sshd.pid",
            ["MaxStartups 5", "AllowTcpForwarding yes"],
        )
    )
    subprocess.run(["/usr/sbin/sshd", "-f", str(conf), "-E", str(d / "sshd.log")], check=True)
    pidfile = d / "sshd.pid"
    for _ in range(50):
        if pidfile.exists() and pidfile.read_text().strip():
            break
        time.sleep(0.1)
    pid = int(pidfile.read_text())
    try:
        yield "127.0.0.1", port
    finally:
        if Path(f"/proc/{pid}/comm").read_text().strip() == "sshd":
            os.kill(pid, 15)


def _fleet_config(lab: Lab, path: Path, bastion: tuple[str, int], n: int) -> list[HostTarget]:
    """``n`` host aliases behind the bastion, spread over the lab hosts, no multiplexing."""
    addr, port = bastion
    blocks = [
        "Host kvmha-bastion\n"
        f"    HostName {addr}\n    Port {port}\n    User root\n"
        f"    IdentityFile {lab.identity_file}\n    IdentitiesOnly yes\n"
        "    StrictHostKeyChecking no\n    UserKnownHostsFile /dev/null\n    LogLevel ERROR\n"
        "    ControlMaster no\n"
    ]
    targets = []
    for i in range(n):
        h = lab.hosts[i % len(lab.hosts)]
        name = f"fleet{i:02d}"
        blocks.append(
            f"Host {name}\n    HostName {h.mgmt_addr}\n    User root\n"
            f"    IdentityFile {lab.identity_file}\n    IdentitiesOnly yes\n"
            "    StrictHostKeyChecking no\n    UserKnownHostsFile /dev/null\n"
            "    LogLevel ERROR\n    ControlMaster no\n    ProxyJump kvmha-bastion\n"
        )
        targets.append(HostTarget(name, f"ssh://root@{name}"))
    path.write_text("\n".join(blocks))
    return targets


def test_maxstartups_bastion_is_ridden_out_by_retries(
    lab: Lab, bastion: tuple[str, int], tmp_path: Path
) -> None:
    reset(lab)
    config = tmp_path / "fleet_config"
    targets = _fleet_config(lab, config, bastion, 16)
    bundles = collect_all(targets, CollectOptions(str(config), timeout=60, max_parallel=16))
    assert [b.status for b in bundles] == ["ok"] * 16, [(b.host, b.error) for b in bundles]
    retries = [r for b in bundles for r in b.retries]
    assert retries, "16 handshakes at once through MaxStartups 5: some must have been refused"
    assert all(
        "Connection closed" in r["reason"] or "reset" in r["reason"] or "kex" in r["reason"]
        for r in retries
    ), retries
    assert all(b.round_trips == 1 and b.bytes_received > 1000 for b in bundles)

    # the same through the plugin: every host audited, the retries in the JSON report
    inventory = tmp_path / "fleet.toml"
    inventory.write_text(
        "".join(f'[hosts.{t.name}]\nspec = "{t.spec}"\n\n' for t in targets)
    )  # no cluster declared: discovery (it finds none on the empty lab)
    rc, out, report = _audit(
        tmp_path,
        f"--kvmha-inventory={inventory}",
        f"--kvmha-ssh-config={config}",
        "--kvmha-report=r.json",
        "-p",
        "xdist",
        "-n",
        "2",
    )
    statuses = {h["name"]: h["status"] for h in report["hosts"]}
    assert set(statuses.values()) == {"ok"}, (statuses, out)
    assert sum(h["retries"] for h in report["hosts"]) > 0, report["hosts"]


def test_a_refused_login_or_host_key_is_not_retried(
    lab: Lab, bastion: tuple[str, int], tmp_path: Path
) -> None:
    reset(lab)
    h = lab.hosts[0]
    stranger = tmp_path / "stranger"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)], check=True)
    known = tmp_path / "known_hosts"
    known.write_text(
        f"{h.mgmt_addr} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n"
    )
    config = tmp_path / "bad_config"
    config.write_text(
        f"Host badkey\n    HostName {h.mgmt_addr}\n    User root\n    IdentityFile {stranger}\n"
        "    IdentitiesOnly yes\n    StrictHostKeyChecking no\n    UserKnownHostsFile /dev/null\n"
        "    BatchMode yes\n    ControlMaster no\n\n"
        f"Host hostkey\n    HostName {h.mgmt_addr}\n    User root\n"
        f"    IdentityFile {lab.identity_file}\n    IdentitiesOnly yes\n"
        f"    StrictHostKeyChecking yes\n    UserKnownHostsFile {known}\n"
        "    BatchMode yes\n    ControlMaster no\n"
    )
    t0 = time.monotonic()
    bad, mismatch = collect_all(
        [HostTarget("badkey", "ssh://root@badkey"), HostTarget("hostkey", "ssh://root@hostkey")],
        CollectOptions(str(config), timeout=60),
    )
    assert bad.status == "unreachable" and "Permission denied" in (bad.error or ""), bad.error
    assert mismatch.status == "unreachable", mismatch.error
    assert "host key" in (mismatch.error or "").lower(), mismatch.error
    assert bad.retries == [] and mismatch.retries == []
    assert time.monotonic() - t0 < 10  # no backoff waited
