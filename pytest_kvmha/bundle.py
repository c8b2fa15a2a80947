"""Evidence bundles: the raw output collected from one host, as recorded on disk.

Layout of ``DIR/<host>/``::

    bundle.json                 meta: host, spec, collector, when, round trips, commands, sections
    sections/<name>             raw stdout of each section (e.g. ``ovs-Bridge``, ``domain-live/<uuid>``)

``bundle.json`` keeps each section's return code and stderr, so a replay sees exactly what the
live audit saw, failures included.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCHEMA = "kvmha-bundle/1"
MISSING_RC = -1  # a section listed in bundle.json whose file is gone or not UTF-8: damaged evidence
_SECTION_NAME = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)?$")


class BundleError(Exception):
    """A recorded bundle cannot be read; the message names the file."""


@dataclass(frozen=True, slots=True)
class Section:
    stdout: str
    stderr: str = ""
    rc: int = 0


@dataclass
class EvidenceBundle:
    host: str
    spec: str
    collector: str
    collected_at: str
    status: str = "ok"  # ok | unreachable | error
    error: str | None = None
    round_trips: int = 0
    seconds: float = 0.0
    commands: list[dict[str, Any]] = field(default_factory=list)
    sections: dict[str, Section] = field(default_factory=dict)

    def meta(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "host": self.host,
            "spec": self.spec,
            "collector": self.collector,
            "collected_at": self.collected_at,
            "status": self.status,
            "error": self.error,
            "round_trips": self.round_trips,
            "seconds": round(self.seconds, 3),
            "commands": self.commands,
            "sections": {
                name: {"rc": s.rc, "stderr": s.stderr} for name, s in sorted(self.sections.items())
            },
        }

    def write(self, directory: Path) -> Path:
        """Write the bundle under ``directory`` (``DIR/<host>``); returns that directory."""
        for name in self.sections:
            if not _SECTION_NAME.match(name) or ".." in name:
                raise BundleError(f"{self.host}: refusing to write section name {name!r}")
        directory.mkdir(parents=True, exist_ok=True)
        for name, section in self.sections.items():
            path = directory / "sections" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(section.stdout, encoding="utf-8")
        (directory / "bundle.json").write_text(
            json.dumps(self.meta(), indent=2, sort_keys=False) + "\n", encoding="utf-8"
        )
        return directory

    @classmethod
    def read(cls, directory: Path) -> EvidenceBundle:
        meta_path = directory / "bundle.json"
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise BundleError(f"{meta_path}: no such file (not a recorded kvmha bundle)") from None
        except (OSError, ValueError, RecursionError) as exc:  # ValueError: bad JSON or UTF-8
            raise BundleError(f"{meta_path}: unreadable: {exc}") from None
        if not isinstance(meta, dict) or meta.get("schema") != SCHEMA:
            raise BundleError(f"{meta_path}: field 'schema' must be {SCHEMA!r}")
        sections: dict[str, Section] = {}
        listed = meta.get("sections") or {}
        if not isinstance(listed, dict):
            raise BundleError(f"{meta_path}: field 'sections' must be a table")
        for name, info in listed.items():
            if not isinstance(name, str) or not _SECTION_NAME.match(name) or ".." in name:
                raise BundleError(f"{meta_path}: bad section name {name!r}")
            if not isinstance(info, dict):
                raise BundleError(f"{meta_path}: section {name!r} must be a table")
            path = directory / "sections" / name
            try:
                stdout = path.read_text(encoding="utf-8")
            except FileNotFoundError:
                stdout = ""
                info = {**info, "rc": info.get("rc", 0), "stderr": f"{path}: missing from bundle"}
                info["missing"] = True
            except UnicodeDecodeError as exc:
                # One damaged section is a problem of what depends on it; the rest is audited.
                stdout = ""
                info = {
                    **info,
                    "stderr": f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})",
                }
                info["missing"] = True
            except OSError as exc:
                raise BundleError(f"{path}: unreadable: {exc}") from None
            rc = info.get("rc", 0)
            if not isinstance(rc, int):
                raise BundleError(f"{meta_path}: section {name!r} field 'rc' must be an integer")
            sections[name] = Section(
                stdout, str(info.get("stderr", "")), MISSING_RC if info.get("missing") else rc
            )
        error = meta.get("error")
        try:  # a tampered bundle.json names its bad field instead of crashing the replay
            if error is not None and not isinstance(error, str):
                raise TypeError("field 'error' must be a string or null")
            round_trips = int(meta.get("round_trips", 0) or 0)
            seconds = float(meta.get("seconds", 0.0) or 0.0)
            commands = list(meta.get("commands") or [])
        except (TypeError, ValueError, OverflowError) as exc:
            raise BundleError(f"{meta_path}: malformed field: {exc}") from None
        return cls(
            host=str(meta.get("host") or directory.name),
            spec=str(meta.get("spec") or f"replay://{directory}"),
            collector=str(meta.get("collector", "unknown")),
            collected_at=str(meta.get("collected_at", "")),
            status=str(meta.get("status", "ok")),
            error=error,
            round_trips=round_trips,
            seconds=seconds,
            commands=commands,
            sections=sections,
        )
