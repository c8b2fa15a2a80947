#!/usr/bin/env python3
"""Rename the recorded traces of replay bundles after a change of ``TraceSpec.key``.

    .venv/bin/python scripts/rekey-traces.py OLD_KEY_FUNCTION DIR...

Nothing is traced again and no trace's text changes: the traces each bundle's own facts plan
(under DIR/clusters.toml, exactly as the collector planned them) move from the section name
the old key function gives to the one ``TraceSpec.key`` gives now. ``OLD_KEY_FUNCTION``:
``bridge-flow`` (the key before it covered the switch configuration: a digest of bridge and
flow only). A trace no planned leg names is reported and left where it is. Re-recording
(``scripts/record-bundles.py``) gives the same names; this spares the lab when only the key
changed.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable
from pathlib import Path

from pytest_kvmha.audit.engine import resolve_clusters
from pytest_kvmha.collect.pool import collect_all
from pytest_kvmha.config.inventory import load_inventory
from pytest_kvmha.config.target import CollectOptions
from pytest_kvmha.parse.host import parse_bundle
from pytest_kvmha.topology.traceplan import TraceSpec, plan_traces


def _bridge_flow(spec: TraceSpec) -> str:
    return "t" + hashlib.sha256(f"{spec.bridge}\0{spec.flow}".encode()).hexdigest()[:20]


OLD: dict[str, Callable[[TraceSpec], str]] = {"bridge-flow": _bridge_flow}


def rekey(directory: Path, old: Callable[[TraceSpec], str]) -> int:
    inventory = load_inventory(directory / "clusters.toml")
    dirs = {t.name: Path(t.spec.removeprefix("replay://")) for t in inventory.hosts}
    hosts = [parse_bundle(b) for b in collect_all(list(inventory.hosts), CollectOptions())]
    moved = 0
    for host, specs in plan_traces(hosts, resolve_clusters(inventory, hosts)).items():
        d = dirs[host]
        meta_path = d / "bundle.json"
        meta = json.loads(meta_path.read_text())
        renames = {old(s): s.key for s in specs if old(s) != s.key}
        for was, now in renames.items():
            src = d / "sections" / "trace" / was
            if not src.exists():
                continue
            src.rename(d / "sections" / "trace" / now)
            meta["sections"][f"trace/{now}"] = meta["sections"].pop(f"trace/{was}")
            moved += 1
        meta["sections"] = dict(sorted(meta["sections"].items()))
        meta_path.write_text(json.dumps(meta, indent=2) + "\n")
        planned = {s.key for s in specs}
        for left in sorted((d / "sections" / "trace").glob("t*")):
            if left.name not in planned:
                print(f"{d}: trace/{left.name} is planned by no leg: left as it is")
    return moved


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] not in OLD:
        print(__doc__, file=sys.stderr)
        return 2
    for directory in argv[1:]:
        print(f"{directory}: {rekey(Path(directory), OLD[argv[0]])} traces renamed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
