"""The plugin as users drive it: options, ini twins, node ids, outcomes, exit codes, report."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pytest_kvmha.model import discover_checks

from ..bundlekit import BUNDLES

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


@pytest.fixture
def recorded(pytester: pytest.Pytester) -> Path:
    """The demo's recorded hosts and inventory, copied into the pytester directory."""
    examples = Path(__file__).parents[2] / "examples"
    shutil.copytree(examples / "bundles", pytester.path / "bundles")
    shutil.copy(examples / "clusters.toml", pytester.path / "clusters.toml")
    return pytester.path / "clusters.toml"


def report(pytester: pytest.Pytester, name: str = "r.json") -> dict:
    return json.loads((pytester.path / name).read_text())


def test_nothing_happens_without_kvmha_options(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x(): pass")
    pytester.runpytest().assert_outcomes(passed=1)


def test_audit_items_and_exit_status(pytester: pytest.Pytester, recorded: Path) -> None:
    result = pytester.runpytest(f"--kvmha-inventory={recorded}", "--kvmha-report=r.json", "-v")
    # dmz-fw: VIRT-002 (high), HB-002 and VIRT-003 (medium) fail; kvm-b has bridge-utils;
    # TOPO-002 (low) fails below the default threshold and passes; OVS-004 skips (no bond); the
    # firewall-config checks are no items (no configs declared).
    result.assert_outcomes(passed=42, failed=4, skipped=16)
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        [
            "*kvmha/dmz-fw/KVMHA-VIRT-002[[]Dmz1[]] FAILED*",
            "*kvmha/edge-fw/KVMHA-VLAN-001[[]If1[]] PASSED*",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*KVMHA-VIRT-002 failed: Both NICs of a pair have the same PCI address",
            "*subject:     Dmz1 (cluster dmz-fw)",
            "*remediation: virsh edit dmz-b  # NIC *<address type='pci' domain='0x0000' bus='0x00' slot='0x03' function='0x0'/>",
            "not gating, below --kvmha-fail-on=medium (their items pass):",
            "  kvmha/dmz-fw/KVMHA-TOPO-002[[]dmz-fw[]] (low): *",
            "kvmha report: r.json",
        ]
    )
    r = report(pytester)
    assert r["schema"] == "kvmha-report/1"
    assert r["summary"] == {"pass": 41, "fail": 5, "error": 0, "skip": 16}
    fw = (
        [f"KVMHA-FGCP-00{i}" for i in range(1, 5)]
        + ["KVMHA-FIRM-001"]
        + [f"KVMHA-FW-00{i}" for i in range(1, 6)]
        + ["KVMHA-HA-001"]
    )
    assert r["not_applicable"] == [
        {
            "cluster": c,
            "needs": "firewall-config",
            "reason": "firewall-config checks: not applicable, no configs declared "
            "(no member declares 'config' or 'console' in the inventory)",
            "checks": fw,
            "nodeids": sorted(
                [f"kvmha/{c}/KVMHA-FW-001[{m}]" for m in members]
                + [f"kvmha/{c}/{x}[{c}]" for x in fw if x != "KVMHA-FW-001"]
            ),
        }
        for c, members in (("edge-fw", ("fw-a", "fw-b")), ("dmz-fw", ("dmz-a", "dmz-b")))
    ]
    assert not [
        f for f in r["findings"] if f["check"].startswith(("KVMHA-FW-", "KVMHA-FIRM-", "KVMHA-HA-"))
    ]
    assert [c["name"] for c in r["clusters"]] == ["edge-fw", "dmz-fw"]
    f = next(f for f in r["findings"] if f["nodeid"] == "kvmha/dmz-fw/KVMHA-VIRT-003[Dmz1]")
    assert (f["status"], f["severity"], f["cluster"], f["subject"]) == (
        "fail",
        "medium",
        "dmz-fw",
        "Dmz1",
    )


@pytest.mark.parametrize(
    ("fail_on", "failed", "passed", "ret"),
    [("critical", 0, 46, 0), ("high", 2, 44, 1), ("medium", 4, 42, 1), ("low", 5, 41, 1)],
)
def test_fail_on_threshold(
    pytester: pytest.Pytester, recorded: Path, fail_on: str, failed: int, passed: int, ret: int
) -> None:
    result = pytester.runpytest(f"--kvmha-inventory={recorded}", f"--kvmha-fail-on={fail_on}")
    result.assert_outcomes(passed=passed, failed=failed, skipped=16)
    assert result.ret == ret


