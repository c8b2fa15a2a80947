"""Damaged evidence: every damaged section is a recorded problem, its dependent checks are
`error`, nothing crashes, and nothing passes on it.

Each case tampers with a real recording (tests/bundles) exactly where a broken or hostile host,
or a damaged archive, would differ, and goes through the real replay, parsers and checks.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pytest_kvmha.fixtures.plan import PlanRefused, plan_cluster

from pytest_kvmha.audit.engine import Audit
from pytest_kvmha.bundle.store import BundleError, EvidenceBundle
from pytest_kvmha.collect.pool import collect_all
from pytest_kvmha.config.inventory import load_inventory
from pytest_kvmha.config.target import CollectOptions
from pytest_kvmha.model import ERROR, PASS
from pytest_kvmha.parse.evidence import FactError
from pytest_kvmha.parse.host import parse_bundle
from pytest_kvmha.parse.links import parse_packages

from ..bundlekit import BUNDLES, HostBundle, copy_scenario, finding, run

OVS_CHECKS = (
    "KVMHA-OVS-001",
    "KVMHA-OVS-002",
    "KVMHA-VIRT-001",
    "KVMHA-HB-001",
    "KVMHA-VLAN-001",
    "KVMHA-VLAN-002",
)


def problems(result: Audit, host: str) -> dict[str, str]:
    (h,) = [h for h in result.hosts if h.name == host]
    return dict(h.problems)


def set_column(table: str, column: str, value: Callable[[Any], Any]) -> Callable[[Any], None]:
    """An edit_json function setting ``column`` of every row to ``value(old)``."""

    def change(doc: Any) -> None:
        i = doc["headings"].index(column)
        for row in doc["data"]:
            row[i] = value(row[i])

    return change


def drop_column(column: str) -> Callable[[Any], None]:
    def change(doc: Any) -> None:
        i = doc["headings"].index(column)
        del doc["headings"][i]
        for row in doc["data"]:
            del row[i]

    return change


def assert_ovs_damaged(result: Audit, host: str, *needles: str) -> None:
    """The host's OVS facts are a problem naming what broke, and every OVS check on it errs."""
    message = problems(result, host).get("ovs", "")
    for needle in needles:
        assert needle in message, message
    for f in result.findings:
        if f.check.id in OVS_CHECKS and (f.host in (host, None)):
            assert f.status == ERROR, f


# --- OVS tables -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("table", "edit", "needles"),
    [
        # KeyError in parse.py before
        ("Interface", drop_column("_uuid"), ["ovs-Interface", "'_uuid' missing from the headings"]),
        # TypeError (unhashable list) before
        (
            "Interface",
            set_column("Interface", "_uuid", lambda old: ["set", [old]]),
            ["ovs-Interface", "'_uuid'", "expected a uuid"],
        ),
        (
            "Interface",
            set_column("Interface", "_uuid", lambda old: [old[1], "x"]),
            ["ovs-Interface", "'_uuid'", "not an OVSDB atom"],
        ),
        # a wrongly typed column was read as an empty value
        (
            "Interface",
            set_column("Interface", "external_ids", lambda old: ["set", []]),
            ["ovs-Interface", "'external_ids'", "expected a map of strings"],
        ),
        (
            "Interface",
            set_column("Interface", "options", lambda old: "peer=x"),
            ["'options'", "expected a map of strings"],
        ),
        (
            "Interface",
            set_column("Interface", "ofport", lambda old: "1"),
            ["'ofport'", "expected an integer"],
        ),
        (
            "Interface",
            set_column("Interface", "name", lambda old: ["uuid", old]),
            ["'name'", "expected a string"],
        ),
        (
            "Port",
            set_column("Port", "trunks", lambda old: ["set", ["101"]]),
            ["ovs-Port", "'trunks'", "expected a set of integers"],
        ),
        (
            "Port",
            set_column("Port", "vlan_mode", lambda old: "sometimes"),
            ["ovs-Port", "'vlan_mode'", "unknown VLAN mode"],
        ),
        (
            "Port",
            set_column("Port", "interfaces", lambda old: "vnet0"),
            ["ovs-Port", "'interfaces'", "expected a set of uuids"],
        ),
        (
            "Bridge",
            set_column("Bridge", "datapath_type", lambda old: 0),
            ["ovs-Bridge", "'datapath_type'", "expected a string"],
        ),
        (
            "Open_vSwitch",
            set_column("Open_vSwitch", "cur_cfg", lambda old: str(old)),
            ["ovs-Open_vSwitch", "'cur_cfg'"],
        ),
        ("Port", drop_column("tag"), ["ovs-Port", "'tag'", "missing"]),
    ],
)
def test_damaged_ovs_table_is_a_problem_and_its_checks_err(
    tmp_path: Path, table: str, edit: Callable[[Any], None], needles: list[str]
) -> None:
    d = copy_scenario("two-ok", tmp_path)
    HostBundle(d / "kvm-a").edit_json(f"ovs-{table}", edit)
    result = run(d)
    assert_ovs_damaged(result, "kvm-a", *needles)
    assert problems(result, "kvm-b") == {}  # the other host is still audited
    assert finding(result, "KVMHA-OVS-001", "kvm-b").status == PASS


