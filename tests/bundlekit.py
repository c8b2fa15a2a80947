"""Recorded bundles for offline tests: copy a recorded scenario, edit its raw sections, audit it.

Defect bundles are derived from real recordings by editing the raw text (XML, OVS JSON, ip
JSON, package lines, bundle.json, the inventory) exactly where a real host would differ, so they
go through the real parsers.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pytest_kvmha.audit.engine import Audit, audit, resolve_clusters
from pytest_kvmha.bundle.store import EvidenceBundle
from pytest_kvmha.collect.pool import collect_all
from pytest_kvmha.config.inventory import load_inventory
from pytest_kvmha.config.target import CollectOptions
from pytest_kvmha.model import discover_checks
from pytest_kvmha.parse.host import parse_bundle
from pytest_kvmha.topology.traceplan import plan_traces

BUNDLES = Path(__file__).parent / "bundles"
EXAMPLES = Path(__file__).parents[1] / "examples"
CHECKS = discover_checks()


def copy_example(dest: Path) -> Path:
    """The demo's recorded hosts and inventory (examples/), copied into ``dest``; the
    inventory's path."""
    shutil.copytree(EXAMPLES / "bundles", dest / "bundles")
    shutil.copy(EXAMPLES / "clusters.toml", dest / "clusters.toml")
    return dest / "clusters.toml"


def copy_scenario(name: str, dest: Path) -> Path:
    target = dest / name
    shutil.copytree(BUNDLES / name, target)
    return target


def run(directory: Path) -> Audit:
    inventory = load_inventory(directory / "clusters.toml")
    bundles = collect_all(list(inventory.hosts), CollectOptions())
    return audit(CHECKS, inventory, [parse_bundle(b) for b in bundles])


def statuses(result: Audit) -> dict[tuple[str, str], str]:
    return {(f.check.id, f.subject): f.status for f in result.findings}


def untraced(found: Mapping[tuple[str, str], str]) -> dict[tuple[str, str], str]:
    """``found`` without KVMHA-TRACE-001: for tests that edit a recorded bundle, whose recorded
    traces then no longer match what the check plans (it errs or skips, never passes anew:
    tests/checks/checkkit.py asserts that; see test_trace.py)."""
    return {k: v for k, v in found.items() if k[0] != "KVMHA-TRACE-001"}


def finding(result: Audit, check: str, subject: str) -> Any:
    (f,) = [f for f in result.findings if f.check.id == check and f.subject == subject]
    return f


def failing(result: Any, check: str, subject: str) -> Any:
    """The finding of ``check`` on ``subject``, asserted to fail."""
    f = finding(result, check, subject)
    assert f.status == "fail", (f.status, f.detail)
    return f


class HostBundle:
    """One recorded host of a copied scenario, editable section by section."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.bundle = EvidenceBundle.read(directory)

    def text(self, section: str) -> str:
        return self.bundle.sections[section].stdout

    def sections(self, prefix: str) -> list[str]:
        return sorted(n for n in self.bundle.sections if n.startswith(prefix))

    def edit(self, section: str, fn: Callable[[str], str]) -> None:
        path = self.dir / "sections" / section
        new = fn(path.read_text())
        assert new != path.read_text(), f"edit of {section} changed nothing"
        path.write_text(new)

    def edit_json(self, section: str, fn: Callable[[Any], None]) -> None:
        def apply(text: str) -> str:
            doc = json.loads(text)
            fn(doc)
            return json.dumps(doc)

        self.edit(section, apply)

    def domain_sections(self, domain: str) -> list[str]:
        """The live and inactive XML sections of ``domain``."""
        return [n for n in self.sections("domain-") if f"<name>{domain}</name>" in self.text(n)]

    def edit_domain(self, domain: str, fn: Callable[[str], str]) -> None:
        names = self.domain_sections(domain)
        assert names, f"no domain {domain} in {self.dir}"
        for name in names:
            self.edit(name, fn)

    def set_meta(self, fn: Callable[[dict[str, Any]], None]) -> None:
        path = self.dir / "bundle.json"
        meta = json.loads(path.read_text())
        fn(meta)
        path.write_text(json.dumps(meta))

    def ovs_rows(self, table: str) -> tuple[list[str], list[list[Any]]]:
        doc = json.loads(self.text(f"ovs-{table}"))
        return doc["headings"], doc["data"]

    def edit_ovs_row(self, table: str, name: str, column: str, value: Any) -> None:
        def change(doc: Any) -> None:
            h = doc["headings"]
            rows = [r for r in doc["data"] if r[h.index("name")] == name]
            assert rows, f"no {table} row named {name}"
            for r in rows:
                r[h.index(column)] = value

        self.edit_json(f"ovs-{table}", change)


# --- raw-evidence edits a real host would show -----------------------------------------------


def host(d: Path, name: str) -> HostBundle:
    return HostBundle(d / name)


def planned_traces(d: Path) -> dict[str, dict[tuple[str, str], str]]:
    """host -> (bridge, flow) -> section key of every trace the scenario copy's facts plan."""
    inventory = load_inventory(d / "clusters.toml")
    hosts = [parse_bundle(b) for b in collect_all(list(inventory.hosts), CollectOptions())]
    plans = plan_traces(hosts, resolve_clusters(inventory, hosts))
    return {h: {(s.bridge, s.flow): s.key for s in specs} for h, specs in plans.items()}


