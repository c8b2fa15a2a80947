"""Hostile renames of recorded scenarios: every name a host reports, made an attack on its reader.

``hostile_copy`` copies a recorded scenario and renames each domain, bridge, port, interface,
network, filter, NIC model and MAC consistently in every raw section (through the real XML and
JSON encoders, so the evidence stays well formed) and in the inventory. The renamed names carry
shell metacharacters, quotes, backticks, ``$(...)``, ``#`` and Markdown/HTML syntax.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from lxml import etree

from pytest_kvmha.bundle.store import EvidenceBundle
from pytest_kvmha.facts import HostFacts
from pytest_kvmha.parse.host import parse_bundle

from .bundlekit import BUNDLES

# Runs `pwned` (a recorder in the test's PATH) if any shell ever treats it as code.
SHELL_PAYLOAD = " x;pwned #'$(pwned)`pwned`&&pwned|pwned\"<i>&amp;\\"
# A second line that runs `pwned` if a name's newline reaches a remediation line.
NEWLINE_PAYLOAD = "\npwned #"
# Renders as an image, a link, code and raw HTML if any Markdown renderer treats it as syntax.
MARKDOWN_PAYLOAD = (
    "`![i](http://e.invalid/i.png)[l](http://e.invalid/)<img src=x>*b*_u_|~~s~~"
    " https://e.invalid/x www.e.invalid a@e.invalid"
)
# Filters whose names carry meaning (the checks look for them): never renamed.
KEEP = frozenset({"clean-traffic", "no-mac-spoofing"})


def scenario_names(directory: Path) -> set[str]:
    """Every renameable name in a recorded scenario's hosts."""
    names: set[str] = set()
    for host_dir in sorted(p for p in directory.iterdir() if p.is_dir()):
        facts = parse_bundle(EvidenceBundle.read(host_dir))
        names |= _facts_names(facts)
    return {n for n in names if n and n not in KEEP}


def _facts_names(h: HostFacts) -> set[str]:
    names: set[str] = set()
    for dom in (h.domains or {}).values():
        names.add(dom.name)
        for nic in (*dom.nics, *(dom.inactive_nics or ())):
            names |= {nic.model, nic.source_bridge, nic.source_network, nic.target_dev}
            names |= {nic.filterref, nic.mac}
    for br in h.ovs.bridges if h.ovs else ():
        names.add(br.name)
        for port in br.ports:
            names.add(port.name)
            names |= {i.name for i in port.interfaces}
    for net in (h.networks or {}).values():
        names |= {net.name, net.bridge}
    for flt in (h.nwfilters or {}).values():
        names |= {flt.name, *flt.references}
    return {n for n in names if isinstance(n, str)}


def hostile_copy(
    name: str, dest: Path, payload: str = SHELL_PAYLOAD, *, inventory: bool = True
) -> tuple[Path, dict[str, str]]:
    """A copy of scenario ``name`` (a recorded one, or a directory) with every name renamed to
    ``name + payload``."""
    source = Path(name) if Path(name).is_absolute() else BUNDLES / name
    target = dest / source.name
    shutil.copytree(source, target)
    renames = {n: n + payload for n in sorted(scenario_names(target))}
    for host_dir in sorted(p for p in target.iterdir() if p.is_dir()):
        for path in sorted((host_dir / "sections").rglob("*")):
            if path.name == "virsh-nwfilters":
                path.write_text(_rename_filter_list(path.read_text(), renames))
            elif path.name in ("ovs-bonds", "ovs-lacp"):
                path.write_text(_rename_bond_text(path.read_text(), renames))
            elif path.is_file():
                path.write_text(_rename_section(path.read_text(), renames))
    inv = target / "clusters.toml"
    if not inventory:  # (an inventory refuses control characters itself)
        return target, renames
    text = inv.read_text()
    for old, new in renames.items():
        # Inventory values are TOML basic strings; JSON string escapes are valid TOML ones.
        text = text.replace(json.dumps(old), json.dumps(new))
    inv.write_text(text)
    return target, renames


def _rename_section(text: str, renames: dict[str, str]) -> str:
    stripped = text.lstrip()
    if stripped.startswith("<"):
        root = etree.fromstring(text.encode())
        for el in root.iter():
            for key, value in el.attrib.items():
                if value in renames:
                    el.set(key, renames[value])
                elif value.lower() in renames and key == "address":  # MACs are case-folded
                    el.set(key, renames[value.lower()])
            if el.text is not None and el.text in renames:
                el.text = renames[el.text]
        return etree.tostring(root, encoding="unicode") + "\n"
    if stripped.startswith(("{", "[")):
        try:
            doc = json.loads(text)
        except json.JSONDecodeError:
            return text
        return json.dumps(_rename_json(doc, renames))
    return text


def _rename_bond_text(text: str, renames: dict[str, str]) -> str:
    """bond/show and lacp/show name bonds and members as OVS prints them: ``---- NAME ----``,
    ``member NAME: enabled``, ``member: NAME: current attached``, ``mac(NAME)``."""
    out = []
    for line in text.splitlines(keepends=True):
        for old, new in renames.items():
            for before, after in (
                ("---- ", " ----"),
                ("member ", ":"),
                ("member: ", ":"),
                ("(", ")"),
            ):
                line = line.replace(before + old + after, before + new + after)
        out.append(line)
    return "".join(out)


def _rename_filter_list(text: str, renames: dict[str, str]) -> str:
    """``virsh nwfilter-list`` lines: ``<uuid>  <name>``."""
    out = []
    for line in text.splitlines(keepends=True):
        parts = line.split(None, 1)
        if len(parts) == 2 and parts[1].strip() in renames:
            line = f"{parts[0]}  {renames[parts[1].strip()]}\n"
        out.append(line)
    return "".join(out)


def _rename_json(doc: Any, renames: dict[str, str]) -> Any:
    if isinstance(doc, str):
        return renames.get(doc, renames.get(doc.lower(), doc) if ":" in doc else doc)
    if isinstance(doc, list):
        return [_rename_json(v, renames) for v in doc]
    if isinstance(doc, dict):
        return {k: _rename_json(v, renames) for k, v in doc.items()}
    return doc
