"""Fleets (issue 9, engine): pytest-xdist runs of recorded bundles give the serial run's
findings, reports and exit status; --kvmha-max-parallel; handshake retries; collection metrics
in bundles and reports; hosts no selected item needs are not contacted."""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from pytest_kvmha.audit.selection import KeywordSyntaxError, Name, evaluate, unneeded_hosts
from pytest_kvmha.bundle.store import EvidenceBundle
from pytest_kvmha.collect import host as collect_host
from pytest_kvmha.collect import pool as collect_pool
from pytest_kvmha.collect import transport
from pytest_kvmha.collect.pool import collect_all
from pytest_kvmha.collect.transport import handshake_refused
from pytest_kvmha.config.inventory import load_inventory
from pytest_kvmha.config.target import CollectOptions, HostTarget
from pytest_kvmha.model import discover_checks

BUNDLES = Path(__file__).parents[1] / "bundles"
TIMINGS = ("generated_at", "duration_s")
HOST_TIMINGS = ("collect_seconds",)


@pytest.fixture
def lab_copy(pytester: pytest.Pytester) -> Path:
    """Three recorded scenarios side by side: a failing two-host cluster, an unreachable host,
    a single-host cluster with a host that is in no cluster."""
    for name in ("bridge-utils", "unreachable", "single-ok"):
        shutil.copytree(BUNDLES / name, pytester.path / name)
    return pytester.path


def _run(pytester: pytest.Pytester, *args: str, xdist: tuple[str, ...] = ()) -> Any:
    for name in ("r.json", "r.md", "r.html", "j.xml"):
        (pytester.path / name).unlink(missing_ok=True)
    result = pytester.runpytest_subprocess(
        "-p",
        "xdist",
        "-p",
        "no:cacheprovider",
        *xdist,
        "--kvmha-report=r.json",
        "--kvmha-report-md=r.md",
        "--kvmha-report-html=r.html",
        "--junitxml=j.xml",
        *args,
    )
    report = json.loads((pytester.path / "r.json").read_text())
    for key in TIMINGS:
        report.pop(key)
    for h in report["hosts"]:
        for key in HOST_TIMINGS:
            h.pop(key, None)
    cases = sorted(
        (
            c.get("classname"),
            c.get("name"),
            tuple(sorted((p.get("name"), p.get("value")) for p in c.iter("property"))),
            tuple(sorted((o.tag, o.get("message") or "") for o in c if o.tag != "properties")),
        )
        for c in etree.parse(str(pytester.path / "j.xml")).iter("testcase")
    )
    md = (pytester.path / "r.md").read_text()
    html = (pytester.path / "r.html").read_text()
    return result, report, cases, md, html


ALL_MODES = (("-n", "2"), ("-n", "2", "--dist", "loadgroup"), ("-n", "3", "--dist", "loadscope"))


def _same_under_xdist(
    pytester: pytest.Pytester, *args: str, modes: tuple[tuple[str, ...], ...] = (("-n", "2"),)
) -> Any:
    serial = _run(pytester, *args)
    assert serial[1]["findings"], serial[0].stdout.str()
    for xdist in modes:
        parallel = _run(pytester, *args, xdist=xdist)
        out = parallel[0].stdout.str()
        assert "created: " in out or "workers" in out, out  # xdist really ran
        assert parallel[0].ret == serial[0].ret, out
        assert parallel[1] == serial[1], xdist
        assert parallel[2] == serial[2], xdist  # JUnit: outcomes, messages, kvmha properties
        assert parallel[3] == serial[3], xdist
        # the HTML report differs only in its time stamp and duration
        assert _no_times(parallel[4]) == _no_times(serial[4]), xdist
    return serial


def _no_times(html: str) -> str:
    import re

    html = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "T", html)
    return re.sub(r"\d+(\.\d+)? ?s\b", "S", html)


