"""What ``ovs-appctl bond/show`` and ``lacp/show`` say about each bond, as frozen facts."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BondMember:
    name: str
    enabled: bool  # ``member X: enabled`` (``slave X:`` before OVS 2.15)
    may_enable: bool | None
    active: bool  # ``active member`` under it
    lacp: str | None = None  # lacp/show's ``member: X: current attached`` words, when LACP is on


@dataclass(frozen=True, slots=True)
class BondState:
    name: str
    mode: str | None  # bond_mode: active-backup | balance-slb | balance-tcp
    lacp_status: str | None  # negotiated | configured | off
    members: tuple[BondMember, ...]
    lacp_negotiated: bool | None = None  # lacp/show ``status: active negotiated``; None: no LACP

    def member(self, name: str) -> BondMember | None:
        return next((m for m in self.members if m.name == name), None)

    @property
    def active(self) -> BondMember | None:
        return next((m for m in self.members if m.active), None)
