"""A run given test paths runs those tests; a run without paths audits (pytester, recorded
bundles), and the README's worked provisioning example dry-runs cleanly."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ..bundlekit import BUNDLES

PASSING_TEST = "def test_fine():\n    assert True\n"
EXAMPLE = Path(__file__).parents[2] / "examples" / "provisioning" / "test_edge_fw.py"


@pytest.fixture
def broken(pytester: pytest.Pytester) -> Path:
    """slot-mismatch: KVMHA-VIRT-002[If2] fails (high), so an audit exits 1."""
    shutil.copytree(BUNDLES / "slot-mismatch", pytester.path / "inv")
    return pytester.path / "inv" / "clusters.toml"


def test_explicit_test_path_runs_the_tests_only(pytester: pytest.Pytester, broken: Path) -> None:
    pytester.makepyfile(test_x=PASSING_TEST)
    result = pytester.runpytest(f"--kvmha-inventory={broken}", "test_x.py")
    result.assert_outcomes(passed=1)
    assert result.ret == 0
    assert "KVMHA-" not in result.stdout.str()
    result.stdout.fnmatch_lines(["kvmha: test paths given: no audit at collection*"])


def test_no_test_path_audits(pytester: pytest.Pytester, broken: Path) -> None:
    result = pytester.runpytest(f"--kvmha-inventory={broken}")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*FAILED kvmha/edge-fw/KVMHA-VIRT-002[[]If2[]]*"])
    assert "kvmha: test paths given" not in result.stdout.str()


def test_kvmha_audit_asks_for_both(pytester: pytest.Pytester, broken: Path) -> None:
    pytester.makepyfile(test_x=PASSING_TEST)
    result = pytester.runpytest(f"--kvmha-inventory={broken}", "test_x.py", "--kvmha-audit", "-rA")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["PASSED test_x.py::test_fine"])
    result.stdout.fnmatch_lines(["FAILED kvmha/edge-fw/KVMHA-VIRT-002[[]If2[]]*"])


def test_ini_inventory_with_testpaths_runs_the_tests_only(
    pytester: pytest.Pytester, broken: Path
) -> None:
    """kvmha_inventory in the ini file (for the fixtures) and the project's testpaths: a plain
    `pytest` runs the project's tests and audits nothing at collection."""
    pytester.makeini(f"[pytest]\ntestpaths = tests\nkvmha_inventory = {broken}\n")
    (pytester.path / "tests").mkdir()
    (pytester.path / "tests" / "test_x.py").write_text(PASSING_TEST)
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    assert result.ret == 0
    # ... and asks for the audit when told to.
    result = pytester.runpytest("--kvmha-audit")
    assert result.ret == 1
    # OVS-003 and OVS-005 pass for If1 and If2; OVS-004 skips (no bonds on kvm-a); the six
    # firewall-config findings are no items (no configs declared)
    result.assert_outcomes(passed=26, failed=1, skipped=6)
    result.stdout.fnmatch_lines(["kvmha/edge-fw/KVMHA-OVS-004[[]kvm-a[]] s *"])
    result.stdout.fnmatch_lines(["*FAILED kvmha/edge-fw/KVMHA-VIRT-002[[]If2[]]*"])


def test_ini_inventory_without_paths_audits(pytester: pytest.Pytester, broken: Path) -> None:
    pytester.makeini(f"[pytest]\nkvmha_inventory = {broken}\n")
    result = pytester.runpytest()
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*FAILED kvmha/edge-fw/KVMHA-VIRT-002[[]If2[]]*"])


def test_audit_and_no_audit_items_contradict(pytester: pytest.Pytester, broken: Path) -> None:
    result = pytester.runpytest(
        f"--kvmha-inventory={broken}", "--kvmha-audit", "--kvmha-no-audit-items"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--kvmha-audit and --kvmha-no-audit-items contradict*"])


@pytest.mark.parametrize("name", ["promisc-off", "two-bare"])
def test_worked_example_dry_run_prints_its_plan_once(pytester: pytest.Pytester, name: str) -> None:
    """The README's command for the worked example, without --kvmha-allow-provision, against
    recorded broken clusters: the plan is shown once (no -s), the dry run passes, nothing is
    audited."""
    shutil.copytree(BUNDLES / name, pytester.path / "inv")
    shutil.copy(EXAMPLE, pytester.path / "test_edge_fw.py")
    result = pytester.runpytest(
        "test_edge_fw.py", f"--kvmha-inventory={pytester.path / 'inv' / 'clusters.toml'}"
    )
    out = result.stdout.str()
    assert result.ret == 0, out
    result.assert_outcomes(passed=1)
    assert out.count("plan for edge-fw:") == 1, out
    result.stdout.fnmatch_lines(
        [
            "*= kvmha plans =*",
            "test_edge_fw.py::test_edge_fw_provisioned_conforms: edge-fw (dry run)",
            "  dry run, nothing changed: --kvmha-allow-provision and "
            "@pytest.mark.kvmha_destructive to apply",
            "  plan for edge-fw: *",
        ]
    )
    # the plan names the findings each step fixes; nothing else mentions a check
    unaudited = "\n".join(x for x in out.splitlines() if not x.lstrip().startswith("# fixes "))
    assert "KVMHA-" not in unaudited.replace("KVMHA-PKG-001", "")
