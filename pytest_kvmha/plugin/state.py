"""What one audit run knows (the fields of the session object): the gate, the items and the
plugin's audit read it; :class:`~pytest_kvmha.plugin.session.KvmhaSession` adds the hooks."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_kvmha.config.waivers import Waiver
from pytest_kvmha.model import Finding, Key, Severity
from pytest_kvmha.report.assemble import ReportPaths
from pytest_kvmha.report.baseline import HostId

if TYPE_CHECKING:
    from pytest_kvmha.audit.applicable import NotApplicable
    from pytest_kvmha.audit.engine import Audit
    from pytest_kvmha.config.inventory import Inventory
    from pytest_kvmha.fixtures.whatif import WhatIf


@dataclass(frozen=True, slots=True)
class RunVerdict:
    """The one verdict of a run: what the terminal, the JSON, Markdown, HTML and JUnit print and
    what decides the exit status (``passed`` is ``exit_status == 0``)."""

    passed: bool
    exit_status: int
    reason: str

    def as_json(self) -> dict[str, object]:
        return {"passed": self.passed, "exit_status": self.exit_status, "reason": self.reason}


@dataclass(eq=False)
class KvmhaState:
    config: pytest.Config
    fail_on: Severity
    reports: ReportPaths = field(default_factory=ReportPaths)
    audit: Audit | None = None
    selected: list[Finding] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    rounds: dict[str, int] = field(default_factory=dict)
    inventory: Inventory | None = None
    inventory_path: str | None = None
    wanted: Inventory | None = None  # of --kvmha-plan
    whatif: WhatIf | None = None
    baseline: dict[Key, str] | None = None  # finding status of --kvmha-baseline
    baseline_path: str | None = None
    baseline_hosts: dict[str, HostId] = field(default_factory=dict)  # name -> (spec, identity)
    lines: dict[str, int] = field(default_factory=dict)  # "[clusters.X]" table -> its line
    digests: dict[str, str] = field(default_factory=dict)  # host -> evidence bundle SHA-256
    started: float = field(default_factory=time.time)
    waivers: tuple[Waiver, ...] = ()  # of --kvmha-waivers
    waivers_path: str | None = None
    strict_waivers: bool = False
    fail_on_new: bool = False
    today: dt.date = field(default_factory=dt.date.today)  # waiver expiry is judged against it
    nodeids: list[str] = field(default_factory=list)  # kvmha node ids given as arguments
    max_parallel: int = 32
    rundir: Path | None = None  # xdist controller: the bundles handed to the workers
    replay_from: Path | None = None  # xdist worker: where the controller put them
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)  # host -> collection cost
    not_contacted: dict[str, str] = field(default_factory=dict)  # host -> why
    reports_written: bool = False
    # node id -> gate outcome of every selected audit item (what-if items included)
    gates: dict[str, str] = field(default_factory=dict)
    verdict: RunVerdict | None = None
    # per cluster, the checks that do not apply to it at all (their skips are no items)
    not_applicable: list[NotApplicable] = field(default_factory=list)
    whatif_not_applicable: list[NotApplicable] = field(default_factory=list)
