"""Waivers narrow, never switch checks off: a scope that matches every finding, an unknown
check id and control characters are usage errors naming the file and the entry."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

import pytest

from pytest_kvmha.config.waivers import WaiverError, parse_waivers
from pytest_kvmha.model import discover_checks

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

EXAMPLES = Path(__file__).parents[2] / "examples"
IDS = [c.id for c in discover_checks()]


def entry(**fields: Any) -> dict[str, Any]:
    base = {
        "check": "KVMHA-PKG-001",
        "reason": "r",
        "approver": "a",
        "ticket": "T-1",
        "expires": dt.date(2999, 1, 1),
    }
    return {**base, **fields}


def parse(*entries: dict[str, Any]) -> Any:
    return parse_waivers({"waiver": list(entries)}, "w.toml", IDS)


@pytest.mark.parametrize(
    "scope",
    [
        {"subject": "*"},
        {"host": "*"},
        {"cluster": "*"},
        {"host": "**", "subject": "?*"},
        {"host": "*", "cluster": "*", "subject": "*"},
    ],
)
@pytest.mark.parametrize("check", ["*", "KVMHA-PKG-001", "KVMHA-*"])
def test_a_scope_that_matches_everything_is_refused(check: str, scope: dict[str, str]) -> None:
    with pytest.raises(WaiverError, match=r"w.toml: waiver 2: .*matches every"):
        parse(entry(host="kvm-b"), entry(check=check, **scope))


def test_a_scope_that_narrows_is_kept() -> None:
    (w1, w2, w3) = parse(
        entry(check="*", host="kvm-b"),
        entry(host="*", subject="kvm-?"),
        entry(check="KVMHA-VIRT-*", cluster="dmz-*"),
    )
    assert (w1.host, w2.subject, w3.cluster) == ("kvm-b", "kvm-?", "dmz-*")


def test_an_unknown_check_id_is_a_usage_error_not_stale() -> None:
    with pytest.raises(WaiverError, match=r"waiver 1: key 'check'.*'KVMHA-PKG-01'"):
        parse(entry(check="KVMHA-PKG-01", host="kvm-b"))
    with pytest.raises(WaiverError, match="no check of the catalogue matches 'SITE-\\*'"):
        parse(entry(check="SITE-*", host="kvm-b"))


@pytest.mark.parametrize(
    "key", ["check", "host", "cluster", "subject", "reason", "approver", "ticket"]
)
def test_control_characters_in_any_field_are_refused(key: str) -> None:
    fields = {"host": "kvm-b", key: "x\u001b[2Jy"}
    with pytest.raises(WaiverError, match=f"waiver 1: key '{key}' contains control"):
        parse(entry(**fields))


def test_plugin_refuses_a_switch_off_waiver(pytester: pytest.Pytester) -> None:
    shutil.copytree(EXAMPLES / "bundles", pytester.path / "bundles")
    shutil.copy(EXAMPLES / "clusters.toml", pytester.path / "clusters.toml")
    (pytester.path / "w.toml").write_text(
        '[[waiver]]\ncheck = "*"\nsubject = "*"\nreason = "r"\napprover = "a"\n'
        'ticket = "T"\nexpires = 2999-12-31\n'
    )
    result = pytester.runpytest("--kvmha-inventory=clusters.toml", "--kvmha-waivers=w.toml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--kvmha-waivers: w.toml: waiver 1 (line 1): subject = '*'*"])
