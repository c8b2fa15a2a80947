#!/usr/bin/env python3
"""What one host's collection costs: remote processes, bytes, and the wall time of an audit.

    KVMHA_LAB_SLOT=1 .venv/bin/python scripts/fleet-measure.py [--scenario mac-filter] [--repeat 5]

Starts the namespace lab (root), builds a scenario, runs the collector's batch script on each
lab host under ``strace -f -e trace=execve`` (every process the script starts, counted), and
times whole ``pytest --kvmha-inventory`` audits over SSH (median). Run on demand, not in CI.
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pytest_kvmha.collect import batch_script
from pytest_kvmha.lab import Lab, slot_index, slot_prefix
from pytest_kvmha.scenarios import SCENARIOS, reset


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scenario", default="mac-filter")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kvmha-measure-") as tmp:
        work = Path(tmp)
        lab = Lab(work / "lab", hosts=2, prefix=slot_prefix("kvmha"), first_host=slot_index(1))
        lab.start()
        try:
            reset(lab)
            scenario = SCENARIOS[args.scenario]
            scenario.build(lab)
            for h in lab.hosts:
                trace = h.hostdir / "execve.trace"
                script = batch_script(secrets.token_hex(12))
                rc, out, err = h.spawn(
                    ["strace", "-f", "-qq", "-e", "trace=execve", "-o", str(trace)]
                    + ["sh", "-c", script, "kvmha"],
                    timeout=120,
                )
                calls = [line for line in trace.read_text().splitlines() if "execve(" in line]
                ok = [line for line in calls if line.rstrip().endswith("= 0")]
                names = sorted({line.split('"')[1].rsplit("/", 1)[-1] for line in ok})
                print(
                    f"{h.name}: {len(ok)} processes ({len(calls)} execve calls), "
                    f"{len(out.encode())} bytes of stdout, {len(script)} bytes of script; "
                    f"programs: {' '.join(names)}"
                )
            inventory = work / "clusters.toml"
            inventory.write_text(scenario.inventory(lab))
            times = []
            for _ in range(args.repeat):
                t0 = time.monotonic()
                subprocess.run(
                    [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q"]
                    + [f"--kvmha-inventory={inventory}", f"--kvmha-ssh-config={lab.ssh_config}"],
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
