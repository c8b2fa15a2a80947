"""What the check tests compare against: the check ids, the recorded MACs and ports, a
scenario's expected statuses with changes, and a third member added to a recorded cluster."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tests.scenarios import IDENTITY, SCENARIOS

from ..bundlekit import BUNDLES, add_section, domain_uuid, edit_toml, host, untraced
from ..bundlekit import statuses as _statuses

Key = tuple[str, str]


# KVMHA-TRACE-001 reads traces recorded for the unedited bundle, keyed by a digest of bridge,
# flow and the configuration of the bridges the frame meets (TraceSpec.key): an edit to a tag,
# trunk, patch or bond there leaves no trace under the edited key, and the check errs
# (test_trace.py, test_an_edit_of_the_switch_invalidates_its_recorded_traces); a leg whose
# bridges the edit does not touch still passes on its trace. Asserted for every edited-bundle
# test: it passes only where it passed on the recording, never newly; its exact statuses are
# tests/checks/test_trace.py's.
def statuses(result: Any) -> dict[Key, str]:
    found = _statuses(result)
    scenario = Path(result.hosts[0].spec.removeprefix("replay://")).parent.name
    recorded = SCENARIOS[scenario].expected
    new = sorted(
        k for k, v in found.items() if k[0] == TRACE and v == "pass" and recorded.get(k) != "pass"
    )
    assert not new, f"KVMHA-TRACE-001 passes on edited evidence where the recording did not: {new}"
    # An edit to tags, trunks or bridges moves the segments KVMHA-ID-001 names; with one cluster
    # none is shared, so each passes whatever it is (its own tests: tests/checks/test_identity.py)
    if len(result.clusters) == 1:
        bad = sorted(k for k, v in found.items() if k[0] == IDENTITY and v != "pass")
        assert not bad, f"KVMHA-ID-001 does not pass with one cluster: {bad}"
    return unsegmented(untraced(found))


def unsegmented(found: Mapping[Key, str]) -> dict[Key, str]:
    """``found`` without KVMHA-ID-001 (see :func:`statuses`)."""
    return {k: v for k, v in found.items() if k[0] != IDENTITY}


def expected(scenario: str, changes: Mapping[Key, str | None] = {}) -> dict[Key, str]:
    """The scenario's recorded statuses with ``changes`` applied (None removes a finding)."""
    out = unsegmented(untraced(SCENARIOS[scenario].expected))
    # KVMHA-SRIOV-001 reads the very NIC KVMHA-VIRT-001 reads: where VIRT-001 cannot read it
    # (error) or the NIC is gone (None), so is SRIOV-001's finding, unless a change says else
    mirrored = {
        (SRIOV, subject): status
        for (check, subject), status in changes.items()
        if check == VIRT1 and status in ("error", None) and (SRIOV, subject) not in changes
    }
    for key, status in {**changes, **mirrored}.items():
        if status is None:
            out.pop(key)
        else:
            out[key] = status
    return out


def live_nics(scenario: str, host_name: str, domain: str) -> tuple[str, list[tuple[str, str]]]:
    """(uuid, [(MAC, vnet port), ...]) of a running domain in a recording: read, not hard-coded,
    so the tests survive scripts/record-bundles.py."""
    from pytest_kvmha.bundle.store import EvidenceBundle
    from pytest_kvmha.parse.host import parse_bundle

    facts = parse_bundle(EvidenceBundle.read(BUNDLES / scenario / host_name))
    assert facts.domains is not None
    dom = facts.domains[domain]
    return dom.uuid, [(n.mac or "", n.target_dev or "") for n in dom.nics]


# MACs and ports of the recordings
A_UUID, [(A_IF1, A_VNET1), (A_IF2, A_VNET2)] = live_nics("two-ok", "kvm-a", "fw-a")
B_UUID, [(B_IF1, B_VNET1), (B_IF2, B_VNET2)] = live_nics("two-ok", "kvm-b", "fw-b")

