"""Property: damaged evidence is always a recorded problem, and no check passes on it.

Hypothesis mutates the real recordings (tests/bundles) on disk: dropped and retyped OVS JSON
columns, retyped ``ip -j link`` fields, duplicated rows, entries and names, truncated or
unclosed XML, out-of-range or non-numeric numbers in domain XML, huge numbers, and non-UTF-8
bytes in any section file. Every mutation is damage by construction (it makes the evidence
something ovs-vsctl, ip or libvirt never print), so for each one:

(a) replay, parse, the checks and the what-if planner raise nothing;
(c) the damaged host records a problem under the section's key (``ovs``, ``links``,
    ``packages``, ``identity``, ``libvirt``, ``networks``, ``nwfilters``, ``domain:<uuid>`` or
    ``domain:<name>``) that names the host; a damaged firewall configuration (``fwconfig/``,
    in the recording with the members' configurations) is that firewall's problem;
(b) no finding that depends on that section passes (nor fails: it is an error, or skipped
    before it needed those facts) — neither in the audit nor in the what-if audit. "Depends" is the map in ``depends`` below: which checks always read which facts of
    which host (e.g. an OVS table of host H -> OVS-001[H], every pair's OVS-002 and VLAN-001
    of a cluster with a member on H, VIRT-001 of the members on H, HB-001[H], VLAN-002[H];
    KVMHA-TRACE-001 of a cluster with a member on H for OVS, libvirt, domain and trace damage;
    the KVMHA-FW checks of the member's cluster for damage to its configuration, and FW-005
    (heartbeat interface to pair) for OVS and domain damage).

A few concrete mutations also go through pytest itself (pytester): the JSON report is written,
the damaged host's problem is in it, and there is no INTERNALERROR and no traceback.

The run is reproducible (derandomize, no example database) and takes seconds.
"""

from __future__ import annotations

import atexit
import functools
import json
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from lxml import etree
from pytest_kvmha.fixtures.whatif import what_if

from pytest_kvmha.audit.engine import Audit
from pytest_kvmha.bundle.contract import OVS_COLUMNS, OVS_LATER_COLUMNS
from pytest_kvmha.collect.pool import collect_all
from pytest_kvmha.config.inventory import ClusterSpec, load_inventory
from pytest_kvmha.config.target import CollectOptions
from pytest_kvmha.facts import HostFacts
from pytest_kvmha.model import ERROR, PASS, SKIP, Finding
from pytest_kvmha.parse.firewall import split_section_name

from ..bundlekit import BUNDLES, CHECKS, run

FWCONFIG = Path(__file__).parent.parent / "data" / "fwconfig"
# two-ok with the members' FortiOS configurations collected into its bundles (fwconfig/
# sections): the firewall checks, and the heartbeat mode the configurations decide
WITH_CONFIGS = "two-ok+fgt"
SCENARIOS = sorted(p.name for p in BUNDLES.iterdir() if p.is_dir()) + [WITH_CONFIGS]
FW_CHECKS = ("KVMHA-FW-001", "KVMHA-FW-002", "KVMHA-FW-003", "KVMHA-FW-004", "KVMHA-FW-005")


@functools.cache
def root(scenario: str) -> Path:
    """The scenario's recording: tests/bundles, or for WITH_CONFIGS, two-ok collected once more
    with the saved configurations of tests/data/fwconfig (then replayed from its sections:
    the inventory's config paths lead nowhere)."""
    if scenario != WITH_CONFIGS:
        return BUNDLES / scenario
    top = tempfile.mkdtemp(prefix="kvmha-fwrec-")
    atexit.register(shutil.rmtree, top, True)
    d = Path(top) / scenario
    text = (BUNDLES / "two-ok" / "clusters.toml").read_text()
    text = text.replace('heartbeat = "broadcast"\n', "")  # the configurations decide
    for domain, conf in (("fw-a", "fgt-a.conf"), ("fw-b", "fgt-b.conf")):
        text = text.replace(
            f'domain = "{domain}",',
            f'domain = "{domain}", config = {json.dumps(str(FWCONFIG / conf))},',
        )
    live = text.replace('"replay://', json.dumps("replay://" + str(BUNDLES / "two-ok"))[:-1] + "/")
    d.mkdir(parents=True)
    (d / "live.toml").write_text(live)
    inventory = load_inventory(d / "live.toml")
    for b in collect_all(list(inventory.hosts), CollectOptions()):
        b.write(d / b.host)
    (d / "live.toml").unlink()
    (d / "clusters.toml").write_text(text.replace(str(FWCONFIG), "/nonexistent/fwconfig"))
    return d


# --- what a host looked like before the damage --------------------------------------------------


