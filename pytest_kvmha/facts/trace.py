"""What Open vSwitch answered to "where does this frame go", as frozen facts.

Built by :mod:`pytest_kvmha.parse.trace` from ``ovs-appctl ofproto/trace`` and ``dpif/show``
output; read by the trace check. No I/O, no parsing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = [
    "Delivery",
    "DpAction",
    "DpifPorts",
    "TraceEvidence",
    "TraceResult",
    "TraceRule",
    "TraceRun",
]


@dataclass(frozen=True, slots=True)
class TraceRule:
    """One OpenFlow rule the frame hit, as the trace prints it."""

    bridge: str
    table: int
    priority: int | None  # None: "No match." and the like (no rule)
    match: str  # "" for a catch-all rule
    actions: tuple[str, ...]  # the rule's actions, one per line of the trace
    notes: tuple[str, ...]  # "-> ..." and ">> ..." lines: what NORMAL and others did

    @property
    def drops(self) -> bool:
        """The rule's own actions drop the frame (an explicit ``drop`` or no action at all)."""
        return self.priority is not None and (not self.actions or "drop" in self.actions)

    @property
    def rewrites_vlan(self) -> bool:
        return any(_VLAN_ACTION.match(a) for a in self.actions)

    def describe(self) -> str:
        match = self.match or "(any)"
        prio = f"priority {self.priority}" if self.priority is not None else "no rule"
        acts = ",".join(self.actions) or "(none: drop)"
        return f"bridge {self.bridge} table {self.table} {prio} match {match} actions {acts}"


_VLAN_ACTION = re.compile(
    r"(mod_vlan_vid|mod_vlan_pcp|strip_vlan|push_vlan|pop_vlan|set_vlan_vid|set_vlan_pcp"
    r"|set_field:[^>]*->vlan_vid|set_field:[^>]*->vlan_tci|load:[^>]*->NXM_OF_VLAN_TCI)"
)


@dataclass(frozen=True, slots=True)
class DpAction:
    """One datapath action: ``output`` (to a datapath port), ``push_vlan``, ``pop_vlan``,
    ``drop`` or ``other`` (kept as text)."""

    kind: str
    port: int | None = None
    vlan: int | None = None
    text: str = ""


@dataclass(frozen=True, slots=True)
class Delivery:
    """The frame leaving by one datapath port, with the VLAN it carries there (None: untagged)."""

    port: int
    vlan: int | None


@dataclass(frozen=True, slots=True)
class TraceResult:
    flow: str
    rules: tuple[TraceRule, ...]
    actions: tuple[DpAction, ...]
    final_flow: str

    @property
    def dropped(self) -> bool:
        return not any(a.kind == "output" for a in self.actions)

    def deliveries(self, vlan: int | None) -> tuple[Delivery, ...]:
        """Where the frame leaves, walking the actions with the frame's VLAN (``vlan`` on entry)."""
        stack: list[int | None] = [vlan] if vlan is not None else []
        out = []
        for a in self.actions:
            if a.kind == "push_vlan":
                stack.append(a.vlan)
            elif a.kind == "pop_vlan" and stack:
                stack.pop()
            elif a.kind == "output" and a.port is not None:
                out.append(Delivery(a.port, stack[-1] if stack else None))
        return tuple(out)

    def drop_rule(self) -> TraceRule | None:
        """The last rule whose own actions drop the frame."""
        return next((r for r in reversed(self.rules) if r.drops), None)

    def vlan_rules(self) -> tuple[TraceRule, ...]:
        """Rules with explicit VLAN actions (NORMAL's own tagging is not a rule action)."""
        return tuple(r for r in self.rules if r.rewrites_vlan)

    def drop_notes(self) -> tuple[str, ...]:
        """What NORMAL said when it dropped (``>>>> ... <<<<`` / ``>> ...`` lines)."""
        return tuple(n for r in self.rules for n in r.notes if n.startswith(">>"))


@dataclass(frozen=True, slots=True)
class DpifPorts:
    """``ovs-appctl dpif/show``: per bridge its datapath, per datapath its port numbers."""

    bridge_datapath: Mapping[str, str]  # bridge -> datapath ("netdev@ovs-netdev")
    ports: Mapping[str, Mapping[int, str]]  # datapath -> datapath port number -> port name

    def name(self, bridge: str, port: int) -> str | None:
        dp = self.bridge_datapath.get(bridge)
        return self.ports.get(dp, {}).get(port) if dp is not None else None


@dataclass(frozen=True, slots=True)
class TraceRun:
    """One recorded ``ofproto/trace``: its result, or why there is none."""

    result: TraceResult | None
    problem: str | None  # the command failed (unknown bridge, ovs-appctl missing) or bad text


@dataclass(frozen=True, slots=True)
class TraceEvidence:
    """A host's recorded traces (``None`` on :class:`HostFacts`: the trace phase did not run)."""

    dpif: DpifPorts | None
    dpif_problem: str | None
    runs: Mapping[str, TraceRun] = field(default_factory=lambda: MappingProxyType({}))
    # What-if: the host's facts are a simulated change; its recorded traces show the switch
    # before that change, so they prove nothing about the state after it.
    simulated: bool = False
