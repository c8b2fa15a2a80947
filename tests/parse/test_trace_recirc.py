"""``ofproto/trace`` through a ``balance-tcp`` bond: the first pass ends in
``hash(l4(0)),recirc(0xN)`` and the trace goes on with pass ``recirc(0xN)``, which picks the
bond member (written in the shape ofproto-dpif-trace.c prints: the continuation between two
lines of 79 ``=``). Conntrack continuations assume a connection state and are refused."""

from __future__ import annotations

import pytest

from pytest_kvmha.parse.trace import TraceParseError, parse_trace

FIRST = """Flow: arp,in_port=3,dl_vlan=101,dl_vlan_pcp=0,vlan_tci1=0x0000,dl_src=52:54:00:cc:57:73,dl_dst=ff:ff:ff:ff:ff:ff,arp_spa=0.0.0.0,arp_tpa=0.0.0.0,arp_op=1,arp_sha=00:09:0f:09:00:00,arp_tha=00:00:00:00:00:00

bridge("br-trunk")
------------------
 0. priority 0
    NORMAL
     -> no learned MAC for destination, flooding

Final flow: unchanged
Megaflow: recirc_id=0,eth,arp,in_port=3,dl_vlan=101,dl_src=52:54:00:cc:57:73,dl_dst=ff:ff:ff:ff:ff:ff
Datapath actions: {actions}
"""

PASS = """
===============================================================================
recirc({rid}){why}
===============================================================================

Flow: recirc_id={rid},dp_hash=0x8a6c5d3e,arp,in_port=3,dl_vlan=101,dl_vlan_pcp=0,dl_src=52:54:00:cc:57:73,dl_dst=ff:ff:ff:ff:ff:ff

bridge("br-trunk")
------------------
    thaw
        Resuming from table 0
254. recirc_id={rid},dp_hash=0x3e/0xff, priority 20, cookie 0x0
    output:5

Final flow: recirc_id={rid},dp_hash=0x8a6c5d3e,arp,in_port=3,dl_vlan=101
Megaflow: recirc_id={rid},dp_hash=0x3e/0xff,eth,arp,in_port=3
Datapath actions: {actions}
"""


def _trace(first: str, *passes: tuple[str, str, str]) -> str:
    text = FIRST.format(actions=first)
    for rid, why, actions in passes:
        text += PASS.format(rid=rid, why=why, actions=actions)
    return text


def test_bond_recirculation_is_followed_to_the_member() -> None:
    r = parse_trace(
        _trace("pop_vlan,4,push_vlan(vid=101,pcp=0),hash(l4(0)),recirc(0x1)", ("0x1", "", "2"))
    )
    # the vnet port gets it untagged, the bond member (datapath port 2) tagged 101
    assert [(d.port, d.vlan) for d in r.deliveries(101)] == [(4, None), (2, 101)]
    assert not r.dropped
    assert [rule.table for rule in r.rules] == [0, 254]  # both passes' rules
    assert r.final_flow.startswith("recirc_id=0x1")


def test_a_continuation_that_drops_is_a_drop() -> None:
    r = parse_trace(_trace("hash(l4(0)),recirc(0x2)", ("0x2", "", "drop")))
    assert r.dropped and r.deliveries(101) == ()


def test_nested_recirculations_resolve_in_order() -> None:
    r = parse_trace(
        _trace("hash(l4(0)),recirc(0x1)", ("0x1", "", "3,recirc(0x2)"), ("0x2", "", "7"))
    )
    assert [d.port for d in r.deliveries(None)] == [3, 7]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (_trace("hash(l4(0)),recirc(0x1)"), "recirculates (recirc(0x1)) but does not show"),
        (
            _trace(
                "ct(zone=1),recirc(0x1)",
                (
                    "0x1",
                    " - resume conntrack with default ct_state=trk|new (use --ct-next to "
                    "customize)",
                    "2",
                ),
            ),  # fmt: skip
            "recirculates through conntrack",
        ),
        (_trace("2", ("0x9", "", "3")), "recirc(0x9) is traced but no action leads there"),
        (
            _trace("recirc(0x1)", ("0x1", "", "recirc(0x1)")),
            "recirculates in a loop or too often",
        ),
        (_trace("recirc(0x1)", ("0x1", "", "2"), ("0x1", "", "3")), "traced twice"),
    ],
)
def test_recirculations_that_cannot_be_followed_are_refused(text: str, message: str) -> None:
    with pytest.raises(TraceParseError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_trace(text)