@dataclass(frozen=True)
class Base:
    clusters: dict[str, ClusterSpec]
    facts: dict[str, HostFacts]  # ok hosts only
    hosts: tuple[str, ...]  # all of them
    findings: dict[str, Finding]  # by node id

    def members_on(self, cluster: ClusterSpec, host: str) -> list[str]:
        return [m.domain for m in cluster.members if m.host == host]


@functools.cache
def base(scenario: str) -> Base:
    result = run(root(scenario))
    inv = load_inventory(root(scenario) / "clusters.toml")
    facts = {h.name: h for h in result.hosts if h.status == "ok"}
    for h in facts.values():
        assert not h.problems, (scenario, h.name, dict(h.problems))  # recordings are sound
    return Base(
        {c.name: c for c in inv.clusters},
        facts,
        tuple(h.name for h in result.hosts),
        {f.nodeid: f for f in result.findings},
    )


@functools.cache
def recorded_files(scenario: str, host: str) -> dict[str, bytes]:
    top = root(scenario) / host
    return {str(p.relative_to(top)): p.read_bytes() for p in top.rglob("*") if p.is_file()}


def damaged_copy(scenario: str, host: str, tmp: Path) -> Path:
    """A scenario directory in which only ``host`` is a writable copy; the inventory points the
    other hosts at the recordings themselves (read only), which keeps each example cheap."""
    d = tmp / scenario
    for name, data in recorded_files(scenario, host).items():
        (d / host / name).parent.mkdir(parents=True, exist_ok=True)
        (d / host / name).write_bytes(data)
    inventory = (root(scenario) / "clusters.toml").read_text()
    for other in base(scenario).hosts:
        if other != host:
            inventory = inventory.replace(
                f'"replay://{other}"', json.dumps(f"replay://{root(scenario) / other}")
            )
    (d / "clusters.toml").write_text(inventory)
    return d


# --- which findings depend on which damaged facts -----------------------------------------------

PAIR_READERS = ("KVMHA-OVS-002", "KVMHA-VIRT-002", "KVMHA-VIRT-003", "KVMHA-VLAN-001")
HOST_READERS = ("KVMHA-HB-001", "KVMHA-VLAN-002")  # CLUSTER_HOST: placements on that host


@dataclass(frozen=True)
class Damage:
    key: str  # the problem it must record on the host
    domains: tuple[str, ...] = ()  # domain:<...> keys: the domain names whose facts it took


def _pair_index(cluster: ClusterSpec, subject: str) -> int | None:
    """The pair index of a ``dom:If1`` / ``If1`` subject."""
    name = subject.split(":")[-1]
    names = [p.name for p in cluster.pairs] or [f"If{k + 1}" for k in range(64)]
    return names.index(name) if name in names else None