def test_vlan_tag_as_a_string_is_not_read_as_untagged(tmp_path: Path) -> None:
    """Before: tag "101" was read as untagged, so VLAN-001 failed for the wrong reason."""
    d = copy_scenario("two-ok", tmp_path)
    HostBundle(d / "kvm-a").edit_ovs_row("Port", "vnet4", "tag", "101")
    result = run(d)
    assert_ovs_damaged(result, "kvm-a", "ovs-Port", "'vnet4'", "'tag'", "'101'")


@pytest.mark.parametrize("tag", [4096, -1, True, 1.0, ["set", [101, 102]]])
def test_vlan_tag_out_of_range_or_of_another_type(tmp_path: Path, tag: Any) -> None:
    d = copy_scenario("two-ok", tmp_path)
    HostBundle(d / "kvm-a").edit_ovs_row("Port", "vnet4", "tag", tag)
    assert_ovs_damaged(run(d), "kvm-a", "'tag'")


def test_external_ids_not_a_map_does_not_turn_taps_into_uplinks(tmp_path: Path) -> None:
    """Before: external_ids read as empty made every VM tap a physical uplink, and HB-001
    passed on a server with no uplink at all (it fails on the true facts)."""
    d = copy_scenario("two-ok", tmp_path)
    hb = HostBundle(d / "kvm-a")

    def drop_uplink(doc: Any) -> None:
        h = doc["headings"]
        for row in doc["data"]:
            if row[h.index("name")] == "br-trunk":
                ports = row[h.index("ports")][1]
                row[h.index("ports")] = ["set", [p for p in ports if p[1] != uplink_uuid]]

    heads, rows = hb.ovs_rows("Port")
    (uplink_uuid,) = [r[0][1] for r in rows if r[heads.index("name")] == "up-a"]
    hb.edit_json("ovs-Bridge", drop_uplink)
    assert finding(run(d), "KVMHA-HB-001", "kvm-a").status == "fail"  # the true facts
    hb.edit_json("ovs-Interface", set_column("Interface", "external_ids", lambda old: ["set", []]))
    result = run(d)
    assert finding(result, "KVMHA-HB-001", "kvm-a").status == ERROR
    assert "'external_ids'" in problems(result, "kvm-a")["ovs"]


def test_duplicated_ovs_rows_are_damage(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)

    def duplicate_first(doc: Any) -> None:
        doc["data"].append(list(doc["data"][0]))

    HostBundle(d / "kvm-a").edit_json("ovs-Port", duplicate_first)
    assert_ovs_damaged(run(d), "kvm-a", "ovs-Port", "'_uuid'", "is also row 1")


def test_port_naming_an_unknown_interface_is_damage(tmp_path: Path) -> None:
    """Before: the interface was silently left out of the port."""
    d = copy_scenario("two-ok", tmp_path)

    def drop(doc: Any) -> None:
        h = doc["headings"]
        doc["data"] = [r for r in doc["data"] if r[h.index("name")] != "vnet4"]

    HostBundle(d / "kvm-a").edit_json("ovs-Interface", drop)
    assert_ovs_damaged(run(d), "kvm-a", "'vnet4'", "names unknown interface")


