"""Every remediation the catalogue prints on the recorded scenarios, applied to the evidence and
re-audited: the finding that printed it passes afterwards (tests/remedykit.py applies it).

The ones that cannot be applied to recorded evidence are listed by name in UNCOVERED with the
reason, and ``test_every_printed_remediation_is_applied_or_listed`` keeps both lists complete: a
new remediation on a recorded scenario fails it until it is applied here or listed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ..bundlekit import BUNDLES, copy_scenario, finding, run
from ..remedykit import NotApplicable, apply_remediation

Key = tuple[str, str, str]  # scenario, check, subject

# The finding's host when its subject is a host (HOST and CLUSTER_HOST scopes); None: the
# remediation names its host ("on HOST") or the one host that has the domain.
APPLIED: dict[Key, str | None] = {
    ("bridge-utils", "KVMHA-PKG-001", "kvm-a"): "kvm-a",
    ("mac-filter", "KVMHA-HB-002", "fw-slave"): None,
    ("mtu-step", "KVMHA-OVS-005", "If1"): None,
    ("mtu-step", "KVMHA-OVS-005", "If2"): None,
    ("per-pair-missing-vlan", "KVMHA-VLAN-002", "kvm-a"): "kvm-a",
    ("per-pair-promisc-off", "KVMHA-HB-001", "kvm-b"): "kvm-b",
    ("promisc-off", "KVMHA-HB-001", "kvm-a"): "kvm-a",
    ("q35-misaligned", "KVMHA-VIRT-002", "If2"): None,
    ("slot-mismatch", "KVMHA-VIRT-002", "If2"): None,
    ("stp-on", "KVMHA-OVS-003", "If1"): None,
    ("trunk-missing-vlan", "KVMHA-VLAN-002", "kvm-b"): "kvm-b",
    ("two-bare", "KVMHA-VLAN-001", "If1"): None,
    ("two-bare", "KVMHA-VLAN-001", "If2"): None,
    ("uplink-access", "KVMHA-VLAN-002", "kvm-b"): "kvm-b",
    ("vlan-clash", "KVMHA-VLAN-001", "If2"): None,
    ("wrong-member-tag", "KVMHA-VLAN-001", "If2"): None,
}

# Not applicable to recorded evidence, and why.
TRACE_ADVICE = "KVMHA-TRACE-001 prints advice that points at KVMHA-VLAN-001/002 (a comment)"
# A trace's key covers the switch configuration (TraceSpec.key): after any fix the recorded
# traces are of the configuration before it, and TRACE-001 errs until the host is traced again.
RETRACE = "ovs-ofctl del-flows: only a new trace shows its effect (recorded traces are fixed)"
UNCOVERED: dict[Key, str] = {
    **{
        (s, "KVMHA-TRACE-001", subj): TRACE_ADVICE
        for s, subjects in {
            "patch-tag-wrong": ("fw-a:If2", "fw-b:If2"),
            "per-pair-missing-vlan": ("fw-a:If2", "fw-b:If2"),
            "trunk-missing-vlan": ("fw-a:If2", "fw-b:If2"),
            "uplink-access": ("fw-a:If1", "fw-b:If1", "fw-a:If2", "fw-b:If2"),
            "vlan-clash": ("fw-a:If2", "fw-b:If2"),
            "wrong-member-tag": ("fw-a:If2", "fw-b:If2"),
        }.items()
        for subj in subjects
    },
    ("trace-drop", "KVMHA-TRACE-001", "fw-a:If1"): RETRACE,
    ("trace-drop", "KVMHA-TRACE-001", "fw-b:If1"): RETRACE,
    ("trace-vlan-rewrite", "KVMHA-TRACE-001", "fw-a:If1"): RETRACE,
    ("patch-tag-wrong", "KVMHA-VLAN-001", "If2"): "a comment: which patch port to tag",
    ("two-bare", "KVMHA-HB-001", "kvm-a"): "a comment: points at KVMHA-OVS-002",
    ("two-bare", "KVMHA-HB-001", "kvm-b"): "a comment: points at KVMHA-OVS-002",
    ("two-bare", "KVMHA-OVS-002", "If1"): "add-br then moving the NICs: a whole re-wiring",
    ("two-bare", "KVMHA-OVS-002", "If2"): "add-br then moving the NICs: a whole re-wiring",
    ("missing-virtualport", "KVMHA-VIRT-001", "fw-slave:If2"): "an <interface> rewrite",
    **{
        ("two-bare", "KVMHA-VIRT-001", f"{fw}:{nic}"): "an <interface> rewrite"
        for fw in ("fw-a", "fw-b")
        for nic in ("If1", "If2")
    },
    ("shared-bridge", "KVMHA-OVS-002", "If2"): "a <source bridge> move onto a new bridge",
    ("bond-member-down", "KVMHA-OVS-004", "kvm-a"): "a comment: bring the bond's members up",
    ("bond-member-down", "KVMHA-OVS-004", "kvm-b"): "a comment: bring the bond's members up",
    ("stp-on", "KVMHA-TRACE-001", "fw-a:If1"): TRACE_ADVICE,
    ("stp-on", "KVMHA-TRACE-001", "fw-b:If1"): RETRACE,
    ("two-clusters-one-group", "KVMHA-ID-001", "vlan101@kvm-a+kvm-b"): (
        "a comment: which cluster takes another group-id is the operator's choice"
    ),
}


def printed() -> set[Key]:
    out = set()
    for d in sorted(p for p in BUNDLES.iterdir() if (p / "clusters.toml").exists()):
        for f in run(d).findings:
            if f.status == "fail" and f.remediation:
                out.add((d.name, f.check.id, f.subject))
    return out


def test_every_printed_remediation_is_applied_or_listed() -> None:
    assert not set(APPLIED) & set(UNCOVERED)
    assert printed() == set(APPLIED) | set(UNCOVERED)


@pytest.mark.parametrize("key", sorted(APPLIED), ids=lambda k: "-".join(k))
def test_remediation_applied_then_reaudited_passes(tmp_path: Path, key: Key) -> None:
    scenario, check, subject = key
    d = copy_scenario(scenario, tmp_path)
    before = finding(run(d), check, subject)
    assert before.status == "fail"
    apply_remediation(d, APPLIED[key], before.remediation)
    after = finding(run(d), check, subject)
    assert after.status == "pass", (before.remediation, after.detail)


@pytest.mark.parametrize("key", sorted(UNCOVERED), ids=lambda k: "-".join(k))
def test_uncovered_ones_really_cannot_be_applied(tmp_path: Path, key: Key) -> None:
    """UNCOVERED holds only what the interpreter refuses, or what does not pass offline."""
    scenario, check, subject = key
    d = copy_scenario(scenario, tmp_path)
    before = finding(run(d), check, subject)
    try:
        apply_remediation(d, None, before.remediation)
    except (NotApplicable, AssertionError, ValueError):
        return
    assert finding(run(d), check, subject).status != "pass", "applies offline: move to APPLIED"