def depends(f: Finding, damage: Damage, host: str, b: Base) -> bool:
    """Whether finding ``f`` always reads the facts that ``damage`` took from ``host``."""
    check, key = f.check.id, damage.key
    if key.startswith("firewall:"):  # that member's configuration: every firewall check of
        # its cluster compares it (FW-002..005), FW-001 reads it for that member
        cluster = b.clusters.get(f.cluster or "")
        domain = key.removeprefix("firewall:")
        return (
            cluster is not None
            and domain in b.members_on(cluster, host)
            and check in FW_CHECKS
            and (check != "KVMHA-FW-001" or f.subject == domain)
        )
    if key == "packages":
        return check == "KVMHA-PKG-001" and f.host == host
    if key == "libvirt-uri":  # says which libvirt was read; no check reads it
        return False
    if key == "links":
        return check == "KVMHA-HB-001" and f.host == host
    if key in ("traces", "ovs", "libvirt") or key.startswith("domain:"):
        # Every trace of a cluster with a member on the host may run there, and its legs are
        # planned from that host's OVS ports and domain NICs: damaged, none may pass.
        traced = b.clusters.get(f.cluster or "")
        members = b.members_on(traced, host) if traced is not None else []
        if key.startswith("domain:"):
            members = [d for d in members if d in damage.domains]
        if check == "KVMHA-TRACE-001" and members:
            return True
        if key == "traces":
            return False
    if key == "ovs" and check == "KVMHA-OVS-001":
        return f.host == host
    if key == "ovs-bonds":  # bond health; a trace into a bond errs too (not asserted here)
        return check == "KVMHA-OVS-004" and f.host == host
    if key == "libvirt-uri":  # only reported where the URI came from: no check reads it
        return False
    cluster = b.clusters.get(f.cluster or "")
    if cluster is None:
        return False
    on_host = b.members_on(cluster, host)
    if not on_host:
        return False
    member = f.subject.split(":")[0]
    if key == "identity":  # two_servers() comes first in these
        return check in ("KVMHA-TOPO-002", "KVMHA-VLAN-001", "KVMHA-VLAN-002")
    if key == "ovs":
        return (
            # FW-005: a heartbeat interface's NIC is judged by the bridge and VLAN it is on
            check in ("KVMHA-OVS-002", "KVMHA-VLAN-001", "KVMHA-FW-005")
            or (check == "KVMHA-VIRT-001" and member in on_host)
            or (check in HOST_READERS and f.host == host)
        )
    if key == "libvirt" or key.startswith("domain:"):
        hit = [d for d in on_host if key == "libvirt" or d in damage.domains]
        return bool(hit) and (
            check in ("KVMHA-TOPO-001", "KVMHA-FW-005", *PAIR_READERS)
            or (check in ("KVMHA-HB-002", "KVMHA-VIRT-001") and member in hit)
            or (check in HOST_READERS and f.host == host)
        )
    facts = b.facts[host]
    assert facts.domains is not None
    if key == "nwfilters":  # read only for NICs that have a filter
        dom = facts.domains.get(f.subject)
        return (
            check == "KVMHA-HB-002"
            and f.subject in on_host
            and dom is not None
            and any(n.filterref for n in dom.nics[: len(cluster.pairs) or None])
        )
    if key == "networks":  # read for NICs on a libvirt network (persistent XML when running)
        for name in on_host:
            dom = facts.domains.get(name)
            if dom is None:
                continue
            nics = dom.inactive_nics if dom.active and dom.inactive_nics is not None else dom.nics
            net = [k for k, n in enumerate(nics) if n.type == "network"]
            if net and not dom.active and (check in PAIR_READERS or check in HOST_READERS):
                return True
            k = _pair_index(cluster, f.subject)
            if k in net and (
                check == "KVMHA-VLAN-001" or (check == "KVMHA-VIRT-001" and member == name)
            ):
                return True
        return False
    raise AssertionError(f"no dependency map for problem key {key!r}")


def section_key(section: str) -> str:
    """The problem key under which a damaged section is recorded."""
    if section in ("ovs-bonds", "ovs-lacp"):
        return "ovs-bonds"
    if section.startswith("ovs-"):
        return "ovs"
    if section in ("virsh-domains", "virsh-active", "virsh-paused"):
        return "libvirt"
    if section == "virsh-networks" or section.startswith("network/"):
        return "networks"
    if section in ("virsh-nwfilters", "nwfilter-fetched") or section.startswith("nwfilter/"):
        return "nwfilters"
    if section.startswith("domain-"):
        return "domain:" + section.split("/", 1)[1]
    if section == "trace-dpif" or section.startswith("trace/"):
        return "traces"
    if section.startswith("fwconfig/"):  # recorded as that firewall's problem, not the host's
        vendor_key = split_section_name(section)
        assert vendor_key is not None, section
        return "firewall:" + vendor_key[1]
    return section  # identity, packages, links


# --- mutations: each one makes the evidence something no real host prints ----------------------

Draw = Callable[..., Any]

