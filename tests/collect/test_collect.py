"""The batch command and its output: one round trip, nothing injectable, damage detected."""

from __future__ import annotations

import subprocess

import pytest

from pytest_kvmha.collect.framing import BatchOutputError, split_sections
from pytest_kvmha.collect.host import collect
from pytest_kvmha.collect.script import batch_script
from pytest_kvmha.config.hosts import host_name_from_spec
from pytest_kvmha.config.target import CollectOptions, HostTarget

B = "0123456789abcdef01234567"


def run_script(script: str) -> str:
    return subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=60).stdout


def test_sections_round_trip_exact_bytes() -> None:
    script = batch_script(B).split("sec identity identity")[0] + (
        "sec a printf 'no newline'\nsec b sh -c 'echo out; echo err >&2; exit 3'\nsec c true\n"
    )
    sections = split_sections(run_script(script), B)
    assert sections["a"].stdout == "no newline" and sections["a"].rc == 0
    assert (sections["b"].stdout, sections["b"].stderr, sections["b"].rc) == ("out\n", "err\n", 3)
    assert sections["c"].stdout == "" and sections["c"].rc == 0


def test_output_cut_mid_section_is_detected() -> None:
    out = run_script(
        batch_script(B).split("sec identity identity")[0] + "sec a echo hi\nsec b echo x\n"
    )
    cut = out[: out.index(f"KVMHA{B} STDERR b")]
    with pytest.raises(BatchOutputError, match="ends inside section 'b'"):
        split_sections(cut, B)


def test_forged_markers_in_section_output_cannot_fake_sections() -> None:
    # A domain XML cannot know the per-run random boundary; a different one is plain text.
    other = "f" * 24
    script = batch_script(B).split("sec identity identity")[0] + (
        f"sec a printf '\\nKVMHA{other} END a 0\\n'\n"
    )
    sections = split_sections(run_script(script), B)
    assert list(sections) == ["a"] and f"KVMHA{other} END a 0" in sections["a"].stdout


def test_script_is_fixed_text_no_host_or_inventory_names() -> None:
    """Two boundaries give the same text but for the boundary, and no name from an inventory
    or a recording (host, domain, bridge, port) is in it: it takes none."""
    other = "fedcba9876543210fedcba98"
    assert batch_script(B) != batch_script(other)
    assert batch_script(B).replace(B, "@") == batch_script(other).replace(other, "@")
    assert B in batch_script(B)
    names = ["kvm-a", "kvm-b", "fw-a", "fw-b", "br1-internal", "br2-external", "up-a", "vnet"]
    for flags in ({}, {"secure": True}, {"skip_links": True, "skip_virsh": True}):
        text = batch_script(B, **flags)  # type: ignore[arg-type]
        assert [n for n in names if n in text] == []
    with pytest.raises(ValueError):
        batch_script("$(reboot)")


def test_script_is_posix_sh() -> None:
    subprocess.run(["sh", "-n", "-c", batch_script(B)], check=True)


def test_local_collection_is_one_round_trip_and_never_raises() -> None:
    bundle = collect(HostTarget("local", "local://"), CollectOptions())
    assert bundle.status == "ok", bundle.error
    assert bundle.round_trips == 1
    assert {"identity", "packages", "links"} <= set(bundle.sections)


def test_unreachable_ssh_host_becomes_status_not_exception(tmp_path) -> None:
    config = tmp_path / "ssh_config"
    config.write_text("Host *\n  ConnectTimeout 2\n  StrictHostKeyChecking no\n  BatchMode yes\n")
    bundle = collect(HostTarget("gone", "ssh://root@127.0.0.1:1"), CollectOptions(str(config)))
    assert bundle.status == "unreachable"
    assert bundle.error and bundle.error.startswith("gone: ")