def test_ini_twins(pytester: pytest.Pytester, recorded: Path) -> None:
    pytester.makeini(
        "[pytest]\nkvmha_inventory = clusters.toml\nkvmha_fail_on = critical\nkvmha_report = out/r.json\n"
    )
    result = pytester.runpytest()
    assert result.ret == 0
    assert report(pytester, "out/r.json")["fail_on"] == "critical"


def test_select_and_deselect_by_node_id(pytester: pytest.Pytester, recorded: Path) -> None:
    result = pytester.runpytest(
        f"--kvmha-inventory={recorded}",
        "--kvmha-report=r.json",
        "-k",
        "VIRT and dmz",
        "--deselect",
        "kvmha/dmz-fw/KVMHA-VIRT-003[Dmz1]",
    )
    result.assert_outcomes(passed=2, failed=1)
    assert {f["nodeid"] for f in report(pytester)["findings"]} == {
        "kvmha/dmz-fw/KVMHA-VIRT-001[dmz-a:Dmz1]",
        "kvmha/dmz-fw/KVMHA-VIRT-001[dmz-b:Dmz1]",
        "kvmha/dmz-fw/KVMHA-VIRT-002[Dmz1]",
    }


def test_keywords_for_check_id_and_severity(pytester: pytest.Pytester, recorded: Path) -> None:
    result = pytester.runpytest(f"--kvmha-inventory={recorded}", "-k", "medium")
    # VIRT-003 on both clusters, HB-002 on every member; OVS-004 (medium) skips: no bond (the
    # medium KVMHA-FGCP-002/-004 do not apply: no firewall configuration declared, no items)
    result.assert_outcomes(passed=5, failed=2, skipped=3)


def test_junit_xml_has_stable_names(pytester: pytest.Pytester, recorded: Path) -> None:
    pytester.runpytest(f"--kvmha-inventory={recorded}", "--junitxml=j.xml")
    xml = (pytester.path / "j.xml").read_text()
    # classname = the cluster, name = check[subject] (see tests/report/test_reports.py)
    assert 'classname="dmz-fw" name="KVMHA-VIRT-002[Dmz1]"' in xml
    assert '<property name="severity" value="high"' in xml


def test_unreachable_host_errors_and_report_still_written(pytester: pytest.Pytester) -> None:
    shutil.copytree(BUNDLES / "unreachable", pytester.path / "u")
    result = pytester.runpytest("--kvmha-inventory=u/clusters.toml", "--kvmha-report=r.json")
    assert result.ret == 1
    r = report(pytester)
    hosts = {h["name"]: h for h in r["hosts"]}
    assert hosts["kvm-b"]["status"] == "unreachable"
    assert "kvm-b: ssh: connect to host" in hosts["kvm-b"]["error"]
    assert hosts["kvm-a"]["status"] == "ok"
    # every check that needs kvm-b: 22, OVS-003/004/005, and KVMHA-SRIOV-001 of fw-b's 2 NICs
    assert r["summary"]["error"] == 29
    result.stdout.fnmatch_lines(["ERROR kvmha/kvm-b/KVMHA-PKG-001[[]kvm-b[]]*"])
    result.stdout.fnmatch_lines(
        [
            "*host kvm-b (replay://*): unreachable - kvm-b: ssh: connect to host * Connection refused*"
        ]
    )


def test_hosts_without_inventory_discover_clusters(
    pytester: pytest.Pytester, recorded: Path
) -> None:
    result = pytester.runpytest(
        "--kvmha-host=replay://bundles/kvm-a",
        "--kvmha-host=replay://bundles/kvm-b",
        "--kvmha-report=r.json",
    )
    r = report(pytester)
    # dmz-a and dmz-b have one NIC each: not HA candidates (see tests/audit/test_discovery.py)
    assert [(c["name"], c["discovered"]) for c in r["clusters"]] == [("fw-a+fw-b", True)]
    assert [p["name"] for p in r["clusters"][0]["pairs"]] == ["br1-internal", "br2-external"]
    assert r["discovery"]["skipped"] == {"kvm-a": {"fewer than 2 NICs": 2}}
    assert result.ret == 1  # kvm-b has bridge-utils


