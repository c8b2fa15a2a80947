"""The CI gate: waivers, baseline gating (--kvmha-fail-on-new), the terminal summary, selection
(node ids given back, -k host, -m severity, -W error) and paths (~, ini-relative replay://)."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
from pathlib import Path

import pytest

from pytest_kvmha.config.waivers import WaiverError, match, parse_waivers, statuses
from pytest_kvmha.model import FAIL, PASS, Check, Finding, Scope, Severity, passed

from ..bundlekit import BUNDLES

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

EXAMPLES = Path(__file__).parents[2] / "examples"
# The demo's failing findings (see tests/plugin/test_plugin.py): three high, one medium, one low.
FAILING = {
    "kvmha/dmz-fw/KVMHA-HB-002[dmz-b]",
    "kvmha/kvm-b/KVMHA-PKG-001[kvm-b]",
    "kvmha/dmz-fw/KVMHA-VIRT-002[Dmz1]",
    "kvmha/dmz-fw/KVMHA-VIRT-003[Dmz1]",
}

WAIVER = """
[[waiver]]
check = "{check}"
{scope}
reason = "legacy backup VLAN | needs it"
approver = "Jane Doe"
ticket = "{ticket}"
expires = {expires}
"""


def waiver(
    check: str = "KVMHA-PKG-001",
    scope: str = 'host = "kvm-b"',
    ticket: str = "OPS-1",
    expires: str = "2999-12-31",
) -> str:
    return WAIVER.format(check=check, scope=scope, ticket=ticket, expires=expires)


@pytest.fixture
def recorded(pytester: pytest.Pytester) -> Path:
    shutil.copytree(EXAMPLES / "bundles", pytester.path / "bundles")
    shutil.copy(EXAMPLES / "clusters.toml", pytester.path / "clusters.toml")
    return pytester.path / "clusters.toml"


def report(pytester: pytest.Pytester, name: str = "r.json") -> dict:
    return json.loads((pytester.path / name).read_text())


# --- waivers.py, pure ---------------------------------------------------------------------


def _finding(check_id: str, status: str, host: str | None, cluster: str | None, subject: str):
    check = Check(check_id, "t", Severity.HIGH, Scope.PAIR, "r", "fix", "src", lambda: passed(""))
    return Finding(check, status, subject, "d", host, cluster)


def test_waiver_globs_scope_and_expiry_by_today() -> None:
    ws = parse_waivers(
        {
            "waiver": [
                {
                    "check": "KVMHA-VIRT-*",
                    "cluster": "dmz-*",
                    "subject": "Dmz?",
                    "reason": "r",
                    "approver": "a",
                    "ticket": "T-1",
                    "expires": dt.date(2027, 1, 31),
                }
            ]
        },
        "w.toml",
    )
    f = _finding("KVMHA-VIRT-002", FAIL, None, "dmz-fw", "Dmz1")
    assert match(ws, f, dt.date(2027, 1, 31)).waiver == ws[0]  # holds through its last day
    after = match(ws, f, dt.date(2027, 2, 1))
    assert (after.waiver, after.expired) == (None, ws[0])
    assert (
        match(
            ws, _finding("KVMHA-VIRT-002", FAIL, None, "edge-fw", "Dmz1"), dt.date(2027, 1, 1)
        ).waiver
        is None
    )
    assert (
        match(
            ws, _finding("KVMHA-HB-002", FAIL, None, "dmz-fw", "Dmz1"), dt.date(2027, 1, 1)
        ).waiver
        is None
    )
    # A host pattern never matches a finding without a host, except "*".
    hosted = parse_waivers(
        {
            "waiver": [
                {
                    "check": "*",
                    "host": "kvm-a",
                    "reason": "r",
                    "approver": "a",
                    "ticket": "t",
                    "expires": dt.date(2030, 1, 1),
                }
            ]
        },
        "w.toml",
    )
    assert match(hosted, f, dt.date(2027, 1, 1)).waiver is None
    # Errors are never waived, passes need none; a waiver with nothing failing is stale.
    err = _finding("KVMHA-VIRT-002", "error", None, "dmz-fw", "Dmz1")
    assert match(ws, err, dt.date(2027, 1, 1)).waiver is None
    ok = _finding("KVMHA-VIRT-002", PASS, None, "dmz-fw", "Dmz1")
    assert [s for _, s, _ in statuses(ws, [ok, err], dt.date(2027, 1, 1))] == ["stale"]
    assert [s for _, s, _ in statuses(ws, [f], dt.date(2027, 1, 1))] == ["active"]
    assert [s for _, s, _ in statuses(ws, [f], dt.date(2028, 1, 1))] == ["expired"]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            {
                "check": "X",
                "host": "h",
                "reason": "r",
                "approver": "a",
                "expires": dt.date(2030, 1, 1),
            },
            "w.toml: waiver 2: missing key 'ticket'",
        ),
        (
            {
                "check": "X",
                "host": "h",
                "reason": "r",
                "approver": "a",
                "ticket": "t",
                "expires": "2030-01-01",
            },
            "w.toml: waiver 2: key 'expires' must be a TOML date",
        ),
        (
            {
                "check": "X",
                "reason": "r",
                "approver": "a",
                "ticket": "t",
                "expires": dt.date(2030, 1, 1),
            },
            "w.toml: waiver 2: give a scope",
        ),
        (
            {
                "check": "X",
                "host": "",
                "reason": "r",
                "approver": "a",
                "ticket": "t",
                "expires": dt.date(2030, 1, 1),
            },
            "w.toml: waiver 2: key 'host' must be a non-empty string",
        ),
        (
            {
                "check": "X",
                "hots": "h",
                "reason": "r",
                "approver": "a",
                "ticket": "t",
                "expires": dt.date(2030, 1, 1),
            },
            "w.toml: waiver 2: unknown key 'hots'",
        ),
    ],
)
def test_malformed_waiver_names_entry_and_field(entry: dict, message: str) -> None:
    good = {
        "check": "X",
        "host": "h",
        "reason": "r",
        "approver": "a",
        "ticket": "t",
        "expires": dt.date(2030, 1, 1),
    }
    with pytest.raises(WaiverError) as exc:
        parse_waivers({"waiver": [good, entry]}, "w.toml")
    assert str(exc.value).startswith(message)


# --- waivers, end to end -----------------------------------------------------------------


def test_waived_failures_do_not_gate_and_show_everywhere(
    pytester: pytest.Pytester, recorded: Path
) -> None:
    pytester.path.joinpath("w.toml").write_text(
        waiver()
        + waiver(check="KVMHA-*", scope='cluster = "dmz-fw"\nsubject = "Dmz1"', ticket="OPS-2")
        + waiver(check="KVMHA-HB-002", scope='subject = "dmz-?"', ticket="OPS-3")
    )
    result = pytester.runpytest(
        f"--kvmha-inventory={recorded}",
        "--kvmha-waivers=w.toml",
        "--kvmha-report=r.json",
        "--kvmha-report-md=r.md",
        "--junitxml=j.xml",
        "-rx",
    )
    result.assert_outcomes(passed=42, xfailed=4, skipped=16)
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        [
            "findings: 5 fail, 41 pass, 16 skip (fail-on medium); pytest: 42 passed, 16 skipped, "
            "4 xfailed (1 below fail-on passed; 4 waived xfailed)",
            "failed by severity: high 2 (2 waived), medium 2 (2 waived), low 1 (1 below)",
            "waiver[[]0[]] OPS-1 (KVMHA-PKG-001): active, waives 1 until 2999-12-31",
            "XFAIL kvmha/kvm-b/KVMHA-PKG-001[[]kvm-b[]] - bridge-utils is installed on kvm-b* - "
            "waived by OPS-1 until 2999-12-31 (Jane Doe): legacy backup VLAN | needs it",
        ]
    )
    r = report(pytester)
    waived = {f["nodeid"]: f["waived"]["ticket"] for f in r["findings"] if f.get("waived")}
    assert waived == {
        "kvmha/kvm-b/KVMHA-PKG-001[kvm-b]": "OPS-1",
        "kvmha/dmz-fw/KVMHA-VIRT-002[Dmz1]": "OPS-2",
        "kvmha/dmz-fw/KVMHA-VIRT-003[Dmz1]": "OPS-2",
        "kvmha/dmz-fw/KVMHA-HB-002[dmz-b]": "OPS-3",
    }
    assert [(w["ticket"], w["status"], w["matches"]) for w in r["waivers"]] == [
        ("OPS-1", "active", 1),
        ("OPS-2", "active", 2),
        ("OPS-3", "active", 1),
    ]
    assert r["waivers"][0]["expires"] == "2999-12-31"
    md = (pytester.path / "r.md").read_text()
    assert "## Waived" in md
    assert "| high | `kvmha/kvm-b/KVMHA-PKG-001[kvm-b]` |" in md
    assert "legacy backup VLAN \\| needs it" in md  # escaped like every other cell
    failing = md.split("## Failing findings")[1].split("## Waived")[0]
    assert (
        "PKG-001" not in failing and "| fail (not gating) | low |" in failing
    )  # TOPO-002 is not waived
    xml = (pytester.path / "j.xml").read_text()
    assert '<property name="waived" value="waived by OPS-1 until 2999-12-31' in xml


def test_expired_waiver_no_longer_waives_and_says_so(
    pytester: pytest.Pytester, recorded: Path
) -> None:
    pytester.path.joinpath("w.toml").write_text(waiver(expires="2020-01-31"))
    result = pytester.runpytest(
        f"--kvmha-inventory={recorded}",
        "--kvmha-waivers=w.toml",
        "--kvmha-report=r.json",
        "-k",
        "PKG",
    )
    result.assert_outcomes(passed=1, failed=1)
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        [
            "*waiver:      expired on 2020-01-31, no longer waives: OPS-1 (Jane Doe): legacy*",
            "waiver[[]0[]] OPS-1 (KVMHA-PKG-001): expired on 2020-01-31: no longer waives",
        ]
    )
    r = report(pytester)
    f = next(f for f in r["findings"] if f["nodeid"] == "kvmha/kvm-b/KVMHA-PKG-001[kvm-b]")
    assert "waived" not in f and f["waiver_expired"]["ticket"] == "OPS-1"
    assert r["waivers"][0]["status"] == "expired"


def test_stale_waiver_warns_and_strict_fails(pytester: pytest.Pytester, recorded: Path) -> None:
    pytester.path.joinpath("w.toml").write_text(waiver(scope='host = "kvm-a"'))
    args = [f"--kvmha-inventory={recorded}", "--kvmha-waivers=w.toml", "--kvmha-fail-on=critical"]
    result = pytester.runpytest(*args, "--kvmha-report=r.json")
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        ["waiver[[]0[]] OPS-1 (KVMHA-PKG-001): stale: matches no failed finding"]
    )
    assert report(pytester)["waivers"][0]["status"] == "stale"
    strict = pytester.runpytest(*args, "--kvmha-strict-waivers")
    assert strict.ret == pytest.ExitCode.TESTS_FAILED
    strict.stdout.fnmatch_lines(
        ["*stale: matches no failed finding (--kvmha-strict-waivers: the run fails)"]
    )


def test_malformed_waivers_file_is_usage_error(pytester: pytest.Pytester, recorded: Path) -> None:
    pytester.path.joinpath("w.toml").write_text(
        waiver() + waiver().replace('ticket = "OPS-1"\n', "")
    )
    result = pytester.runpytest(f"--kvmha-inventory={recorded}", "--kvmha-waivers=w.toml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*--kvmha-waivers: w.toml: waiver 2 (line *): missing key 'ticket'*"]
    )


def test_waivers_ini_key_is_relative_to_ini_file(pytester: pytest.Pytester, recorded: Path) -> None:
    sub = pytester.path / "ci"
    sub.mkdir()
    sub.joinpath("w.toml").write_text(waiver())
    sub.joinpath("pytest.ini").write_text(
        f"[pytest]\nkvmha_inventory = {recorded}\nkvmha_waivers = w.toml\n"
    )
    result = pytester.runpytest("-c", "ci/pytest.ini", "-k", "PKG")
    result.assert_outcomes(passed=1, xfailed=1)


# --- baseline gating ---------------------------------------------------------------------


def test_fail_on_new_gates_only_on_new_failures(pytester: pytest.Pytester, recorded: Path) -> None:
    pytester.runpytest(f"--kvmha-inventory={recorded}", "--kvmha-report=before.json")
    same = pytester.runpytest(
        f"--kvmha-inventory={recorded}", "--kvmha-baseline=before.json", "--kvmha-fail-on-new"
    )
    # The four failures are known: they pass, listed as not gating (TOPO-002 is below anyway);
    # no pytest warning.
    same.assert_outcomes(passed=46, skipped=16)
    assert same.ret == 0
    same.stdout.fnmatch_lines(
        [
            "not gating, below --kvmha-fail-on=medium (their items pass):",
            "  kvmha/dmz-fw/KVMHA-TOPO-002[[]dmz-fw[]] (low): all members run on one physical*",
            "not gating, known since the baseline before.json (--kvmha-fail-on-new; "
            "their items pass):",
            "  kvmha/kvm-b/KVMHA-PKG-001[[]kvm-b[]] (high): bridge-utils is installed on kvm-b*",
            "findings: 5 fail, 41 pass, 16 skip (fail-on medium); pytest: 46 passed, 16 skipped "
            "(1 below fail-on passed; 4 known since the baseline passed)",
        ]
    )
    assert "warnings summary" not in same.stdout.str()
    # Without --kvmha-fail-on-new the baseline only compares.
    assert (
        pytester.runpytest(f"--kvmha-inventory={recorded}", "--kvmha-baseline=before.json").ret == 1
    )
    # PKG-001 passed in the baseline: it is new now, and fails alone.
    before = report(pytester, "before.json")
    for f in before["findings"]:
        if f["check"] == "KVMHA-PKG-001":
            f["status"] = "pass"
    pytester.path.joinpath("older.json").write_text(json.dumps(before))
    new = pytester.runpytest(
        f"--kvmha-inventory={recorded}",
        "--kvmha-baseline=older.json",
        "--kvmha-fail-on-new",
        "--kvmha-report-md=r.md",
    )
    new.assert_outcomes(passed=45, failed=1, skipped=16)
    assert new.ret == 1
    new.stdout.fnmatch_lines(["FAILED kvmha/kvm-b/KVMHA-PKG-001[[]kvm-b[]]*"])
    md = (pytester.path / "r.md").read_text()
    assert "Gating on new findings only" in md
    assert "- new: `KVMHA-PKG-001[kvm-b]`" in md
    assert "- resolved: none" in md


def test_fail_on_new_errors_still_fail(pytester: pytest.Pytester) -> None:
    shutil.copytree(BUNDLES / "unreachable", pytester.path / "u")
    pytester.runpytest("--kvmha-inventory=u/clusters.toml", "--kvmha-report=before.json")
    result = pytester.runpytest(
        "--kvmha-inventory=u/clusters.toml", "--kvmha-baseline=before.json", "--kvmha-fail-on-new"
    )
    assert result.ret == 1
    assert result.parseoutcomes()["errors"] == 29  # KVMHA-SRIOV-001 of fw-b's 2 NICs too


def test_fail_on_new_needs_a_baseline(pytester: pytest.Pytester, recorded: Path) -> None:
    result = pytester.runpytest(f"--kvmha-inventory={recorded}", "--kvmha-fail-on-new")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--kvmha-fail-on-new needs --kvmha-baseline*"])


# --- terminal ----------------------------------------------------------------------------


def test_cluster_block_and_counts_by_severity(pytester: pytest.Pytester, recorded: Path) -> None:
    result = pytester.runpytest(f"--kvmha-inventory={recorded}", "--kvmha-report=r.json")
    result.stdout.fnmatch_lines(
        [
            "cluster edge-fw: fw-a@kvm-a (master), fw-b@kvm-b (slave): 28 pass, 7 skip",
            "  firewall-config checks: not applicable, no configs declared (11 checks)",
            "cluster dmz-fw: dmz-a@kvm-a (master), dmz-b@kvm-a (slave): "
            "3 fail, 1 below, 7 pass, 9 skip",
            "  firewall-config checks: not applicable, no configs declared (11 checks)",
            "*Dmz1  all",
            # failing rows first, each with its check's title; rows that only pass or skip: -v
            "  KVMHA-HB-002            F   No nwfilter on HA NICs drops the vendor's HA fr...",
            "  KVMHA-VIRT-002    F         Both NICs of a pair have the same PCI address",
            "  KVMHA-VIRT-003    F         Both NICs of a pair use the same model",
            "  KVMHA-TOPO-002          b   Members run on different physical servers",
            "host checks of kvm-a: 2 pass",
            "host checks of kvm-b: 1 fail, 1 pass",
            "  KVMHA-PKG-001  F  bridge-utils is not installed",
            "legend: F fail  b failed below --kvmha-fail-on  "
            "(-v: also the checks that only pass or skip)",
            "not gating, below --kvmha-fail-on=medium (their items pass):",
            # each finding counted once: 4 gating failures + 1 below the threshold
            "findings: 5 fail, 41 pass, 16 skip (fail-on medium); "
            "pytest: 4 failed, 42 passed, 16 skipped (1 below fail-on passed)",
            "failed by severity: high 2, medium 2, low 1 (1 below)",
            "kvmha report: r.json",
        ]
    )
    assert not [x for x in result.outlines if x.startswith("  KVMHA-VLAN-001")]
    verbose = pytester.runpytest(f"--kvmha-inventory={recorded}", "-v")
    verbose.stdout.fnmatch_lines(
        [
            "cluster edge-fw: *",
            "  firewall-config checks: not applicable, no configs declared (11 checks): "
            "KVMHA-FGCP-001, KVMHA-FGCP-002, KVMHA-FGCP-003, KVMHA-FGCP-004, KVMHA-FIRM-001, KVMHA-FW-001, KVMHA-FW-002, KVMHA-FW-003, KVMHA-FW-004, KVMHA-FW-005, KVMHA-HA-001",
            "                   If1  If2  all",
            "  KVMHA-HB-001                .   Uplinks of the pair bridges are promiscuous*",
            "  KVMHA-HB-003                s   *",
            "host checks of kvm-a: 2 pass",
            "  KVMHA-OVS-001  .  *",
            "legend: . pass  F fail  s skip  b failed below --kvmha-fail-on",
        ]
    )


def test_quiet_on_success_prints_only_report_paths(
    pytester: pytest.Pytester, recorded: Path
) -> None:
    result = pytester.runpytest(
        f"--kvmha-inventory={recorded}", "--kvmha-fail-on=critical", "--kvmha-report=r.json", "-q"
    )
    assert result.ret == 0
    assert "kvmha report: r.json" in result.outlines
    assert not [line for line in result.outlines if "kvmha audit" in line or "legend" in line]
    # Green, but something to look at (a stale waiver): not quiet.
    pytester.path.joinpath("w.toml").write_text(waiver(scope='host = "kvm-a"'))
    stale = pytester.runpytest(
        f"--kvmha-inventory={recorded}", "--kvmha-fail-on=critical", "--kvmha-waivers=w.toml", "-q"
    )
    assert stale.ret == 0
    stale.stdout.fnmatch_lines(["waiver[[]0[]] OPS-1 (KVMHA-PKG-001): stale*"])
    loud = pytester.runpytest(f"--kvmha-inventory={recorded}", "-q")  # failing: the full block
    loud.stdout.fnmatch_lines(["*kvmha audit*", "legend:*"])


def test_unreachable_host_reason_on_each_item_in_one_line(pytester: pytest.Pytester) -> None:
    """Each item of an unreachable host says why in its one line (issue 19: not "reason in
    the kvmha audit summary"); the summary names the host once more with its spec."""
    shutil.copytree(BUNDLES / "unreachable", pytester.path / "u")
    result = pytester.runpytest("--kvmha-inventory=u/clusters.toml", "-rE")
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        [
            "*ERROR at setup of kvmha/kvm-b/KVMHA-PKG-001[[]kvm-b[]]*",
            "host kvm-b unreachable: ssh: connect to host *: Connection refused*",
            "host kvm-b (replay://*): unreachable - kvm-b: ssh: connect to host *Connection refused*",
            "ERROR kvmha/edge-fw/KVMHA-HB-002[[]fw-b[]] - host kvm-b unreachable: ssh: *",
        ]
    )


