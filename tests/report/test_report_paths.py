"""Report paths are checked before any host is contacted, and a failure while writing at the
end still prints the summary and fails the run, leaving no temporary file behind."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

EXAMPLES = Path(__file__).parents[2] / "examples"


@pytest.fixture
def recorded(pytester: pytest.Pytester) -> pytest.Pytester:
    shutil.copytree(EXAMPLES / "bundles", pytester.path / "bundles")
    shutil.copy(EXAMPLES / "clusters.toml", pytester.path / "clusters.toml")
    return pytester


def _strays(root: Path) -> list[Path]:
    return [p for p in root.rglob(".kvmha-*")]


@pytest.mark.parametrize(
    ("flag", "target", "message"),
    [
        ("--kvmha-report", "out", "out: is a directory (give a file name)"),
        ("--kvmha-report-md", "/proc/r.md", "/proc/r.md: cannot be written*"),
        ("--kvmha-report-html", "/proc/x/r.html", "/proc/x/r.html: cannot be written*"),
    ],
)
def test_unwritable_report_path_is_a_usage_error_up_front(
    recorded: pytest.Pytester, flag: str, target: str, message: str
) -> None:
    (recorded.path / "out").mkdir()
    result = recorded.runpytest(
        "--kvmha-inventory=clusters.toml", f"{flag}={target}", "--kvmha-record=rec"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {flag}: {message}"])
    assert not (recorded.path / "rec").exists()  # no host was read
    assert not _strays(recorded.path)


def test_failure_while_writing_still_prints_the_summary(
    recorded: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The folder becomes unwritable during the run: the summary is printed, the run fails."""
    recorded.makeconftest(
        """
import os, pytest

@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session):
    os.makedirs("late.json")  # the report path is now a directory
"""
    )
    result = recorded.runpytest("--kvmha-inventory=clusters.toml", "--kvmha-report=late.json")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        ["kvmha verdict: gate failed (exit status 1):*report not written:*late.json*"]
    )
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    assert not _strays(recorded.path)