GENERIC_WRONG: list[Any] = [
    None,
    {"k": "v"},
    1.5,
    True,
    [],
    ["lo"],
    ["set", 5],
    ["map", [["k"]]],
    ["map", [["k", "v"], ["k", "w"]]],
    ["uuid", 5],
]
STRING_WRONG: list[Any] = [7, ["uuid", "x"], ["set", []], ["set", ["a", "b"]], ["map", []]]
OPTIONAL_STRING_WRONG: list[Any] = [7, ["set", ["a", "b"]], ["uuid", "x"], ["map", []]]
MAP_WRONG: list[Any] = ["k=v", ["set", []], ["map", [["k", 1]]], ["map", [[1, "v"]]]]
UUIDS_WRONG: list[Any] = ["x", ["set", ["a"]], 7, ["map", []], ["set", [["uuid", "nonexistent"]]]]
COLUMN_WRONG: dict[str, list[Any]] = {
    "_uuid": ["x", 7, ["set", []], ["set", [["uuid", "a"], ["uuid", "b"]]]],
    "name": STRING_WRONG,
    "type": STRING_WRONG,
    "datapath_type": STRING_WRONG,
    "options": MAP_WRONG,
    "external_ids": MAP_WRONG,
    "ofport": ["1", ["set", [1, 2]], 70000, -2, ["uuid", "x"], 10**20],
    "error": OPTIONAL_STRING_WRONG,
    "mac_in_use": OPTIONAL_STRING_WRONG,
    "ovs_version": OPTIONAL_STRING_WRONG,
    "tag": ["101", 4096, -1, ["set", [1, 2]], ["uuid", "x"], 10**20],
    "trunks": ["101", ["set", ["101"]], ["set", [4096]], -1, ["uuid", "x"], ["map", []]],
    "vlan_mode": ["sometimes", "", 7, ["set", ["access", "trunk"]], ["uuid", "access"]],
    "interfaces": UUIDS_WRONG,
    "ports": UUIDS_WRONG,
    "cur_cfg": ["20", ["set", []], -1, 10**20, ["set", [1, 2]]],
    "next_cfg": ["20", ["set", []], -1, 10**20, ["set", [1, 2]]],
    "stp_enable": ["true", 1, ["set", []], ["map", []], ["uuid", "x"]],
    "rstp_enable": ["false", 0, ["set", [True, False]], ["map", []]],
    "other_config": MAP_WRONG,
    "status": MAP_WRONG,
    "rstp_status": MAP_WRONG,
    "bond_mode": OPTIONAL_STRING_WRONG,
    "lacp": OPTIONAL_STRING_WRONG,
    "mtu": ["1500", ["set", [1500, 9000]], -1, 10**20, ["uuid", "x"]],
    "mtu_request": ["1500", ["set", [1500, 9000]], 0, 10**20, ["uuid", "x"]],
}
INT_COLUMNS = ("ofport", "tag", "trunks", "cur_cfg", "next_cfg", "mtu", "mtu_request")
BOOL_COLUMNS = ("stp_enable", "rstp_enable")  # a JSON true there is no damage
LINK_WRONG: dict[str, list[Any]] = {
    "ifname": [["lo"], 7, "", None, {"a": 1}],
    "flags": [256, "PROMISC", [1], None, {"a": 1}, [["UP"]]],
    "promiscuity": ["1", -1, 2**32, 1.5, True, [1]],
    "linkinfo": [["veth"], "veth", 7, True, {"info_kind": 7}, {"info_kind": ["veth"]}],
    "address": [7, ["aa"], {"a": 1}, True],
}
HUGE = "__kvmha_huge__"


def _json_edit(path: Path, fn: Callable[[Any], None]) -> None:
    doc = json.loads(path.read_text())
    fn(doc)
    text = json.dumps(doc)
    # Python itself refuses to parse integers this long: malformed JSON for the parser too.
    path.write_text(text.replace(json.dumps(HUGE), "9" * 5000))


def ovs_tables(hostdir: Path) -> list[str]:
    return [t for t in OVS_COLUMNS if (hostdir / "sections" / f"ovs-{t}").is_file()]


def m_ovs_drop_column(draw: Draw, hostdir: Path, facts: HostFacts) -> Damage:
    table = draw(st.sampled_from(ovs_tables(hostdir)), label="table")
    # A column added later is missing from older bundles by design: not damage, "not collected"
    # (tests/checks/test_switch.py); every other column's absence is.
    later = OVS_LATER_COLUMNS.get(table, ())
    column = draw(
        st.sampled_from([c for c in OVS_COLUMNS[table] if c not in later]), label="column"
    )

    def drop(doc: Any) -> None:
        i = doc["headings"].index(column)
        del doc["headings"][i]
        for row in doc["data"]:
            del row[i]

    _json_edit(hostdir / "sections" / f"ovs-{table}", drop)
    return Damage("ovs")


def _ovs_cell(draw: Draw, hostdir: Path, columns: Callable[[str], list[str]], value: Any) -> None:
    tables = [
        t
        for t in ovs_tables(hostdir)
        if columns(t) and json.loads((hostdir / "sections" / f"ovs-{t}").read_text())["data"]
    ]
    table = draw(st.sampled_from(tables), label="table")
    path = hostdir / "sections" / f"ovs-{table}"
    rows = len(json.loads(path.read_text())["data"])
    row = draw(st.integers(0, rows - 1), label="row")
    column = draw(st.sampled_from(columns(table)), label="column")
    new = draw(value(column), label="value") if callable(value) else value

    def change(doc: Any) -> None:
        doc["data"][row][doc["headings"].index(column)] = new

    _json_edit(path, change)


def m_ovs_retype(draw: Draw, hostdir: Path, facts: HostFacts) -> Damage:
    _ovs_cell(
        draw,
        hostdir,
        lambda t: list(OVS_COLUMNS[t]),
        lambda c: st.sampled_from(
            [w for w in GENERIC_WRONG if not (c in BOOL_COLUMNS and w is True)] + COLUMN_WRONG[c]
        ),
    )
    return Damage("ovs")