def traced_before(d: Path, edit: Callable[[], None]) -> int:
    """Apply ``edit`` to the scenario copy ``d`` and file its recorded traces as the trace phase
    would have, had the port changed between the collector's two round trips: each trace of
    the unedited configuration under the key the edited facts plan for the same bridge and
    flow. Returns how many traces moved."""
    before = planned_traces(d)
    edit()
    after = planned_traces(d)
    moved = 0
    for name, specs in before.items():
        meta_path = d / name / "bundle.json"
        meta = json.loads(meta_path.read_text())
        for bridge_flow, old in specs.items():
            new = after.get(name, {}).get(bridge_flow)
            src = d / name / "sections" / "trace" / old
            if new is None or new == old or not src.exists():
                continue
            src.rename(src.with_name(new))
            meta["sections"][f"trace/{new}"] = meta["sections"].pop(f"trace/{old}")
            moved += 1
        meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    return moved


def edit_toml(d: Path, fn: Callable[[str], str]) -> None:
    path = d / "clusters.toml"
    new = fn(path.read_text())
    assert new != path.read_text(), "inventory edit changed nothing"
    path.write_text(new)


def declare_configs(d: Path, texts: Mapping[str, str], suffix: str = ".conf") -> None:
    """Write each member's firewall configuration next to the copied scenario's inventory and
    declare it there (``config = "<domain><suffix>"``, relative to the inventory)."""
    for domain, text in texts.items():
        (d / f"{domain}{suffix}").write_text(text)
        edit_toml(
            d,
            lambda t, dom=domain: re.sub(
                rf'(domain = "{re.escape(dom)}", role = "\w+")',
                rf'\1, config = "{dom}{suffix}"',
                t,
            ),
        )


def set_section(
    hb: HostBundle,
    name: str,
    *,
    stdout: str | None = None,
    rc: int | None = None,
    stderr: str | None = None,
) -> None:
    """Change a section's output and/or its exit status and stderr (kept in bundle.json)."""
    if stdout is not None:
        (hb.dir / "sections" / name).write_text(stdout)

    def meta(m: dict[str, Any]) -> None:
        info = m["sections"][name]
        if rc is not None:
            info["rc"] = rc
        if stderr is not None:
            info["stderr"] = stderr

    hb.set_meta(meta)


def add_section(hb: HostBundle, name: str, stdout: str, rc: int = 0, stderr: str = "") -> None:
    path = hb.dir / "sections" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(stdout)
    hb.set_meta(lambda m: m["sections"].__setitem__(name, {"rc": rc, "stderr": stderr}))


def drop_section(hb: HostBundle, name: str) -> None:
    """The section was never collected: gone from bundle.json and from disk."""
    hb.set_meta(lambda m: m["sections"].pop(name))
    (hb.dir / "sections" / name).unlink()


def reload(hb: HostBundle) -> None:
    """Re-read the bundle after edits on disk (HostBundle reads it once)."""
    hb.bundle = EvidenceBundle.read(hb.dir)


def domain_uuid(hb: HostBundle, domain: str) -> str:
    """The UUID of ``domain`` as its XML on disk says now (edits included)."""
    reload(hb)  # re-read the edited sections
    (name,) = {n.split("/", 1)[1] for n in hb.domain_sections(domain)}
    return name


