"""On the lab, over SSH: a collection stopped at its deadline leaves its directory on the host
(no trap runs under SIGKILL), and the next collection removes it."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from pytest_kvmha.collect.pool import collect_all
from pytest_kvmha.collect.script import stale_minutes
from pytest_kvmha.config.target import CollectOptions, HostTarget
from pytest_kvmha.testing import Lab, LabHost

pytestmark = pytest.mark.live


def leftovers(h: LabHost) -> set[str]:
    out = h.run(["sh", "-c", 'ls -d "${TMPDIR:-/tmp}"/kvmha-collect.* 2>/dev/null'], check=False)
    return set(out.stdout.split())


def test_a_timed_out_collection_leaves_nothing_after_the_next(lab: Lab) -> None:
    h = lab.hosts[0]
    libvirtd = h.pids["libvirtd"]
    assert Path(f"/proc/{libvirtd}/comm").read_text().strip() == "libvirtd"
    before = leftovers(h)
    os.kill(libvirtd, signal.SIGSTOP)  # a hung libvirtd: the batch waits until it is killed
    try:
        (bundle,) = collect_all(
            [HostTarget(h.name, h.spec)], CollectOptions(str(lab.ssh_config), timeout=3)
        )
        assert bundle.status == "unreachable", bundle.error
        time.sleep(8)  # past timeout's kill grace: whatever is left is left for good
        left = leftovers(h) - before
    finally:
        os.kill(libvirtd, signal.SIGCONT)
    assert left, "the killed batch left no directory: nothing to sweep (the test proves nothing)"
    # older than any run may last, as after a day, then one ordinary collection
    minutes = stale_minutes(300.0) + 2
    h.run(["touch", "-d", f"-{minutes} minutes", *sorted(left)])
    (again,) = collect_all([HostTarget(h.name, h.spec)], CollectOptions(str(lab.ssh_config)))
    assert again.status == "ok"
    assert not left & leftovers(h)