def m_ovs_huge(draw: Draw, hostdir: Path, facts: HostFacts) -> Damage:
    _ovs_cell(draw, hostdir, lambda t: [c for c in OVS_COLUMNS[t] if c in INT_COLUMNS], HUGE)
    return Damage("ovs")


def m_ovs_duplicate_row(draw: Draw, hostdir: Path, facts: HostFacts) -> Damage:
    tables = [
        t
        for t in ovs_tables(hostdir)
        if json.loads((hostdir / "sections" / f"ovs-{t}").read_text())["data"]
    ]
    table = draw(st.sampled_from(tables), label="table")
    path = hostdir / "sections" / f"ovs-{table}"
    row = draw(st.integers(0, len(json.loads(path.read_text())["data"]) - 1), label="row")
    _json_edit(path, lambda doc: doc["data"].append(list(doc["data"][row])))
    return Damage("ovs")


def _link_entry(draw: Draw, hostdir: Path) -> tuple[Path, int]:
    path = hostdir / "sections" / "links"
    return path, draw(st.integers(0, len(json.loads(path.read_text())) - 1), label="entry")


def m_links_retype(draw: Draw, hostdir: Path, facts: HostFacts) -> Damage:
    path, entry = _link_entry(draw, hostdir)
    field = draw(st.sampled_from(sorted(LINK_WRONG)), label="field")
    value = draw(st.sampled_from(LINK_WRONG[field]), label="value")
    _json_edit(path, lambda doc: doc[entry].__setitem__(field, value))
    return Damage("links")


def m_links_drop_field(draw: Draw, hostdir: Path, facts: HostFacts) -> Damage:
    path, entry = _link_entry(draw, hostdir)
    field = draw(st.sampled_from(["ifname", "flags"]), label="field")
    _json_edit(path, lambda doc: doc[entry].pop(field))
    return Damage("links")


def m_links_duplicate(draw: Draw, hostdir: Path, facts: HostFacts) -> Damage:
    path, entry = _link_entry(draw, hostdir)
    _json_edit(path, lambda doc: doc.append(dict(doc[entry])))
    return Damage("links")


def m_links_huge(draw: Draw, hostdir: Path, facts: HostFacts) -> Damage:
    path, entry = _link_entry(draw, hostdir)
    field = draw(st.sampled_from(["promiscuity", "mtu", "ifindex"]), label="field")
    _json_edit(path, lambda doc: doc[entry].__setitem__(field, HUGE))
    return Damage("links")


def m_json_truncate(draw: Draw, hostdir: Path, facts: HostFacts) -> Damage:
    section = draw(st.sampled_from([f"ovs-{t}" for t in ovs_tables(hostdir)] + ["links"]))
    path = hostdir / "sections" / section
    text = path.read_text().rstrip()
    # Any proper prefix of a JSON object or array is malformed.
    path.write_text(text[: draw(st.integers(0, len(text) - 1), label="cut")])
    return Damage(section_key(section))


def xml_sections(hostdir: Path) -> list[str]:
    root = hostdir / "sections"
    return sorted(
        str(p.relative_to(root))
        for kind in ("domain-live", "domain-inactive", "network", "nwfilter")
        for p in (root / kind).glob("*")
    )


def _xml_damage(section: str, facts: HostFacts) -> Damage:
    key = section_key(section)
    if key.startswith("domain:"):
        uuid = key.split(":", 1)[1]
        assert facts.domains is not None
        return Damage(key, tuple(d.name for d in facts.domains.values() if d.uuid == uuid))
    return Damage(key)


def m_xml_truncate(draw: Draw, hostdir: Path, facts: HostFacts) -> Damage:
    assume(xml_sections(hostdir))  # a host without domains fetches no filters either
    section = draw(st.sampled_from(xml_sections(hostdir)), label="section")
    path = hostdir / "sections" / section
    text = path.read_text()
    # Cut before the last '>': the root element is never closed.
    path.write_text(text[: draw(st.integers(0, text.rindex(">")), label="cut")])
    return _xml_damage(section, facts)


def m_xml_unclosed(draw: Draw, hostdir: Path, facts: HostFacts) -> Damage:
    assume(xml_sections(hostdir))  # a host without domains fetches no filters either
    section = draw(st.sampled_from(xml_sections(hostdir)), label="section")
    path = hostdir / "sections" / section
    text = path.read_text()
    ends = [m.end() for m in re.finditer(">", text)]
    at = draw(st.sampled_from(ends), label="after")
    # An element opened and never closed (or junk after the root): never well-formed.
    path.write_text(text[:at] + "<kvmha-broken>" + text[at:])
    return _xml_damage(section, facts)


