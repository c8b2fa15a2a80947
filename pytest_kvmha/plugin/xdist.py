"""The pytest-xdist hand-off: the controller collects every host once and hands the bundles to
the workers in a private run directory (named in ``node.workerinput``), where they replay them.

The controller collects no items, so it audits at session start, in a thread that runs while
xdist starts its workers; a marker file in the run directory tells the workers that every
bundle is there (or why the audit failed)."""

from __future__ import annotations

import datetime as dt
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

from pytest_kvmha.model import Finding

RUNDIR = "kvmha_rundir"
TODAY = "kvmha_today"  # the controller's date: waiver expiry is judged the same on every worker
DONE = ".kvmha-done"  # in the run directory: "ok" once every bundle is in it, else the error


def is_controller(config: pytest.Config) -> bool:
    return not hasattr(config, "workerinput") and config.pluginmanager.hasplugin("dsession")


def worker_input(config: pytest.Config) -> dict[str, Any] | None:
    """On an xdist worker, what the controller sent it; None elsewhere."""
    return getattr(config, "workerinput", None)


def handed_over(worker: dict[str, Any]) -> tuple[Path, dt.date]:
    """A worker's run directory and the controller's date."""
    return Path(worker[RUNDIR]), dt.date.fromisoformat(worker[TODAY])


def configure_node(node: Any, rundir: Path, today: dt.date) -> None:
    node.workerinput[RUNDIR] = str(rundir)
    node.workerinput[TODAY] = today.isoformat()


def workers_selection(findings: Iterable[Finding], ids: list[str]) -> list[Finding]:
    """The controller's selection is what the workers collected (after -k, -m, --deselect and
    node ids); xdist itself refuses workers that collected different items."""
    chosen = set(ids)
    return [f for f in findings if f.nodeid in chosen]


class ControllerAudit:
    """The controller's audit, run in a thread into a fresh run directory (0700, removed at
    unconfigure); :meth:`join` raises what the audit raised."""

    def __init__(self) -> None:
        self.rundir = Path(tempfile.mkdtemp(prefix="kvmha-run-"))
        self.failure: list[BaseException] = []
        self._thread: threading.Thread | None = None

    def start(self, work: Callable[[], None]) -> None:
        rundir, failure = self.rundir, self.failure

        def run() -> None:
            try:
                work()
            except BaseException as exc:  # raised in the main thread by join()
                failure.append(exc)
            finally:
                outcome = "ok" if not failure else f"{type(failure[0]).__name__}: {failure[0]}"
                (rundir / (DONE + ".tmp")).write_text(outcome, encoding="utf-8")
                os.replace(rundir / (DONE + ".tmp"), rundir / DONE)  # workers never see half

        self._thread = threading.Thread(target=run, name="kvmha-audit", daemon=True)
        self._thread.start()

    def join(self) -> BaseException | None:
        if self._thread is not None:
            self._thread.join()
        return self.failure[0] if self.failure else None


def wait_for_controller(rundir: Path) -> None:
    """An xdist worker waits until the controller has put every bundle in the run directory."""
    marker = rundir / DONE
    while not marker.exists():
        if not rundir.is_dir():
            raise pytest.UsageError(f"kvmha: the controller's run directory {rundir} is gone")
        time.sleep(0.02)
    outcome = marker.read_text(encoding="utf-8")
    if outcome != "ok":
        raise pytest.UsageError(f"kvmha: the controller's audit failed: {outcome}")
