"""``kvmha discover HOST...``: collect the hosts, run cluster discovery, print a TOML inventory
of what it found, with comments for what it guessed and what it would not guess."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

from pytest_kvmha.collect.host import collect
from pytest_kvmha.collect.pool import collect_all
from pytest_kvmha.config.inventory import ClusterSpec, Inventory
from pytest_kvmha.config.target import CollectOptions, HostTarget
from pytest_kvmha.facts import HostFacts
from pytest_kvmha.parse.host import parse_bundle
from pytest_kvmha.topology.discovery import Discovery

BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
# Discovery cannot tell the vendor from libvirt and Open vSwitch; the inventory needs one.
GUESSED_VENDOR = "fortigate"


def toml_str(value: str) -> str:
    """A TOML basic string: JSON's escapes are TOML's, and ``ensure_ascii`` escapes every
    control character TOML forbids (DEL included) and all non-ASCII."""
    return json.dumps(value, ensure_ascii=True)


def toml_key(name: str) -> str:
    return name if BARE_KEY.fullmatch(name) else toml_str(name)


def comment(text: str) -> str:
    """A comment line: a name from a host must not end the comment and start TOML of its own."""
    safe = "".join(ch if ch >= " " and ch != "\x7f" else f"\\x{ord(ch):02x}" for ch in text)
    return "# " + safe


def absolute_spec(spec: str) -> str:
    """``replay://DIR`` relative to the working directory, made absolute: the inventory resolves
    relative bundle paths against its own directory, wherever it is written."""
    if spec.startswith("replay://"):
        path = Path(spec[len("replay://") :])
        if not path.is_absolute():
            return "replay://" + str(path.resolve())
    return spec


def collect_hosts(inventory: Inventory, options: CollectOptions) -> list[HostFacts]:
    return [parse_bundle(b) for b in collect_all(list(inventory.hosts), options, collect)]


def _cluster(c: ClusterSpec) -> list[str]:
    out = [
        f"[clusters.{toml_key(c.name)}]",
        comment(
            f"GUESSED: the vendor (libvirt does not say); use {toml_str('cos-core')} for "
            "Clavister cOS Core"
        ),
        f"vendor = {toml_str(GUESSED_VENDOR)}",
        comment('GUESSED: broadcast heartbeat (set "unicast" for FGCP unicast-hb; or delete the'),
        comment("line and declare the members' config or console: their configuration decides)"),
        f"heartbeat = {toml_str(c.heartbeat)}",
        comment("GUESSED: the first member (by domain name) is the master"),
        "members = [",
    ]
    for m in c.members:
        out.append(
            f"  {{ host = {toml_str(m.host)}, domain = {toml_str(m.domain)}, "
            f"role = {toml_str(m.role)} }},"
        )
    out.append("]")
    for i, p in enumerate(c.pairs):
        out += [
            "",
            f"[[clusters.{toml_key(c.name)}.pairs]]",
            *(
                [comment("GUESSED: pairs are named after their bridges, in NIC order")]
                if i == 0
                else []
            ),
            f"name = {toml_str(p.name)}",
            *([f"bridge = {toml_str(p.bridge)}"] if p.bridge else []),
        ]
    return out


def inventory_toml(targets: Sequence[HostTarget], hosts: Sequence[HostFacts], d: Discovery) -> str:
    """The inventory text. It parses with :func:`~pytest_kvmha.config.inventory.load_inventory`
    wherever it is written; edit the guesses before relying on it."""
    lines = [
        comment("Written by kvmha discover from what the hosts run: review every GUESSED line."),
        comment("Audit with: kvmha audit --inventory THIS-FILE"),
        "",
    ]
    facts = {h.name: h for h in hosts}
    for t in targets:
        h = facts.get(t.name)
        lines.append(f"[hosts.{toml_key(t.name)}]")
        if h is not None and h.status != "ok":
            lines.append(comment(f"NOT READ: {h.status}: {h.error or 'no reason given'}"))
        for reason, n in d.skipped.get(t.name, {}).items():
            noun = "domain" if n == 1 else "domains"
            lines.append(comment(f"{n} {noun} not paired: {reason}"))
        lines.append(f"spec = {toml_str(absolute_spec(t.spec))}")
        lines.append("")
    if not d.clusters:
        lines.append(comment(f"No HA pair found: {d.describe()}."))
        lines.append("")
    for c in d.clusters:
        lines += _cluster(c)
        lines.append("")
    for a in d.ambiguous:
        lines.append(comment(f"AMBIGUOUS: {a.reason}."))
        lines.append(comment(f"NIC-to-bridge layout: {', '.join(a.layout)}"))
        for host, dom in a.members:
            lines.append(comment(f"  {dom} on {host}"))
        lines.append(comment("Name each pair, for example:"))
        lines.append(comment("[clusters.NAME]"))
        lines.append(comment(f"vendor = {toml_str(GUESSED_VENDOR)}"))
        lines.append(comment("members = ["))
        for i, (host, dom) in enumerate(a.members[:2]):
            role = "master" if i == 0 else "slave"
            lines.append(
                comment(
                    f'  {{ host = {toml_str(host)}, domain = {toml_str(dom)}, role = "{role}" }},'
                )
            )
        lines.append(comment("]"))
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"