def test_short_summary_shows_what_was_found(pytester: pytest.Pytester, recorded: Path) -> None:
    result = pytester.runpytest(f"--kvmha-inventory={recorded}", "-rf", "-vv", "--junitxml=j.xml")
    result.stdout.fnmatch_lines(
        ["FAILED kvmha/kvm-b/KVMHA-PKG-001[[]kvm-b[]] - bridge-utils is installed on kvm-b*"]
    )
    line = next(x for x in result.outlines if x.startswith("FAILED kvmha/kvm-b/KVMHA-PKG-001"))
    assert "remediation" not in line  # one line, even with -vv (or on CI)
    xml = (pytester.path / "j.xml").read_text()
    assert re.search(r'<failure message="bridge-utils is installed on kvm-b', xml)


# --- selection ---------------------------------------------------------------------------


def test_every_printed_node_id_reruns_that_item(pytester: pytest.Pytester, recorded: Path) -> None:
    result = pytester.runpytest(f"--kvmha-inventory={recorded}", "-v")
    printed = sorted(
        {
            m.group(1)
            for line in result.outlines
            if (m := re.match(r"(kvmha/\S+) (PASSED|FAILED|SKIPPED)", line))
        }
    )
    assert len(printed) == 62  # 84 findings, 22 of them firewall-config checks (no configs)
    for nodeid in printed[::5] + ["kvmha/edge-fw/KVMHA-VIRT-002[If2]"]:
        again = pytester.runpytest(nodeid, f"--kvmha-inventory={recorded}", "-v")
        ran = [
            line for line in again.outlines if re.match(r"kvmha/\S+ (PASSED|FAILED|SKIPPED)", line)
        ]
        assert [line.split()[0] for line in ran] == [nodeid], again.outlines
    prefix = pytester.runpytest("kvmha/kvm-b", f"--kvmha-inventory={recorded}")
    prefix.assert_outcomes(passed=1, failed=1)
    unknown = pytester.runpytest("kvmha/nope/X[y]", f"--kvmha-inventory={recorded}")
    assert unknown.ret == pytest.ExitCode.USAGE_ERROR
    unknown.stderr.fnmatch_lines(["*no kvmha item with node id kvmha/nope/X[[]y[]]*"])
    alone = pytester.runpytest("kvmha/kvm-b/KVMHA-PKG-001[kvm-b]")
    assert alone.ret == pytest.ExitCode.USAGE_ERROR
    alone.stderr.fnmatch_lines(["*a kvmha node id needs --kvmha-inventory or --kvmha-host*"])