def test_record_then_replay(pytester: pytest.Pytester, recorded: Path) -> None:
    """What --kvmha-record writes replays to the same findings, finding by finding: the same
    inventory, its hosts pointed at the new recordings."""
    pytester.runpytest(
        f"--kvmha-inventory={recorded}", "--kvmha-record=again", "--kvmha-report=a.json"
    )
    assert (pytester.path / "again" / "kvm-a" / "bundle.json").is_file()
    replay = pytester.path / "again.toml"
    text = recorded.read_text()
    for h in ("kvm-a", "kvm-b"):
        text = text.replace(f"replay://bundles/{h}", f"replay://again/{h}")
    assert text.count("replay://again/") == 2
    replay.write_text(text)
    pytester.runpytest(f"--kvmha-inventory={replay}", "--kvmha-report=b.json")

    def findings(name: str) -> list[tuple[str, str, str, str, str | None]]:
        return sorted(
            (f["check"], f["subject"], f["status"], f["detail"], f.get("remediation"))
            for f in report(pytester, name)["findings"]
        )

    live, replayed = findings("a.json"), findings("b.json")
    assert len(live) > 20
    assert {s for _, _, s, _, _ in live} >= {"pass", "fail"}
    assert replayed == live


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--kvmha-inventory=nope.toml"], "*--kvmha-inventory: nope.toml: no such file*"),
        (
            ["--kvmha-host=ssh://x", "--kvmha-fail-on=severe"],
            "*--kvmha-fail-on: unknown severity 'severe'*",
        ),
        (
            ["--kvmha-host=x.example"],
            "*--kvmha-host: host spec 'x.example' must be a testinfra URL*",
        ),
        (
            ["--kvmha-host=ssh://x", "--kvmha-ssh-config=missing"],
            "*--kvmha-ssh-config: missing: no such file*",
        ),
    ],
)
def test_usage_errors(pytester: pytest.Pytester, args: list[str], message: str) -> None:
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_bad_inventory_is_usage_error_naming_file_and_key(pytester: pytest.Pytester) -> None:
    pytester.path.joinpath("inv.toml").write_text(
        '[hosts.a]\nspec = "local://"\n[clusters.c]\nvendor = "cos-core"\nmembers = [{ host = "b", domain = "d" }]\n'
    )
    result = pytester.runpytest("--kvmha-inventory=inv.toml", "--kvmha-report=r.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*inv.toml: cluster \"c\", member 1 (line 5): key 'host' names unknown host 'b'*"]
    )
    assert report(pytester)["errors"]


def test_list_checks(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--kvmha-list-checks")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["KVMHA-HB-001     critical  *", "KVMHA-VLAN-002   high      *"])
    listed = [line.split()[0] for line in result.outlines if line.startswith("KVMHA-")]
    assert listed == sorted(c.id for c in discover_checks()) and "KVMHA-HA-001" in listed


def test_markdown_report(pytester: pytest.Pytester, recorded: Path) -> None:
    result = pytester.runpytest(f"--kvmha-inventory={recorded}", "--kvmha-report-md=audit.md")
    md = (pytester.path / "audit.md").read_text()
    assert md.startswith("# kvmha audit\n\n**5 fail, 0 error, 41 pass, 16 skip** (fail-on medium)")
    assert (
        "## Not applicable\n\n- `edge-fw`: firewall-config checks: not applicable, no configs "
        "declared (no member declares 'config' or 'console' in the inventory): KVMHA-FGCP-001, "
        "KVMHA-FGCP-002, KVMHA-FGCP-003, KVMHA-FGCP-004, KVMHA-FIRM-001, "
        "KVMHA-FW-001, "
        "KVMHA-FW-002, KVMHA-FW-003, KVMHA-FW-004, KVMHA-FW-005, KVMHA-HA-001\n"
    ) in md
    assert "| kvm-b | replay://" in md
    rows = [line for line in md.splitlines() if line.startswith("| fail")]
    assert [r.split("|")[1:3] for r in rows] == [
        [" fail ", " high "],
        [" fail ", " high "],
        [" fail ", " medium "],
        [" fail ", " medium "],
        [" fail (not gating) ", " low "],
    ]
    assert "`kvmha/dmz-fw/KVMHA-VIRT-002[Dmz1]`" in md
    result.stdout.fnmatch_lines(["kvmha report: audit.md"])


def test_markdown_cells_escape_xml_pipes_and_newlines() -> None:
    from pytest_kvmha.report.document import _cell

    assert (
        _cell("a|b\n<filterref filter='x'/> & c")
        == "a\\|b<br>&lt;filterref filter='x'/&gt; &amp; c"
    )