PKG = "KVMHA-PKG-001"
TRACE = "KVMHA-TRACE-001"
OVS1, OVS2 = "KVMHA-OVS-001", "KVMHA-OVS-002"
TOPO1, TOPO2 = "KVMHA-TOPO-001", "KVMHA-TOPO-002"
VIRT1, VIRT2, VIRT3 = "KVMHA-VIRT-001", "KVMHA-VIRT-002", "KVMHA-VIRT-003"
SRIOV = "KVMHA-SRIOV-001"
HB1, HB2, HB3 = "KVMHA-HB-001", "KVMHA-HB-002", "KVMHA-HB-003"
VLAN1, VLAN2 = "KVMHA-VLAN-001", "KVMHA-VLAN-002"
HOST0 = "KVMHA-HOST-000"  # one error per problem recorded for a host


PAIRS = ("If1", "If2")  # the recorded two-member scenarios' interface pairs


def errors_without_ovs(kvm: str, fw: str) -> dict[Key, str]:
    """The findings that need host ``kvm``'s Open vSwitch (its bridges, ports and uplink) for
    member ``fw``: each errs when that host's OVS cannot be read. kvm-b's uplink is judged per
    pair from every member's placement, so both hosts' KVMHA-VLAN-002 err."""
    out: dict[Key, str] = {(HB1, kvm): "error", ("KVMHA-OVS-004", kvm): "error"}
    for pair in PAIRS:
        out[(OVS2, pair)] = out[(VIRT1, f"{fw}:{pair}")] = out[(VLAN1, pair)] = "error"
        out[("KVMHA-OVS-003", pair)] = out[("KVMHA-OVS-005", pair)] = "error"
    return out | {(VLAN2, "kvm-a"): "error", (VLAN2, "kvm-b"): "error"}


def errors_without_member(kvm: str, fw: str) -> dict[Key, str]:
    """The findings that need member ``fw``'s running domain on ``kvm`` (its NICs): what needs
    its OVS ports, and the pair's PCI address and model and its MAC filter."""
    out = errors_without_ovs(kvm, fw) | {(HB2, fw): "error"}
    for pair in PAIRS:
        out[(VIRT2, pair)] = out[(VIRT3, pair)] = "error"
    return out


def problem_errors(result: Any) -> dict[Key, str]:
    """The KVMHA-HOST-000 errors of the problems the parser recorded (see test_failclosed)."""
    return {(HOST0, k): "error" for h in result.hosts for k in h.problems}


def add_third_member(d: Path, *, heartbeat: str = "broadcast") -> None:
    """A third firewall fw-c, defined (stopped) on kvm-b, listed as a member."""
    hb = host(d, "kvm-b")
    uuid_b = domain_uuid(hb, "fw-b")
    uuid_c = "5d1c0e4a-9b1f-4c39-8f64-3e0f5a6b7c8d"
    xml = (hb.dir / "sections" / f"domain-inactive/{uuid_b}").read_text()
    xml = (
        xml.replace("<name>fw-b</name>", "<name>fw-c</name>")
        .replace(uuid_b, uuid_c)
        .replace(B_IF1, "52:54:00:ee:00:01")
        .replace(B_IF2, "52:54:00:ee:00:02")
    )
    add_section(hb, f"domain-inactive/{uuid_c}", xml)
    hb.edit("virsh-domains", lambda t: t + uuid_c + "\n")
    edit_toml(
        d,
        lambda t: t.replace(
            '  { host = "kvm-b", domain = "fw-b", role = "slave" },\n',
            '  { host = "kvm-b", domain = "fw-b", role = "slave" },\n'
            '  { host = "kvm-b", domain = "fw-c", role = "slave" },\n',
        ).replace('heartbeat = "broadcast"', f'heartbeat = "{heartbeat}"'),
    )


def undeclare_vlans(d: Path) -> None:
    """The inventory declares no pair VLAN: the checks read each pair's VLAN from the hosts."""
    edit_toml(d, lambda t: t.replace("vlan = 101\n", "").replace("vlan = 102\n", ""))


FW_C_PASSES = {
    (VIRT1, "fw-c:If1"): "pass",
    (VIRT1, "fw-c:If2"): "pass",
    (SRIOV, "fw-c:If1"): "skip",  # OVS ports
    (SRIOV, "fw-c:If2"): "skip",
    (HB2, "fw-c"): "pass",
    ("KVMHA-FW-001", "fw-c"): "skip",  # no firewall configuration declared
}