# (XPath of attributes the parser reads as numbers) -> values that are no valid number there
XML_NUMBERS: dict[str, list[str]] = {
    "devices/interface/address[@type='pci']/@domain": [
        "zz",
        "",
        "0x10000",
        "-1",
        "0x" + "f" * 5000,
    ],
    "devices/interface/address[@type='pci']/@bus": ["zz", "", "0x100", "-1", "9" * 5000],
    "devices/interface/address[@type='pci']/@slot": ["zz", "", "0x20", "-1", "0x"],
    "devices/interface/address[@type='pci']/@function": ["zz", "", "0x8", "1.5"],
    "devices/interface/vlan/tag/@id": ["zz", "", "4096", "-1", "9" * 5000],
    "devices/controller[@type='pci']/@index": ["zz", "", "1.5", "0x"],
    "devices/controller[@type='pci']/target/@chassis": ["zz", ""],
    "devices/controller[@type='pci']/target/@port": ["zz", "", "0x"],
}


def _numbers_in(path: Path) -> list[tuple[str, int]]:
    root = etree.fromstring(path.read_bytes())
    return [(xp, i) for xp in XML_NUMBERS for i in range(len(root.xpath(xp)))]


def m_xml_number(draw: Draw, hostdir: Path, facts: HostFacts) -> Damage:
    choices = [
        (s, xp, i)
        for s in xml_sections(hostdir)
        if s.startswith("domain-")
        for xp, i in _numbers_in(hostdir / "sections" / s)
    ]
    section, xp, i = draw(st.sampled_from(choices), label="attribute")
    value = draw(st.sampled_from(XML_NUMBERS[xp]), label="value")
    path = hostdir / "sections" / section
    root = etree.fromstring(path.read_bytes())
    attr = root.xpath(xp)[i]
    attr.getparent().set(attr.attrname, value)
    path.write_bytes(etree.tostring(root))
    return _xml_damage(section, facts)


def m_domain_same_name(draw: Draw, hostdir: Path, facts: HostFacts) -> Damage:
    assert facts.domains is not None
    names = sorted(facts.domains)
    old = draw(st.sampled_from(names), label="renamed")
    new = draw(st.sampled_from([n for n in names if n != old]), label="to")
    uuid = facts.domains[old].uuid
    for kind in ("domain-live", "domain-inactive"):
        path = hostdir / "sections" / kind / uuid
        if path.is_file():
            path.write_text(path.read_text().replace(f"<name>{old}</name>", f"<name>{new}</name>"))
    return Damage(f"domain:{new}", (old, new))


def m_nwfilter_same_name(draw: Draw, hostdir: Path, facts: HostFacts) -> Damage:
    sections = [s for s in xml_sections(hostdir) if s.startswith("nwfilter/")]
    assume(len(sections) >= 2)  # filters are fetched only where a domain NIC references one
    path = hostdir / "sections" / draw(st.sampled_from(sections), label="renamed")
    other = hostdir / "sections" / draw(st.sampled_from(sections), label="to")
    name = etree.fromstring(other.read_bytes()).get("name")
    root = etree.fromstring(path.read_bytes())
    if root.get("name") == name:  # the same filter: rename another one to it
        path = next(hostdir / "sections" / s for s in sections if hostdir / "sections" / s != other)
        root = etree.fromstring(path.read_bytes())
    root.set("name", name)
    path.write_bytes(etree.tostring(root))
    return Damage("nwfilters")


def m_not_utf8(draw: Draw, hostdir: Path, facts: HostFacts) -> Damage:
    root = hostdir / "sections"
    sections = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    # First the kind of section (else the two dozen nwfilter files would get most draws).
    kinds = sorted({section_key(s).split(":")[0] for s in sections})
    kind = draw(st.sampled_from(kinds), label="kind")
    section = draw(
        st.sampled_from([s for s in sections if section_key(s).split(":")[0] == kind]),
        label="section",
    )
    path = root / section
    data = path.read_bytes()
    at = draw(st.integers(0, len(data)), label="at")
    bad = draw(st.sampled_from([b"\xff", b"\xed\xa0\x80", b"\xc0\xaf"]), label="bytes")
    path.write_bytes(data[:at] + bad + data[at:])
    return _xml_damage(section, facts)


def m_config_unclosed(draw: Draw, hostdir: Path, facts: HostFacts) -> Damage:
    """A firewall configuration cut right after a ``config``/``edit`` line: a block FortiOS
    (``show``, a backup) never leaves open."""
    root = hostdir / "sections"
    sections = sorted(str(p.relative_to(root)) for p in root.glob("fwconfig/*"))
    section = draw(st.sampled_from(sections), label="section")
    lines = (root / section).read_text().splitlines(keepends=True)
    opens = [i for i, line in enumerate(lines) if line.strip().startswith(("config ", "edit "))]
    at = draw(st.sampled_from(opens), label="after line")
    (root / section).write_text("".join(lines[: at + 1]))
    return Damage(section_key(section))


