"""What a NIC's libvirt nwfilter chain does to the frames a member sends: pure.

libvirt formatnwfilter ("Filtering chains", "Filtering chain priorities", "Filtering rules"):
a filter's rules live in its ``chain`` (``root`` by default; ``mac``, ``vlan``, ``stp``,
``arp``, ``rarp``, ``ipv4``, ``ipv6``, or a name such as ``arp-mac`` that makes another chain
of that protocol). The root chain holds the root filters' rules and one jump per sub-chain, in
order of priority (rule priority, chain priority; lower first; rules default to 500, chains to
their protocol's default: stp -810, mac -800, vlan -750, ipv4 -700, ipv6 -600, arp -500,
rarp -400). A sub-chain sees only frames of its protocol (``mac``: all). In a chain the first
matching rule decides: ``drop``/``reject`` end the frame, ``accept`` lets it through,
``return`` goes back to the root chain, ``continue`` goes on. Nothing matching: accepted.
An ``accept`` in a sub-chain ends the whole evaluation ("accepts the packet with no further
analysis"; the ebtables driver, ``ebtablesCreateRuleInstance`` in
src/nwfilter/nwfilter_ebiptables_driver.c, writes it as ``-j ACCEPT`` inside the sub-chain, and
ebtables(8) ends the traversal on ACCEPT but resumes the calling chain on RETURN): a root-chain
drop after the jump never sees that frame (tests/checks/test_nwfilter_chains.py).
Directions: ``out`` and ``inout`` rules apply to frames the VM sends.

Variables: ``$MAC`` is the NIC's MAC; ``$IP`` is taken as the member's own address (libvirt
learns it), so it holds for frames from the NIC's MAC only; any other variable, and any
attribute this evaluator does not know, makes the rule's condition false (so a ``return`` or
``accept`` it guards does not apply: the evaluation errs towards "dropped").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pytest_kvmha.facts import NwFilter, NwRule
from pytest_kvmha.model import MissingFacts
from pytest_kvmha.topology.traffic import Frame

CHAIN_PRIORITY = {
    "stp": -810,
    "mac": -800,
    "vlan": -750,
    "ipv4": -700,
    "ipv6": -600,
    "arp": -500,
    "rarp": -400,
}
ETHERTYPE = {"ipv4": 0x0800, "arp": 0x0806, "rarp": 0x8035, "ipv6": 0x86DD, "vlan": 0x8100}
_ELEMENT_TYPE = {"arp": 0x0806, "rarp": 0x8035, "ip": 0x0800, "ipv6": 0x86DD}
_L3 = ("tcp", "udp", "icmp", "igmp", "sctp", "esp", "ah", "udplite", "all")


@dataclass(frozen=True, slots=True)
class Verdict:
    dropped: bool
    by: str | None  # "no-mac-spoofing: drop out <mac> (priority 500)"
    undefined: tuple[str, ...] = ()  # referenced filters not defined: their rules not known


def _applies(chain: str, frame: Frame) -> bool:
    proto = chain.split("-", 1)[0]
    if proto in ("root", "mac"):
        return True
    if proto == "stp":
        return frame.dst.startswith("01:80:c2:00:00:0")
    return ETHERTYPE.get(proto) == frame.ethertype


def _value(text: str, nic_mac: str, frame: Frame) -> str | None:
    if text == "$MAC":
        return nic_mac.lower()
    if text.startswith("$"):
        return None
    return text.lower()


def _holds(key: str, want: str, frame: Frame, nic_mac: str) -> bool:
    """Whether one attribute holds for ``frame``; False when it cannot be told."""
    if want == "$IP" and key in ("srcipaddr", "arpsrcipaddr"):
        return frame.src == nic_mac.lower()  # the member's own, learned address
    value = _value(want, nic_mac, frame)
    if value is None:
        return False
    fields = dict(frame.fields)
    if key == "srcmacaddr":
        return frame.src == value
    if key == "dstmacaddr":
        return frame.dst == value
    if key == "protocolid":
        number = ETHERTYPE.get(value)
        if number is None:
            try:
                number = int(value, 0)
            except ValueError:
                return False
        return frame.ethertype == number
    if key == "arpsrcmacaddr":
        return fields.get("arp_sha") == value
    if key == "opcode":
        return {"request": "1", "reply": "2", "1": "1", "2": "2"}.get(value) == fields.get("arp_op")
    return False


def _matches(rule: NwRule, frame: Frame, nic_mac: str) -> bool:
    if rule.direction not in ("out", "inout"):
        return False
    proto = rule.protocol
    if proto is None or proto == "all" and not rule.attrs:
        return True
    if proto in _ELEMENT_TYPE and frame.ethertype != _ELEMENT_TYPE[proto]:
        return False
    if proto in _L3 and frame.ethertype != 0x0800:
        return False
    if proto not in ("mac", *_ELEMENT_TYPE, *_L3):
        return False  # vlan, stp, ...-ipv6 elements: not the frames modelled here
    held = [_holds(k, v, frame, nic_mac) for k, v in rule.attrs.items()]
    if rule.negated:
        return all(not h for h in held)
    return all(held)


def _describe(owner: str, rule: NwRule) -> str:
    attrs = " ".join(f"{k}='{v}'" for k, v in rule.attrs.items())
    element = f"<{rule.protocol}{' ' + attrs if attrs else ''}/>" if rule.protocol else "(any)"
    return f"{owner}: {rule.action} {rule.direction} {element} (priority {rule.priority})"


_Placed = tuple[int, tuple[str, NwRule]]  # (rule priority, (owning filter, rule))


def _collect(
    filters: Mapping[str, NwFilter], name: str, chains: dict[str, list[_Placed]]
) -> list[str]:
    """Place ``name``'s rules into their chains; returns the undefined filters met."""
    undefined: list[str] = []
    seen: set[str] = set()

    def walk(current: str) -> None:
        if current in seen:
            return
        seen.add(current)
        flt = filters.get(current)
        if flt is None:
            undefined.append(current)
            return
        for entry in flt.entries:
            if isinstance(entry, tuple):
                walk(entry[0])
            else:
                chains.setdefault(flt.chain, []).append((entry.priority, (current, entry)))

    walk(name)
    return undefined


