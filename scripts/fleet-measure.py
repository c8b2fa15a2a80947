#!/usr/bin/env python3
"""What one host's collection costs: remote processes, bytes, and the wall time of an audit.

    KVMHA_LAB_SLOT=1 .venv/bin/python scripts/fleet-measure.py [--scenario mac-filter] [--repeat 5]
        [--compare-with REV]   # also the batch script of git revision REV, runs interleaved

Starts the namespace lab (root), builds a scenario, runs the collector's batch script on each
lab host under ``strace -f -e trace=execve`` (every process the script starts, counted), and
times whole ``pytest --kvmha-inventory`` audits over SSH (median). Run on demand, not in CI.
"""

from __future__ import annotations

import argparse
import importlib.util
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from pytest_kvmha.collect.script import batch_script
from pytest_kvmha.collect.transport import remote_command
from pytest_kvmha.testing import Lab, LabHost, slot_index, slot_prefix
from pytest_kvmha.testing.processes import PYTEST

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.scenarios
from tests.scenarios import SCENARIOS, reset  # noqa: E402


def _batch_script_of(rev: str) -> Callable[[str], str]:
    """``batch_script`` of the collector at git revision ``rev``, loaded from a copy."""
    source = subprocess.run(
        ["git", "show", f"{rev}:pytest_kvmha/collect.py"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    path = Path(tempfile.mkdtemp(prefix="kvmha-old-")) / "old_collect.py"
    path.write_text(
        source.replace("from .bundle", "from pytest_kvmha.bundle.store").replace(
            "from .credentials", "from pytest_kvmha.config.redact"
        )
    )
    spec = importlib.util.spec_from_file_location("old_collect", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["old_collect"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module.batch_script  # type: ignore[no-any-return]


def _processes(h: LabHost, label: str, script: str) -> None:
    """Every process the script starts on host ``h`` (strace -f, execve), and its output."""
    trace = h.hostdir / "execve.trace"
    rc, out, err = h.spawn(
        [
            "strace",
            "-f",
            "-qq",
            "-e",
            "trace=execve",
            "-o",
            str(trace),
            "sh",
            "-c",
            script,
            "kvmha",
        ],
        timeout=120,
    )
    calls = [line for line in trace.read_text().splitlines() if "execve(" in line]
    ok = [line for line in calls if line.rstrip().endswith("= 0")]
    names = Counter(line.split('"')[1].rsplit("/", 1)[-1] for line in ok)
    print(
        f"{h.name} [{label}]: {len(ok)} processes, {len(out.encode())} bytes of stdout, "
        f"{len(script)} bytes of script; {' '.join(f'{n}:{c}' for n, c in names.most_common())}"
    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scenario", default="mac-filter")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--compare-with", metavar="REV")
    args = parser.parse_args()
    scripts = {"this tree": batch_script}
    if args.compare_with:
        scripts[args.compare_with] = _batch_script_of(args.compare_with)
    with tempfile.TemporaryDirectory(prefix="kvmha-measure-") as tmp:
        work = Path(tmp)
        lab = Lab(work / "lab", hosts=2, prefix=slot_prefix("kvmha"), first_host=slot_index(1))
        lab.start()
        try:
            reset(lab)
            scenario = SCENARIOS[args.scenario]
            scenario.build(lab)
            for label, make in scripts.items():
                for h in lab.hosts:
                    _processes(h, label, make(secrets.token_hex(12)))
            for h in lab.hosts:  # the same host over SSH, the variants interleaved
                seconds: dict[str, list[float]] = {label: [] for label in scripts}
                for _ in range(args.repeat):
                    for label, make in scripts.items():
                        command = remote_command(make(secrets.token_hex(12)), 60)
                        t0 = time.monotonic()
                        subprocess.run(
                            ["ssh", "-F", str(lab.ssh_config), h.mgmt_addr, command],
                            capture_output=True,
                            timeout=120,
                        )
                        seconds[label].append(time.monotonic() - t0)
                for label, values in seconds.items():
                    print(
                        f"{h.name} [{label}]: one collection over SSH, median "
                        f"{statistics.median(values) * 1000:.0f} ms ({args.repeat} runs)"
                    )
            inventory = work / "clusters.toml"
            inventory.write_text(scenario.inventory(lab))
            times = []
            for _ in range(args.repeat):
                t0 = time.monotonic()
                subprocess.run(
                    [
                        *PYTEST,
                        f"--kvmha-inventory={inventory}",
                        f"--kvmha-ssh-config={lab.ssh_config}",
                    ],
                    cwd=work,
                    capture_output=True,
                    timeout=300,
                )
                times.append(time.monotonic() - t0)
            print(
                f"audit of the {args.scenario} lab over SSH: median {statistics.median(times):.2f} s "
                f"(min {min(times):.2f}, max {max(times):.2f}, {args.repeat} runs)"
            )
        finally:
            lab.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