Mutation = Callable[[Draw, Path, HostFacts], Damage]

MUTATIONS: list[Mutation] = [
    m_ovs_drop_column,
    m_ovs_retype,
    m_ovs_huge,
    m_ovs_duplicate_row,
    m_links_retype,
    m_links_drop_field,
    m_links_duplicate,
    m_links_huge,
    m_json_truncate,
    m_xml_truncate,
    m_xml_unclosed,
    m_xml_number,
    m_domain_same_name,
    m_nwfilter_same_name,
    m_not_utf8,
    m_config_unclosed,
]


def applies(mutation: Mutation, facts: HostFacts) -> bool:
    domains = len(facts.domains or {})
    xml = domains + len(facts.networks or {}) + len(facts.nwfilters or {})
    if mutation in (m_xml_truncate, m_xml_unclosed) and not xml:
        return False  # a host with no domain, network or referenced filter has no XML section
    if mutation is m_xml_number:
        return domains > 0
    if mutation is m_domain_same_name:
        return domains > 1
    if mutation is m_nwfilter_same_name:  # bundles hold only the filters NICs reference
        return len(facts.nwfilters or {}) > 1
    if mutation is m_config_unclosed:
        return bool(facts.firewalls)
    return True


# --- the properties -----------------------------------------------------------------------------


# A dependent finding is an error, or skipped before it needed the facts (e.g. a VLAN check on
# a single-server cluster). Never a pass, and not a fail either: a verdict on facts that were
# not there would send the reader after the wrong cause.
UNJUDGED = (ERROR, SKIP)


def check_damage(result: Audit, host: str, damage: Damage, b: Base, scenario: str) -> None:
    (h,) = [h for h in result.hosts if h.name == host]
    assert h.status == "ok", h.error  # one damaged section never costs the whole host
    if damage.key.startswith("firewall:"):
        problem = h.firewalls[damage.key.removeprefix("firewall:")].problem
        assert problem is not None and problem.startswith(f"{host}: "), (damage, problem)
    else:
        assert damage.key in h.problems, (damage, dict(h.problems))
        assert h.problems[damage.key].startswith(f"{host}: ")
    judged = [
        (f.check.id, f.subject, f.status)
        for f in result.findings
        if f.status not in UNJUDGED and depends(f, damage, host, b)
    ]
    assert not judged, f"{scenario}: judged on damaged {damage.key}: {judged}"
    # The other hosts are audited as before.
    for other in result.hosts:
        if other.name != host and other.name in b.facts:
            assert not other.problems, (other.name, dict(other.problems))


def damage_settings(examples: int) -> Any:
    """Reproducible (derandomized, no example database), slow examples allowed."""
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


@damage_settings(150)
@given(data=st.data())
def test_damaged_evidence_is_a_problem_and_never_passes(data: st.DataObject) -> None:
    damage_and_audit(data, SCENARIOS)


@damage_settings(40)
@given(data=st.data())
def test_damaged_evidence_of_configured_firewalls_never_passes(data: st.DataObject) -> None:
    """The same on the recording with the firewalls' configurations (drawn rarely above): a
    damaged configuration, OVS table or domain never lets a firewall check or KVMHA-TRACE-001
    that reads it pass."""
    damage_and_audit(data, [WITH_CONFIGS])


def damage_and_audit(data: st.DataObject, scenarios: list[str]) -> None:
    mutation = data.draw(st.sampled_from(MUTATIONS), label="mutation")
    hosts = [
        (s, h) for s in scenarios for h, f in sorted(base(s).facts.items()) if applies(mutation, f)
    ]
    assume(hosts)
    scenario, host = data.draw(st.sampled_from(hosts), label="host")
    b = base(scenario)
    with tempfile.TemporaryDirectory(prefix="kvmha-damage-") as tmp:
        d = damaged_copy(scenario, host, Path(tmp))
        damage = mutation(data.draw, d / host, b.facts[host])
        result = run(d)  # (a): nothing escapes replay, parsing or the checks
    check_damage(result, host, damage, b, scenario)
    # ... nor the planner and the audit after the planned change: it never passes either.
    after = what_if(CHECKS, result.hosts, list(b.clusters.values()), result.findings)
    judged = [
        (f.check.id, f.subject, f.status)
        for f in after.findings
        if f.status not in UNJUDGED and depends(f, damage, host, b)
    ]
    assert not judged, f"{scenario}: what-if judged on damaged {damage.key}: {judged}"


