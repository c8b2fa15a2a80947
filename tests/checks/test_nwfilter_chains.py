"""KVMHA-HB-002's filter evaluator on sub-chains: ``accept`` in a protocol chain, ``return``,
``continue`` and the chain priorities, as libvirt documents them.

libvirt formatnwfilter, "Filtering rules": ``accept`` "accepts the packet with no further
analysis", ``return`` "passes this filter, but returns control to the calling filter for
further analysis", ``continue`` "goes on to the next rule"; "Filtering chains": packets start in
the root chain and "can then continue their evaluation in other chains, return from those
chains back into the root chain or be dropped or accepted by a filtering rule in one of the
traversed chains". The ebtables driver (src/nwfilter/nwfilter_ebiptables_driver.c,
``ebtablesCreateRuleInstance``) writes an ``accept`` rule as ``-j ACCEPT`` in the sub-chain
itself (``libvirt-O-vnet0-arp``), and ebtables(8) ends the whole traversal on ACCEPT, while
RETURN "resume[s] at the next rule in the previous (calling) chain". So an ``accept`` in a
sub-chain ends the evaluation; a root-chain drop after the jump never sees the frame.
"""

from __future__ import annotations

import pytest

from pytest_kvmha.facts import NwFilter, NwRule
from pytest_kvmha.topology.nwfilter import evaluate
from pytest_kvmha.topology.traffic import Frame

NIC = "52:54:00:00:00:0b"
VMAC = "00:09:0f:09:00:00"
HEARTBEAT = Frame(VMAC, "ff:ff:ff:ff:ff:ff", 0x8890, "FGCP heartbeat 0x8890")
GARP = Frame(
    VMAC,
    "ff:ff:ff:ff:ff:ff",
    0x0806,
    "gratuitous ARP from the virtual MAC",
    (("arp_op", "1"), ("arp_sha", VMAC)),
)


def rule(action: str, priority: int = 500, protocol: str | None = None, **attrs: str) -> NwRule:
    return NwRule(action, "out", priority, protocol, attrs)


DROP_ALL = rule("drop", 1000)


def chained(sub: NwFilter, *root_rules: NwRule) -> dict[str, NwFilter]:
    """A root filter ``site`` that references ``sub`` (a filter in its own chain) and then has
    ``root_rules`` (a catch-all drop, typically)."""
    site = NwFilter("site", (sub.name,), "root", None, ((sub.name, 500), *root_rules))
    return {"site": site, sub.name: sub}


@pytest.mark.parametrize(
    ("chain", "frame"),
    [("mac", HEARTBEAT), ("arp", GARP), ("arp-site", GARP)],
    ids=["mac", "arp", "arp-named"],
)
def test_accept_in_a_sub_chain_ends_the_evaluation(chain: str, frame: Frame) -> None:
    sub = NwFilter("allow", (), chain, None, (rule("accept"),))
    verdict = evaluate(chained(sub, DROP_ALL), "site", frame, NIC)
    assert not verdict.dropped, verdict.by


@pytest.mark.parametrize("chain", ["mac", "arp"])
def test_return_in_a_sub_chain_goes_back_to_the_root_chain(chain: str) -> None:
    sub = NwFilter("allow", (), chain, None, (rule("return"), rule("drop", 600)))
    verdict = evaluate(chained(sub, DROP_ALL), "site", GARP, NIC)
    assert verdict.dropped
    assert verdict.by == "site: drop out (any) (priority 1000)"  # the root's, not the sub-chain's


def test_continue_goes_on_to_the_next_rule_of_the_sub_chain() -> None:
    sub = NwFilter("allow", (), "arp", None, (rule("continue", 100), rule("drop", 200, "arp")))
    verdict = evaluate(chained(sub), "site", GARP, NIC)
    assert verdict.dropped and verdict.by == "allow: drop out <arp/> (priority 200)"


def test_a_sub_chain_sees_only_its_protocol() -> None:
    # the arp chain accepts everything it sees, but a heartbeat (0x8890) never enters it
    sub = NwFilter("allow", (), "arp", None, (rule("accept"),))
    assert evaluate(chained(sub, DROP_ALL), "site", HEARTBEAT, NIC).dropped
    assert not evaluate(chained(sub, DROP_ALL), "site", GARP, NIC).dropped


@pytest.mark.parametrize(
    ("root_priority", "dropped"),
    [
        (-900, True),  # a root rule before the mac chain's default -800: it drops first
        (-700, False),  # after the jump into mac (-800): the accept there decided
    ],
)
def test_chain_priorities_order_the_jump_among_root_rules(
    root_priority: int, dropped: bool
) -> None:
    sub = NwFilter("allow", (), "mac", None, (rule("accept"),))
    assert evaluate(chained(sub, rule("drop", root_priority)), "site", HEARTBEAT, NIC).dropped is (
        dropped
    )


def test_a_chain_priority_given_in_the_filter_moves_the_jump() -> None:
    # the same mac chain with priority 0 ("Filtering chain priorities": the chain's own
    # priority attribute replaces its protocol's default) now runs after a root drop at -100
    sub = NwFilter("allow", (), "mac", 0, (rule("accept"),))
    assert evaluate(chained(sub, rule("drop", -100)), "site", HEARTBEAT, NIC).dropped
    sub = NwFilter("allow", (), "mac", None, (rule("accept"),))
    assert not evaluate(chained(sub, rule("drop", -100)), "site", HEARTBEAT, NIC).dropped
