"""One check's documentation: the text ``kvmha checks ID`` prints and ``docs/checks/<ID>.md``
holds (the same Markdown), and the catalogue index page. Generated from the catalogue only."""

from __future__ import annotations

import re
import textwrap
import types
from collections.abc import Iterator, Sequence
from pathlib import Path

from pytest_kvmha.model import Check, Scope

# What a finding of each scope is about, and the node id it gets (names from the shipped example).
SCOPES: dict[Scope, tuple[str, str]] = {
    Scope.HOST: ("each audited host", "kvm-a/{id}[kvm-a]"),
    Scope.HOST_PROBLEM: (
        "each problem recorded while collecting a host (none: no finding)",
        "kvm-a/{id}[links]",
    ),
    Scope.CLUSTER: ("each cluster", "edge-fw/{id}[edge-fw]"),
    Scope.CLUSTER_HOST: ("each host that runs a member of the cluster", "edge-fw/{id}[kvm-a]"),
    Scope.MEMBER: ("each member domain of each cluster", "edge-fw/{id}[fw-a]"),
    Scope.PAIR: ("each interface pair of each cluster", "edge-fw/{id}[If1]"),
    Scope.MEMBER_NIC: ("each member's NIC of each pair", "edge-fw/{id}[fw-a:If1]"),
    Scope.SEGMENT: (
        "each layer-2 segment (host, bridge, VLAN; a VLAN between servers) the audited "
        "clusters' member NICs are on, across every cluster and host",
        "segment/{id}[vlan101@kvm-a+kvm-b]",
    ),
}

# The evidence behind the names a check's code uses (attributes of the facts, topology helpers).
# Read off the function and the helpers of its own module and the modules beside it (shared
# helpers of the same package): a new check documents itself.
EVIDENCE: tuple[tuple[frozenset[str], str], ...] = (
    (
        frozenset({"domains", "domain", "domain_or_none", "require_domains", "nic", "nics"}),
        "libvirt domain XML, live and inactive (`virsh dumpxml`)",
    ),
    (
        frozenset({"controllers", "controller", "nic_in_pci_order", "is_q35"}),
        "the domains' PCI layout",
    ),
    (frozenset({"networks"}), "libvirt networks (`virsh net-dumpxml`)"),
    (frozenset({"nwfilters"}), "libvirt network filters (`virsh nwfilter-dumpxml`)"),
    (
        frozenset(
            {"ovs", "require_ovs", "bridge", "uplinks", "patch_peers", "placement", "placements"}
        ),
        "the Open vSwitch database (bridges, ports, interfaces: `ovs-vsctl --format=json list`)",
    ),
    (
        frozenset({"links", "require_links"}),
        "kernel links (`ip -d -j link show`: flags, promiscuity, masters)",
    ),
    (frozenset({"packages"}), "installed packages"),
    (frozenset({"identity", "same_hosts"}), "the host's identity (`/etc/machine-id`)"),
    (frozenset({"problems"}), "what went wrong while collecting (the bundle's section errors)"),
    (
        frozenset(
            {
                "firewalls",
                "firewall",
                "member_firewall",
                "config_heartbeat",
                "heartbeat_mode",
                "_cluster_facts",  # checks/firewall.py's: read by checks in other modules too
            }
        ),
        "the firewalls' own HA configuration (a saved file or a read-only console)",
    ),
    (
        frozenset({"member_ha_status", "ha_status"}),
        "the firewalls' own HA status over the read-only console (FortiOS `get system ha "
        "status`, cOS Core `ha`)",
    ),
    (frozenset({"traces"}), "`ofproto/trace` of the vendor's heartbeat frames"),
)
CLUSTER_SCOPES = (Scope.CLUSTER, Scope.CLUSTER_HOST, Scope.MEMBER, Scope.PAIR, Scope.MEMBER_NIC)


def _names(func: object, module: str, seen: set[int]) -> Iterator[str]:
    code = getattr(func, "__code__", None)
    if code is None or id(code) in seen:
        return
    # a check behind a functools.wraps decorator reads what the function it wraps reads
    yield from _names(getattr(func, "__wrapped__", None), module, seen)
    seen.add(id(code))
    stack: list[types.CodeType] = [code]
    glb = getattr(func, "__globals__", {})
    while stack:
        c = stack.pop()
        for name in c.co_names:
            yield name
            helper = glb.get(name)
            if callable(helper) and _sibling(getattr(helper, "__module__", None), module):
                yield from _names(helper, module, seen)
        stack += [k for k in c.co_consts if isinstance(k, types.CodeType)]


def _sibling(helper: str | None, module: str) -> bool:
    """Whether a helper is the check's module or a module beside it in its package (a check
    module's shared helpers, ``checks/firewall_wiring.py``): its names count as the check's."""
    return helper is not None and helper.rpartition(".")[0] == module.rpartition(".")[0]


