"""Nothing a host or an inventory names attacks the reader of a remediation.

Every recorded scenario is renamed with hostile names (tests/hostilekit.py) and audited; every
remediation line must then be exactly one command whose argv is what shlex reads (run for real
under ``sh`` with a PATH of recorders: a `pwned` recorder would see any injected command).
"""

from __future__ import annotations

import collections
import json
import os
import re
import shlex
import stat
import subprocess
from pathlib import Path

import pytest

from pytest_kvmha.config.inventory import load_inventory
from pytest_kvmha.model import Scope, discover_checks
from pytest_kvmha.remediation import command, comment, inert, xml_attr
from tests.scenarios import SCENARIOS

from ..bundlekit import BUNDLES, HostBundle, copy_scenario, run
from ..hostilekit import NEWLINE_PAYLOAD, SHELL_PAYLOAD, hostile_copy

SCENARIO_NAMES = sorted(p.name for p in BUNDLES.iterdir() if (p / "clusters.toml").exists())
END = b"\x01\n"  # ends one recorded call (no name holds a control character)
PROGRAMS = ("virsh", "ovs-vsctl", "ip", "apt-get", "dnf", "pacman", "apk", "systemctl")
PLACEHOLDER = re.compile(r"\b(BRIDGE|UPLINK|VLAN|VNET|DOMAIN|NIC|PORT|MODEL)\b")
OPERATORS = {";", "&&", "||", "|", "&", ";;", "(", ")", "<", ">", ">>", "`"}
# Checks whose findings, somewhere in the recorded scenarios, carry their own remediation lines.
COVERED = {
    "KVMHA-HB-001",
    "KVMHA-HB-002",
    "KVMHA-OVS-002",
    "KVMHA-VIRT-001",
    "KVMHA-VIRT-002",
    "KVMHA-VLAN-001",
    "KVMHA-VLAN-002",
    "KVMHA-VIRT-003",
    "KVMHA-TOPO-001",
}


