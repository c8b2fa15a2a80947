"""An audit asked for on the command line is never left out: an inventory given there audits
even when the ini sets testpaths, a report asked for is written, and --kvmha-host beside an
inventory is refused instead of silently ignored."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

EXAMPLES = Path(__file__).parents[2] / "examples"


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    shutil.copytree(EXAMPLES / "bundles", pytester.path / "bundles")
    shutil.copy(EXAMPLES / "clusters.toml", pytester.path / "clusters.toml")
    pytester.makeini("[pytest]\ntestpaths = tests\n")
    (pytester.path / "tests").mkdir()
    (pytester.path / "tests" / "test_own.py").write_text("def test_own():\n    pass\n")
    return pytester


def test_command_line_inventory_audits_despite_ini_testpaths(project: pytest.Pytester) -> None:
    result = project.runpytest("--kvmha-inventory=clusters.toml", "--kvmha-report=r.json")
    assert result.ret == 1  # the demo's failures gate
    result.stdout.fnmatch_lines(["FAILED kvmha/kvm-b/KVMHA-PKG-001[[]kvm-b[]]*"])
    r = json.loads((project.path / "r.json").read_text())
    assert r["verdict"]["exit_status"] == 1 and r["findings"]
    # the project's own tests still run beside the audit
    assert "test_own.py ." in result.stdout.str()


def test_report_asked_for_beside_test_paths_is_written(project: pytest.Pytester) -> None:
    result = project.runpytest("tests", "--kvmha-inventory=clusters.toml", "--kvmha-report=r.json")
    assert result.ret == 1
    assert json.loads((project.path / "r.json").read_text())["findings"]


def test_test_paths_typed_without_a_report_stay_a_test_run(project: pytest.Pytester) -> None:
    result = project.runpytest("tests", "--kvmha-inventory=clusters.toml")
    assert result.ret == 0
    result.assert_outcomes(passed=1)


def test_host_beside_inventory_is_a_usage_error(project: pytest.Pytester) -> None:
    result = project.runpytest(
        "--kvmha-inventory=clusters.toml", "--kvmha-host=replay://bundles/kvm-a"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--kvmha-host and --kvmha-inventory given together*"])
