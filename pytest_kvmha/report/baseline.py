"""Compare audits: an earlier JSON report (``--kvmha-baseline``) or a planned change against
this one. Pure: finding keys and statuses in, fixed/introduced/unchanged out."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pytest_kvmha.model import ERROR, FAIL, Finding, Key, key_json, key_of

BAD = (FAIL, ERROR)


@dataclass
class Comparison:
    fixed: list[Key]
    introduced: list[Key]
    unchanged: list[Key]


def compare(before: Iterable[Finding], after: Iterable[Finding]) -> Comparison:
    return compare_status(
        {key_of(f): f.status for f in before}, {key_of(f): f.status for f in after}
    )


def compare_status(before: Mapping[Key, str], after: Mapping[Key, str]) -> Comparison:
    """Fixed: bad before, not after. Introduced: bad after and not bad before (new subjects
    included). Unchanged: bad in both."""
    fixed = sorted(k for k, s in before.items() if s in BAD and after.get(k) not in BAD)
    introduced = sorted(k for k, s in after.items() if s in BAD and before.get(k) not in BAD)
    unchanged = sorted(k for k, s in after.items() if s in BAD and before.get(k) in BAD)
    return Comparison(fixed, introduced, unchanged)


def load_baseline(report: Mapping[str, Any], source: str) -> dict[Key, str]:
    """Findings of an earlier JSON report (schema kvmha-report/1)."""
    if not isinstance(report, Mapping):
        raise ValueError(f"{source}: not a kvmha-report/1 JSON report (a JSON {_kind(report)})")
    if report.get("schema") != "kvmha-report/1" or not isinstance(report.get("findings"), list):
        raise ValueError(f"{source}: not a kvmha-report/1 JSON report")
    out: dict[Key, str] = {}
    for i, f in enumerate(report["findings"]):
        try:
            out[(f["check"], f["host"], f["cluster"], f["subject"])] = f["status"]
        except (KeyError, TypeError):
            raise ValueError(
                f"{source}: findings[{i}] lacks check/host/cluster/subject/status"
            ) from None
    return out


def _kind(value: object) -> str:
    return {list: "array", str: "string", int: "number", float: "number", bool: "boolean"}.get(
        type(value), "null" if value is None else type(value).__name__
    )


# What identifies an audited host across reports: its spec (as reported, redacted) and its
# machine identity (/etc/machine-id, from the bundle).
HostId = tuple[str | None, str | None]


def load_baseline_hosts(report: Mapping[str, Any], source: str) -> dict[str, HostId]:
    """{host name: (spec, identity)} of the hosts an earlier report audited."""
    hosts = report.get("hosts")
    if not isinstance(hosts, list):
        raise ValueError(f"{source}: 'hosts' must be an array")
    out: dict[str, HostId] = {}
    for i, h in enumerate(hosts):
        if not isinstance(h, Mapping) or not isinstance(h.get("name"), str):
            raise ValueError(f"{source}: hosts[{i}] lacks a name")
        out[h["name"]] = (h.get("spec"), h.get("identity"))
    return out


def same_host(before: HostId | None, now: HostId) -> bool:
    """Whether the baseline audited this host: the same machine identity when both reports
    have one, else the same spec. A host the baseline did not audit is never "known"."""
    if before is None:
        return False
    if before[1] and now[1]:
        return before[1] == now[1]
    return before[0] is not None and before[0] == now[0]


def baseline_json(
    baseline: Mapping[Key, str], findings: Iterable[Finding], path: str | None, fail_on_new: bool
) -> dict[str, Any]:
    """The report's ``baseline``: what is new, resolved and unchanged since ``baseline``."""
    diff = compare_status(baseline, {key_of(f): f.status for f in findings})
    return {
        "path": path,
        "gating": "new only" if fail_on_new else "all",
        "new": [key_json(k) for k in diff.introduced],
        "resolved": [key_json(k) for k in diff.fixed],
        "unchanged": [key_json(k) for k in diff.unchanged],
    }
