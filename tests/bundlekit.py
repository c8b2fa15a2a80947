"""Recorded bundles for offline tests: copy a recorded scenario, edit its raw sections, audit it.

Defect bundles are derived from real recordings by editing the raw text (XML, OVS JSON, ip
JSON) exactly where a real host would differ, so they go through the real parsers.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pytest_kvmha.audit.engine import Audit, audit
from pytest_kvmha.bundle.store import EvidenceBundle
from pytest_kvmha.collect.pool import collect_all
from pytest_kvmha.config.inventory import load_inventory
from pytest_kvmha.config.target import CollectOptions
from pytest_kvmha.model import discover_checks
from pytest_kvmha.parse.host import parse_bundle

BUNDLES = Path(__file__).parent / "bundles"
CHECKS = discover_checks()


def copy_scenario(name: str, dest: Path) -> Path:
    target = dest / name
    shutil.copytree(BUNDLES / name, target)
    return target


def run(directory: Path) -> Audit:
    inventory = load_inventory(directory / "clusters.toml")
    bundles = collect_all(list(inventory.hosts), CollectOptions())
    return audit(CHECKS, inventory, [parse_bundle(b) for b in bundles])


def statuses(result: Audit) -> dict[tuple[str, str], str]:
    return {(f.check.id, f.subject): f.status for f in result.findings}


def untraced(found: Mapping[tuple[str, str], str]) -> dict[tuple[str, str], str]:
    """``found`` without KVMHA-TRACE-001: for tests that edit a recorded bundle, whose recorded
    traces then no longer match what the check plans (it errs or skips; see test_trace.py)."""
    return {k: v for k, v in found.items() if k[0] != "KVMHA-TRACE-001"}


def finding(result: Audit, check: str, subject: str) -> Any:
    (f,) = [f for f in result.findings if f.check.id == check and f.subject == subject]
    return f


class HostBundle:
    """One recorded host of a copied scenario, editable section by section."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.bundle = EvidenceBundle.read(directory)

    def text(self, section: str) -> str:
        return self.bundle.sections[section].stdout

    def sections(self, prefix: str) -> list[str]:
        return sorted(n for n in self.bundle.sections if n.startswith(prefix))

    def edit(self, section: str, fn: Callable[[str], str]) -> None:
        path = self.dir / "sections" / section
        new = fn(path.read_text())
        assert new != path.read_text(), f"edit of {section} changed nothing"
        path.write_text(new)

    def edit_json(self, section: str, fn: Callable[[Any], None]) -> None:
        def apply(text: str) -> str:
            doc = json.loads(text)
            fn(doc)
            return json.dumps(doc)

        self.edit(section, apply)

    def domain_sections(self, domain: str) -> list[str]:
        """The live and inactive XML sections of ``domain``."""
        return [n for n in self.sections("domain-") if f"<name>{domain}</name>" in self.text(n)]

    def edit_domain(self, domain: str, fn: Callable[[str], str]) -> None:
        names = self.domain_sections(domain)
        assert names, f"no domain {domain} in {self.dir}"
        for name in names:
            self.edit(name, fn)

    def set_meta(self, fn: Callable[[dict[str, Any]], None]) -> None:
        path = self.dir / "bundle.json"
        meta = json.loads(path.read_text())
        fn(meta)
        path.write_text(json.dumps(meta))

    def ovs_rows(self, table: str) -> tuple[list[str], list[list[Any]]]:
        doc = json.loads(self.text(f"ovs-{table}"))
        return doc["headings"], doc["data"]

    def edit_ovs_row(self, table: str, name: str, column: str, value: Any) -> None:
        def change(doc: Any) -> None:
            h = doc["headings"]
            rows = [r for r in doc["data"] if r[h.index("name")] == name]
            assert rows, f"no {table} row named {name}"
            for r in rows:
                r[h.index(column)] = value

        self.edit_json(f"ovs-{table}", change)