# --- links ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "needle"),
    [
        ("ifname", ["lo"], "'ifname' must be a name"),  # TypeError before
        ("flags", 256, "'flags' must be a list"),  # TypeError before
        ("flags", "PROMISC", "'flags' must be a list"),
        ("promiscuity", "1", "'promiscuity' must be a counter"),
        ("linkinfo", ["veth"], "'linkinfo' must be an object"),
        ("address", 7, "'address' must be a string"),
    ],
)
def test_damaged_link_entry_is_a_problem(
    tmp_path: Path, field: str, value: Any, needle: str
) -> None:
    d = copy_scenario("promisc-off", tmp_path)
    HostBundle(d / "kvm-a").edit_json("links", lambda doc: doc[0].__setitem__(field, value))
    result = run(d)
    assert needle in problems(result, "kvm-a")["links"]
    assert finding(result, "KVMHA-HB-001", "kvm-a").status == ERROR
    assert finding(result, "KVMHA-HB-001", "kvm-b").status != ERROR


def test_a_link_listed_twice_is_damage(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    HostBundle(d / "kvm-a").edit_json("links", lambda doc: doc.append(dict(doc[-1])))
    result = run(d)
    assert "listed twice" in problems(result, "kvm-a")["links"]
    assert finding(result, "KVMHA-HB-001", "kvm-a").status == ERROR


# --- domains ----------------------------------------------------------------------------------


def rename_domain(hb: HostBundle, old: str, new: str) -> None:
    hb.edit_domain(old, lambda xml: xml.replace(f"<name>{old}</name>", f"<name>{new}</name>"))


def test_two_domains_with_one_name_are_a_problem_not_the_last_one(tmp_path: Path) -> None:
    """Before: the domain read last silently won. Now neither is audited: every finding about
    that member is an error naming both UUIDs."""
    d = copy_scenario("single-ok", tmp_path)
    hb = HostBundle(d / "kvm-a")
    rename_domain(hb, "fw-slave", "fw-master")
    result = run(d)
    (key,) = [k for k in problems(result, "kvm-a") if k == "domain:fw-master"]
    message = problems(result, "kvm-a")[key]
    assert "2 domains are named 'fw-master'" in message
    member_findings = [f for f in result.findings if f.cluster == "edge-fw"]
    assert member_findings
    assert all(f.status != PASS for f in member_findings), [
        (f.check.id, f.subject, f.status) for f in member_findings if f.status == PASS
    ]
    assert finding(result, "KVMHA-TOPO-001", "edge-fw").status == ERROR
    assert "2 domains are named" in finding(result, "KVMHA-VIRT-003", "If1").detail


def test_live_and_persistent_xml_naming_different_domains_is_damage(tmp_path: Path) -> None:
    d = copy_scenario("single-ok", tmp_path)
    hb = HostBundle(d / "kvm-a")
    (live,) = [n for n in hb.domain_sections("fw-slave") if n.startswith("domain-live/")]
    hb.edit(live, lambda xml: xml.replace("<name>fw-slave</name>", "<name>fw-other</name>"))
    result = run(d)
    uuid = live.split("/", 1)[1]
    assert "but the inactive XML says 'fw-slave'" in problems(result, "kvm-a")[f"domain:{uuid}"]
    assert finding(result, "KVMHA-TOPO-001", "edge-fw").status == ERROR


def test_domain_xml_of_another_uuid_is_damage(tmp_path: Path) -> None:
    d = copy_scenario("single-ok", tmp_path)
    hb = HostBundle(d / "kvm-a")
    (inactive,) = [n for n in hb.domain_sections("fw-slave") if n.startswith("domain-inactive/")]
    uuid = inactive.split("/", 1)[1]
    hb.edit(inactive, lambda xml: xml.replace(uuid, "00000000-0000-0000-0000-000000000001"))
    result = run(d)
    assert "but the domain was listed as" in problems(result, "kvm-a")[f"domain:{uuid}"]


@pytest.mark.parametrize(
    ("old", "new", "needle"),
    [
        ("slot='0x03'", "slot='0x20'", "PCI slot 0x20 is out of range"),
        ("function='0x0'", "function='0x8'", "PCI function 0x8 is out of range"),
    ],
)
def test_pci_address_out_of_range_is_damage(
    tmp_path: Path, old: str, new: str, needle: str
) -> None:
    d = copy_scenario("single-ok", tmp_path)
    hb = HostBundle(d / "kvm-a")
    hb.edit_domain("fw-slave", lambda xml: xml.replace(old, new, 1))
    result = run(d)
    assert any(needle in p for p in problems(result, "kvm-a").values())
    assert finding(result, "KVMHA-VIRT-002", "If1").status == ERROR


def test_vlan_tag_out_of_range_in_xml_is_damage(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    HostBundle(d / "kvm-a").edit_domain(
        "fw-a", lambda xml: xml.replace("<tag id='101'/>", "<tag id='5000'/>")
    )
    result = run(d)
    assert any("VLAN tag 5000 is out of range" in p for p in problems(result, "kvm-a").values())
    assert finding(result, "KVMHA-VLAN-001", "If1").status == ERROR


# --- packages ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "manager=dpkg\nbridge-utils\tx\t\n",  # was read as "not installed": PKG-001 passed
        "manager=dpkg\nbridge-utils\t0\tinstall ok\n",  # truncated status: the same
        "manager=dpkg\nbridge-utils\t0\tinstall ok installed\nbridge-utils\t1\t\n",  # last won
    ],
)
def test_garbled_package_lines_are_damage(text: str) -> None:
    with pytest.raises(FactError, match="packages: bridge-utils"):
        parse_packages(text)