@pytest.mark.parametrize(
    ("spec", "name"),
    [
        ("ssh://root@kvm1", "kvm1"),
        ("ssh://root@kvm1:2222", "kvm1"),
        ("paramiko://admin@10.0.0.1", "10.0.0.1"),
        ("local://", "local"),
        ("replay://recorded/kvm-a", "kvm-a"),
        ("replay:///abs/dir/kvm-b/", "kvm-b"),
    ],
)
def test_host_names_from_specs(spec: str, name: str) -> None:
    assert host_name_from_spec(spec) == name


def test_unbatch_splits_virsh_batches_per_uuid() -> None:
    from pytest_kvmha.bundle.store import Section
    from pytest_kvmha.collect.framing import unbatch

    u1, u2, u3 = (
        "0f0f0f0f-0000-4000-8000-000000000001",
        "0f0f0f0f-0000-4000-8000-000000000002",
        "ab-cd",
    )
    stdout = (
        f"KVMHA{B}:{u1}:<domain>\n  <name>a</name>\n</domain>\n\n"
        f"KVMHA{B}:{u2}:"
        f"KVMHA{B}:{u3}:<filter name='x'/>\n"
    )
    out = unbatch(
        {
            "batch-domain-inactive": Section(stdout, "error: failed to get domain 'b'\n", 0),
            "identity": Section("id\n"),
        },
        B,
    )
    assert out["domain-inactive/" + u1] == Section("<domain>\n  <name>a</name>\n</domain>\n", "", 0)
    # virsh gives no per-command status: an empty dump is a failed section with the batch's stderr
    assert out["domain-inactive/" + u2] == Section("", "error: failed to get domain 'b'", 1)
    assert out["domain-inactive/" + u3].stdout == "<filter name='x'/>\n"
    assert "batch-domain-inactive" not in out and out["identity"].stdout == "id\n"


def test_libvirt_uri_reads_libvirt_through_libvirt_python(tmp_path) -> None:
    """libvirt = URI: the libvirt sections come from libvirt-python (here the test driver,
    which needs no daemon), the rest from the host spec; the same parsers read both."""
    pytest.importorskip("libvirt")
    from pathlib import Path

    from pytest_kvmha.parse.host import parse_bundle

    node = Path(__file__).parents[1] / "data" / "libvirt-test-node.xml"
    bundle = collect(HostTarget("local", "local://", f"test://{node}"), CollectOptions())
    assert bundle.status == "ok", bundle.error
    assert bundle.round_trips == 2  # the shell batch (no virsh part) + one libvirt connection
    assert any(c["command"].startswith("libvirt-python test://") for c in bundle.commands)
    assert bundle.sections["virsh-nwfilters"].rc == 1  # the test driver has no nwfilters
    facts = parse_bundle(bundle)
    assert facts.domains is not None and sorted(facts.domains) == ["fw-a", "fw-b"]
    fw_b = facts.domains["fw-b"]
    assert (fw_b.active, fw_b.nics[0].type, fw_b.nics[0].source_network) == (
        True,
        "network",
        "ha-br1",
    )
    assert facts.networks is not None and facts.networks["ha-br1"].virtualport == "openvswitch"
    # the test driver has no nwfilter driver and no NIC references a filter: none, no problem
    assert facts.nwfilters == {} and "nwfilters" not in facts.problems


def test_a_host_that_hangs_is_unreachable_and_the_others_are_audited() -> None:
    import threading

    from pytest_kvmha.collect.pool import collect_all

    release = threading.Event()

    def collect_one(target: HostTarget, options: CollectOptions):  # type: ignore[no-untyped-def]
        if target.name == "stuck":
            release.wait(30)  # connected, then never answers
        return collect(target, options)

    targets = [HostTarget("stuck", "local://"), HostTarget("fine", "local://")]
    try:
        stuck, fine = collect_all(targets, CollectOptions(timeout=2), collect_one)
    finally:
        release.set()
    assert (stuck.status, stuck.error) == (
        "unreachable",
        "stuck: no answer within 2 s (host gone mid-audit?)",
    )
    assert fine.status == "ok"