def test_node_id_printed_relative_to_another_rootdir(
    pytester: pytest.Pytester, recorded: Path
) -> None:
    sub = pytester.path / "ci"
    sub.mkdir()
    sub.joinpath("pytest.ini").write_text(f"[pytest]\nkvmha_inventory = {recorded}\n")
    result = pytester.runpytest("-c", "ci/pytest.ini", "-v", "-k", "PKG")
    result.stdout.fnmatch_lines(["ci/kvmha/kvm-b/KVMHA-PKG-001[[]kvm-b[]] FAILED*"])
    again = pytester.runpytest("-c", "ci/pytest.ini", "ci/kvmha/kvm-b/KVMHA-PKG-001[kvm-b]")
    again.assert_outcomes(failed=1)


def test_k_host_selects_cluster_items_of_its_members(
    pytester: pytest.Pytester, recorded: Path
) -> None:
    pytester.runpytest(f"--kvmha-inventory={recorded}", "-k", "kvm-b", "--kvmha-report=r.json")
    nodeids = {f["nodeid"] for f in report(pytester)["findings"]}
    assert "kvmha/edge-fw/KVMHA-VIRT-002[If1]" in nodeids  # fw-b runs on kvm-b
    assert "kvmha/kvm-b/KVMHA-PKG-001[kvm-b]" in nodeids
    assert not [n for n in nodeids if "dmz-fw" in n or "kvmha/kvm-a/" in n]
    assert len(nodeids) == 30  # and 9 firewall-config checks that do not apply