def test_multi_line_query_messages_are_still_skipped() -> None:
    pkgs = parse_packages(
        "manager=rpm\nbridge-utils\t1\tpackage bridge-utils is not installed\n"
        "error: some second line\twith a tab\n"
    )
    assert pkgs.installed == {"bridge-utils": False}


# --- bundle files -----------------------------------------------------------------------------


def test_non_utf8_section_is_a_problem_and_the_rest_is_audited(tmp_path: Path) -> None:
    """Before: BundleError for the whole host. Now the damaged section is a problem naming the
    file, the checks that read it err, and the rest of the host is audited."""
    d = copy_scenario("two-ok", tmp_path)
    path = d / "kvm-a" / "sections" / "ovs-Port"
    path.write_bytes(path.read_bytes().replace(b"vnet4", b"vnet\xff4"))
    result = run(d)
    assert_ovs_damaged(result, "kvm-a", "ovs-Port", "not UTF-8 text", "at byte")
    assert finding(result, "KVMHA-PKG-001", "kvm-a").status == PASS
    assert finding(result, "KVMHA-VIRT-002", "If1").status == PASS


def test_non_utf8_domain_xml_is_a_problem_of_that_domain(tmp_path: Path) -> None:
    d = copy_scenario("single-ok", tmp_path)
    hb = HostBundle(d / "kvm-a")
    (inactive,) = [n for n in hb.domain_sections("fw-slave") if n.startswith("domain-inactive/")]
    path = d / "kvm-a" / "sections" / inactive
    path.write_bytes(path.read_bytes().replace(b"fw-slave", b"fw-\xe9slave"))
    result = run(d)
    assert "not UTF-8 text" in problems(result, "kvm-a")[f"domain:{inactive.split('/')[1]}"]
    assert finding(result, "KVMHA-TOPO-001", "edge-fw").status == ERROR


@pytest.mark.parametrize(
    ("field", "value"),
    [("round_trips", "many"), ("seconds", [1]), ("commands", 3), ("error", {"x": 1})],
)
def test_malformed_bundle_meta_is_a_bundle_error(tmp_path: Path, field: str, value: Any) -> None:
    d = copy_scenario("two-ok", tmp_path)
    HostBundle(d / "kvm-a").set_meta(lambda meta: meta.__setitem__(field, value))
    with pytest.raises(BundleError, match="bundle.json: malformed field"):
        EvidenceBundle.read(d / "kvm-a")
    result = run(d)  # replay: that host is an error, the other one is audited
    (a,) = [h for h in result.hosts if h.name == "kvm-a"]
    assert a.status == "error" and "malformed field" in (a.error or "")
    assert finding(result, "KVMHA-OVS-001", "kvm-b").status == PASS