def reads(c: Check) -> list[str]:
    """The evidence ``c`` reads, from the names its code (and its module's helpers) use."""
    names = set(_names(c.func, c.func.__module__, set()))
    out = [text for keys, text in EVIDENCE if keys & names]
    if c.scope in CLUSTER_SCOPES:
        out.insert(0, "the cluster's members and interface pairs (the inventory, or discovery)")
    if c.scope is Scope.SEGMENT:  # pytest_kvmha.topology.segments places every cluster's NICs
        out[:0] = [
            "every audited cluster's members and interface pairs (the inventory, or discovery)",
            "libvirt domain XML, live and inactive (`virsh dumpxml`)",
            "the Open vSwitch database of every member host (bridges, ports, interfaces: "
            "`ovs-vsctl --format=json list`)",
            "the firewalls' own HA configuration (a saved file or a read-only console), else "
            "the inventory's group_id",
        ]
    return list(dict.fromkeys(out))


def _text(text: str) -> str:
    """A check's prose as Markdown: the decorator keeps the first line flush, the rest indented."""
    first, _, rest = text.strip().partition("\n")
    body = (first + "\n" + textwrap.dedent(rest)).strip()
    for ch, esc in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;")):
        body = body.replace(ch, esc)
    for ch in "*_`[]":
        body = body.replace(ch, "\\" + ch)
    return " ".join(body.split())


def _fence(text: str) -> list[str]:
    first, _, rest = text.strip().partition("\n")
    body = (first + "\n" + textwrap.dedent(rest)).strip()
    longest = max((len(run) for run in re.findall("`+", body)), default=0)
    fence = "`" * max(3, longest + 1)
    return [fence + "text", *body.splitlines(), fence]


def check_page(c: Check) -> str:
    """The Markdown page of one check (``kvmha checks ID`` prints it as it is)."""
    about, nodeid = SCOPES.get(c.scope, (c.scope.value, "CLUSTER/{id}[SUBJECT]"))
    example = "kvmha/" + nodeid.format(id=c.id)
    lines = [
        f"# {c.id}: {_text(c.title)}",
        "",
        f"- **Severity:** {c.severity}",
        f"- **Scope:** `{c.scope.value}`: one finding for {about}",
        f"- **Module:** `{c.func.__module__}`",
        "",
        "## Why",
        "",
        _text(c.rationale),
        "",
        "## What it reads",
        "",
        *[f"- {r}" for r in reads(c) or ["facts only (no evidence section named)"]],
        "",
        "## Remediation",
        "",
        *_fence(c.remediation),
        "",
        "A failing finding carries its own remediation, written for its host, domain and bridge;",
        "this is the general one.",
        "",
        "## Sources",
        "",
        *[f"- {_text(s)}" for s in c.source.split("; ") if s.strip()],
        "",
        "## A finding",
        "",
        "Each subject is one pytest item; re-run one by its node id:",
        "",
        "```text",
        f"pytest --kvmha-inventory=examples/clusters.toml '{example}'",
        f"kvmha audit --inventory examples/clusters.toml -- '{example}'",
        "```",
        "",
    ]
    return "\n".join(lines)


def index_page(checks: Sequence[Check]) -> str:
    """``docs/checks/index.md``: the catalogue table, one row per check, linking its page."""
    lines = [
        "# The check catalogue",
        "",
        "Generated from the catalogue (`kvmha checks --write-docs docs/checks`); one page per check.",
        "`kvmha checks` lists the same, `kvmha checks ID` prints one page.",
        "",
        "| id | severity | scope | title |",
        "|---|---|---|---|",
    ]
    for c in checks:
        title = _text(c.title).replace("|", "\\|")
        lines.append(f"| [{c.id}]({c.id}.md) | {c.severity} | {c.scope.value} | {title} |")
    lines.append("")
    return "\n".join(lines)


def pages(checks: Sequence[Check]) -> dict[str, str]:
    """File name -> text of every generated page."""
    out = {f"{c.id}.md": check_page(c) for c in checks}
    out["index.md"] = index_page(checks)
    return out


def write_pages(checks: Sequence[Check], directory: Path) -> list[str]:
    """Write the pages; remove generated pages of checks that are gone. Returns what changed."""
    directory.mkdir(parents=True, exist_ok=True)
    wanted = pages(checks)
    changed = []
    for name, text in wanted.items():
        path = directory / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            changed.append(name)
    for path in sorted(directory.glob("*.md")):
        if path.name not in wanted:
            path.unlink()
            changed.append(path.name)
    return changed


def stale_pages(checks: Sequence[Check], directory: Path) -> list[str]:
    """The pages that differ from what the catalogue generates (missing, changed or extra)."""
    wanted = pages(checks)
    out = [
        n
        for n, t in wanted.items()
        if not (directory / n).is_file() or (directory / n).read_text(encoding="utf-8") != t
    ]
    out += [p.name for p in sorted(directory.glob("*.md")) if p.name not in wanted]
    return out