def evaluate(filters: Mapping[str, NwFilter], name: str, frame: Frame, nic_mac: str) -> Verdict:
    """Whether the chain of filter ``name`` on a NIC with ``nic_mac`` drops ``frame`` (sent by
    the VM). A drop by the defined filters stands (an undefined one could only have accepted
    the frame earlier: the verdict names it); no drop with an undefined filter in the chain
    raises MissingFacts (its rules could drop it)."""
    chains: dict[str, list[_Placed]] = {}
    undefined = tuple(_collect(filters, name, chains))
    verdict = _run(chains, filters, frame, nic_mac)
    if verdict.dropped:
        return Verdict(True, verdict.by, undefined)
    if undefined:
        raise MissingFacts(
            f"nwfilter {', '.join(repr(u) for u in undefined)} is referenced but not defined"
        )
    return verdict


def _run(
    chains: dict[str, list[_Placed]], filters: Mapping[str, NwFilter], frame: Frame, nic_mac: str
) -> Verdict:
    prio = {f.chain: f.priority for f in filters.values() if f.priority is not None}
    root: list[tuple[int, int, str | tuple[str, NwRule]]] = [
        (p, i, e) for i, (p, e) in enumerate(chains.get("root", []))
    ]
    for k, chain in enumerate(sorted(c for c in chains if c != "root")):
        default = CHAIN_PRIORITY.get(chain.split("-", 1)[0], 0)
        root.append((prio.get(chain, default), len(root) + k, chain))
    for _, _, entry in sorted(root, key=lambda t: (t[0], t[1])):
        if isinstance(entry, str):  # a jump into a sub-chain
            if not _applies(entry, frame):
                continue
            for _, (owner, rule) in sorted(chains[entry], key=lambda t: t[0]):
                if not _matches(rule, frame, nic_mac):
                    continue
                if rule.action in ("drop", "reject"):
                    return Verdict(True, _describe(owner, rule))
                if rule.action == "accept":
                    return Verdict(False, None)
                if rule.action == "return":
                    break
            continue
        owner, rule = entry
        if _matches(rule, frame, nic_mac):
            if rule.action in ("drop", "reject"):
                return Verdict(True, _describe(owner, rule))
            if rule.action in ("accept", "return"):
                return Verdict(False, None)
    return Verdict(False, None)
