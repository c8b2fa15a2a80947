"""Waivers: accepted failures, each with a reason, an approver, a ticket and an expiry date.

Pure: a TOML document in, validated ``Waiver`` values out; findings and a ``today`` date in, which
waiver waives which finding out. Only *failed* findings are waived: an ``error`` means a check
could not be evaluated, and a waiver must never hide that.

File format (``--kvmha-waivers=FILE.toml``)::

    [[waiver]]
    check = "KVMHA-PKG-001"        # check id, fnmatch glob allowed ("KVMHA-VIRT-*")
    host = "kvm-b"                 # scope: host, cluster, subject (globs); at least one of them
    reason = "bridge-utils needed by the legacy backup VLAN until the migration"
    approver = "Jane Doe"
    ticket = "OPS-1234"
    expires = 2027-03-31           # a TOML date; the waiver holds through this day
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from pytest_kvmha.config.names import has_control
from pytest_kvmha.config.toml import TomlLines, at, load_toml
from pytest_kvmha.model import FAIL, Finding

ACTIVE, EXPIRED, STALE = "active", "expired", "stale"
SCOPE = ("host", "cluster", "subject")
TEXT = ("reason", "approver", "ticket")
KEYS = ("check", *SCOPE, *TEXT, "expires")


class WaiverError(Exception):
    """A usage error in a waivers file; the message names the file, the entry and the field."""


@dataclass(frozen=True, slots=True)
class Waiver:
    index: int  # position in the file, 0-based: waiver[index]
    check: str
    host: str | None
    cluster: str | None
    subject: str | None
    reason: str
    approver: str
    ticket: str
    expires: dt.date

    def matches(self, f: Finding) -> bool:
        """Check id and every given scope field match (fnmatch, case-sensitive); an omitted
        field matches anything. A finding without a host (or cluster) matches only ``*``."""
        if not fnmatchcase(f.check.id, self.check):
            return False
        for name, pattern in (("host", self.host), ("cluster", self.cluster)):
            if pattern is not None and not fnmatchcase(getattr(f, name) or "", pattern):
                return False
        return self.subject is None or fnmatchcase(f.subject, self.subject)

    def expired(self, today: dt.date) -> bool:
        return today > self.expires

    def describe(self) -> str:
        return f"waived by {self.ticket} until {self.expires} ({self.approver}): {self.reason}"

    def as_json(self) -> dict[str, object]:
        return {
            "index": self.index,
            "check": self.check,
            "host": self.host,
            "cluster": self.cluster,
            "subject": self.subject,
            "reason": self.reason,
            "approver": self.approver,
            "ticket": self.ticket,
            "expires": self.expires.isoformat(),
        }


def load_waivers(path: str | Path, check_ids: Iterable[str] | None = None) -> tuple[Waiver, ...]:
    path = Path(path)
    doc = load_toml(path, "waivers", WaiverError)
    return parse_waivers(doc, str(path), check_ids, lines=TomlLines.read(path))


def matches_anything(glob: str) -> bool:
    """Whether a glob matches every non-empty name (``*``, ``**``, ``?*``): as a scope it
    narrows nothing. Host, cluster and subject names are never empty."""
    return "*" in glob and set(glob) <= {"*", "?"} and glob.count("?") <= 1


def parse_waivers(
    doc: dict[str, Any],
    source: str,
    check_ids: Iterable[str] | None = None,
    *,
    lines: TomlLines | None = None,
) -> tuple[Waiver, ...]:
    """``check_ids``: the catalogue's; a waiver whose check glob matches none of them (a typo
    such as KVMHA-PKG-01) is an error, not a waiver that is merely stale. An error names the
    waiver by its 1-based position and, given the file's ``lines``, its line."""
    lines = lines if lines is not None else TomlLines("")
    unknown = [k for k in doc if k != "waiver"]
    if unknown:
        raise WaiverError(f"{source}: unknown top-level key '{unknown[0]}' (expected [[waiver]])")
    entries = doc.get("waiver", [])
    if not isinstance(entries, list):
        raise WaiverError(f"{source}: 'waiver' must be an array of tables ([[waiver]])")
    waivers = tuple(
        _waiver(entry, i, f"{source}: waiver {i + 1}{at(lines.entry((), 'waiver', i))}")
        for i, entry in enumerate(entries)
    )
    if check_ids is not None:
        ids = sorted(set(check_ids))
        for w in waivers:
            if not any(fnmatchcase(i, w.check) for i in ids):
                raise WaiverError(
                    f"{source}: waiver {w.index + 1}{at(lines.entry((), 'waiver', w.index))}: "
                    "key 'check': "
                    f"no check of the catalogue matches {w.check!r} (see --kvmha-list-checks)"
                )
    return waivers


