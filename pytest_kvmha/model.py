"""Checks, verdicts and findings: the vocabulary shared by the catalogue, the engine and reports."""

from __future__ import annotations

import enum
import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field


class Severity(enum.IntEnum):
    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            choices = "|".join(s.name.lower() for s in reversed(cls))
            raise ValueError(f"unknown severity {text!r} (expected {choices})") from None

    def __str__(self) -> str:
        return self.name.lower()


class Scope(str, enum.Enum):
    """What one finding of a check is about; the engine enumerates the subjects."""

    HOST = "host"  # each audited host
    CLUSTER = "cluster"  # each cluster
    PAIR = "pair"  # each interface pair of each cluster
    MEMBER = "member"  # each member domain of each cluster
    MEMBER_NIC = "member-nic"  # each member's NIC of each pair
    CLUSTER_HOST = "cluster-host"  # each host that runs a member of the cluster
    HOST_PROBLEM = "host-problem"  # each problem recorded for an audited host (none: no finding)


PASS, FAIL, ERROR, SKIP = "pass", "fail", "error", "skip"
STATUSES = (PASS, FAIL, ERROR, SKIP)


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a check function returns for one subject."""

    status: str
    detail: str
    expected: str | None = None
    found: str | None = None
    remediation: str | None = None  # specific commands; else the check's generic remediation


def passed(detail: str) -> Verdict:
    return Verdict(PASS, detail)


def failed(
    detail: str,
    *,
    expected: str | None = None,
    found: str | None = None,
    remediation: str | None = None,
) -> Verdict:
    return Verdict(FAIL, detail, expected, found, remediation)


def skipped(reason: str) -> Verdict:
    return Verdict(SKIP, reason)


class MissingFacts(Exception):
    """Raised by fact accessors when what a check needs was not collected or did not parse.

    The engine turns it into an ``error`` finding: a check never passes on missing facts.
    """


@dataclass(frozen=True, slots=True)
class Check:
    id: str
    title: str
    severity: Severity
    scope: Scope
    rationale: str
    remediation: str
    source: str
    func: Callable[..., Verdict] = field(repr=False, compare=False)


_CHECK_ATTR = "__kvmha_check__"


def check(
    id: str,
    *,
    title: str,
    severity: str,
    scope: Scope,
    rationale: str,
    remediation: str,
    source: str,
) -> Callable[[Callable[..., Verdict]], Callable[..., Verdict]]:
    """Mark a function as a catalogue check. Discovery scans ``pytest_kvmha.checks``."""

    def mark(func: Callable[..., Verdict]) -> Callable[..., Verdict]:
        spec = Check(
            id,
            title,
            Severity.parse(severity),
            scope,
            rationale.strip(),
            remediation.strip(),
            source,
            func,
        )
        setattr(func, _CHECK_ATTR, spec)
        return func

    return mark


def discover_checks(package: str = "pytest_kvmha.checks") -> tuple[Check, ...]:
    """Every ``@check`` function in the modules of ``package``, sorted by id."""
    pkg = importlib.import_module(package)
    found: dict[str, Check] = {}
    for info in pkgutil.iter_modules(pkg.__path__, package + "."):
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            spec = getattr(value, _CHECK_ATTR, None)
            if isinstance(spec, Check):
                if spec.id in found and found[spec.id].func is not spec.func:
                    raise RuntimeError(f"duplicate check id {spec.id} in {info.name}")
                found[spec.id] = spec
    return tuple(sorted(found.values(), key=lambda c: c.id))


@dataclass(frozen=True, slots=True)
class Finding:
    check: Check
    status: str
    subject: str
    detail: str
    host: str | None
    cluster: str | None
    expected: str | None = None
    found: str | None = None
    remediation: str | None = None

    @property
    def nodeid(self) -> str:
        # Neither cluster nor host: a finding about the whole run (discovery).
        return f"kvmha/{self.cluster or self.host or 'discovery'}/{self.check.id}[{self.subject}]"

    def as_json(self) -> dict[str, object]:
        return {
            "check": self.check.id,
            "title": self.check.title,
            "severity": str(self.check.severity),
            "status": self.status,
            "host": self.host,
            "cluster": self.cluster,
            "subject": self.subject,
            "detail": self.detail,
            "expected": self.expected,
            "found": self.found,
            "remediation": self.remediation if self.remediation else self.check.remediation,
            "source": self.check.source,
            "nodeid": self.nodeid,
        }