def test_m_selects_by_severity(pytester: pytest.Pytester, recorded: Path) -> None:
    result = pytester.runpytest(
        f"--kvmha-inventory={recorded}", "-m", "high", "--strict-markers", "--kvmha-report=r.json"
    )
    assert result.ret == 1
    sev = {f["severity"] for f in report(pytester)["findings"]}
    assert sev == {"high"}
    assert result.parseoutcomes()["failed"] == 2  # PKG-001 and VIRT-002


def test_w_error_does_not_fail_below_threshold(pytester: pytest.Pytester, recorded: Path) -> None:
    result = pytester.runpytest(f"--kvmha-inventory={recorded}", "-W", "error", "-k", "TOPO-002")
    result.assert_outcomes(passed=2)
    assert result.ret == 0


# --- paths -------------------------------------------------------------------------------


def test_tilde_expanded_in_path_options(
    pytester: pytest.Pytester, recorded: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = pytester.path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    shutil.copy(recorded, home / "inv.toml")
    (home / "inv.toml").write_text(
        recorded.read_text().replace("replay://bundles", f"replay://{pytester.path}/bundles")
    )
    home.joinpath("w.toml").write_text(waiver())
    result = pytester.runpytest(
        "--kvmha-inventory=~/inv.toml",
        "--kvmha-waivers=~/w.toml",
        "--kvmha-report=~/out/r.json",
        "--kvmha-report-md=~/out/r.md",
        "--kvmha-record=~/rec",
        "-k",
        "PKG",
    )
    result.assert_outcomes(passed=1, xfailed=1)
    assert (home / "out" / "r.json").is_file() and (home / "out" / "r.md").is_file()
    assert (home / "rec" / "kvm-b" / "bundle.json").is_file()
    host = pytester.runpytest("--kvmha-host=replay://~/../bundles/kvm-b", "--kvmha-report=h.json")
    assert [h["status"] for h in report(pytester, "h.json")["hosts"]] == ["ok"]
    assert host.ret == 1


def test_replay_hosts_in_ini_are_relative_to_ini_file(
    pytester: pytest.Pytester, recorded: Path
) -> None:
    sub = pytester.path / "ci"
    sub.mkdir()
    shutil.move(pytester.path / "bundles", sub / "bundles")
    sub.joinpath("pytest.ini").write_text(
        "[pytest]\nkvmha_hosts =\n    replay://bundles/kvm-a\n    replay://bundles/kvm-b\n"
        "kvmha_report = r.json\n"
    )
    pytester.runpytest("-c", "ci/pytest.ini")
    r = json.loads((sub / "r.json").read_text())
    assert [h["status"] for h in r["hosts"]] == ["ok", "ok"], r["hosts"]
