"""Baselines prove they are comparable: the report records each host's spec and machine
identity; under --kvmha-fail-on-new a finding of a host the baseline did not audit is new; a
baseline that is JSON but not a report object is a usage error naming the file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

EXAMPLES = Path(__file__).parents[2] / "examples"
INV = "--kvmha-inventory=clusters.toml"


@pytest.fixture
def recorded(pytester: pytest.Pytester) -> pytest.Pytester:
    shutil.copytree(EXAMPLES / "bundles", pytester.path / "bundles")
    shutil.copy(EXAMPLES / "clusters.toml", pytester.path / "clusters.toml")
    pytester.runpytest(INV, "--kvmha-report=before.json")
    return pytester


def _before(p: pytest.Pytester) -> dict:
    return json.loads((p.path / "before.json").read_text())


def test_report_records_each_hosts_identity(recorded: pytest.Pytester) -> None:
    hosts = {h["name"]: h for h in _before(recorded)["hosts"]}
    assert hosts["kvm-a"]["identity"] and hosts["kvm-b"]["identity"]
    assert hosts["kvm-a"]["identity"] != hosts["kvm-b"]["identity"]
    assert hosts["kvm-a"]["spec"].startswith("replay://")


def test_same_hosts_make_failures_known(recorded: pytest.Pytester) -> None:
    same = recorded.runpytest(INV, "--kvmha-baseline=before.json", "--kvmha-fail-on-new")
    assert same.ret == 0


def test_baseline_of_another_machine_makes_its_failures_new(recorded: pytest.Pytester) -> None:
    doc = _before(recorded)
    for h in doc["hosts"]:
        if h["name"] == "kvm-b":
            h["identity"] = "0123456789abcdef0123456789abcdef"  # another machine called kvm-b
    (recorded.path / "other.json").write_text(json.dumps(doc))
    result = recorded.runpytest(
        INV, "--kvmha-baseline=other.json", "--kvmha-fail-on-new", "--kvmha-report=r.json"
    )
    assert result.ret == 1
    result.stdout.fnmatch_lines(["FAILED kvmha/kvm-b/KVMHA-PKG-001[[]kvm-b[]]*"])
    r = json.loads((recorded.path / "r.json").read_text())
    assert {"check": "KVMHA-PKG-001", "host": "kvm-b", "cluster": None, "subject": "kvm-b"} in r[
        "baseline"
    ]["new"]
    # kvm-a's failures (dmz-fw lives on kvm-a only) are still known
    assert "KVMHA-VIRT-002" not in "".join(result.stdout.lines).split("short test summary")[-1]


def test_baseline_without_a_host_makes_its_failures_new(recorded: pytest.Pytester) -> None:
    doc = _before(recorded)
    doc["hosts"] = [h for h in doc["hosts"] if h["name"] != "kvm-b"]
    (recorded.path / "other.json").write_text(json.dumps(doc))
    result = recorded.runpytest(INV, "--kvmha-baseline=other.json", "--kvmha-fail-on-new")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["FAILED kvmha/kvm-b/KVMHA-PKG-001[[]kvm-b[]]*"])


@pytest.mark.parametrize("text", ["[]", '"report"', "3", "null"])
def test_json_that_is_not_a_report_is_a_usage_error(recorded: pytest.Pytester, text: str) -> None:
    (recorded.path / "b.json").write_text(text)
    result = recorded.runpytest(INV, "--kvmha-baseline=b.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--kvmha-baseline: b.json: not a kvmha-report/1 JSON report*"])