def test_huge_integer_in_section_json_is_damage_not_a_crash(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    path = d / "kvm-a" / "sections" / "links"
    path.write_text(path.read_text().replace('"mtu":1500', '"mtu":' + "9" * 5000, 1))
    # Python refuses to parse ints this long (a ValueError, not a JSONDecodeError)
    result = run(d)
    assert "malformed JSON" in problems(result, "kvm-a")["links"]


# --- the planner ------------------------------------------------------------------------------


HOTPLUG = """    <interface type='bridge'>
      <mac address='52:54:00:ee:ee:{n:02x}'/>
      <source bridge='br-hotplug'/>
      <target dev='vnet9{n}'/>
      <model type='virtio'/>
      <alias name='net9'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x09' function='0x0'/>
    </interface>
"""


def hotplug(d: Path) -> None:
    """Both members get a NIC in their live XML only (virsh attach-interface --live)."""
    hb = HostBundle(d / "kvm-a")
    for n, domain in enumerate(("fw-master", "fw-slave")):
        (live,) = [s for s in hb.domain_sections(domain) if s.startswith("domain-live/")]
        hb.edit(
            live,
            lambda xml, n=n: xml.replace("    <input ", HOTPLUG.format(n=n) + "    <input ", 1),
        )


def test_plan_with_live_only_nics_is_refused_not_an_index_error(tmp_path: Path) -> None:
    """Before: IndexError in the planner (pairs counted from the live XML, the plan rewrites
    the persistent one, which has one NIC fewer)."""
    d = copy_scenario("single-ok", tmp_path)
    hotplug(d)
    toml = (d / "clusters.toml").read_text()
    (d / "clusters.toml").write_text(toml.split("[[clusters.edge-fw.pairs]]")[0])  # no pairs
    inv = load_inventory(d / "clusters.toml")
    hosts = {b.host: parse_bundle(b) for b in collect_all(list(inv.hosts), CollectOptions())}
    with pytest.raises(PlanRefused) as refused:
        plan_cluster(inv.clusters[0], hosts)
    assert "NIC #3" in str(refused.value) and "live XML only" in str(refused.value)


def test_cli_plan_with_live_only_nics_is_no_internal_error(pytester: pytest.Pytester) -> None:
    d = copy_scenario("single-ok", pytester.path)
    hotplug(d)
    inv = d / "clusters.toml"
    wanted = d / "wanted.toml"
    wanted.write_text(inv.read_text().split("[[clusters.edge-fw.pairs]]")[0])
    result = pytester.runpytest(
        f"--kvmha-inventory={inv}", f"--kvmha-plan={wanted}", "--kvmha-report=r.json"
    )
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    w = json.loads((pytester.path / "r.json").read_text())["whatif"]
    assert any("live XML only" in r for r in w["refused"])


# --- --kvmha-timeout --------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["inf", "nan", "0", "-5", "1e300"])
def test_timeout_must_be_finite_and_positive(pytester: pytest.Pytester, value: str) -> None:
    d = copy_scenario("two-ok", pytester.path)
    result = pytester.runpytest(
        f"--kvmha-inventory={d / 'clusters.toml'}", f"--kvmha-timeout={value}"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    result.stderr.fnmatch_lines(
        ["ERROR: --kvmha-timeout: * is not a number of seconds above 0 and at most 86400"]
    )


@pytest.mark.parametrize("value", ["inf", "nan", "0", "soon"])
def test_timeout_ini_key_is_checked_too(pytester: pytest.Pytester, value: str) -> None:
    d = copy_scenario("two-ok", pytester.path)
    pytester.makeini(f"[pytest]\nkvmha_timeout = {value}\n")
    result = pytester.runpytest(f"--kvmha-inventory={d / 'clusters.toml'}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: kvmha_timeout (ini): *{value!r}*"])


def test_valid_timeout_still_audits(pytester: pytest.Pytester) -> None:
    d = copy_scenario("two-ok", pytester.path)
    result = pytester.runpytest(f"--kvmha-inventory={d / 'clusters.toml'}", "--kvmha-timeout=2.5")
    assert result.ret == 0


def test_recorded_scenarios_are_not_damage() -> None:
    """The strict parsers accept every real recording without a single problem."""
    for name in sorted(p.name for p in BUNDLES.iterdir() if p.is_dir()):
        inv = load_inventory(BUNDLES / name / "clusters.toml")
        for b in collect_all(list(inv.hosts), CollectOptions()):
            assert dict(parse_bundle(b).problems) == {}, (name, b.host)


def test_parser_checks_every_column_the_collector_lists() -> None:
    from pytest_kvmha.bundle.contract import OVS_COLUMNS
    from pytest_kvmha.collect.script import OVS_TABLES

    assert {t: tuple(c.split(",")) for t, c in OVS_TABLES.items()} == OVS_COLUMNS


def test_missing_column_of_an_empty_table_is_damage(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)

    def empty_without_tag(doc: Any) -> None:
        drop_column("tag")(doc)
        doc["data"] = []

    HostBundle(d / "kvm-a").edit_json("ovs-Port", empty_without_tag)
    assert_ovs_damaged(run(d), "kvm-a", "ovs-Port", "'tag' missing from the headings")


def test_empty_pci_attribute_is_damage_not_zero(tmp_path: Path) -> None:
    d = copy_scenario("slot-mismatch", tmp_path)
    hb = HostBundle(d / "kvm-a")
    hb.edit_domain("fw-slave", lambda xml: xml.replace("slot='0x05'", "slot=''"))
    result = run(d)
    assert any("not a number: ''" in p for p in problems(result, "kvm-a").values())
    assert finding(result, "KVMHA-VIRT-002", "If2").status == ERROR


def test_damaged_networks_make_persistent_network_nics_err_not_fail(tmp_path: Path) -> None:
    """Before: with the networks section damaged, a running NIC whose persistent XML uses a
    libvirt network was judged as if the network did not exist: VIRT-001 failed ("persistent
    XML lacks <virtualport>") for a reason that is not true. Unknown is an error."""
    d = copy_scenario("network-ok", tmp_path)
    hb = HostBundle(d / "kvm-a")
    (net,) = hb.sections("network/")[:1]
    hb.edit(net, lambda xml: xml[: len(xml) // 2])
    result = run(d)
    assert "malformed XML" in problems(result, "kvm-a")["networks"]
    virt = [f for f in result.findings if f.check.id == "KVMHA-VIRT-001"]
    assert virt and all(f.status == ERROR for f in virt), [(f.subject, f.status) for f in virt]


def test_plan_on_damaged_nwfilters_is_refused(tmp_path: Path) -> None:
    """Before: unknown filters were taken for harmless ones and the plan went ahead."""
    d = copy_scenario("mac-filter", tmp_path)
    hb = HostBundle(d / "kvm-a")
    hb.edit(hb.sections("nwfilter/")[0], lambda xml: xml.replace("<filter ", "<filter><x ", 1))
    inv = load_inventory(d / "clusters.toml")
    hosts = {b.host: parse_bundle(b) for b in collect_all(list(inv.hosts), CollectOptions())}
    assert "nwfilters" in hosts["kvm-a"].problems
    with pytest.raises(PlanRefused, match="nwfilter/"):
        plan_cluster(inv.clusters[0], hosts)


def test_live_output_that_is_not_utf8_damages_only_its_section(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Before: testinfra decoded the whole output with the host's locale (after asking for it
    in a second round trip) and one Latin-1 byte made the whole host an error. Now only the
    section holding it is damaged; the rest of the host is audited."""
    import re

    import testinfra
    from testinfra.backend.base import CommandResult

    from pytest_kvmha.collect import host as collect_module
    from pytest_kvmha.collect.host import collect
    from pytest_kvmha.config.target import HostTarget

    local = testinfra.get_host("local://")
    runs: list[str] = []

    class Host:
        def run(self, command: str) -> CommandResult:
            runs.append(command)
            (b,) = set(re.findall(r"KVMHA([0-9a-f]{24})", command))
            out = b""
            for name, text in (
                ("identity", b"0123abcd\nkvm9\n"),
                ("links", b'[{"ifname": "eth\xe9"}]'),
            ):
                out += b"KVMHA%s BEGIN %s\n%s\nKVMHA%s STDERR %s\n\nKVMHA%s END %s 0\n" % (
                    b.encode(),
                    name.encode(),
                    text,
                    b.encode(),
                    name.encode(),
                    b.encode(),
                    name.encode(),
                )
            return CommandResult(local.backend, 0, command.encode(), out, b"")

    monkeypatch.setattr(collect_module, "testinfra_host", lambda spec, options: Host())
    bundle = collect(HostTarget("kvm9", "ssh://root@kvm9"), CollectOptions())
    assert bundle.status == "ok", bundle.error
    assert len(runs) == 1 and bundle.round_trips == 1
    facts = parse_bundle(bundle)
    assert facts.identity == "0123abcd"
    assert "links: output is not UTF-8 text (byte 0xe9" in facts.problems["links"]