def edit_live(hb: HostBundle, domain: str, fn: Callable[[str], str]) -> None:
    """Only the running state differs (e.g. the tap libvirt created), not the persistent XML."""
    hb.edit(f"domain-live/{domain_uuid(hb, domain)}", fn)


def drop_lines(hb: HostBundle, section: str, needle: str) -> None:
    hb.edit(section, lambda t: "".join(ln for ln in t.splitlines(True) if needle not in ln))


def _refs(cell: Any) -> list[Any]:
    """An OVSDB reference column: ["uuid", u] or ["set", [["uuid", u], ...]]."""
    return cell[1] if cell[0] == "set" else [cell]


def remove_ovs_port(hb: HostBundle, port: str) -> None:
    """``ovs-vsctl del-port``: the Port row, its Interface rows and the bridge's reference."""
    ph, prows = hb.ovs_rows("Port")
    (prow,) = [r for r in prows if r[ph.index("name")] == port]
    port_uuid = prow[ph.index("_uuid")][1]
    iface_uuids = {u[1] for u in _refs(prow[ph.index("interfaces")])}

    def ports(doc: Any) -> None:
        doc["data"] = [r for r in doc["data"] if r[doc["headings"].index("name")] != port]

    def ifaces(doc: Any) -> None:
        doc["data"] = [
            r for r in doc["data"] if r[doc["headings"].index("_uuid")][1] not in iface_uuids
        ]

    def bridges(doc: Any) -> None:
        col = doc["headings"].index("ports")
        for r in doc["data"]:
            refs = [u for u in _refs(r[col]) if u[1] != port_uuid]
            r[col] = ["set", refs] if len(refs) != 1 else refs[0]

    hb.edit_json("ovs-Port", ports)
    hb.edit_json("ovs-Interface", ifaces)
    hb.edit_json("ovs-Bridge", bridges)
    reload(hb)


def bond_uplink(
    hb: HostBundle, port: str, uplink: Callable[[dict[str, Any]], None] = lambda _: None
) -> None:
    """``ovs-vsctl add-bond br-trunk PORT up-a eno3``: uplink port up-a becomes port ``port``
    bonding two system interfaces, up-a and a new eno3; ``uplink`` edits up-a's ``ip link``
    entry before eno3's is copied from it."""
    ih, irows = hb.ovs_rows("Interface")
    (up,) = [r for r in irows if r[ih.index("name")] == "up-a"]
    eno3 = json.loads(json.dumps(up))
    eno3[ih.index("_uuid")] = ["uuid", "7e57b0d3-0000-4000-8000-00000000e703"]
    eno3[ih.index("name")] = "eno3"
    eno3[ih.index("mac_in_use")] = "66:98:a0:d0:45:92"
    hb.edit_json("ovs-Interface", lambda doc: doc["data"].append(eno3))

    def bond(doc: Any) -> None:
        h = doc["headings"]
        for r in doc["data"]:
            if r[h.index("name")] == "up-a":
                r[h.index("name")] = port
                r[h.index("interfaces")] = ["set", [up[0], eno3[0]]]

    hb.edit_json("ovs-Port", bond)

    def links(doc: Any) -> None:
        (e,) = [e for e in doc if e["ifname"] == "up-a"]
        uplink(e)
        doc.append(dict(e, ifname="eno3", ifindex=99, address="66:98:a0:d0:45:92"))

    hb.edit_json("links", links)


def vm_ports(hb: HostBundle, uuid: str) -> list[str]:
    """The OVS ports libvirt created for a running domain (Interface external_ids:vm-id)."""
    ih, irows = hb.ovs_rows("Interface")
    names = []
    for r in irows:
        ids = dict(r[ih.index("external_ids")][1])
        if ids.get("vm-id") == uuid:
            names.append(r[ih.index("name")])
    return names


def stop_domain(hb: HostBundle, domain: str) -> None:
    """``virsh destroy``: no longer listed active, no live XML, its vnet ports gone from OVS."""
    uuid = domain_uuid(hb, domain)
    drop_lines(hb, "virsh-active", uuid)
    drop_section(hb, f"domain-live/{uuid}")
    for port in vm_ports(hb, uuid):
        remove_ovs_port(hb, port)
    reload(hb)


def undefine_domain(hb: HostBundle, domain: str) -> None:
    """``virsh destroy`` + ``virsh undefine``: not listed at all."""
    uuid = domain_uuid(hb, domain)
    stop_domain(hb, domain)
    drop_lines(hb, "virsh-domains", uuid)
    drop_section(hb, f"domain-inactive/{uuid}")
    reload(hb)


