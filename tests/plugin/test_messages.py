"""Messages that say what to do (issue 19): typos collapse to their cause, unreachable items
say why, and a selection or option that would silently do nothing is a usage error."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from ..bundlekit import BUNDLES
from .test_plugin import recorded  # noqa: F401 - the fixture

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


def _errors_section(text: str) -> list[str]:
    """The lines of pytest's ERRORS section, up to the next section's ``====`` line."""
    lines = text.split("= ERRORS =", 1)[1].splitlines()[1:]
    end = next(k for k, line in enumerate(lines) if line.startswith("="))
    return lines[:end]


def test_domain_typo_errors_are_one_line_each(pytester: pytest.Pytester, recorded: Path) -> None:  # noqa: F811
    recorded.write_text(recorded.read_text().replace('domain = "fw-b"', 'domain = "fw-bb"'))
    result = pytester.runpytest(f"--kvmha-inventory={recorded}")
    assert result.ret == 1
    text = result.stdout.str()
    lines = _errors_section(text)
    headers = [line for line in lines if "ERROR at setup of" in line]
    assert len(headers) >= 10
    # each error: its header and one line naming the cause
    assert len(lines) == 2 * len(headers)
    body = [line for line in lines if "ERROR at setup of" not in line]
    assert all(
        re.fullmatch(
            r"KVMHA-[A-Z]+-\d{3} not evaluated: depends on domain fw-bb on kvm-b, which is "
            r"missing \(see KVMHA-TOPO-001\)"
            # a segment of another cluster: which cluster it cannot rule out, same cause
            r"(: cannot rule out another cluster on it: cluster edge-fw)?",
            line,
        )
        for line in body
    ), body
    # the cause itself: what kvm-b has and the inventory's correction, not "define fw-bb"
    result.stdout.fnmatch_lines(
        [
            "*detail:      domain not defined: fw-bb on kvm-b (kvm-b has domains fw-b: did you "
            "mean fw-b?)",
            "*remediation: # did you mean fw-b? correct the inventory: cluster edge-fw, member on "
            'kvm-b: domain = "fw-b"',
        ]
    )


def test_unreachable_host_items_say_why(pytester: pytest.Pytester) -> None:
    shutil.copytree(BUNDLES / "unreachable", pytester.path / "u")
    result = pytester.runpytest("--kvmha-inventory=u/clusters.toml")
    lines = _errors_section(result.stdout.str())
    body = [line for line in lines if "ERROR at setup of" not in line]
    assert body and all(
        re.fullmatch(
            r"host kvm-b unreachable: ssh: connect to host \S+ port 22: Connection refused.*",
            line,
        )
        for line in body
    ), body
    assert "reason in the kvmha audit summary" not in result.stdout.str()


def test_marker_typo_of_a_severity_is_a_usage_error(
    pytester: pytest.Pytester,
    recorded: Path,  # noqa: F811
) -> None:
    result = pytester.runpytest(f"--kvmha-inventory={recorded}", "-m", "crit or high")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*-m 'crit or high': no marker 'crit'; the severity markers are critical, high, "
            "medium, low, info*"
        ]
    )
    # the severities themselves and other markers still select
    ok = pytester.runpytest(f"--kvmha-inventory={recorded}", "-m", "critical or kvmha_destructive")
    assert ok.ret == 0  # every critical finding of the example passes
    assert ok.parseoutcomes()["passed"] > 0 and ok.parseoutcomes()["deselected"] > 0


def test_format_without_list_checks_is_a_usage_error(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--kvmha-format=json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--kvmha-format is the format of --kvmha-list-checks*"])
    listed = pytester.runpytest("--kvmha-list-checks", "--kvmha-format=json")
    assert listed.ret == 0 and json.loads(listed.stdout.str())["checks"]


def test_check_without_subject_selects_every_subject(
    pytester: pytest.Pytester,
    recorded: Path,  # noqa: F811
) -> None:
    result = pytester.runpytest(
        f"--kvmha-inventory={recorded}", "kvmha/edge-fw/KVMHA-VIRT-001", "-v"
    )
    result.assert_outcomes(passed=4)
    for subject in ("fw-a:If1", "fw-a:If2", "fw-b:If1", "fw-b:If2"):
        result.stdout.fnmatch_lines([f"kvmha/edge-fw/KVMHA-VIRT-001[[]{subject}[]] PASSED*"])
    # a check id's prefix is no check: still "no kvmha item"
    bad = pytester.runpytest(f"--kvmha-inventory={recorded}", "kvmha/edge-fw/KVMHA-VIRT-00")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["*no kvmha item with node id kvmha/edge-fw/KVMHA-VIRT-00*"])


def test_bad_ini_value_names_the_ini_key(pytester: pytest.Pytester, recorded: Path) -> None:  # noqa: F811
    pytester.makeini("[pytest]\nkvmha_fail_on = severe\nkvmha_waivers = nope.toml\n")
    result = pytester.runpytest(f"--kvmha-inventory={recorded}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*kvmha_fail_on (ini *tox.ini): unknown severity 'severe'*"])
    assert "--kvmha-fail-on" not in result.stderr.str()
    # given on the command line, the option is named
    cli = pytester.runpytest(f"--kvmha-inventory={recorded}", "--kvmha-fail-on=severe")
    cli.stderr.fnmatch_lines(["*--kvmha-fail-on: unknown severity 'severe'*"])


def test_non_json_baseline_names_the_file(pytester: pytest.Pytester, recorded: Path) -> None:  # noqa: F811
    (pytester.path / "before.json").write_text("<html>not a report</html>\n")
    result = pytester.runpytest(f"--kvmha-inventory={recorded}", "--kvmha-baseline=before.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*--kvmha-baseline: before.json: not a JSON report (a --kvmha-report file): Expecting*"]
    )
