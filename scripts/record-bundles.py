#!/usr/bin/env python3
"""Re-record the evidence bundles the offline tests and the demo replay (root; starts a lab).

    .venv/bin/python scripts/record-bundles.py            # tests/bundles/<scenario>/ and examples/

Each scenario of ``tests.scenarios`` is built on a fresh two-host namespace lab and
collected over SSH exactly as an audit does; ``<dir>/clusters.toml`` is its inventory with
``replay://`` specs. ``examples/`` gets the demo: a conforming two-server cluster and a broken
single-server one on the same hosts.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from pytest_kvmha.audit.run import traced
from pytest_kvmha.collect.pool import collect_all
from pytest_kvmha.config.inventory import parse_inventory
from pytest_kvmha.config.target import CollectOptions, HostTarget
from pytest_kvmha.config.toml import tomllib  # tomli on Python 3.10
from pytest_kvmha.testing import Lab, LabNic, firewall_domain_xml, slot_index, slot_prefix

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.scenarios
from tests.scenarios import HOSTS, SCENARIOS, Scenario, reset  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def record(lab: Lab, inventory: str, out: Path, unreachable: tuple[int, ...] = ()) -> None:
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    targets = [HostTarget(name, lab.hosts[i].spec) for i, name in enumerate(HOSTS)]
    options = CollectOptions(str(lab.ssh_config))
    # as an audit does: the batch, then the trace phase for the clusters of the inventory
    clusters = parse_inventory(tomllib.loads(inventory), "scenario", base=out)
    for bundle in traced(collect_all(targets, options), clusters, options):
        bundle.write(out / bundle.host)
    for i, name in enumerate(HOSTS):
        inventory = inventory.replace(json.dumps(lab.hosts[i].spec), json.dumps(f"replay://{name}"))
    (out / "clusters.toml").write_text(inventory)


def demo(lab: Lab) -> str:
    """examples/: edge-fw as in two-ok, plus dmz-fw on kvm-a with three defects, and
    bridge-utils left on kvm-b."""
    two: Scenario = SCENARIOS["two-ok"]
    two.build(lab)
    a = lab.hosts[0]
    a.add_bridge("br3-dmz")
    good = [LabNic("br3-dmz", slot=3)]
    a.define_domain(firewall_domain_xml("dmz-a", good))
    bad = [replace(good[0], slot=5, model="e1000", filterref="clean-traffic")]
    a.define_domain(firewall_domain_xml("dmz-b", bad), start=False)
    lab.hosts[1].set_package_installed("bridge-utils", True)
    return two.inventory(lab) + (
        "\n[clusters.dmz-fw]\n"
        'vendor = "fortigate"\n'
        'heartbeat = "broadcast"\n'
        "members = [\n"
        '  { host = "kvm-a", domain = "dmz-a", role = "master" },\n'
        '  { host = "kvm-a", domain = "dmz-b", role = "slave" },\n'
        "]\n"
        "[[clusters.dmz-fw.pairs]]\n"
        'name = "Dmz1"\n'
        'bridge = "br3-dmz"\n'
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--tests", type=Path, default=ROOT / "tests" / "bundles")
    ap.add_argument("--examples", type=Path, default=ROOT / "examples")
    ap.add_argument("--only", nargs="*", help="scenario names (default: all)")
    args = ap.parse_args()
    with (
        tempfile.TemporaryDirectory() as tmp,
        Lab(Path(tmp), hosts=2, prefix=slot_prefix("kvmrec"), first_host=slot_index(1)) as lab,
    ):
        for name in args.only or list(SCENARIOS):
            scenario = SCENARIOS[name]
            reset(lab)
            scenario.build(lab)
            try:
                record(lab, scenario.inventory(lab), args.tests / name)
            finally:
                for h in scenario.unreachable:
                    lab.start_sshd(lab.hosts[h])
            print(f"recorded {name}")
        if not args.only:
            reset(lab)
            inventory = demo(lab)
            out = args.examples / "bundles"
            record(lab, inventory, out)
            (out / "clusters.toml").rename(args.examples / "clusters.toml")
            text = (args.examples / "clusters.toml").read_text()
            text = text.replace('"replay://kvm-', '"replay://bundles/kvm-')
            (args.examples / "clusters.toml").write_text(text)
            print("recorded examples")


if __name__ == "__main__":
    main()