def test_xdist_gives_the_serial_findings_reports_and_exit_status(
    pytester: pytest.Pytester, lab_copy: Path
) -> None:
    result, report, cases, md, _ = _same_under_xdist(
        pytester,
        f"--kvmha-inventory={lab_copy / 'bridge-utils' / 'clusters.toml'}",
        modes=ALL_MODES,
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert any(f["status"] == "fail" for f in report["findings"])
    # the kvmha properties reach the controller's JUnit file
    pkg = [c for c in cases if c[1] == "KVMHA-PKG-001[kvm-a]"]
    assert pkg and ("gating", "true") in pkg[0][2], cases


def test_xdist_with_an_unreachable_host(pytester: pytest.Pytester, lab_copy: Path) -> None:
    result, report, *_ = _same_under_xdist(
        pytester, f"--kvmha-inventory={lab_copy / 'unreachable' / 'clusters.toml'}"
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert "unreachable" in {h["status"] for h in report["hosts"]}


def test_xdist_with_gate_options_node_ids_and_keywords(
    pytester: pytest.Pytester, lab_copy: Path
) -> None:
    inventory = lab_copy / "bridge-utils" / "clusters.toml"
    (pytester.path / "waivers.toml").write_text(
        '[[waiver]]\ncheck = "KVMHA-PKG-001"\nhost = "kvm-a"\nreason = "r"\napprover = "a"\n'
        'ticket = "T-1"\nexpires = 2999-01-01\n'
    )
    result, report, *_ = _same_under_xdist(
        pytester, f"--kvmha-inventory={inventory}", "--kvmha-waivers=waivers.toml"
    )
    assert report["waivers"][0]["status"] == "active", report["waivers"]
    result, report, *_ = _same_under_xdist(
        pytester, f"--kvmha-inventory={inventory}", "--kvmha-fail-on=critical"
    )
    assert result.ret == pytest.ExitCode.OK
    result, report, *_ = _same_under_xdist(
        pytester, f"--kvmha-inventory={inventory}", "kvmha/kvm-a"
    )
    assert {f["host"] for f in report["findings"]} == {"kvm-a"}
    result, report, *_ = _same_under_xdist(
        pytester, f"--kvmha-inventory={inventory}", "-k", "KVMHA-PKG-001"
    )
    assert {f["check"] for f in report["findings"]} == {"KVMHA-PKG-001"}


def test_xdist_baseline_plan_and_discovery(pytester: pytest.Pytester, lab_copy: Path) -> None:
    inventory = lab_copy / "bridge-utils" / "clusters.toml"
    _run(pytester, f"--kvmha-inventory={inventory}")
    shutil.copy(pytester.path / "r.json", pytester.path / "before.json")
    result, report, *_ = _same_under_xdist(
        pytester,
        f"--kvmha-inventory={inventory}",
        "--kvmha-baseline=before.json",
        "--kvmha-fail-on-new",
    )
    assert result.ret == pytest.ExitCode.OK and report["baseline"]["unchanged"]
    # what-if: the plan's items and its report section
    result, report, *_ = _same_under_xdist(
        pytester,
        f"--kvmha-inventory={lab_copy / 'single-ok' / 'clusters.toml'}",
        f"--kvmha-plan={lab_copy / 'single-ok' / 'clusters.toml'}",
    )
    assert "whatif" in report
    # discovery (no inventory): hosts given one by one
    result, report, *_ = _same_under_xdist(
        pytester,
        f"--kvmha-host=replay://{lab_copy / 'bridge-utils' / 'kvm-a'}",
        f"--kvmha-host=replay://{lab_copy / 'bridge-utils' / 'kvm-b'}",
    )
    assert "discovery" in report


def test_xdist_usage_error_writes_the_report(pytester: pytest.Pytester, lab_copy: Path) -> None:
    """A host given twice is a usage error in the controller's audit; the report is written."""
    spec = f"--kvmha-host=replay://{lab_copy / 'bridge-utils' / 'kvm-a'}"
    copy = lab_copy / "again"
    shutil.copytree(lab_copy / "bridge-utils" / "kvm-a", copy)
    result = pytester.runpytest_subprocess(
        "-p", "xdist", "-n", "2", spec, f"--kvmha-host=replay://{copy}", "--kvmha-report=r.json"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*are one machine*"])
    assert "one machine" in json.loads((pytester.path / "r.json").read_text())["errors"][0]


def test_xdist_workers_replay_the_controllers_bundles(
    pytester: pytest.Pytester, lab_copy: Path
) -> None:
    """Each host is collected once, by the controller: the workers read its run directory,
    which is private and removed at the end. (A collector that counts its calls.)"""
    pytester.makeconftest(
        """
import os, pytest_kvmha.collect.host as c
real = c.collect
def counting(target, options):
    with open(os.environ["COUNT_FILE"], "a") as f:
        f.write(f"{os.getpid()} {target.name}\\n")
    return real(target, options)
c.collect = counting
import pytest
@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):
    pass
def pytest_collection_finish(session):
    d = getattr(session.config, "workerinput", {}).get("kvmha_rundir")
    if d:
        with open(os.environ["COUNT_FILE"] + ".dir", "a") as f:
            f.write(f"{d} {oct(os.stat(d).st_mode & 0o777)}\\n")
"""
    )
    count = pytester.path / "count"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("COUNT_FILE", str(count))
        result = pytester.runpytest_subprocess(
            "-p",
            "xdist",
            "-n",
            "2",
            f"--kvmha-inventory={lab_copy / 'bridge-utils' / 'clusters.toml'}",
        )
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()
    calls = count.read_text().split("\n")[:-1]
    assert sorted(c.split()[1] for c in calls) == ["kvm-a", "kvm-b"], calls
    assert len({c.split()[0] for c in calls}) == 1  # one process: the controller
    dirs = {
        line.split()[0]: line.split()[1]
        for line in Path(f"{count}.dir").read_text().split("\n")[:-1]
    }
    assert len(dirs) == 1 and set(dirs.values()) == {"0o700"}, dirs
    assert not Path(next(iter(dirs))).exists()  # removed at the end


# --- --kvmha-max-parallel --------------------------------------------------------------------


@pytest.mark.parametrize("value", ["0", "-1", "abc", "1.5", "1e3"])
def test_max_parallel_must_be_a_positive_whole_number(
    pytester: pytest.Pytester, lab_copy: Path, value: str
) -> None:
    inventory = lab_copy / "single-ok" / "clusters.toml"
    result = pytester.runpytest_subprocess(
        f"--kvmha-inventory={inventory}", f"--kvmha-max-parallel={value}"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--kvmha-max-parallel*"])
    pytester.makeini(f"[pytest]\nkvmha_max_parallel = {value}\n")
    result = pytester.runpytest_subprocess(f"--kvmha-inventory={inventory}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*kvmha_max_parallel (ini)*"])


def test_max_parallel_accepted(pytester: pytest.Pytester, lab_copy: Path) -> None:
    inventory = lab_copy / "single-ok" / "clusters.toml"
    result = pytester.runpytest_subprocess(
        f"--kvmha-inventory={inventory}", "--kvmha-max-parallel=1"
    )
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()


def test_collect_all_bounds_concurrent_collections() -> None:
    """The collections block until three run; then no fourth starts (a broken bound starts
    the others at once, so the short wait can only miss it on a stalled runner, never fail a
    good pool); released, all finish, in input order, each reported once."""
    running, peak = 0, 0
    cond, gate = threading.Condition(), threading.Event()
    targets = [HostTarget(f"h{i}", "local://") for i in range(20)]

    def collect_one(target: HostTarget, options: CollectOptions) -> EvidenceBundle:
        nonlocal running, peak
        with cond:
            running += 1
            peak = max(peak, running)
            cond.notify_all()
        gate.wait(30)
        with cond:
            running -= 1
        return EvidenceBundle(target.name, "local://", "local", "t")

    arrived: list[int] = []
    out: list[EvidenceBundle] = []
    worker = threading.Thread(
        target=lambda: out.extend(
            collect_all(
                targets,
                CollectOptions(timeout=60, max_parallel=3),
                collect_one,
                on_bundle=lambda i, b: arrived.append(i),
            )
        )
    )
    worker.start()
    try:
        with cond:
            assert cond.wait_for(lambda: running >= 3, timeout=30)
        time.sleep(0.5)
        with cond:
            assert (running, peak) == (3, 3)
    finally:
        gate.set()
        worker.join(60)
    assert [b.host for b in out] == [t.name for t in targets]
    assert peak == 3
    assert sorted(arrived) == list(range(20))
    with pytest.raises(ValueError, match="max_parallel"):
        collect_all(targets, CollectOptions(max_parallel=0), collect_one)


def test_a_stuck_host_does_not_hold_its_slot(monkeypatch: pytest.MonkeyPatch) -> None:
    """With one slot, a host that hangs times out and the queue goes on behind it."""
    monkeypatch.setattr(collect_pool, "KILL_AFTER", 0)
    release = threading.Event()

    def collect_one(target: HostTarget, options: CollectOptions) -> EvidenceBundle:
        if target.name == "stuck":
            release.wait(30)
        return EvidenceBundle(target.name, "local://", "local", "t")

    targets = [HostTarget(n, "local://") for n in ("stuck", "a", "b")]
    t0 = time.monotonic()
    try:
        out = collect_all(targets, CollectOptions(timeout=1, max_parallel=1), collect_one)
    finally:
        release.set()
    assert [b.status for b in out] == ["unreachable", "ok", "ok"]
    assert time.monotonic() - t0 < 10


# --- retries on a refused handshake ------------------------------------------------------------

REFUSALS = [
    b"kex_exchange_identification: read: Connection reset by peer\r\n",
    b"kex_exchange_identification: Connection closed by remote host\r\nConnection closed by UNKNOWN port 65535\r\n",
    b"ssh: connect to host 10.0.0.1 port 22: Connection refused\r\n",
    b"ssh_exchange_identification: Connection closed by remote host\r\n",
]
FINAL = [
    b"root@10.0.0.1: Permission denied (publickey).\r\n",
    b"Host key verification failed.\r\n",
    b"ssh: Could not resolve hostname nowhere: Name or service not known\r\n",
    b"",
]


@pytest.mark.parametrize("stderr", REFUSALS)
def test_refused_handshakes_are_retryable(stderr: bytes) -> None:
    assert handshake_refused(255, b"", stderr)
    assert handshake_refused(1, b"", stderr) is None  # not ssh's own failure
    assert handshake_refused(255, b"partial output", stderr) is None  # the command ran


@pytest.mark.parametrize("stderr", FINAL)
def test_authentication_and_host_key_failures_are_final(stderr: bytes) -> None:
    assert handshake_refused(255, b"", stderr) is None


class _Result:
    def __init__(self, rc: int, stdout: bytes, stderr: bytes) -> None:
        self.rc, self.stdout_bytes, self.stderr_bytes = rc, stdout, stderr


def _fake_ssh(monkeypatch: pytest.MonkeyPatch, answers: list[tuple[int, bytes]]) -> list[str]:
    calls: list[str] = []

    def run(host: Any, command: str, timeout: float) -> _Result:
        calls.append(command)
        rc, stderr = answers[min(len(calls), len(answers)) - 1]
        return _Result(rc, b"", stderr)

    monkeypatch.setattr(transport, "run_with_deadline", run)
    monkeypatch.setattr(collect_host, "testinfra_host", lambda spec, options: object())
    monkeypatch.setattr(transport, "BACKOFF_BASE", 0.01)
    return calls


def test_a_refused_handshake_is_retried_and_recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _fake_ssh(monkeypatch, [(255, REFUSALS[0]), (255, REFUSALS[1]), (0, b"")])
    bundle = collect_host.collect(HostTarget("h", "ssh://root@h"), CollectOptions(timeout=30))
    assert len(calls) == 3
    assert [r["reason"] for r in bundle.retries] == [
        "kex_exchange_identification: read: Connection reset by peer",
        "Connection closed by UNKNOWN port 65535",
    ]
    assert all(r["delay"] > 0 for r in bundle.retries)
    assert bundle.bytes_sent == 3 * len(calls[0].encode())
    assert bundle.bytes_received == len(REFUSALS[0]) + len(REFUSALS[1])
    assert bundle.round_trips == 1


def test_retries_are_bounded_and_the_host_is_unreachable(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _fake_ssh(monkeypatch, [(255, REFUSALS[2])])
    bundle = collect_host.collect(HostTarget("h", "ssh://root@h"), CollectOptions(timeout=60))
    assert len(calls) == 1 + transport.MAX_RETRIES
    assert bundle.status == "unreachable"
    assert bundle.error == (
        "h: ssh: connect to host 10.0.0.1 port 22: Connection refused "
        f"(after {transport.MAX_RETRIES} retries)"
    )


@pytest.mark.parametrize("stderr", FINAL[:2])
def test_authentication_failure_is_not_retried(
    monkeypatch: pytest.MonkeyPatch, stderr: bytes
) -> None:
    calls = _fake_ssh(monkeypatch, [(255, stderr)])
    bundle = collect_host.collect(HostTarget("h", "ssh://root@h"), CollectOptions(timeout=60))
    assert len(calls) == 1 and bundle.retries == []
    assert bundle.status == "unreachable"


def test_retries_stay_within_the_hosts_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _fake_ssh(monkeypatch, [(255, REFUSALS[0])])
    monkeypatch.setattr(transport, "BACKOFF_BASE", 0.4)
    bundle = collect_host.collect(HostTarget("h", "ssh://root@h"), CollectOptions(timeout=1))
    # No retry is started whose wait would pass the deadline: the waits fit in the timeout.
    assert sum(r["delay"] for r in bundle.retries) < 1
    assert 1 < len(calls) < 1 + transport.MAX_RETRIES
    assert len(bundle.retries) == len(calls) - 1


def test_backoff_grows_with_jitter() -> None:
    for attempt in range(4):
        base = transport.BACKOFF_BASE * 2**attempt
        delays = {transport.backoff(attempt) for _ in range(20)}
        assert all(base <= d <= 2 * base for d in delays)
        assert len(delays) > 1


# --- collection metrics ------------------------------------------------------------------------


def test_bundle_metrics_round_trip(tmp_path: Path) -> None:
    b = EvidenceBundle("h", "ssh://h", "ssh", "t", round_trips=1, seconds=0.25)
    b.bytes_received, b.bytes_sent = 12345, 678
    b.retries = [{"reason": "Connection reset by peer", "delay": 0.3}]
    back = EvidenceBundle.read(b.write(tmp_path / "h"))
    assert (back.bytes_received, back.bytes_sent, back.retries) == (12345, 678, b.retries)
    assert (back.round_trips, back.seconds) == (1, 0.25)
    shutil.copytree(BUNDLES / "two-ok" / "kvm-a", tmp_path / "old")
    meta_path = tmp_path / "old" / "bundle.json"
    recorded = json.loads(meta_path.read_text())
    for key in ("bytes_received", "bytes_sent", "retries"):  # as recorded before metrics existed
        recorded.pop(key, None)
    meta_path.write_text(json.dumps(recorded))
    old = EvidenceBundle.read(tmp_path / "old")
    assert (old.bytes_received, old.bytes_sent, old.retries) == (0, 0, [])
    meta = json.loads((tmp_path / "h" / "bundle.json").read_text())
    meta["retries"] = ["not a table"]
    (tmp_path / "h" / "bundle.json").write_text(json.dumps(meta))
    from pytest_kvmha.bundle.store import BundleError

    with pytest.raises(BundleError, match="retries"):
        EvidenceBundle.read(tmp_path / "h")


def test_json_report_has_per_host_metrics(pytester: pytest.Pytester, lab_copy: Path) -> None:
    _, report, *_ = _run(
        pytester, f"--kvmha-inventory={lab_copy / 'bridge-utils' / 'clusters.toml'}"
    )
    for h in report["hosts"]:
        assert {
            "round_trips",
            "bytes_received",
            "bytes_sent",
            "retries",
            "retry_reasons",
        } <= h.keys()
        assert h["retries"] == 0 and h["retry_reasons"] == []


# --- hosts no selected item needs --------------------------------------------------------------


def _truth(expression: str, names: list[str]) -> bool | None:
    return evaluate(expression, lambda w: any(w.lower() in n.lower() for n in names))


def test_keyword_grammar() -> None:
    names = ["kvm1", "KVMHA-PKG-001", "high"]
    assert _truth("kvm1", names) is True
    assert _truth("not kvm1", names) is False
    assert _truth("kvm2 or (high and not low)", names) is True
    assert _truth("kvm2 and high", names) is False
    assert _truth("", names) is True
    assert _truth("pkg-001", names) is True  # substring, case-insensitive
    for bad in ("kvm1 and", "(kvm1", "kvm1)", "kvm1 = 3", "and"):
        with pytest.raises(KeywordSyntaxError):
            _truth(bad, names)


def test_unknown_subjects_make_a_keyword_maybe() -> None:
    maybe = lambda w: None if w == "x" else w == "yes"  # noqa: E731
    assert evaluate("x", maybe) is None
    assert evaluate("not x", maybe) is None
    assert evaluate("x and no", maybe) is False
    assert evaluate("x or yes", maybe) is True
    pair = Name("edge/KVMHA-VLAN-001[If", "digits", "]")
    assert pair.contains("vlan-001[if1") is None
    assert pair.contains("If12]") is None
    assert pair.contains("edge") is True
    assert pair.contains("Ifx") is False
    assert pair.contains("[if]") is False  # at least one digit
    assert Name("a[", "any", "]").contains("whatever") is None


def test_unneeded_hosts_by_node_id_deselect_and_keyword() -> None:
    inv = load_inventory(str(BUNDLES / "single-ok" / "clusters.toml"))  # kvm-b runs no member
    checks = discover_checks()
    assert unneeded_hosts(checks, inv) == {}
    assert set(unneeded_hosts(checks, inv, nodeids=["kvmha/kvm-a"])) == {"kvm-b"}
    assert set(unneeded_hosts(checks, inv, nodeids=["kvmha/edge-fw"])) == {"kvm-b"}
    assert unneeded_hosts(checks, inv, nodeids=["kvmha"]) == {}
    assert set(unneeded_hosts(checks, inv, deselect=["kvmha/kvm-b"])) == {"kvm-b"}
    assert unneeded_hosts(checks, inv, deselect=["kvmha/kvm-b/KVMHA-PKG"]) == {}
    assert set(unneeded_hosts(checks, inv, keyword="not kvm-b")) == {"kvm-b"}
    why = unneeded_hosts(checks, inv, keyword="not kvm-b")["kvm-b"]
    assert "-k 'not kvm-b' matches none of its items" in why
    # kvm-a: the cluster's pair items could match anything their subjects hold
    assert unneeded_hosts(checks, inv, keyword="kvm-b") == {}
    # the problem items of kvm-b could have a subject that holds "kvm-a"
    assert unneeded_hosts(checks, inv, keyword="kvm-a") == {}
    assert unneeded_hosts(checks, inv, keyword="kvm-a and") == {}  # pytest reports it
    two = load_inventory(str(BUNDLES / "two-ok" / "clusters.toml"))  # one cluster on both hosts
    # fw-a's member items (keyword kvm-a) stay selected by "not kvm-b" and read fw-b on kvm-b
    assert unneeded_hosts(checks, two, keyword="not kvm-b") == {}
    assert set(unneeded_hosts(checks, two, keyword="PKG and not kvm-b")) == {"kvm-b"}
    assert unneeded_hosts(checks, two, keyword="not kvm-b or edge-fw") == {}  # they read kvm-b


def test_a_host_no_item_needs_is_not_contacted(pytester: pytest.Pytester, lab_copy: Path) -> None:
    inventory = lab_copy / "single-ok" / "clusters.toml"
    shutil.rmtree(lab_copy / "single-ok" / "kvm-b")  # replaying it would be an error
    for args in (("-k", "not kvm-b"), ("--deselect", "kvmha/kvm-b"), ("kvmha/kvm-a",)):
        result, report, *_ = _run(pytester, f"--kvmha-inventory={inventory}", *args)
        assert result.ret == pytest.ExitCode.OK, result.stdout.str()
        assert set(report["not_contacted"]) == {"kvm-b"}, args
        hosts = {h["name"]: h["status"] for h in report["hosts"]}
        assert hosts == {"kvm-a": "ok", "kvm-b": "not-contacted"}
        result.stdout.fnmatch_lines(["*host kvm-b*not-contacted*not contacted*"])
        parallel = _run(pytester, f"--kvmha-inventory={inventory}", *args, xdist=("-n", "2"))
        assert parallel[1] == report


def test_a_waiver_about_a_host_not_contacted_is_not_stale(
    pytester: pytest.Pytester, lab_copy: Path
) -> None:
    """Pruning kvm-b must not turn its waiver stale: with --kvmha-strict-waivers the pruned run
    would fail where the full run passes."""
    inventory = lab_copy / "single-ok" / "clusters.toml"
    waivers = pytester.path / "w.toml"
    waivers.write_text(
        '[[waiver]]\ncheck = "KVMHA-*"\nhost = "kvm-b"\nreason = "r"\napprover = "a"\n'
        'ticket = "T-1"\nexpires = 2099-01-01\n'
    )
    args = (f"--kvmha-inventory={inventory}", f"--kvmha-waivers={waivers}")
    result, report, *_ = _run(pytester, *args, "--kvmha-strict-waivers", "kvmha/kvm-a")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    assert [w["status"] for w in report["waivers"]] == ["not-evaluated"]
    full = _run(pytester, *args)[1]  # audited, nothing on kvm-b fails: now it is stale
    assert [w["status"] for w in full["waivers"]] == ["stale"]


# --- the leaner batch script --------------------------------------------------------------------


def _audit_bundle(directory: Path, change: Any) -> dict[str, Any]:
    from pytest_kvmha.audit.engine import audit
    from pytest_kvmha.parse.host import parse_bundle

    inv = load_inventory(str(directory / "clusters.toml"))
    hosts = []
    for h in inv.hosts:
        b = EvidenceBundle.read(directory / h.name)
        if h.name == "kvm-a":
            change(b)
        hosts.append(parse_bundle(b))
    return {f.nodeid: f for f in audit(discover_checks(), inv, hosts).findings}


def test_a_referenced_filter_not_fetched_is_an_error_never_a_pass() -> None:
    """fw-slave's NIC references a site filter that nests no-mac-spoofing. Fetched, the check
    fails; listed on the host but not fetched, the check errors: it never passes."""
    from pytest_kvmha.bundle.store import Section

    nodeid = "kvmha/edge-fw/KVMHA-HB-002[fw-slave]"
    site = "5a5a5a5a-0000-4000-8000-000000000001"

    def site_filter(fetched: bool) -> Any:
        def change(b: EvidenceBundle) -> None:
            for name, sec in list(b.sections.items()):
                if name.startswith("domain-"):
                    text = sec.stdout.replace("filter='clean-traffic'", "filter='site-filter'")
                    b.sections[name] = Section(text, sec.stderr, sec.rc)
            listing = b.sections["virsh-nwfilters"]
            b.sections["virsh-nwfilters"] = Section(listing.stdout + f" {site}   site-filter\n")
            b.sections[f"nwfilter/{site}"] = Section(
                f"<filter name='site-filter' chain='root'><uuid>{site}</uuid>"
                "<filterref filter='no-mac-spoofing'/></filter>\n"
            )
            # fetched as the collector fetches: the site filter and what it nests (HB-002
            # judges what the filters drop, so no-mac-spoofing's own rules are needed too)
            nested = {
                n.split("/")[1]
                for n, sec in b.sections.items()
                if n.startswith("nwfilter/") and "name='no-mac-spoofing'" in sec.stdout
            }
            keep = {site, *nested} if fetched else set()
            for name in [n for n in b.sections if n.startswith("nwfilter/")]:
                if name.split("/")[1] not in keep:
                    del b.sections[name]
            b.sections["nwfilter-fetched"] = Section("".join(u + "\n" for u in sorted(keep)))

        return change

    fetched = _audit_bundle(BUNDLES / "mac-filter", site_filter(True))
    assert fetched[nodeid].status == "fail", fetched[nodeid].detail
    assert "site-filter" in fetched[nodeid].detail
    missing = _audit_bundle(BUNDLES / "mac-filter", site_filter(False))
    assert missing[nodeid].status == "error", missing[nodeid].detail
    assert "'site-filter' is referenced but not defined" in missing[nodeid].detail
    # without the fetched list (older bundles), a listed filter without its dump is damage
    damaged = _audit_bundle(
        BUNDLES / "mac-filter",
        lambda b: [b.sections.pop(n) for n in list(b.sections) if n.startswith("nwfilter/")],
    )
    assert damaged[nodeid].status == "error"


def test_one_ovs_vsctl_for_all_tables_is_split_back() -> None:
    from pytest_kvmha.bundle.store import Section
    from pytest_kvmha.collect.framing import split_ovs_tables
    from pytest_kvmha.collect.script import OVS_TABLES, batch_script

    script = batch_script("ab" * 8)
    assert script.count("ovs-vsctl --timeout=5 --format=json") == 1
    assert script.count("dpkg-query -W") == 1
    rows = [json.dumps({"headings": [t], "data": []}) for t in OVS_TABLES]
    out = split_ovs_tables({"ovs-tables": Section("\n".join(rows) + "\n", "", 0)})
    assert {k: v.stdout for k, v in out.items()} == {
        f"ovs-{t}": row + "\n" for t, row in zip(OVS_TABLES, rows, strict=True)
    }
    failed = split_ovs_tables({"ovs-tables": Section("", "database connection failed", 1)})
    assert {(v.rc, v.stderr) for v in failed.values()} == {(1, "database connection failed")}
    short = split_ovs_tables({"ovs-tables": Section(rows[0] + "\n", "", 0)})
    assert all(v.rc == 1 and "printed 1 tables" in v.stderr for v in short.values())


def test_xdist_records_once_on_the_controller(pytester: pytest.Pytester, lab_copy: Path) -> None:
    inventory = lab_copy / "bridge-utils" / "clusters.toml"
    result, report, *_ = _run(
        pytester, f"--kvmha-inventory={inventory}", "--kvmha-record=rec", xdist=("-n", "2")
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    for h in report["hosts"]:
        recorded = EvidenceBundle.read(pytester.path / "rec" / h["name"])
        assert recorded.sha256() == h["bundle_sha256"]
    assert sorted(p.name for p in (pytester.path / "rec").iterdir()) == ["kvm-a", "kvm-b"]


def test_xdist_workers_wait_for_a_slow_controller(
    pytester: pytest.Pytester, lab_copy: Path
) -> None:
    """The controller collects while xdist starts the workers; a worker that is ready first
    waits for every bundle (here one host takes 4 s) and then makes the serial run's items."""
    inventory = lab_copy / "bridge-utils" / "clusters.toml"
    serial = _run(pytester, f"--kvmha-inventory={inventory}")
    pytester.makeconftest(
        """
import os, time, pytest_kvmha.collect.host as c
real = c.collect
def slow(target, options):
    if target.name == "kvm-b":
        t0 = time.monotonic()
        time.sleep(4)
        with open("slow.log", "a") as log:  # the delay happened, in this process
            log.write(f"{os.getpid()} {target.name} {time.monotonic() - t0:.1f}\\n")
    return real(target, options)
c.collect = slow
"""
    )
    parallel = _run(pytester, f"--kvmha-inventory={inventory}", xdist=("-n", "2"))
    # The slow collection ran, once (the workers replay the controller's bundles), for 4 s.
    (line,) = (pytester.path / "slow.log").read_text().splitlines()
    _, name, took = line.split()
    assert name == "kvm-b" and float(took) >= 4.0
    assert parallel[0].ret == serial[0].ret
    assert parallel[1] == serial[1]
    assert parallel[2] == serial[2]


def _three_hosts(path: Path) -> Any:
    """edge-fw on kvm-a and kvm-b, core-fw on kvm-c alone (specs never read)."""
    lines = [f'[hosts.{h}]\nspec = "replay://{h}"\n' for h in ("kvm-a", "kvm-b", "kvm-c")]
    lines += [
        '[clusters.edge-fw]\nvendor = "fortigate"\nmembers = [\n'
        '  { host = "kvm-a", domain = "fw-a", role = "master" },\n'
        '  { host = "kvm-b", domain = "fw-b", role = "slave" },\n]\n',
        '[clusters.core-fw]\nvendor = "fortigate"\nmembers = [\n'
        '  { host = "kvm-c", domain = "fw-c", role = "master" },\n'
        '  { host = "kvm-c", domain = "fw-d", role = "slave" },\n]\n',
    ]
    path.write_text("\n".join(lines))
    return load_inventory(str(path))


def test_segment_items_need_every_clusters_hosts(tmp_path: Path) -> None:
    """KVMHA-ID-001 looks across clusters: selecting its items (node id kvmha/segment, or a -k
    that may match them) keeps every member host; leaving them out lets a host go."""
    inv = _three_hosts(tmp_path / "inv.toml")
    checks = discover_checks()
    assert set(unneeded_hosts(checks, inv, nodeids=["kvmha/edge-fw"])) == {"kvm-c"}
    assert unneeded_hosts(checks, inv, nodeids=["kvmha/segment"]) == {}
    assert unneeded_hosts(checks, inv, nodeids=["kvmha/segment/KVMHA-ID-001[vlan101@x]"]) == {}
    assert unneeded_hosts(checks, inv, nodeids=["kvmha/edge-fw", "kvmha/segment"]) == {}
    assert unneeded_hosts(checks, inv, keyword="KVMHA-ID-001") == {}
    assert unneeded_hosts(checks, inv, keyword="vlan101") == {}  # a segment's subject may hold it
    # the segment items carry every member host as a keyword: "not kvm-c" deselects them
    assert set(unneeded_hosts(checks, inv, keyword="not kvm-c")) == {"kvm-c"}
    # core-fw deselected: the segment items still read kvm-c, until they are deselected too
    assert unneeded_hosts(checks, inv, deselect=["kvmha/core-fw", "kvmha/kvm-c"]) == {}
    gone = ["kvmha/core-fw", "kvmha/kvm-c", "kvmha/segment"]
    assert set(unneeded_hosts(checks, inv, deselect=gone)) == {"kvm-c"}


def test_xdist_evaluates_the_cross_cluster_check_once_with_every_cluster(
    pytester: pytest.Pytester,
) -> None:
    """Every worker replays every host's bundle, so each sees both clusters: the segment items
    are the same on every worker (xdist refuses workers that collect differently), each runs
    once, and the findings, reports and exit status are the serial run's."""
    shutil.copytree(BUNDLES / "two-clusters-one-group", pytester.path / "two")
    inventory = pytester.path / "two" / "clusters.toml"
    result, report, cases, md, _ = _same_under_xdist(
        pytester, f"--kvmha-inventory={inventory}", modes=ALL_MODES
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    found = {
        (f["subject"], f["status"]) for f in report["findings"] if f["check"] == "KVMHA-ID-001"
    }
    assert found == {("vlan101@kvm-a+kvm-b", "fail"), ("vlan102@kvm-a+kvm-b", "pass")}
    names = [c[1] for c in cases if c[0] == "segment"]  # JUnit: each once, under "segment"
    assert names == ["KVMHA-ID-001[vlan101@kvm-a+kvm-b]", "KVMHA-ID-001[vlan102@kvm-a+kvm-b]"]
    assert "edge-fw" in md and "core-fw" in md
    # only the segment: every host is read, and it still fails
    result, report, *_ = _same_under_xdist(
        pytester, f"--kvmha-inventory={inventory}", "kvmha/segment"
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert not report.get("not_contacted")
    assert {h["status"] for h in report["hosts"]} == {"ok"}
    assert {f["check"] for f in report["findings"]} == {"KVMHA-ID-001"}