# --- and the converse: what is not damage is not treated as damage ----------------------------

# Columns of a set type (min 0 or max > 1): a one-member set may be written either way.
SET_COLUMNS = {
    "ofport",
    "error",
    "mac_in_use",
    "ovs_version",
    "tag",
    "trunks",
    "vlan_mode",
    "interfaces",
    "ports",
}


@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(data=st.data())
def test_equivalent_encodings_are_not_damage(data: st.DataObject) -> None:
    """Re-encoding OVS JSON as RFC 7047 allows (a one-member set bare or as ["set", [x]], rows
    and map entries in another order, other whitespace) changes no fact and no finding: the
    strict parser rejects damage, not another spelling of the same state."""
    scenario, host = data.draw(
        st.sampled_from([(s, h) for s in SCENARIOS for h in sorted(base(s).facts)]), label="host"
    )
    b = base(scenario)
    with tempfile.TemporaryDirectory(prefix="kvmha-same-") as tmp:
        d = damaged_copy(scenario, host, Path(tmp))
        for table in ovs_tables(d / host):
            path = d / host / "sections" / f"ovs-{table}"
            doc = json.loads(path.read_text())
            for row in doc["data"]:
                for i, column in enumerate(doc["headings"]):
                    cell = row[i]
                    if column in SET_COLUMNS and data.draw(st.booleans(), label="respell"):
                        if isinstance(cell, list) and cell[0] == "set" and len(cell[1]) == 1:
                            row[i] = cell[1][0]
                        elif not (isinstance(cell, list) and cell[0] in ("set", "map")):
                            row[i] = ["set", [cell]]
                    elif isinstance(cell, list) and cell[0] == "map":
                        row[i] = ["map", list(reversed(cell[1]))]
            doc["data"] = data.draw(st.permutations(doc["data"]), label="rows")
            path.write_text(json.dumps(doc, indent=data.draw(st.sampled_from([None, 1]))))
        result = run(d)
    (after,) = [h for h in result.hosts if h.name == host]
    assert replace(after, spec=b.facts[host].spec) == b.facts[host]  # spec: the copy's path
    assert {f.nodeid: f.status for f in result.findings} == {
        k: f.status for k, f in b.findings.items()
    }


# --- the same through pytest: report written, no INTERNALERROR, no traceback -------------------


def _fixed(choices: list[Any]) -> Draw:
    """A stand-in for ``data.draw`` that returns the given choices in order."""
    queue = list(choices)

    def draw(strategy: Any, label: str | None = None) -> Any:
        return queue.pop(0)

    return draw


CLI_CASES = [
    ("two-ok", "kvm-a", m_ovs_retype, ["Port", 0, "tag", "101"]),
    ("promisc-off", "kvm-b", m_links_retype, [0, "flags", 256]),
    ("single-ok", "kvm-a", m_xml_unclosed, None),
    ("two-ok", "kvm-b", m_not_utf8, ["links", "links", 10, b"\xff"]),
    ("single-ok", "kvm-a", m_domain_same_name, ["fw-master", "fw-slave"]),
    ("mac-filter", "kvm-a", m_ovs_huge, ["Interface", 0, "ofport"]),
]


@pytest.mark.parametrize(("scenario", "host", "mutation", "choices"), CLI_CASES)
def test_damaged_bundle_through_pytest(
    pytester: pytest.Pytester,
    scenario: str,
    host: str,
    mutation: Mutation,
    choices: list[Any] | None,
) -> None:
    d = pytester.path / scenario
    shutil.copytree(BUNDLES / scenario, d)
    b = base(scenario)
    if choices is None:  # the first section, right after its root element's start tag
        sections = xml_sections(d / host)
        text = (d / host / "sections" / sections[0]).read_text()
        choices = [sections[0], text.index(">") + 1]
    damage = mutation(_fixed(choices), d / host, b.facts[host])
    result = pytester.runpytest(
        f"--kvmha-inventory={d / 'clusters.toml'}", "--kvmha-report=r.json", "-rfE"
    )
    output = result.stdout.str() + result.stderr.str()
    assert "INTERNALERROR" not in output and "Traceback" not in output, output
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    report = json.loads((pytester.path / "r.json").read_text())
    (h,) = [h for h in report["hosts"] if h["name"] == host]
    assert damage.key in (h["problems"] or {}), h
    assert report["summary"]["error"] > 0
    passing = [
        f["nodeid"]
        for f in report["findings"]
        if f["status"] == PASS and depends(b.findings[f["nodeid"]], damage, host, b)
    ]
    assert not passing, passing
