#!/usr/bin/env python3
"""Benchmark parse + checks on a large synthetic host, and (optionally) live collection.

    .venv/bin/python scripts/bench.py [--clusters 100] [--nics 8] [--repeat 3]
    .venv/bin/python scripts/bench.py --live   # also time a lab audit over SSH (root)
    .venv/bin/python scripts/bench.py --fleet 1,10,50,200   # fleet benchmark (root, see below)

The synthetic host is written in the raw formats the collector records (virsh XML,
``ovs-vsctl --format=json``, ``ip -d -j link``), so it goes through exactly the audit path.

``--fleet N[,N...]`` builds N light simulated hypervisors (network namespaces with a real sshd
and Open vSwitch, libvirt through the test driver; see scripts/bench_fleet.py) per size and
measures, in one run: the floor (N parallel ``ssh host true``), the plugin serially and with
``-n auto``, and a plain pytest-testinfra module doing the same checks
(scripts/bench_fleet_testinfra.py) serially and with ``-n auto``. It prints a Markdown table
and writes the rows as JSON (``--fleet-out``). The offline part is skipped unless asked for.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import tracemalloc
import uuid as uuidlib

from pytest_kvmha.audit.engine import audit
from pytest_kvmha.bundle.contract import OVS_COLUMNS
from pytest_kvmha.bundle.store import EvidenceBundle, Section
from pytest_kvmha.config.inventory import ClusterSpec, Inventory, MemberSpec, PairSpec
from pytest_kvmha.model import discover_checks
from pytest_kvmha.parse.host import parse_bundle


def _ovs_table(headings: list[str], rows: list[list[object]]) -> str:
    return json.dumps({"headings": headings, "data": rows})


def synthetic_host(clusters: int, nics: int) -> tuple[EvidenceBundle, Inventory]:
    sections: dict[str, Section] = {}
    bridges, ports, ifaces, links = [], [], [], []
    uuids, specs = [], []
    for c in range(clusters):
        pair_specs = []
        for k in range(nics):
            br = f"c{c}-br{k}"
            port_uuids = []
            for side in (0, 1):
                dev = f"vnet{c}-{k}-{side}"
                pu, iu = str(uuidlib.uuid4()), str(uuidlib.uuid4())
                mac = f"52:54:{c >> 8:02x}:{c & 255:02x}:{k:02x}:{side:02x}"
                port_uuids.append(pu)
                ports.append(
                    [["uuid", pu], dev, ["uuid", iu], ["set", []], ["set", []], ["set", []]]
                )
                ifaces.append(
                    [
                        ["uuid", iu],
                        dev,
                        "",
                        ["map", []],
                        ["map", [["attached-mac", mac], ["iface-status", "active"]]],
                        1,
                        ["set", []],
                        mac,
                    ]
                )
                links.append({"ifname": dev, "flags": ["UP", "PROMISC"], "promiscuity": 1})
            bridges.append(
                [
                    ["uuid", str(uuidlib.uuid4())],
                    br,
                    ["set", [["uuid", u] for u in port_uuids]],
                    "system",
                ]
            )
            pair_specs.append(PairSpec(f"If{k + 1}", br))
        members = []
        for side in (0, 1):
            u = str(uuidlib.uuid4())
            name = f"fw{c}-{side}"
            nic_xml = "".join(
                f"<interface type='bridge'><mac address='52:54:{c >> 8:02x}:{c & 255:02x}:{k:02x}:{side:02x}'/>"
                f"<source bridge='c{c}-br{k}'/><virtualport type='openvswitch'/>"
                f"<target dev='vnet{c}-{k}-{side}'/><model type='virtio'/>"
                f"<address type='pci' domain='0x0000' bus='0x00' slot='{3 + k:#04x}' function='0x0'/></interface>"
                for k in range(nics)
            )
            xml = (
                f"<domain type='kvm' id='{c * 2 + side + 1}'><name>{name}</name><uuid>{u}</uuid>"
                f"<os><type arch='x86_64' machine='pc-i440fx-7.2'>hvm</type></os>"
                f"<devices>{nic_xml}</devices></domain>"
            )
            sections[f"domain-live/{u}"] = Section(xml)
            sections[f"domain-inactive/{u}"] = Section(xml.replace(f" id='{c * 2 + side + 1}'", ""))
            uuids.append(u)
            members.append(MemberSpec("big", name, "master" if side == 0 else "slave"))
        specs.append(
            ClusterSpec(f"cluster{c}", "cos-core", "broadcast", tuple(members), tuple(pair_specs))
        )
    sections.update(
        {
            "identity": Section("0123456789abcdef0123456789abcdef\nbig\n"),
            "packages": Section("manager=dpkg\nbridge-utils\t1\t\n"),
            "ovs-version": Section("ovs-vsctl (Open vSwitch) 3.1.0\n"),
            "ovs-vswitchd": Section("ovs-vswitchd (Open vSwitch) 3.1.0\n"),
            # the columns the collector asks for, as the parser checks them
            "ovs-Open_vSwitch": Section(
                _ovs_table(list(OVS_COLUMNS["Open_vSwitch"]), [[["uuid", "x"], "3.1.0", 5, 5]])
            ),
            "ovs-Bridge": Section(_ovs_table(list(OVS_COLUMNS["Bridge"]), bridges)),
            "ovs-Port": Section(_ovs_table(list(OVS_COLUMNS["Port"]), ports)),
            "ovs-Interface": Section(_ovs_table(list(OVS_COLUMNS["Interface"]), ifaces)),
            "links": Section(json.dumps(links)),
            "virsh-domains": Section("\n".join(uuids) + "\n"),
            "virsh-active": Section("\n".join(uuids) + "\n"),
            "virsh-networks": Section(""),
            "virsh-nwfilters": Section(""),
        }
    )
    bundle = EvidenceBundle("big", "replay://big", "synthetic", "", sections=sections)
    from pytest_kvmha.config.target import HostTarget

    return bundle, Inventory((HostTarget("big", "replay://big"),), tuple(specs))


def bench_offline(clusters: int, nics: int, repeat: int) -> None:
    bundle, inventory = synthetic_host(clusters, nics)
    checks = discover_checks()
    raw = sum(len(s.stdout) for s in bundle.sections.values())
    parse_t, check_t, findings = [], [], 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        facts = parse_bundle(bundle)
        t1 = time.perf_counter()
        result = audit(checks, inventory, [facts])
        t2 = time.perf_counter()
        parse_t.append(t1 - t0)
        check_t.append(t2 - t1)
        findings = len(result.findings)
    assert not facts.problems, facts.problems
    tracemalloc.start()
    audit(checks, inventory, [parse_bundle(bundle)])
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(
        f"offline: {clusters} clusters x {nics} pairs = {clusters * 2} domains, "
        f"{clusters * nics * 2} OVS ports, {raw / 1e6:.1f} MB raw evidence"
    )
    print(f"  parse  median {statistics.median(parse_t) * 1e3:8.1f} ms")
    print(f"  checks median {statistics.median(check_t) * 1e3:8.1f} ms  ({findings} findings)")
    print(f"  peak traced memory (parse + checks) {peak / 1e6:.1f} MB")


def bench_live(repeat: int) -> None:
    import subprocess
    import tempfile
    from pathlib import Path

    from pytest_kvmha.testing import Lab

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.scenarios
    from tests.scenarios import SCENARIOS, reset

    with (
        tempfile.TemporaryDirectory() as tmp,
        Lab(Path(tmp) / "lab", hosts=2, prefix="kvmbench") as lab,
    ):
        reset(lab)
        scenario = SCENARIOS["two-ok"]
        scenario.build(lab)
        inv = Path(tmp) / "inv.toml"
        inv.write_text(scenario.inventory(lab))
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pytest",
                    "-q",
                    "-p",
                    "no:cacheprovider",
                    f"--kvmha-inventory={inv}",
                    f"--kvmha-ssh-config={lab.ssh_config}",
                    f"--kvmha-report={tmp}/r.json",
                ],
                cwd=tmp,
                capture_output=True,
                check=False,
            )
            times.append(time.perf_counter() - t0)
        report = json.loads(Path(f"{tmp}/r.json").read_text())
        print(
            f"live: two-ok lab audit over SSH, 2 hosts, {len(report['findings'])} findings, "
            f"round trips per host {[h['round_trips'] for h in report['hosts']]}"
        )
        print(
            f"  whole pytest run: median {statistics.median(times):.2f} s "
            f"(min {min(times):.2f} s, {repeat} runs)"
        )


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--clusters", type=int, default=100)
    ap.add_argument("--nics", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--live", action="store_true")
    ap.add_argument("--fleet", metavar="N[,N...]", help="fleet sizes, e.g. 1,10,50,200")
    ap.add_argument(
        "--fleet-out", default="bench-fleet.json", help="JSON rows (default: %(default)s)"
    )
    ap.add_argument("--fleet-workdir", default="/tmp/kvmha-fleet")
    ap.add_argument(
        "--fleet-skip",
        action="append",
        default=[],
        metavar="RUN",
        help="leave out a contender (floor, plugin, 'plugin -n auto', testinfra, 'testinfra -n auto')",
    )
    ap.add_argument(
        "--fleet-defect-every",
        type=int,
        default=10,
        metavar="K",
        help="plant one defect on hosts 2, 2+K, ... (0: none; default %(default)s)",
    )
    ap.add_argument("--offline", action="store_true", help="with --fleet: run the offline part too")
    args = ap.parse_args()
    if args.fleet:
        from pathlib import Path

        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from bench_fleet import bench_fleet

        try:
            sizes = [int(x) for x in args.fleet.split(",") if x.strip()]
        except ValueError:
            ap.error(f"--fleet: comma-separated host counts, not {args.fleet!r}")
        if args.offline:
            bench_offline(args.clusters, args.nics, args.repeat)
        try:
            bench_fleet(
                sizes,
                workdir=Path(args.fleet_workdir),
                python=sys.executable,
                out=Path(args.fleet_out),
                skip=args.fleet_skip,
                defect_every=args.fleet_defect_every,
            )
        except KeyboardInterrupt:
            print("interrupted: the fleet is torn down", file=sys.stderr)
            sys.exit(130)
        return
    bench_offline(args.clusters, args.nics, args.repeat)
    if args.live:
        bench_live(args.repeat)


if __name__ == "__main__":
    main()
