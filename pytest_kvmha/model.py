"""Checks, verdicts and findings: the vocabulary shared by the catalogue, the engine and reports."""

from __future__ import annotations

import enum
import importlib
import pkgutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import metadata
from types import ModuleType


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
    # each layer-2 segment (host, bridge, VLAN; a VLAN between servers) the member NICs of the
    # audited clusters are on, across every cluster and host (pytest_kvmha.topology.segments)
    SEGMENT = "segment"


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


# ``Check.needs``: what a check needs that an inventory may not declare at all. Where a cluster
# declares none of it, the check's skips are no pytest items (one line per cluster says so).
FIREWALL_CONFIG = "firewall-config"  # a member's ``config`` or ``console`` (inventory)
NEEDS = (FIREWALL_CONFIG,)

DEPENDS_ON = "depends on "  # how the detail of an error caused by a missing subject begins


class MissingSubject(MissingFacts):
    """What a check depends on is not there: a domain, a NIC, Open vSwitch on the host.

    One check reports the cause itself (``see``: KVMHA-TOPO-001 for a member domain); every
    other check that needs it is an ``error`` whose detail is this one line, so a typo in the
    inventory reads as one cause, not as a screen of errors."""

    def __init__(self, subject: str, problem: str, see: str) -> None:
        """``depends on <subject>, <problem> (see <see>)``: ``domain 'fw-bb' on kvm-b``,
        ``which is missing``, ``KVMHA-TOPO-001``."""
        super().__init__(subject, problem, see)  # type(exc)(*exc.args) makes a copy
        self.subject = subject
        self.problem = problem
        self.see = see

    def __str__(self) -> str:
        return f"{DEPENDS_ON}{self.subject}, {self.problem} (see {self.see})"


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
    needs: frozenset[str] = frozenset()


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
    needs: Iterable[str] = (),
) -> Callable[[Callable[..., Verdict]], Callable[..., Verdict]]:
    """Mark a function as a catalogue check. Discovery scans ``pytest_kvmha.checks``.

    ``needs``: inputs the inventory may not declare at all (:data:`NEEDS`), e.g.
    ``FIREWALL_CONFIG``; the check still runs and decides (skip where it is missing)."""
    unknown = sorted(set(needs) - set(NEEDS))
    if unknown:
        raise ValueError(f"check {id}: unknown needs {unknown} (known: {', '.join(NEEDS)})")

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
            frozenset(needs),
        )
        setattr(func, _CHECK_ATTR, spec)
        return func

    return mark


ENTRY_POINT_GROUP = "pytest_kvmha.checks"


class CheckDiscoveryError(Exception):
    """The catalogue cannot be assembled (an id defined twice, a site module that fails to load)."""


def _scan(module: ModuleType, origin: str, found: dict[str, tuple[Check, str]]) -> None:
    for value in vars(module).values():
        spec = getattr(value, _CHECK_ATTR, None)
        if not isinstance(spec, Check):
            continue
        if spec.id in found and found[spec.id][0].func is not spec.func:
            raise CheckDiscoveryError(
                f"check id {spec.id} is defined twice: in {found[spec.id][1]} and in {origin} "
                "(give site-specific checks ids of their own, e.g. SITE-XYZ-001)"
            )
        found.setdefault(spec.id, (spec, origin))


def discover_checks(
    package: str = "pytest_kvmha.checks", *, group: str | None = ENTRY_POINT_GROUP
) -> tuple[Check, ...]:
    """Every ``@check`` function in the modules of ``package`` and in the modules that installed
    distributions register under the entry-point ``group``, sorted by id.

    An entry point names a module (``site = "acme_kvmha.checks"``) or a package (its modules are
    scanned like the built-in catalogue's)."""
    pkg = importlib.import_module(package)
    found: dict[str, tuple[Check, str]] = {}
    for info in pkgutil.iter_modules(pkg.__path__, package + "."):
        _scan(importlib.import_module(info.name), info.name, found)
    if group:
        for ep in sorted(metadata.entry_points(group=group), key=lambda e: (e.name, e.value)):
            dist = getattr(ep, "dist", None)
            where = f"entry point {ep.name} = {ep.value}" + (
                f" of {dist.name} {dist.version}" if dist is not None else ""
            )
            try:
                module = ep.load()
                if not isinstance(module, ModuleType):
                    raise TypeError(f"it names a {type(module).__name__}, not a module")
                modules = [module]
                if hasattr(module, "__path__"):  # a package: its modules too
                    modules += [
                        importlib.import_module(info.name)
                        for info in pkgutil.iter_modules(module.__path__, module.__name__ + ".")
                    ]
            except Exception as exc:  # a broken site package must name itself, not crash pytest
                raise CheckDiscoveryError(
                    f"{group}: cannot load {where}: {type(exc).__name__}: {exc}"
                ) from exc
            for m in modules:
                _scan(m, f"{m.__name__} ({where})", found)
    return tuple(spec for _, (spec, _) in sorted(found.items()))


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
        # A segment's finding is about several clusters: ``kvmha/segment/ID[<segment>]``. Neither
        # cluster nor host otherwise: a finding about the whole run (discovery).
        if self.check.scope is Scope.SEGMENT:
            return f"kvmha/segment/{self.check.id}[{self.subject}]"
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


# What identifies a finding across audits (a baseline, a what-if): check, host, cluster, subject.
Key = tuple[str, str | None, str | None, str]


def key_of(f: Finding) -> Key:
    return (f.check.id, f.host, f.cluster, f.subject)


def key_json(k: Key) -> dict[str, str | None]:
    return {"check": k[0], "host": k[1], "cluster": k[2], "subject": k[3]}