def _waiver(entry: object, index: int, where: str) -> Waiver:
    if not isinstance(entry, dict):
        raise WaiverError(f"{where}: must be a table")
    for key in entry:
        if key not in KEYS:
            raise WaiverError(f"{where}: unknown key '{key}' (expected {', '.join(KEYS)})")
    text: dict[str, str | None] = {}
    for key in ("check", *SCOPE, *TEXT):
        value = entry.get(key)
        if value is None:
            if key not in SCOPE:
                raise WaiverError(f"{where}: missing key '{key}'")
        elif not isinstance(value, str) or not value.strip():
            raise WaiverError(f"{where}: key '{key}' must be a non-empty string")
        elif has_control(value):  # printed to terminals and reports: never raw
            raise WaiverError(f"{where}: key '{key}' contains control characters: {value!r}")
        text[key] = value
    if all(text[k] is None for k in SCOPE):
        # A waiver for a check everywhere would silently switch the check off.
        raise WaiverError(f"{where}: give a scope: at least one of 'host', 'cluster', 'subject'")
    if all(text[k] is None or matches_anything(str(text[k])) for k in SCOPE):
        # host = "*" (or cluster, subject) matches every finding of the check: the same
        # switch-off, spelled as a scope. A waiver narrows, it never switches a check off.
        given = ", ".join(f"{k} = {text[k]!r}" for k in SCOPE if text[k] is not None)
        raise WaiverError(
            f"{where}: {given} matches every finding of check "
            f"{text['check']!r}: give a scope that narrows (a host, cluster or subject)"
        )
    expires = entry.get("expires")
    if expires is None:
        raise WaiverError(f"{where}: missing key 'expires'")
    if isinstance(expires, dt.datetime) or not isinstance(expires, dt.date):
        raise WaiverError(
            f"{where}: key 'expires' must be a TOML date (expires = 2027-03-31), got {expires!r}"
        )
    return Waiver(
        index,
        str(text["check"]),
        text["host"],
        text["cluster"],
        text["subject"],
        str(text["reason"]),
        str(text["approver"]),
        str(text["ticket"]),
        expires,
    )


@dataclass(frozen=True, slots=True)
class Match:
    """What the waivers say about one failed finding."""

    waiver: Waiver | None  # the first active waiver that matches: the finding is waived
    expired: Waiver | None  # else the first expired one that matches: named in the failure


def match(waivers: Sequence[Waiver], f: Finding, today: dt.date) -> Match:
    if f.status != FAIL:
        return Match(None, None)
    hits = [w for w in waivers if w.matches(f)]
    active = next((w for w in hits if not w.expired(today)), None)
    expired = next((w for w in hits if w.expired(today)), None)
    return Match(active, None if active else expired)


def statuses(
    waivers: Sequence[Waiver], findings: Iterable[Finding], today: dt.date
) -> list[tuple[Waiver, str, int]]:
    """Each waiver with its status and how many failed findings it matches: ``expired`` past its
    date, ``stale`` when it matches no failed finding (fixed, or a typo), else ``active``."""
    failed = [f for f in findings if f.status == FAIL]
    out = []
    for w in waivers:
        n = sum(1 for f in failed if w.matches(f))
        status = EXPIRED if w.expired(today) else STALE if n == 0 else ACTIVE
        out.append((w, status, n))
    return out