NIC = re.compile(r"    <interface type='[^']*'[^>]*>\n.*?    </interface>\n", re.S)


def edit_nic(mac: str, fn: Callable[[str], str]) -> Callable[[str], str]:
    """An XML edit applied to the <interface> block with ``mac`` only."""

    def apply(xml: str) -> str:
        blocks = [m for m in NIC.finditer(xml) if f"address='{mac}'" in m.group(0)]
        assert len(blocks) == 1, f"no single NIC {mac}"
        m = blocks[0]
        return xml[: m.start()] + fn(m.group(0)) + xml[m.end() :]

    return apply


def drop_vlan(block: str) -> str:
    return re.sub(r"      <vlan>\n.*?      </vlan>\n", "", block, flags=re.S)


def drop_virtualport(xml: str) -> str:
    return re.sub(r"\s*<virtualport type='openvswitch'(/>|>.*?</virtualport>)", "", xml, flags=re.S)


def edit_inactive(hb: HostBundle, domain: str, fn: Any) -> None:
    (name,) = [n for n in hb.domain_sections(domain) if n.startswith("domain-inactive/")]
    hb.edit(name, fn)


def add_nwfilter(hb: HostBundle, name: str, uuid: str, refs: list[str]) -> None:
    body = "".join(f"  <filterref filter='{r}'/>\n" for r in refs)
    add_section(
        hb,
        f"nwfilter/{uuid}",
        f"<filter name='{name}' chain='root'>\n  <uuid>{uuid}</uuid>\n{body}"
        "  <rule action='accept' direction='inout' priority='500'/>\n</filter>\n",
    )
    _list_nwfilter(hb, uuid, name)
    for ref in refs:
        recorded_filter(hb, ref)


def _list_nwfilter(hb: HostBundle, uuid: str, name: str) -> None:
    hb.edit("virsh-nwfilters", lambda t: t + f" {uuid}   {name}\n")
    if (hb.dir / "sections" / "nwfilter-fetched").exists():  # the collector fetched a subset
        hb.edit("nwfilter-fetched", lambda t: t + f"{uuid}\n")


# A recorded host whose NIC references clean-traffic: the collector fetched libvirt's standard
# filters that nest there (it fetches only the filters domain NICs reference, and theirs).
_STANDARD = BUNDLES / "mac-filter" / "kvm-a" / "sections"


def recorded_filter(hb: HostBundle, name: str) -> None:
    """Give the edited host libvirt's standard filter ``name`` (and what it nests) as the lab
    recorded it, when the host's own recording did not fetch it."""
    mine = hb.dir / "sections" / "nwfilter"
    if mine.is_dir() and any(f"name='{name}'" in p.read_text() for p in mine.iterdir()):
        return
    for p in sorted((_STANDARD / "nwfilter").iterdir()):
        text = p.read_text()
        if f"<filter name='{name}'" in text:
            add_section(hb, f"nwfilter/{p.name}", text)
            _list_nwfilter(hb, p.name, name)
            for ref in re.findall(r"<filterref filter='([^']+)'", text):
                recorded_filter(hb, ref)
            return


def fetch_listed_filter(hb: HostBundle, name: str) -> None:
    """What the collector does for a listed filter a NIC's chain now references: dump it. Bundles
    hold only the referenced filters' XML; this writes a leaf filter's (one accept rule)."""
    (uuid,) = [
        ln.split()[0] for ln in hb.text("virsh-nwfilters").splitlines() if ln.split()[1:] == [name]
    ]
    add_section(
        hb,
        f"nwfilter/{uuid}",
        f"<filter name='{name}' chain='root'>\n  <uuid>{uuid}</uuid>\n"
        "  <rule action='accept' direction='inout' priority='500'/>\n</filter>\n",
    )
    hb.edit("nwfilter-fetched", lambda t: t + f"{uuid}\n")
    reload(hb)


def use_filter(hb: HostBundle, domain: str, mac: str, name: str) -> None:
    recorded_filter(hb, name)  # as the collector would have fetched it
    hb.edit_domain(
        domain,
        edit_nic(
            mac,
            lambda b: b.replace(
                "      <model type=", f"      <filterref filter='{name}'/>\n      <model type="
            ),
        ),
    )
