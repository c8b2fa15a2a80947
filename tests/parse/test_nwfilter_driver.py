"""A libvirt without the nwfilter driver: no filter can apply, so unreadable filters are an error
only where a NIC references one. Recorded bundles, edited as such a host answers."""

from __future__ import annotations

from pathlib import Path

from pytest_kvmha.bundle.store import EvidenceBundle
from pytest_kvmha.parse.host import parse_bundle
from pytest_kvmha.report.document import host_status
from tests.bundlekit import (
    copy_scenario,
    drop_section,
    host,
    run,
    set_section,
    statuses,
    untraced,
)

# what virsh prints on such a host (libvirt's VIR_ERR_NO_SUPPORT message)
NO_DRIVER = (
    "error: Failed to list network filters\n"
    "error: this function is not supported by the connection driver: virConnectListAllNWFilters\n"
)


def _without_driver(d: Path, name: str) -> None:
    hb = host(d, name)
    set_section(hb, "virsh-nwfilters", stdout="", rc=1, stderr=NO_DRIVER)
    for section in hb.sections("nwfilter/"):
        drop_section(hb, section)


def test_no_driver_and_no_filter_referenced_is_no_problem(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    before = untraced(statuses(run(d)))
    for name in ("kvm-a", "kvm-b"):
        _without_driver(d, name)
    facts = parse_bundle(EvidenceBundle.read(d / "kvm-a"))
    assert facts.nwfilters == {} and "nwfilters" not in facts.problems
    assert host_status(facts) == "ok"
    after = untraced(statuses(run(d)))
    assert not [k for k in after if k[0] == "KVMHA-HOST-000"]
    assert after == before  # the same verdicts as with the driver: no filter applied there either


def test_a_nic_referencing_a_filter_keeps_the_error(tmp_path: Path) -> None:
    d = copy_scenario("mac-filter", tmp_path)
    _without_driver(d, "kvm-a")
    facts = parse_bundle(EvidenceBundle.read(d / "kvm-a"))
    assert facts.nwfilters is None and host_status(facts) == "degraded"
    assert "no nwfilter driver" in facts.problems["nwfilters"]
    assert "references filter 'clean-traffic'" in facts.problems["nwfilters"]
    found = statuses(run(d))
    assert found[("KVMHA-HOST-000", "nwfilters")] == "error"
    assert found[("KVMHA-HB-002", "fw-slave")] == "error"  # its filter could not be read


def test_another_nwfilter_failure_stays_an_error(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    hb = host(d, "kvm-a")
    set_section(hb, "virsh-nwfilters", stdout="", rc=1, stderr="error: permission denied\n")
    facts = parse_bundle(EvidenceBundle.read(d / "kvm-a"))
    assert facts.nwfilters is None and "permission denied" in facts.problems["nwfilters"]


def test_an_unreadable_filter_list_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    """virsh-nwfilters that is not UTF-8 (its file unreadable as text) is the nwfilters problem
    of that host; asking whether the driver is missing must not raise on it."""
    d = copy_scenario("two-ok", tmp_path)
    path = d / "kvm-a" / "sections" / "virsh-nwfilters"
    path.write_bytes(b"\xff" + path.read_bytes())
    facts = parse_bundle(EvidenceBundle.read(d / "kvm-a"))
    assert facts.status == "ok" and facts.nwfilters is None
    assert facts.problems["nwfilters"].startswith("kvm-a: virsh-nwfilters: ")
    assert "not UTF-8 text" in facts.problems["nwfilters"]
