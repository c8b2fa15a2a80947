"""The terminal output a person scans: the demo fits a terminal, colour through pytest's writer,
skips that name their items, counts that agree with pytest's, the checks that do not apply as
one line per cluster (and never a check that should run), the failures that do not gate in a
section of their own, and the plans of ``kvmha_provision`` in the summary."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ..bundlekit import EXAMPLES, copy_example

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

ROOT = Path(__file__).parents[2]
ANSI = re.compile(r"\x1b\[[0-9;]*m")
FW = [f"KVMHA-FW-00{i}" for i in range(1, 6)]


@pytest.fixture
def recorded(pytester: pytest.Pytester) -> Path:
    return copy_example(pytester.path)


def section(lines: list[str], title: str) -> list[str]:
    """The lines of the terminal section ``title`` (up to the next ``====`` line)."""
    start = next(i for i, x in enumerate(lines) if re.match(rf"=+ {re.escape(title)} =+$", x))
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("===")), None)
    found = lines[start + 1 : end]
    while found and not found[-1]:  # pytest's own line before its last one
        found.pop()
    return found


# --- the demo ------------------------------------------------------------------------------


@pytest.mark.skipif(
    Path(sys.prefix).resolve() != (ROOT / ".venv").resolve(),
    reason="scripts/demo runs the checkout's .venv (scripts/setup-venv); this is another one",
)
def test_demo_fits_a_terminal() -> None:
    """`scripts/demo | wc -l` is at most 80: the failures first, one line per cluster, the
    reports' paths, the exit status."""
    proc = subprocess.run(
        ["bash", str(ROOT / "scripts" / "demo")],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    out = proc.stdout + proc.stderr
    lines = out.splitlines()
    assert proc.returncode == 0, out
    assert len(lines) <= 80, out
    assert lines.index("=" * 35 + " FAILURES " + "=" * 35) < next(
        i for i, x in enumerate(lines) if "kvmha audit" in x
    )
    assert len([x for x in lines if x.startswith("cluster edge-fw: ")]) == 1
    assert len([x for x in lines if x.startswith("cluster dmz-fw: ")]) == 1
    paths = [Path(x.split(": ", 1)[1]) for x in lines if x.startswith("kvmha report: ")]
    assert [p.suffix for p in paths] == [".json", ".md", ".html"]
    try:
        assert all(p.is_file() for p in paths)
    finally:
        shutil.rmtree(paths[0].parent, ignore_errors=True)
    assert "SKIPPED" not in out and "PASSED" not in out and "warnings summary" not in out
    # a failure's "found" is shown where the detail does not already say it
    assert "  found:       bridge-utils installed" in lines
    assert not [x for x in lines if x.startswith("  found:       NIC #1 (52:54:00:e4:8b:92)")]
    assert lines[-1].startswith("audit exit status: 1 ")
    assert lines[-2].startswith("4 failed, 42 passed, 16 skipped in ")


# --- colour ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "env", "coloured"),
    [
        (["--color=yes"], {}, True),
        ([], {"FORCE_COLOR": "1"}, True),
        (["--color=no"], {"FORCE_COLOR": "1"}, False),
        ([], {"FORCE_COLOR": "1", "NO_COLOR": "1"}, False),
    ],
    ids=["color-yes", "force-color", "color-no", "no-color"],
)
def test_colour_follows_pytests_writer(
    pytester: pytest.Pytester,
    recorded: Path,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    env: dict[str, str],
    coloured: bool,
) -> None:
    monkeypatch.delenv("PY_COLORS", raising=False)  # pytester's own "0" would win over both
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    result = pytester.runpytest(f"--kvmha-inventory={recorded}", "-q", *args)
    lines = result.outlines
    start = next(i for i, x in enumerate(lines) if "kvmha audit" in ANSI.sub("", x))
    audit = lines[start + 1 :]
    row = next(x for x in audit if ANSI.sub("", x).startswith("  KVMHA-VIRT-002"))
    verdict = next(x for x in audit if ANSI.sub("", x).startswith("kvmha verdict: gate failed"))
    if coloured:
        assert row.startswith("\x1b[31m") and verdict.startswith("\x1b[31m"), row  # red
        below = next(x for x in audit if "not gating, below" in x)
        assert below.startswith("\x1b[33m")  # yellow
    else:
        assert not [x for x in lines if ANSI.search(x)]


# --- skips, counts, the failures that do not gate ----------------------------------------


def test_skips_name_their_items(pytester: pytest.Pytester, recorded: Path) -> None:
    result = pytester.runpytest(f"--kvmha-inventory={recorded}", "-rs")
    skips = [x for x in result.outlines if x.startswith("SKIPPED")]
    assert "SKIPPED [1] kvmha/edge-fw/KVMHA-HB-003[edge-fw]: broadcast heartbeat" in skips
    assert "SKIPPED [1] kvmha/dmz-fw/KVMHA-HB-003[dmz-fw]: broadcast heartbeat" in skips
    assert len(skips) == 16 and all(x.startswith("SKIPPED [1] kvmha/") for x in skips), skips
    assert not [x for x in skips if "clusters.toml" in x]