@pytest.fixture(scope="module")
def recorders(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A PATH directory where every remediation program and `pwned` only record their argv."""
    bin_dir = tmp_path_factory.mktemp("bin")
    for name in (*PROGRAMS, "pwned"):
        path = bin_dir / name
        path.write_text(
            "#!/bin/sh\n"
            'printf \'%s\\0\' "${0##*/}" "$@" >>"$KVMHA_ARGV_LOG"\n'
            "printf '\\001\\n' >>\"$KVMHA_ARGV_LOG\"\n"
        )
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return bin_dir


def run_line(line: str, recorders: Path, log: Path) -> list[list[str]]:
    """Run one remediation line under sh; the argv of every command it ran."""
    log.write_bytes(b"")
    env = {"PATH": str(recorders), "KVMHA_ARGV_LOG": str(log)}
    subprocess.run(["/bin/sh", "-c", line], env=env, check=False, capture_output=True, timeout=10)
    records = log.read_bytes().split(END)[:-1]
    return [[w.decode() for w in r.split(b"\0")[:-1]] for r in records]


def assert_inert(line: str, recorders: Path, log: Path) -> list[str]:
    """``line`` is one command (or a comment): its argv, checked by shlex and by a real sh."""
    assert "\n" not in line and "\r" not in line
    argv = shlex.split(line, comments=True)
    assert not OPERATORS & set(argv), f"shell operator in {line!r}"
    calls = run_line(line, recorders, log)
    assert all(c[0] != "pwned" for c in calls), f"injected command ran: {line!r}"
    if not argv:
        assert line.startswith("#"), f"neither a command nor a comment: {line!r}"
        assert calls == []
        return argv
    assert argv[0] in PROGRAMS, f"not a known remediation command: {line!r}"
    assert calls == [argv], f"{line!r} ran {calls!r}, shlex reads {argv!r}"
    return argv


@pytest.mark.parametrize("scenario", SCENARIO_NAMES)
def test_remediations_with_hostile_names_are_single_commands(
    scenario: str, tmp_path: Path, recorders: Path
) -> None:
    directory, renames = hostile_copy(scenario, tmp_path)
    assert renames, "the scenario names nothing to rename"
    result = run(directory)
    # The renames change no verdict: the checks really evaluated the hostile names.
    counts = collections.Counter((f.check.id, f.status) for f in result.findings)
    # Hostile bridge names are never traced: KVMHA-TRACE-001 errs there (tests/checks/test_trace.py).
    want = collections.Counter(
        (c, "error" if c == "KVMHA-TRACE-001" and s != "skip" else s)
        for (c, _), s in SCENARIOS[scenario].expected.items()
    )
    if SCENARIOS[scenario].second:  # each cluster has its own findings about each host
        scopes = {c.id: c.scope for c in discover_checks()}
        for (c, _), st in SCENARIOS[scenario].expected.items():
            if scopes[c] is Scope.CLUSTER_HOST:
                want[(c, "error" if c == "KVMHA-TRACE-001" and st != "skip" else st)] += 1
    assert counts == want
    hostile = set(renames.values())
    for f in result.findings:
        if f.status != "fail" or not f.remediation:
            continue
        for line in f.remediation.splitlines():
            argv = assert_inert(line, recorders, tmp_path / "argv")
            # A hostile name in a command is one whole argument (or key=value), never split.
            for word in argv:
                if "pwned" in word:
                    assert word.split("=", 1)[-1] in hostile or word in hostile, (line, word)
                # No placeholder: a real command or a plain instruction (a comment line).
                assert not PLACEHOLDER.search(word), f"placeholder in {line!r}"
            # XML shown for `virsh edit` carries the value, escaped: it cannot end the attribute.
            for name in hostile:
                assert f"='{name}" not in line, f"unescaped XML attribute in {line!r}"


@pytest.mark.parametrize("scenario", SCENARIO_NAMES)
def test_names_with_newlines_are_errors_not_commands(
    scenario: str, tmp_path: Path, recorders: Path
) -> None:
    """Where the format can carry a newline (OVS JSON, XML character references), the name is
    malformed evidence: its findings are errors, and no remediation line holds a newline."""
    directory, renames = hostile_copy(scenario, tmp_path, payload=NEWLINE_PAYLOAD, inventory=False)
    result = run(directory)
    problems = {h.name: "\n".join(h.problems.values()) for h in result.hosts}
    members = [
        (m.host, m.domain)
        for c in load_inventory(directory / "clusters.toml").clusters
        for m in c.members
    ]
    assert members
    for host_name, domain in members:
        if domain not in renames:
            continue  # a member the recording does not define
        # The newline name itself is recorded as a problem of its host, shown escaped ...
        assert repr(renames[domain]) in problems[host_name], (domain, problems[host_name])
        # ... and every finding about that member is an error, none passes or fails on it.
        about = [f for f in result.findings if f.subject.split(":")[0] == domain]
        assert about, domain
        # (KVMHA-FW-001 skips a member with no firewall configuration declared: it reads no
        # host evidence for it.)
        judged = [f for f in about if not (f.check.id == "KVMHA-FW-001" and f.status == "skip")]
        assert {f.status for f in judged} == {"error"}, [
            (f.check.id, f.subject, f.status) for f in judged
        ]
    assert {f.status for f in result.findings if f.check.id == "KVMHA-HOST-000"} == {"error"}
    for f in result.findings:
        for line in (f.remediation or "").splitlines() if f.status == "fail" else ():
            assert_inert(line, recorders, tmp_path / "argv")
        if f.remediation and f.status == "fail":
            assert not any(n in f.remediation for n in renames.values())


def _model_mismatch(d: Path) -> None:
    HostBundle(d / "kvm-b").edit_domain(
        "fw-b", lambda x: x.replace("<model type='virtio'/>", "<model type='e1000'/>", 1)
    )


def _uplink_without_vlan(d: Path) -> None:
    HostBundle(d / "kvm-a").edit_ovs_row("Port", "up-a", "trunks", ["set", [999]])


def _missing_domain(d: Path) -> None:
    inv = d / "clusters.toml"
    inv.write_text(inv.read_text().replace('"fw-b"', json.dumps("fw-gone" + SHELL_PAYLOAD)))


VARIANTS = {
    "model-mismatch": _model_mismatch,
    "uplink-without-vlan": _uplink_without_vlan,
    "missing-domain": _missing_domain,
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_more_failing_checks_with_hostile_names(
    variant: str, tmp_path: Path, recorders: Path
) -> None:
    """Defects the recorded scenarios lack (two-ok edited), then renamed: still inert."""
    d = copy_scenario("two-ok", tmp_path / "src")
    VARIANTS[variant](d)
    directory, renames = hostile_copy(str(d), tmp_path)
    lines = [
        line
        for f in run(directory).findings
        if f.status == "fail" and f.remediation
        for line in f.remediation.splitlines()
    ]
    assert lines
    for line in lines:
        for word in assert_inert(line, recorders, tmp_path / "argv"):
            assert not PLACEHOLDER.search(word), f"placeholder in {line!r}"


def test_every_remediating_check_is_exercised(tmp_path: Path, recorders: Path) -> None:
    """The hostile scenarios and variants above reach every check that writes its own
    remediation."""
    seen = set()
    dirs = [hostile_copy(s, tmp_path / s)[0] for s in SCENARIO_NAMES]
    for variant, edit in VARIANTS.items():
        d = copy_scenario("two-ok", tmp_path / "src" / variant)
        edit(d)
        dirs.append(hostile_copy(str(d), tmp_path / variant)[0])
    for directory in dirs:
        seen |= {
            f.check.id for f in run(directory).findings if f.status == "fail" and f.remediation
        }
    assert seen >= COVERED


def test_command_quotes_every_argument_and_keeps_notes_on_one_line(
    tmp_path: Path, recorders: Path
) -> None:
    evil = "fw'; pwned #$(pwned)`pwned`"
    note = f"NIC x\npwned: <model type={xml_attr(evil + chr(10))}/>"
    line = command("virsh", "edit", evil, note=note)
    assert assert_inert(line, recorders, tmp_path / "argv") == ["virsh", "edit", evil]
    assert "&apos;" in line and "\\x0a" in line
    with pytest.raises(ValueError, match="control character"):
        command("virsh", "edit", "fw\npwned")
    assert assert_inert(comment("a\rpwned\u2028b"), recorders, tmp_path / "argv") == []
    assert inert("a\x1b[31mb") == "a\\x1b[31mb"


def test_recorders_catch_an_injection(tmp_path: Path, recorders: Path) -> None:
    """The harness can fail: an f-string remediation runs the injected command."""
    evil = "virtio' ; pwned #"
    naive = f"virsh edit fw  # <model type='{evil}'/>\npwned"
    calls = run_line(naive, recorders, tmp_path / "argv")
    assert ["pwned"] in calls
    assert os.path.exists(tmp_path / "argv")
    assert SHELL_PAYLOAD.count("pwned") >= 4
