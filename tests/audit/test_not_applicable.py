"""Which findings are no items because their check does not apply to the cluster at all: only
skips of a check that needs what the cluster declares nothing of, and never one asked for."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_kvmha.audit.applicable import NotApplicable, declares, split_not_applicable
from pytest_kvmha.config.inventory import ClusterSpec, MemberSpec
from pytest_kvmha.model import (
    ERROR,
    FAIL,
    FIREWALL_CONFIG,
    PASS,
    SKIP,
    Check,
    Finding,
    Scope,
    Severity,
    check,
    passed,
)


def _check(check_id: str, needs: frozenset[str] = frozenset({FIREWALL_CONFIG})) -> Check:
    return Check(
        check_id, "t", Severity.HIGH, Scope.CLUSTER, "r", "fix", "src", lambda c: passed(""), needs
    )


def _cluster(name: str, config: str | None = None, console: str | None = None) -> ClusterSpec:
    members = (
        MemberSpec("kvm-a", f"{name}-a", "master", config=config, console=console),
        MemberSpec("kvm-b", f"{name}-b", "slave"),
    )
    return ClusterSpec(name, "fortigate", "broadcast", members, ())


def _finding(c: Check, status: str, cluster: str = "c1") -> Finding:
    return Finding(c, status, cluster, "why", None, cluster)


FW2, FW3, HB3 = _check("X-FW-2"), _check("X-FW-3"), _check("X-HB-3", frozenset())


def test_only_skips_of_checks_that_need_what_the_cluster_lacks_are_left_out() -> None:
    findings = [
        _finding(FW2, SKIP),
        _finding(FW3, SKIP),
        _finding(HB3, SKIP),  # a skip of another kind: an item
        _finding(_check("X-FW-4"), FAIL),  # it ran: an item, whatever it needs
        _finding(_check("X-FW-5"), ERROR),
        _finding(_check("X-FW-6"), PASS),
        _finding(FW2, SKIP, cluster="c2"),  # c2 declares a console
        Finding(FW3, SKIP, "kvm-a", "why", "kvm-a", None),  # no cluster: an item
        _finding(FW3, SKIP, cluster="gone"),  # a cluster the audit does not know: an item
    ]
    kept, left_out = split_not_applicable(
        findings, [_cluster("c1"), _cluster("c2", console="ssh://audit@10.0.0.1")]
    )
    assert kept == findings[2:]
    assert left_out == [
        NotApplicable(
            "c1",
            FIREWALL_CONFIG,
            ("X-FW-2", "X-FW-3"),
            ("kvmha/c1/X-FW-2[c1]", "kvmha/c1/X-FW-3[c1]"),
        )
    ]
    assert (
        left_out[0].line == "firewall-config checks: not applicable, no configs declared (2 checks)"
    )


@pytest.mark.parametrize(
    "spec",
    [
        _cluster("c1", config="/etc/fw-a.conf"),
        _cluster("c1", console="ssh://audit@10.0.0.1"),
    ],
)
def test_one_member_declaring_keeps_every_finding(spec: ClusterSpec) -> None:
    findings = [_finding(FW2, SKIP), _finding(FW3, SKIP)]
    assert declares(spec, FIREWALL_CONFIG)
    assert split_not_applicable(findings, [spec]) == (findings, [])


@pytest.mark.parametrize(
    "nodeid",
    ["kvmha/c1/X-FW-2[c1]", "kvmha/c1/X-FW-2"],
)
def test_a_node_id_naming_the_check_keeps_it(nodeid: str) -> None:
    findings = [_finding(FW2, SKIP), _finding(FW3, SKIP)]
    kept, left_out = split_not_applicable(findings, [_cluster("c1")], [nodeid])
    assert kept == findings[:1]
    assert [n.checks for n in left_out] == [("X-FW-3",)]
    # a prefix that names no check, or another cluster's check, keeps nothing
    for other in ("kvmha/c1", "kvmha/c2/X-FW-2", "kvmha-whatif/c1/X-FW-2"):
        assert split_not_applicable(findings, [_cluster("c1")], [other])[0] == []


def test_what_if_node_ids_have_their_own_root() -> None:
    findings = [_finding(FW2, SKIP)]
    kept, left_out = split_not_applicable(
        findings, [_cluster("c1")], ["kvmha/c1/X-FW-2"], root="kvmha-whatif"
    )
    assert kept == [] and left_out[0].nodeids == ("kvmha-whatif/c1/X-FW-2[c1]",)
    kept, _ = split_not_applicable(
        findings, [_cluster("c1")], ["kvmha-whatif/c1/X-FW-2"], root="kvmha-whatif"
    )
    assert kept == findings


def test_an_unknown_need_is_refused() -> None:
    meta: dict[str, Any] = {"title": "t", "severity": "low", "scope": Scope.HOST}
    meta |= {"rationale": "r", "remediation": "fix", "source": "src"}
    with pytest.raises(ValueError, match="unknown needs"):
        check("SITE-X-001", needs=["licence"], **meta)