def _pytest_part(line: str) -> dict[str, int]:
    """``4 failed, 39 passed`` of the kvmha count line, as pytest's outcomes."""
    part = line.split("; pytest: ", 1)[1].split(" (", 1)[0]
    out = {}
    for n, word in (x.split(" ", 1) for x in part.split(", ")):
        out[{"error": "errors"}.get(word, word)] = int(n)
    return out


@pytest.mark.parametrize("args", [[], ["--kvmha-fail-on=critical"], ["--kvmha-fail-on=low"]])
def test_count_line_agrees_with_pytests_last_line(
    pytester: pytest.Pytester, recorded: Path, args: list[str]
) -> None:
    result = pytester.runpytest(f"--kvmha-inventory={recorded}", *args)
    line = next(x for x in result.outlines if x.startswith("findings: "))
    got = {k: v for k, v in result.parseoutcomes().items() if k not in ("warnings", "warning")}
    assert _pytest_part(line) == got, line


def test_count_line_explains_tests_beside_the_audit(
    pytester: pytest.Pytester, recorded: Path
) -> None:
    pytester.makepyfile(test_mine="def test_mine():\n    pass\n")
    result = pytester.runpytest("test_mine.py", f"--kvmha-inventory={recorded}", "--kvmha-audit")
    result.assert_outcomes(passed=43, failed=4, skipped=16)
    result.stdout.fnmatch_lines(
        [
            "findings: 5 fail, 41 pass, 16 skip (fail-on medium); pytest: 4 failed, 42 passed, "
            "16 skipped (1 below fail-on passed; pytest also counts 1 test beside the audit)"
        ]
    )


def test_below_threshold_is_a_section_not_a_warning(
    pytester: pytest.Pytester, recorded: Path
) -> None:
    result = pytester.runpytest(
        f"--kvmha-inventory={recorded}", "--kvmha-report=r.json", "--kvmha-report-md=r.md"
    )
    out = result.stdout.str()
    assert "warnings summary" not in out and "KvmhaBelowThreshold" not in out
    assert "_pytest" not in out
    audit = section(result.outlines, "kvmha audit")
    i = audit.index("not gating, below --kvmha-fail-on=medium (their items pass):")
    assert audit[i + 1] == (
        "  kvmha/dmz-fw/KVMHA-TOPO-002[dmz-fw] (low): all members run on one physical server: "
        "both members on kvm-a"
    )
    # the reports keep it as before: failed, not gating
    r = (pytester.path / "r.json").read_text()
    assert '"nodeid": "kvmha/dmz-fw/KVMHA-TOPO-002[dmz-fw]"' in r
    md = (pytester.path / "r.md").read_text()
    assert "| fail (not gating) | low | `kvmha/dmz-fw/KVMHA-TOPO-002[dmz-fw]` |" in md


# --- checks that do not apply ----------------------------------------------------------------


def _declare_config(inventory: Path, member: str) -> None:
    """Give one member of the example a firewall configuration (tests/data/fwconfig)."""
    config = ROOT / "tests" / "data" / "fwconfig" / "fgt-a.conf"
    text = inventory.read_text()
    old = f'domain = "{member}", role = "master" }}'
    assert old in text
    inventory.write_text(text.replace(old, old[:-2] + f', config = "{config}" }}'))


def test_one_declared_config_makes_every_firewall_check_an_item(
    pytester: pytest.Pytester, recorded: Path
) -> None:
    """Fail closed: a cluster with one member's config gets every firewall-config item (the
    other member's missing one is an error); a cluster without any stays one line."""
    _declare_config(recorded, "fw-a")
    result = pytester.runpytest(f"--kvmha-inventory={recorded}", "-v")
    ran = {
        m.group(1): m.group(2)
        for x in result.outlines
        if (m := re.match(r"kvmha/edge-fw/(KVMHA-FW-\d+\[[^]]+\]) (\w+)", x))
    }
    assert ran["KVMHA-FW-001[fw-a]"] == "PASSED"
    assert ran["KVMHA-FW-001[fw-b]"] == "SKIPPED"  # an item: its cluster declares a config
    assert {ran[f"{c}[edge-fw]"] for c in FW[1:]} == {"ERROR"}
    assert not [x for x in result.outlines if x.startswith("kvmha/dmz-fw/KVMHA-FW-")]
    audit = section(result.outlines, "kvmha audit")
    i = next(i for i, x in enumerate(audit) if x.startswith("cluster dmz-fw: "))
    assert audit[i + 1].startswith("  firewall-config checks: not applicable, no configs")
    assert not [x for x in audit if x.startswith("  firewall-config") and "KVMHA-FW-001," not in x]
    j = next(i for i, x in enumerate(audit) if x.startswith("cluster edge-fw: "))
    assert "not applicable" not in audit[j + 1]


