"""Open vSwitch's own answer to "where does this frame go": ``ofproto/trace`` output as facts.

``ovs-appctl ofproto/trace BRIDGE FLOW`` runs a frame through the bridge's real OpenFlow tables
(patch ports and all) without sending anything, and prints each rule it hit and the final
``Datapath actions:`` (output to datapath port numbers, ``push_vlan``/``pop_vlan``, ``drop``).
``ovs-appctl dpif/show`` maps those datapath port numbers back to port names. This module
parses both texts into the facts of :mod:`pytest_kvmha.facts.trace`; it does no I/O (the
collector records the texts, see :func:`pytest_kvmha.collect.traces.collect_traces`) and knows
nothing of clusters (see :mod:`pytest_kvmha.topology.traceplan`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from pytest_kvmha.bundle.contract import DPIF_SECTION, TRACE_PREFIX
from pytest_kvmha.bundle.store import MISSING_RC, Section
from pytest_kvmha.facts.trace import (
    DpAction,
    DpifPorts,
    TraceEvidence,
    TraceResult,
    TraceRule,
    TraceRun,
)


class TraceParseError(ValueError):
    """Trace output that is not what ``ofproto/trace`` prints; the message says what is wrong."""


class TraceDamaged(ValueError):
    """A recorded trace section is damaged (its file is missing or not UTF-8): the host's trace
    evidence as a whole is not read, and the damage is a problem of the host."""


_HEADER = re.compile(r'^\s*bridge\("(?P<name>[^"]*)"\)\s*$')
_RULE = re.compile(r"^\s*(?P<table>\d+)\.\s+(?P<rest>.*)$")
_PRIORITY = re.compile(r"^(?:(?P<match>.*?),\s+)?priority (?P<prio>\d+)(?:,\s+cookie \S+)?$")
_PUSH = re.compile(r"push_vlan\((?:[^)]*?\b)?vid=(\d+)")


def split_actions(text: str) -> list[str]:
    """``a,b(c,d),e`` -> ``[a, b(c,d), e]``: commas inside parentheses belong to the action."""
    out: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            out.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    if "".join(cur).strip():
        out.append("".join(cur).strip())
    return out


def parse_dp_actions(text: str) -> tuple[DpAction, ...]:
    out = []
    for word in split_actions(text.strip()):
        if word.isdigit():
            out.append(DpAction("output", port=int(word), text=word))
        elif word == "drop":
            out.append(DpAction("drop", text=word))
        elif word == "pop_vlan":
            out.append(DpAction("pop_vlan", text=word))
        elif word.startswith("push_vlan("):
            m = _PUSH.search(word)
            if m is None:
                raise TraceParseError(f"push_vlan without a vid: {word[:80]!r}")
            out.append(DpAction("push_vlan", vlan=int(m.group(1)), text=word))
        else:
            out.append(DpAction("other", text=word))
    return tuple(out)


@dataclass
class _OpenRule:
    """A rule while its action lines are read."""

    bridge: str
    table: int
    priority: int | None
    match: str
    actions: list[str]
    notes: list[str]

    def done(self) -> TraceRule:
        return TraceRule(
            self.bridge,
            self.table,
            self.priority,
            self.match,
            tuple(self.actions),
            tuple(self.notes),
        )


_SEPARATOR = "=" * 79
_RECIRC = re.compile(r"^recirc\((?P<id>0x[0-9a-f]+)\)(?P<rest>.*)$")
_RECIRC_ACTION = re.compile(r"^recirc\((?P<id>0x[0-9a-f]+)\)$")
MAX_RECIRCULATIONS = 16  # passes followed for one frame; a bond needs one


def _passes(lines: list[str]) -> list[tuple[str | None, str, list[str]]]:
    """(recirc id, what its header says, lines) of each pass: the first pass (id None), then
    each continuation ``ofproto/trace`` prints after a line of 79 ``=``, ``recirc(0xN)[ -
    why]`` and another such line (ofproto-dpif-trace.c, ``ofproto_trace``: conntrack and bond
    recirculations are traced on, each as its own pass)."""
    out: list[tuple[str | None, str, list[str]]] = [(None, "", [])]
    k = 0
    while k < len(lines):
        head = _RECIRC.match(lines[k + 1].strip()) if k + 1 < len(lines) else None
        if (
            lines[k].strip() == _SEPARATOR
            and head is not None
            and k + 2 < len(lines)
            and lines[k + 2].strip() == _SEPARATOR
        ):
            out.append((head.group("id"), head.group("rest").strip(), []))
            k += 3
            continue
        out[-1][2].append(lines[k])
        k += 1
    return out


def parse_trace(text: str) -> TraceResult:
    """``ofproto/trace`` output -> :class:`TraceResult`. Raises :class:`TraceParseError`.

    A trace that recirculates for a bond (``balance-tcp``: ``hash(l4(0)),recirc(0x1)``, then a
    pass ``recirc(0x1)`` that picks the bond member) is one answer: each ``recirc(0xN)`` action
    stands for the datapath actions of pass 0xN, in order (the packet recirculates with what
    the actions before it did to it). A conntrack recirculation is not: its pass assumes a
    connection state (``resume conntrack with default ct_state=trk|new``), so it is refused."""
    passes = _passes(text.splitlines())
    by_id: dict[str, tuple[str, list[str]]] = {}
    for rid, rest, body in passes[1:]:
        if "conntrack" in rest:
            raise TraceParseError(
                f"the trace recirculates through conntrack (recirc({rid}) {rest[:80]}): its "
                "second pass assumes a connection state, not evaluated"
            )
        if rid in by_id:
            raise TraceParseError(f"recirc({rid}) is traced twice")
        by_id[str(rid)] = (rest, body)
    flow, rules, dp, final = _parse_pass(passes[0][2])
    used: list[str] = []
    actions = _resolve(parse_dp_actions(dp), by_id, rules, used)
    unused = sorted(set(by_id) - set(used))
    if unused:
        raise TraceParseError(f"recirc({unused[0]}) is traced but no action leads there")
    if used:  # the frame as it leaves: the last pass's
        final = _parse_pass(by_id[used[-1]][1])[3] or final
    return TraceResult(flow, tuple(rules), actions, final)


def _resolve(
    actions: tuple[DpAction, ...],
    by_id: dict[str, tuple[str, list[str]]],
    rules: list[TraceRule],
    used: list[str],
) -> tuple[DpAction, ...]:
    """``actions`` with every ``recirc(0xN)`` replaced by pass 0xN's actions, in order (its
    rules are appended to ``rules``, its id to ``used``)."""
    out: list[DpAction] = []
    for a in actions:
        m = _RECIRC_ACTION.match(a.text) if a.kind == "other" else None
        if m is None:
            out.append(a)
            continue
        rid = m.group("id")
        if rid not in by_id:
            raise TraceParseError(f"the trace recirculates ({a.text}) but does not show that pass")
        if rid in used or len(used) >= MAX_RECIRCULATIONS:
            raise TraceParseError(f"{a.text}: recirculates in a loop or too often")
        used.append(rid)
        _, more, dp, _ = _parse_pass(by_id[rid][1])
        rules += more
        out += _resolve(parse_dp_actions(dp), by_id, rules, used)
    return tuple(out)


def _parse_pass(lines: list[str]) -> tuple[str, list[TraceRule], str, str]:
    """(flow, rules, datapath actions text, final flow) of one pass of a trace."""
    flow = next((ln[len("Flow: ") :] for ln in lines if ln.startswith("Flow: ")), None)
    dp = [ln[len("Datapath actions: ") :] for ln in lines if ln.startswith("Datapath actions: ")]
    if flow is None or not dp:
        raise TraceParseError(
            "no 'Flow:' or no 'Datapath actions:' line (not ofproto/trace output)"
        )
    if len(dp) > 1:
        raise TraceParseError("several 'Datapath actions:' lines in one pass")
    final = next((ln[len("Final flow: ") :] for ln in lines if ln.startswith("Final flow: ")), "")
    rules: list[TraceRule] = []
    bridge: str | None = None
    cur: _OpenRule | None = None
    indent = 0

    def close() -> None:
        nonlocal cur
        if cur is not None:
            rules.append(cur.done())
        cur = None

    for ln in lines:
        if ln.startswith(("Flow: ", "Final flow: ", "Megaflow: ", "Datapath actions: ")):
            close()
            continue
        if (h := _HEADER.match(ln)) is not None:
            close()
            bridge = h.group("name")
            continue
        stripped = ln.strip()
        if not stripped or set(stripped) == {"-"}:
            continue
        if bridge is not None and (r := _RULE.match(ln)) is not None:
            close()
            rest = r.group("rest").strip()
            p = _PRIORITY.match(rest)
            cur = _OpenRule(
                bridge,
                int(r.group("table")),
                int(p.group("prio")) if p else None,
                (p.group("match") or "") if p else "",
                [],
                [] if p else [rest],
            )
            indent = len(ln) - len(ln.lstrip())
            continue
        if cur is not None and len(ln) - len(ln.lstrip()) > indent:
            if stripped.startswith(("->", ">>")):
                cur.notes.append(stripped)
            elif not stripped.startswith(("resubmit", "bridge(")):
                cur.actions.append(stripped)
    close()
    return flow, rules, dp[0], final


_DP_LINE = re.compile(r"^(?P<dp>\S+@\S+):")
_BR_LINE = re.compile(r"^  (?P<br>\S.*):$")
_PORT_LINE = re.compile(r"^    (?P<name>\S+) (?P<of>\d+)/(?P<dp>\d+|none)(?::.*)?$")


def parse_dpif_show(text: str) -> DpifPorts:
    bridge_dp: dict[str, str] = {}
    ports: dict[str, dict[int, str]] = {}
    dp: str | None = None
    bridge: str | None = None
    for ln in text.splitlines():
        if (m := _DP_LINE.match(ln)) is not None:
            dp, bridge = m.group("dp"), None
            ports.setdefault(dp, {})
        elif (m := _BR_LINE.match(ln)) is not None and dp is not None:
            bridge = m.group("br")
            bridge_dp[bridge] = dp
        elif (m := _PORT_LINE.match(ln)) is not None and dp is not None and bridge is not None:
            if m.group("dp") != "none":
                ports[dp][int(m.group("dp"))] = m.group("name")
        # Other lines (statistics of some versions) are skipped: a datapath port number the
        # map does not hold makes the trace check an error, never a guess.
    if not bridge_dp:
        raise TraceParseError("dpif/show: no datapath with bridges")
    return DpifPorts(
        MappingProxyType(bridge_dp),
        MappingProxyType({k: MappingProxyType(v) for k, v in ports.items()}),
    )


def _why(name: str, sec: Section) -> str:
    err = [ln.strip() for ln in sec.stderr.strip().splitlines() if ln.strip()]
    return f"{name}: exit status {sec.rc}: {err[-1][:300] if err else 'no error text'}"


def parse_trace_sections(sections: Mapping[str, Section]) -> TraceEvidence | None:
    """The trace sections of a bundle; None when it has none (recorded without the trace phase,
    or no port of an audited cluster on the host)."""
    if DPIF_SECTION not in sections:
        return None
    for name, sec in sorted(sections.items()):
        if (name == DPIF_SECTION or name.startswith(TRACE_PREFIX)) and sec.rc == MISSING_RC:
            raise TraceDamaged(f"{name}: {sec.stderr.strip()[:300]}")
    dpif, dpif_problem = None, None
    sec = sections[DPIF_SECTION]
    if sec.rc != 0:
        dpif_problem = _why("ovs-appctl dpif/show", sec)
    else:
        try:
            dpif = parse_dpif_show(sec.stdout)
        except TraceParseError as exc:
            dpif_problem = str(exc)
    runs = {}
    for name, sec in sections.items():
        if not name.startswith(TRACE_PREFIX):
            continue
        key = name[len(TRACE_PREFIX) :]
        if sec.rc != 0:
            runs[key] = TraceRun(None, _why("ovs-appctl ofproto/trace", sec))
            continue
        try:
            runs[key] = TraceRun(parse_trace(sec.stdout), None)
        except TraceParseError as exc:
            runs[key] = TraceRun(None, f"ofproto/trace output: {exc}")
    return TraceEvidence(dpif, dpif_problem, MappingProxyType(runs))
