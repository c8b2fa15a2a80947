"""``ovs-appctl bond/show`` and ``lacp/show`` as frozen facts. Pure.

The layout is ``bond_print_details()`` (ofproto/bond.c) and ``lacp_print_details()``
(lib/lacp.c). Open vSwitch 2.15 renamed "slave" to "member" in both (``slave p1: enabled`` ->
``member p1: enabled``, ``active slave`` -> ``active member``, ``slave: p1: current attached``
-> ``member: p1: current attached``): both spellings are read.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType

from pytest_kvmha.bundle.contract import OVS_BONDS, OVS_LACP
from pytest_kvmha.bundle.store import Section
from pytest_kvmha.facts.bond import BondMember, BondState
from pytest_kvmha.parse.evidence import FactError, present, show

_HEADER = re.compile(r"---- (.+) ----")
_BOND_MEMBER = re.compile(r"(?:member|slave) (.+): (enabled|disabled)")
_LACP_MEMBER = re.compile(
    r"(?:member|slave): (.+): ((?:current|expired|defaulted) (?:attached|detached))"
)


def _blocks(text: str, what: str) -> dict[str, list[str]]:
    blocks: dict[str, list[str]] = {}
    lines: list[str] | None = None
    for number, line in enumerate(text.splitlines(), 1):
        head = _HEADER.fullmatch(line.strip())
        if head:
            name = head.group(1)
            if name in blocks:
                raise FactError(f"{what}: line {number}: {show(name)} appears twice")
            lines = blocks[name] = []
        elif lines is not None:
            lines.append(line)
        elif line.strip():
            raise FactError(f"{what}: line {number}: text before the first '---- NAME ----'")
    return blocks


def parse_bond_show(text: str) -> dict[str, BondState]:
    out = {}
    for name, lines in _blocks(text, OVS_BONDS).items():
        keys: dict[str, str] = {}
        members: list[dict[str, object]] = []
        for line in lines:
            if not line.strip():
                continue
            m = _BOND_MEMBER.fullmatch(line.strip()) if not line.startswith(" ") else None
            if m:
                members.append({"name": m.group(1), "enabled": m.group(2) == "enabled"})
                continue
            text_ = line.strip()
            if members and line.startswith(" "):
                if text_ in ("active member", "active slave"):
                    members[-1]["active"] = True
                elif text_.startswith("may_enable:"):
                    members[-1]["may_enable"] = text_.split(":", 1)[1].strip() == "true"
                continue  # hash loads, updelay/downdelay countdowns
            if ":" in text_ and not members:
                key, value = text_.split(":", 1)
                keys[key.strip()] = value.strip()
                continue
            raise FactError(f"{OVS_BONDS}: bond {show(name)}: unexpected line {show(line)}")
        if not members:
            raise FactError(f"{OVS_BONDS}: bond {show(name)} lists no member")
        out[name] = BondState(
            name=name,
            mode=keys.get("bond_mode"),
            lacp_status=keys.get("lacp_status"),
            members=tuple(
                BondMember(
                    name=str(m["name"]),
                    enabled=bool(m["enabled"]),
                    may_enable=m.get("may_enable"),  # type: ignore[arg-type]
                    active=bool(m.get("active", False)),
                )
                for m in members
            ),
        )
    return out


def parse_lacp_show(text: str) -> dict[str, tuple[bool, dict[str, str]]]:
    """bond -> (negotiated, member -> 'current attached' ...)."""
    out = {}
    for name, lines in _blocks(text, OVS_LACP).items():
        negotiated = None
        members: dict[str, str] = {}
        for line in lines:
            text_ = line.strip()
            if text_.startswith("status:") and not members:
                negotiated = text_.split(":", 1)[1].split()[-1:] == ["negotiated"]
            m = _LACP_MEMBER.fullmatch(text_)
            if m:
                members[m.group(1)] = m.group(2)
        if negotiated is None:
            raise FactError(f"{OVS_LACP}: port {show(name)}: no 'status:' line")
        out[name] = (negotiated, members)
    return out


def build_bonds(sections: Mapping[str, Section]) -> Mapping[str, BondState]:
    """Raises FactError (the bonds are then unknown) when a section is missing or broken."""
    bonds_sec = present(sections, OVS_BONDS)
    lacp_sec = present(sections, OVS_LACP)
    if bonds_sec is None or lacp_sec is None:
        raise FactError(
            f"{OVS_BONDS}/{OVS_LACP}: not collected (a bundle recorded before bonds were read)"
        )
    for sec, what in ((bonds_sec, "bond/show"), (lacp_sec, "lacp/show")):
        if sec.rc != 0:
            raise FactError(f"ovs-appctl {what} failed (rc {sec.rc}): {sec.stderr.strip()}")
    bonds = parse_bond_show(bonds_sec.stdout)
    lacp = parse_lacp_show(lacp_sec.stdout)
    out = {}
    for name, bond in bonds.items():
        if name in lacp:
            negotiated, words = lacp[name]
            members = tuple(
                BondMember(m.name, m.enabled, m.may_enable, m.active, words.get(m.name))
                for m in bond.members
            )
            bond = BondState(bond.name, bond.mode, bond.lacp_status, members, negotiated)
        out[name] = bond
    return MappingProxyType(out)