def test_a_node_id_naming_the_check_makes_it_an_item(
    pytester: pytest.Pytester, recorded: Path
) -> None:
    result = pytester.runpytest(
        "kvmha/edge-fw/KVMHA-FW-002[edge-fw]", f"--kvmha-inventory={recorded}", "-rs"
    )
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(
        ["SKIPPED [[]1[]] kvmha/edge-fw/KVMHA-FW-002[[]edge-fw[]]: no firewall configuration*"]
    )


# --- the plans of kvmha_provision --------------------------------------------------------------


def test_shipped_provisioning_example_passes_as_a_dry_run_and_shows_its_plan(
    pytester: pytest.Pytester,
) -> None:
    """`pytest examples/provisioning/test_edge_fw.py --kvmha-inventory=examples/clusters.toml`
    on the shipped data, without -s: it passes, and the summary shows the plan."""
    inventory = copy_example(pytester.path)
    shutil.copy(EXAMPLES / "provisioning" / "test_edge_fw.py", pytester.path / "test_edge_fw.py")
    result = pytester.runpytest("test_edge_fw.py", f"--kvmha-inventory={inventory}")
    assert result.ret == 0, result.stdout.str()
    result.assert_outcomes(passed=1)
    assert section(result.outlines, "kvmha plans") == [
        "test_edge_fw.py::test_edge_fw_provisioned_conforms: edge-fw (dry run)",
        "  dry run, nothing changed: --kvmha-allow-provision and @pytest.mark.kvmha_destructive "
        "to apply",
        "  plan for edge-fw: nothing to do, the cluster conforms",
        "  note: kvm-b: bridge-utils is installed (KVMHA-PKG-001); remove it by hand "
        "(apt-get remove -y bridge-utils): plans do not remove packages, which a restore could "
        "not undo",
    ]
    assert "Captured" not in result.stdout.str()  # shown once, not as captured output


def test_plans_show_each_step_with_its_reason_per_cluster(pytester: pytest.Pytester) -> None:
    inventory = copy_example(pytester.path)
    pytester.makepyfile(
        test_plans="""
        def test_both(kvmha_provision):
            assert kvmha_provision("dmz-fw").steps
            assert not kvmha_provision("edge-fw").steps
        """
    )
    result = pytester.runpytest("test_plans.py", f"--kvmha-inventory={inventory}")
    result.assert_outcomes(passed=1)
    plans = section(result.outlines, "kvmha plans")
    heads = [x for x in plans if not x.startswith(" ")]
    assert heads == [
        "test_plans.py::test_both: dmz-fw (dry run)",
        "test_plans.py::test_both: edge-fw (dry run)",
    ]
    step = plans.index("     1. [kvm-a] virsh define dmz-b.xml  # the XML below")
    assert plans[step + 1] == (
        "      # dmz-b: Dmz1: drop MAC-spoofing filter clean-traffic; Dmz1: model virtio as on "
        "dmz-a; Dmz1: PCI 0000:00:03.0 as on dmz-a"
    )
    assert "      # fixes KVMHA-HB-002[dmz-b], KVMHA-VIRT-002[Dmz1], KVMHA-VIRT-003[Dmz1]" in plans


def test_not_gating_lines_escape_host_text() -> None:
    """A detail is host text: an escape sequence or a newline in it reaches no terminal."""
    from pytest_kvmha.model import Check, Finding, Scope, Severity, passed
    from pytest_kvmha.report.terminal import AuditSummary, _not_gating

    low = Check("X-1", "t", Severity.LOW, Scope.HOST, "r", "fix", "src", lambda h: passed(""))
    f = Finding(low, "fail", "kvm-a", "pkg \x1b[31mred\x1b[0m\nFAKE LINE", "kvm-a", None)
    lines: list[str] = []

    class Tr:
        def section(self, title: str, sep: str = "=", **markup: bool) -> None:
            lines.append(title)

        def line(self, msg: str, **markup: bool) -> None:
            lines.append(msg)

    summary = AuditSummary(
        None,  # type: ignore[arg-type]  # _not_gating reads the findings only
        [f],
        lambda _: "below",
        Severity.MEDIUM,
        [],
        False,
        None,
        None,
        False,
        [],
    )
    _not_gating(Tr(), summary)
    assert lines == [
        "not gating, below --kvmha-fail-on=medium (their items pass):",
        "  kvmha/kvm-a/X-1[kvm-a] (low): pkg \\x1b[31mred\\x1b[0m\\x0aFAKE LINE",
    ]
