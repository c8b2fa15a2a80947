"""On the lab, over SSH: a collection that outlives --kvmha-timeout is stopped on the host too."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from pytest_kvmha.collect.pool import collect_all
from pytest_kvmha.config.target import CollectOptions, HostTarget
from pytest_kvmha.testing import Lab, LabHost
from pytest_kvmha.testing.cleanup import ns_members

pytestmark = pytest.mark.live


def collector_processes(h: LabHost) -> list[str]:
    """Processes in the lab host's namespaces that belong to a collection (the batch shell,
    its `timeout`, virsh)."""
    found = []
    for pid in ns_members(h):
        try:
            args = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "kvmha-collect" in args or "KVMHA" in args or args.startswith("virsh"):
            found.append(f"{pid}: {args[:120]}")
    return found


def test_timeout_stops_the_remote_batch(lab: Lab) -> None:
    h = lab.hosts[0]
    libvirtd = h.pids["libvirtd"]
    assert Path(f"/proc/{libvirtd}/comm").read_text().strip() == "libvirtd"
    os.kill(libvirtd, signal.SIGSTOP)  # a hung libvirtd: virsh waits for it forever
    try:
        started = time.monotonic()
        (bundle,) = collect_all(
            [HostTarget(h.name, h.spec)], CollectOptions(str(lab.ssh_config), timeout=3)
        )
        elapsed = time.monotonic() - started
        assert bundle.status == "unreachable", bundle.error
        assert "no answer within 3 s" in (bundle.error or "")
        assert elapsed < 3 + 8
        deadline = time.monotonic() + 10
        left = collector_processes(h)
        while left and time.monotonic() < deadline:
            time.sleep(0.25)
            left = collector_processes(h)
        assert left == [], f"still running on {h.name}: {left}"
    finally:
        os.kill(libvirtd, signal.SIGCONT)
    # libvirtd answers again: the next collection is complete
    (again,) = collect_all([HostTarget(h.name, h.spec)], CollectOptions(str(lab.ssh_config)))
    assert again.status == "ok" and "virsh-domains" in again.sections
