"""Site checks cannot break the gate: whatever a check returns or raises, the engine makes it
a verdict the gate can judge, and anything that is not one is an ``error`` naming the check,
its module and its package."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from pytest_kvmha.audit.engine import run_checks
from pytest_kvmha.model import ERROR, Check, Scope, Severity, Verdict

from ..bundlekit import BUNDLES
from ..bundlekit import run as audit_dir

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

EXAMPLES = Path(__file__).parents[2] / "examples"


def _skip_inside(*args: Any) -> Verdict:
    pytest.skip("not here")


def _fail_inside(*args: Any) -> Verdict:
    pytest.fail("boom")


RETURNS: list[tuple[str, Any, str]] = [
    ("failed", lambda *a: Verdict("failed", "x"), "returned status 'failed'"),
    ("FAIL", lambda *a: Verdict("FAIL", "x"), "returned status 'FAIL'"),
    ("none", lambda *a: None, "returned NoneType, not a Verdict"),
    ("tuple", lambda *a: ("pass", "x"), "returned tuple, not a Verdict"),
    ("detail", lambda *a: Verdict("pass", 3), "returned a detail of type int"),  # type: ignore[arg-type]
    ("found", lambda *a: Verdict("fail", "x", found=7), "returned found of type int"),  # type: ignore[arg-type]
    ("skip()", _skip_inside, "crashed: Skipped: not here"),
    ("fail()", _fail_inside, "crashed: Failed: boom"),
]


@pytest.mark.parametrize(("name", "func", "message"), RETURNS, ids=[r[0] for r in RETURNS])
def test_a_bad_verdict_is_an_error_naming_the_check(name: str, func: Any, message: str) -> None:
    check = Check("SITE-X-001", "t", Severity.LOW, Scope.HOST, "r", "fix", "src", func)
    facts = audit_dir(BUNDLES / "two-ok").hosts
    (f, *_) = run_checks([check], facts, ())
    assert f.status == ERROR
    assert f.detail.startswith(f"check SITE-X-001 (module {__name__}) ")
    assert message in f.detail


SITE = """
import pytest
from pytest_kvmha.model import Scope, Verdict, check


@check("ACME-BAD-001", title="t", severity="critical", scope=Scope.HOST, rationale="r",
       remediation="fix", source="s")
def bad_status(host):
    return Verdict("failed", "looks bad")


@check("ACME-BAD-002", title="t", severity="critical", scope=Scope.HOST, rationale="r",
       remediation="fix", source="s")
def returns_none(host):
    return None


@check("ACME-BAD-003", title="t", severity="critical", scope=Scope.HOST, rationale="r",
       remediation="fix", source="s")
def skips(host):
    pytest.skip("inside a check")
"""


def test_entry_point_checks_with_bad_verdicts_fail_the_run(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = pytester.path / "site"
    root.mkdir()
    (root / "acme_bad.py").write_text(SITE)
    info = root / "acme_bad-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-bad\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[pytest_kvmha.checks]\nacme = acme_bad\n")
    (info / "top_level.txt").write_text("acme_bad\n")
    (info / "RECORD").write_text("acme_bad.py,,\n")
    monkeypatch.syspath_prepend(str(root))
    shutil.copytree(EXAMPLES / "bundles", pytester.path / "bundles")
    shutil.copy(EXAMPLES / "clusters.toml", pytester.path / "clusters.toml")
    result = pytester.runpytest(
        "--kvmha-inventory=clusters.toml", "-k", "ACME", "-rA", "--kvmha-report=r.json"
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(errors=6)
    out = result.stdout.str()
    assert "INTERNALERROR" not in out
    result.stdout.fnmatch_lines(
        [
            "  detail:      check ACME-BAD-001 (module acme_bad, package acme-bad) returned "
            "status 'failed' (expected one of pass, fail, error, skip)",
        ]
    )
    assert "ACME-BAD-002 (module acme_bad, package acme-bad) returned NoneType" in out
    assert "ACME-BAD-003 (module acme_bad, package acme-bad) crashed: Skipped" in out
    assert (pytester.path / "r.json").is_file()
