"""``kvmha discover``: a TOML inventory of what discovery found, that parses and audits, with
the guesses and the ambiguous layouts as comments, and host names that cannot inject TOML."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from pytest_kvmha.cli import main
from pytest_kvmha.cli.discover import inventory_toml
from pytest_kvmha.config.inventory import ClusterSpec, MemberSpec, PairSpec, load_inventory
from pytest_kvmha.config.target import HostTarget
from pytest_kvmha.facts import HostFacts
from pytest_kvmha.topology.discovery import AmbiguousLayout, Discovery

ROOT = Path(__file__).parents[2]
BUNDLES = ROOT / "examples" / "bundles"

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def test_the_example_hosts_give_an_inventory_that_parses_and_audits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(ROOT)  # bundle paths relative to the working directory, as typed
    rc = main(["discover", "replay://examples/bundles/kvm-a", "replay://examples/bundles/kvm-b"])
    assert rc == 0
    text = capsys.readouterr().out
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "inv.toml").write_text(text)
    inv = load_inventory(elsewhere / "inv.toml")  # relative bundle paths were made absolute
    assert [(h.name, h.spec) for h in inv.hosts] == [
        ("kvm-a", f"replay://{BUNDLES / 'kvm-a'}"),
        ("kvm-b", f"replay://{BUNDLES / 'kvm-b'}"),
    ]
    (cluster,) = inv.clusters
    assert [(m.host, m.domain, m.role) for m in cluster.members] == [
        ("kvm-a", "fw-a", "master"),
        ("kvm-b", "fw-b", "slave"),
    ]
    assert [(p.name, p.bridge) for p in cluster.pairs] == [
        ("br1-internal", "br1-internal"),
        ("br2-external", "br2-external"),
    ]
    for guess in ("the vendor", "broadcast heartbeat", "first member", "named after their bridges"):
        assert any(line.startswith("# GUESSED:") and guess in line for line in text.splitlines())
    assert "2 domains not paired: fewer than 2 NICs" in text  # dmz-a, dmz-b: one NIC each
    monkeypatch.chdir(tmp_path)
    assert main(["audit", "--inventory", str(elsewhere / "inv.toml"), "--report", "r.json"]) == 1
    report = json.loads((tmp_path / "r.json").read_text())
    assert [c["name"] for c in report["clusters"]] == ["fw-a+fw-b"]
    failed = {f["nodeid"] for f in report["findings"] if f["status"] == "fail"}
    assert failed == {"kvmha/kvm-b/KVMHA-PKG-001[kvm-b]"}  # the pair itself conforms


def test_an_unread_host_is_said_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(["discover", f"replay://{tmp_path / 'kvm-z'}", f"replay://{BUNDLES / 'kvm-b'}"])
    assert rc == 1
    captured = capsys.readouterr()
    assert "# NOT READ: error:" in captured.out and "kvm-z" in captured.err
    assert "# No HA pair found:" in captured.out
    assert tomllib.loads(captured.out)["hosts"].keys() == {"kvm-z", "kvm-b"}


def test_a_bad_spec_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["discover", "bogus://x"]) == pytest.ExitCode.USAGE_ERROR
    assert "HOST: host spec 'bogus://x'" in capsys.readouterr().err


def test_hostile_names_stay_inside_their_strings_and_comments() -> None:
    evil_domain = 'fw"\n[hosts.injected]\nspec = "local://"\x7f'
    evil_cluster = "c]\n[injected]"
    spec = ClusterSpec(
        evil_cluster,
        "unknown",
        "broadcast",
        (MemberSpec("kvm-a", evil_domain, "master"), MemberSpec("kvm-a", "fw-b", "slave")),
        (PairSpec("br\n#x", "br\n#x"),),
        discovered=True,
    )
    ambiguous = AmbiguousLayout(
        (("kvm-a", "x\n[injected2]"), ("kvm-a", "y"), ("kvm-a", "z")), ("br\nq", "br2"), "why"
    )
    d = Discovery((spec,), (ambiguous,), {"kvm-a": 5}, {"kvm-a": {"why\n[injected3]": 1}})
    host = HostFacts("kvm-a", "local://", "ok", None)
    text = inventory_toml([HostTarget("kvm-a", "local://")], [host], d)
    doc = tomllib.loads(text)
    assert set(doc) == {"hosts", "clusters"}
    assert set(doc["hosts"]) == {"kvm-a"}
    (cluster,) = doc["clusters"].values()
    assert list(doc["clusters"]) == [evil_cluster]
    assert cluster["members"][0]["domain"] == evil_domain
    assert cluster["pairs"][0]["bridge"] == "br\n#x"


def test_an_ambiguous_layout_is_a_commented_cluster_to_fill_in(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.audit.test_discovery import add_domain, copy_scenario

    d = copy_scenario("single-ok", tmp_path)
    add_domain(d / "kvm-a", "web1", ["br1-internal", "br2-external"])
    assert main(["discover", f"replay://{d / 'kvm-a'}", f"replay://{d / 'kvm-b'}"]) == 1
    text = capsys.readouterr().out
    assert "clusters" not in tomllib.loads(text)  # no pair guessed out of three
    comments = [line for line in text.splitlines() if line.startswith("#")]
    assert any(line.startswith("# AMBIGUOUS: 3 domains share") for line in comments)
    assert "# NIC-to-bridge layout: br1-internal, br2-external" in comments
    for dom in ("fw-master", "fw-slave", "web1"):
        assert f"#   {dom} on kvm-a" in comments
    uncommented = "\n".join(
        line[2:] for line in text.splitlines() if line.startswith("# [clusters")
    )
    assert uncommented == "[clusters.NAME]"
