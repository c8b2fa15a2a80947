#!/usr/bin/env python3
"""What the trace phase (KVMHA-TRACE-001) costs, measured on a namespace lab (root).

    KVMHA_LAB_SLOT=N .venv/bin/python scripts/trace-cost.py

Builds the two-server scenario ``two-ok`` (FortiGate, broadcast heartbeat: 16 traces per host),
then times, over SSH with connection reuse, the batch round trip and the trace round trip with
0, 16 and 64 ``ovs-appctl ofproto/trace`` calls (medians of 7).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from pytest_kvmha.collect.host import collect
from pytest_kvmha.collect.traces import collect_traces
from pytest_kvmha.config.inventory import parse_inventory
from pytest_kvmha.config.target import CollectOptions
from pytest_kvmha.config.toml import tomllib  # tomli on Python 3.10
from pytest_kvmha.parse.host import parse_bundle
from pytest_kvmha.testing import Lab, slot_index, slot_prefix
from pytest_kvmha.topology.traceplan import plan_traces

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.scenarios
from tests.scenarios import SCENARIOS, reset  # noqa: E402


def main() -> None:
    with (
        tempfile.TemporaryDirectory() as tmp,
        Lab(Path(tmp), hosts=2, prefix=slot_prefix("kvmcost"), first_host=slot_index(1)) as lab,
    ):
        reset(lab)
        SCENARIOS["two-ok"].build(lab)
        inv = parse_inventory(tomllib.loads(SCENARIOS["two-ok"].inventory(lab)), "two-ok")
        opts = CollectOptions(str(lab.ssh_config))
        hosts = [parse_bundle(collect(t, opts)) for t in inv.hosts]
        plans = plan_traces(hosts, inv.clusters)
        target = inv.hosts[0]
        specs = [(s.key, s.bridge, s.flow) for s in plans[target.name]]

        def median(n: int) -> float:
            times = []
            for _ in range(7):
                bundle = collect(target, opts)
                t0 = time.monotonic()
                collect_traces(bundle, target, opts, (specs * 8)[:n])
                times.append(time.monotonic() - t0)
            return statistics.median(times)

        batch = statistics.median([collect(target, opts).commands[0]["seconds"] for _ in range(7)])
        print(f"batch round trip: {batch * 1000:.0f} ms; traces planned per host: {len(specs)}")
        base = median(0)
        print(f"trace round trip with dpif/show only: {base * 1000:.0f} ms")
        for n in (len(specs), 64):
            m = median(n)
            print(f"{n} traces: {m * 1000:.0f} ms ({(m - base) / n * 1000:.1f} ms per trace)")


if __name__ == "__main__":
    main()
