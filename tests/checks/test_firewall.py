"""The firewalls' own HA configuration (issue 10): parsers, secrets, inventory keys, collection
into the bundle, the KVMHA-FW checks and the heartbeat mode they decide.

Audits replay the recorded lab scenarios (tests/bundles) with saved configurations from
tests/data/fwconfig: a good pair per vendor and one file per defect.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from pytest_kvmha.audit.engine import Audit, audit
from pytest_kvmha.bundle.store import EvidenceBundle, Section
from pytest_kvmha.collect.firewall import FirewallSource, check_console, console_argv
from pytest_kvmha.collect.pool import collect_all
from pytest_kvmha.config.inventory import (
    ClusterSpec,
    InventoryError,
    MemberSpec,
    inventory_from_specs,
    load_inventory,
)
from pytest_kvmha.config.names import firewall_key
from pytest_kvmha.config.target import CollectOptions
from pytest_kvmha.facts.firewall import FgcpFacts, FirewallConfig
from pytest_kvmha.facts.ha_status import FgcpStatus
from pytest_kvmha.model import MissingFacts, discover_checks
from pytest_kvmha.parse.cos_core import cos_ha_facts, parse_cos_show
from pytest_kvmha.parse.evidence import ConfigParseError
from pytest_kvmha.parse.firewall import parse_firewall_section, section_name
from pytest_kvmha.parse.fortios import fgcp_facts, find_block, parse_fortios
from pytest_kvmha.parse.ha_status import status_section_name
from pytest_kvmha.parse.host import parse_bundle
from pytest_kvmha.parse.secrets import MARKER, strip_secrets
from pytest_kvmha.topology.cluster import (
    Cluster,
    Member,
    config_heartbeat,
    member_firewall,
    nic_in_pci_order,
)

from ..bundlekit import HostBundle, copy_scenario

DATA = Path(__file__).parent.parent / "data" / "fwconfig"
STATUS = Path(__file__).parent.parent / "data" / "hastatus"
BUNDLES = Path(__file__).parent.parent / "bundles"
CHECKS = discover_checks()
FW = ("KVMHA-FW-001", "KVMHA-FW-002", "KVMHA-FW-003", "KVMHA-FW-004", "KVMHA-FW-005")

# Every secret value in the saved configurations: none may reach a bundle, terminal or report.
SECRETS = (
    "SH2sEcReTaDmInHaSh",
    "hAsEcReTPaSsWoRd",
    "pSkSeCrEtVaLuE",
    "cErTpAsSwOrD",
    "PRIVATEKEYBYTES",
    "gUeStPaSsWd",
    "lEaKeDiFnOtStRiPpEd",
    "cLuStErShArEdSeCrEt",
)


# --- FortiOS parser -----------------------------------------------------------------------------


def test_fortios_quoting_and_multi_value_sets() -> None:
    root = parse_fortios(
        "config system ha\n"
        '    set group-name "two words"\n'
        '    set hbdev "port3" 50 "port4" 40\n'
        "end\n"
        "config system interface\n"
        '    edit "port1"\n'
        '        set alias "outside \\"wan\\" \\\\ side"\n'
        '        set description "line one\nline two"\n'
        "        set ip 192.0.2.1/24\n"
        "    next\n"
        "end\n"
    )
    ha = find_block(root, "system ha")
    assert ha is not None
    assert ha.value("group-name") == ("two words",)
    assert ha.value("hbdev") == ("port3", "50", "port4", "40")
    port1 = root.blocks["system interface"].entries["port1"]
    assert port1.value("alias") == ('outside "wan" \\ side',)
    assert port1.value("description") == ("line one\nline two",)
    facts = fgcp_facts(root)
    assert [(h.interface, h.priority) for h in facts.hbdev] == [("port3", 50), ("port4", 40)]
    assert str(facts.addresses["port1"]) == "192.0.2.1/24"


def test_fortios_nesting_vdoms_and_unset() -> None:
    root = parse_fortios(
        "#config-version=FGVMK6-7.2.5\n"
        "config global\n"
        "    config system ha\n"
        "        set group-id 7\n"
        "        set hb-interval 4\n"
        "        unset hb-interval\n"
        "    end\n"
        "    config system interface\n"
        '        edit "port2"\n'
        "            set ip 10.0.0.1 255.255.255.0\n"
        "            config ipv6\n"
        "                set ip6-address ::/0\n"
        "            end\n"
        "        next\n"
        "    end\n"
        "end\n"
        "config vdom\n"
        '    edit "root"\n'
        "        config firewall policy\n"
        "        end\n"
        "    next\n"
        "end\n"
    )
    facts = fgcp_facts(root)
    assert facts.group_id == 7 and facts.hb_interval is None
    assert "hb-interval" in root.blocks["global"].blocks["system ha"].unset
    port2 = root.blocks["global"].blocks["system interface"].entries["port2"]
    assert port2.blocks["ipv6"].value("ip6-address") == ("::/0",)
    assert "firewall policy" in root.blocks["vdom"].entries["root"].blocks
    assert fgcp_facts(parse_fortios("config system global\nend\n")).ha_section is False


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ('config system ha\n    set group-name "open\nend\n', 2, "never closed"),
        ("config system ha\n    set group-id 1\n", 1, "'config system ha' is never closed"),
        ("end\n", 1, "no open 'config'"),
        ("config system ha\n    next\nend\n", 2, "'next' without an open 'edit'"),
        ("config s ha\n    set group-id 1\nend\n", 1, "ambiguous path word 's': it abbreviates"),
        ("config sys h\nend\n", 1, "ambiguous path word 'h': it abbreviates ha, ha-monitor"),
        ("e\n", 1, "ambiguous statement 'e': it abbreviates edit, end"),
        ("config system ha\n    end now\n", 2, "'end' with no open 'config'"),
        ("set group-id 1\n", 1, "outside a 'config' block"),
        ("config system ha\n    sett group-id 1\nend\n", 2, "unknown statement"),
        ("config system ha\n    edit 1\n    next\nend\nconfig system ha\n", 5, "never closed"),
        ("config system ha\n    set group-id\nend\n", 2, "without a value"),
        ("config system ha\n    set hbdev 50 port4\nend\n", 2, "priority 50 follows no interface"),
        (
            "config system ha\n    set ha-eth-type 0x8890\nend\n",
            2,
            "'ha-eth-type' must be 4 hex digits (e.g. 8890)",
        ),
        ("config system ha\n    set hb-interval-in-milliseconds 1ms\nend\n", 2, "100ms, 10ms"),
        (
            "FGT # show system ha\ncommand parse error before 'system'\nCommand fail. Return code -61\n",
            2,
            "the FortiGate refused a command",
        ),
        ("config system ha\n    set group-id ten\nend\n", 2, "integer"),
        ("config system ha\n    set unicast-hb-peerip 10.0.0\nend\n", 2, "IPv4"),
        ("config system ha\n    set unicast-hb on\nend\n", 2, "enable or disable"),
    ],
)
def test_fortios_malformed_names_the_line(text: str, line: int, words: str) -> None:
    with pytest.raises(ConfigParseError) as exc:
        fgcp_facts(parse_fortios(text))
    assert exc.value.line == line
    assert words in str(exc.value)
    assert str(exc.value).startswith(f"line {line}: ")


# --- cOS Core parser ----------------------------------------------------------------------------


def test_cos_tables_continuations_and_types() -> None:
    objects = parse_cos_show((DATA / "cos-master.txt").read_text())
    assert [o.type for o in objects] == [
        "HighAvailability",
        "EthernetInterface",
        "EthernetInterface",
    ]
    ha = objects[0].properties
    assert ha["Comments"] == "HA cluster of the edge firewall,\nsync on the second pair"
    assert ha["HASyncIP"] == ""  # <empty>
    facts = cos_ha_facts(objects)
    assert (facts.cluster_id, facts.role, facts.sync_interface) == (42, "master", "If2")
    assert facts.ethernet == ("If1", "If2")
    # without a command echo the type comes from the properties
    bare = "\n".join(
        line for line in (DATA / "cos-slave.txt").read_text().splitlines() if "show" not in line
    )
    assert cos_ha_facts(parse_cos_show(bare)) == cos_ha_facts(
        parse_cos_show((DATA / "cos-slave.txt").read_text())
    )


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ((DATA / "cos-malformed.txt").read_text(), 6, "not a 'Property: value' row"),
        ("          Property  Value\nName: x\n", 2, "rule line"),
        ("          Property  Value\n------  -----\n  Name: a\n  Name: b\n", 4, "shown twice"),
        ("Error: Unknown command\n", 1, "outside a property table"),
    ],
)
def test_cos_malformed_names_the_line(text: str, line: int, words: str) -> None:
    with pytest.raises(ConfigParseError) as exc:
        parse_cos_show(text)
    assert exc.value.line == line and words in str(exc.value)


def test_cos_ha_object_required_and_roles_checked() -> None:
    table = "   Property  Value\n-----------  -----\n       Name: If1\n EthernetDevice: 0:e1000\n"
    with pytest.raises(ConfigParseError, match="0 HighAvailability objects"):
        cos_ha_facts(parse_cos_show(table))
    ha = "   Property  Value\n-----------  -----\n  ClusterID: 3\n     NodeID: Backup\n"
    with pytest.raises(ConfigParseError, match="neither Master nor Slave"):
        cos_ha_facts(parse_cos_show(ha))


def test_section_names_are_safe_and_injective() -> None:
    hostile = ["fw-a", "../etc", "a/b", "-rf", "x\ny", "fw.a", "fw_2ea", "Ωmega", "", "a" * 300]
    names = [section_name("fortigate", d) for d in hostile]
    assert len(set(names)) == len(names)
    for name in names:
        assert re.fullmatch(r"fwconfig/[A-Za-z0-9_.~-]+", name), name
        assert ".." not in name and name.count("/") == 1
    assert firewall_key("fw-a") == "fw-a"
    assert firewall_key("fw.a") == "fw_2ea"
    # the bundle writer accepts every one of them, and the domain comes back from the name
    bundle = EvidenceBundle("h", "local://", "local", "now")
    for d, name in zip(hostile[:8], names[:8], strict=True):
        bundle.sections[name] = Section("config system global\nend\n")
        got = parse_firewall_section("h", name, "config system global\nend\n", "", 0)
        assert got is not None and (got.domain == d or got.domain == repr(d))


def test_vendor_mismatch_is_a_problem_naming_the_member() -> None:
    text = (DATA / "cos-master.txt").read_text()
    got = parse_firewall_section("kvm-a", section_name("fortigate", "fw-a"), text, "", 0)
    assert got is not None and got.facts is None
    assert got.problem == (
        "kvm-a: firewall configuration of fw-a is malformed: the text is cOS Core show output, "
        "but the member's vendor is fortigate"
    )


# --- secrets ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(p.name for p in DATA.iterdir() if p.suffix != ".toml"))
def test_no_secret_survives_stripping(name: str) -> None:
    raw = (DATA / name).read_bytes().decode("utf-8", "replace")
    stripped = strip_secrets(raw)
    for secret in SECRETS:
        assert secret not in stripped
    assert "PRIVATE KEY" not in stripped
    assert strip_secrets(stripped) == stripped  # idempotent: replays strip again harmlessly


def test_secret_stripping_keeps_the_ha_facts() -> None:
    text = (DATA / "fgt-a.conf").read_text()
    stripped = strip_secrets(text)
    assert "set password <removed-by-kvmha>" in stripped
    assert "set private-key <removed-by-kvmha>" in stripped
    assert "-----BEGIN CERTIFICATE-----" in stripped  # a certificate is no secret
    assert fgcp_facts(parse_fortios(stripped)) == fgcp_facts(parse_fortios(text))


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ('config system ha\n    set ha-password "pw with \\" quote"\nend\n', "pw with"),
        ("config x\n    set auth-secret abc123\nend\n", "abc123"),
        ("config x\n    set key 0123abcd\nend\n", "0123abcd"),
        ('config x\n    set comments "open\n    set psksecret ENC zzzz\nend\n', "zzzz"),
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n", "MIIEowIBAAKCAQEA"),
        ("          PSK: hunter2\n", "hunter2"),
        ('add IPsecTunnel t PSK="s3cr3t value"\n', "s3cr3t"),
        ("   SharedSecret: first part\n                 second part\n       Name: x\n", "second"),
    ],
)
def test_secret_forms(text: str, secret: str) -> None:
    stripped = strip_secrets(text)
    assert secret not in stripped
    assert MARKER in stripped


# --- inventory ----------------------------------------------------------------------------------


def write_inventory(
    directory: Path,
    vendor: str,
    members: list[dict[str, str]],
    *,
    scenario: str = "two-ok",
    heartbeat: str | None = None,
) -> Path:
    hosts = sorted({m["host"] for m in members} | {"kvm-a", "kvm-b"})
    lines = []
    for h in hosts:
        lines += [f"[hosts.{h}]", f"spec = {json.dumps('replay://' + str(BUNDLES / scenario / h))}"]
    lines += ["[clusters.edge-fw]", f"vendor = {json.dumps(vendor)}"]
    if heartbeat:
        lines.append(f"heartbeat = {json.dumps(heartbeat)}")
    lines.append("members = [")
    for m in members:
        lines.append("  { " + ", ".join(f"{k} = {json.dumps(v)}" for k, v in m.items()) + " },")
    lines.append("]")
    path = directory / "clusters.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def fgt(a: str = "fgt-a.conf", b: str = "fgt-b.conf") -> list[dict[str, str]]:
    return [
        {"host": "kvm-a", "domain": "fw-a", "role": "master", "config": str(DATA / a)},
        {"host": "kvm-b", "domain": "fw-b", "role": "slave", "config": str(DATA / b)},
    ]


def cos(master: str = "cos-master.txt", slave: str = "cos-slave.txt") -> list[dict[str, str]]:
    return [
        {"host": "kvm-a", "domain": "fw-a", "role": "master", "config": str(DATA / master)},
        {"host": "kvm-b", "domain": "fw-b", "role": "slave", "config": str(DATA / slave)},
    ]


@pytest.mark.parametrize(
    ("member", "message"),
    [
        (
            {"config": "a.conf", "console": "ssh://audit@10.0.0.1"},
            "member 1: keys 'config' and 'console' exclude each other",
        ),
        ({"console": "ssh://audit:pw@10.0.0.1"}, "member 1: key 'console': no password"),
        ({"console": "ssh://audit@10.0.0.1/show"}, "member 1: key 'console': not a console URL"),
        ({"console": "ssh://-oProxyCommand=x@h"}, "member 1: key 'console': not a console URL"),
        ({"console": "ssh://a@h;rm -rf /"}, "member 1: key 'console': not a console URL"),
        ({"console": "ssh://a@h:99999"}, "member 1: key 'console': port 99999 is out of range"),
        ({"console": "telnet://a@h"}, "member 1: key 'console': not a console URL"),
        ({"vendor": "cos-core"}, "member 1: key 'vendor' is 'cos-core', but the cluster's"),
        ({"confg": "a.conf"}, "member 1: unknown key 'confg'"),
        ({"config": ""}, "member 1: key 'config' must be a non-empty string"),
    ],
)
def test_inventory_rejects_bad_firewall_keys(
    tmp_path: Path, member: dict[str, str], message: str
) -> None:
    path = write_inventory(tmp_path, "fortigate", [{"host": "kvm-a", "domain": "fw-a", **member}])
    with pytest.raises(InventoryError) as exc:
        load_inventory(path)
    # named and 1-based, with its line: two [hosts.*] tables, the cluster, vendor, "members = ["
    where = f'{path}: cluster "edge-fw", member 1 (line 8): '
    assert str(exc.value).startswith(where + message.removeprefix("member 1: "))


def test_inventory_firewall_sources(tmp_path: Path) -> None:
    path = write_inventory(
        tmp_path,
        "fortigate",
        [
            {
                "host": "kvm-a",
                "domain": "fw-a",
                "config": "backups/fw-a.conf",
                "vendor": "fortigate",
            },
            {"host": "kvm-b", "domain": "fw-b", "console": "ssh://audit@[fd00::11]:2222"},
        ],
    )
    inv = load_inventory(path)
    a, b = inv.clusters[0].members
    assert a.config == str(tmp_path / "backups" / "fw-a.conf")  # relative to the inventory
    assert b.console == "ssh://audit@[fd00::11]:2222" and b.config is None
    assert not inv.clusters[0].heartbeat_declared
    by_host = {h.name: h.firewalls for h in inv.hosts}
    assert by_host["kvm-a"] == (FirewallSource("fw-a", "fortigate", a.config, None),)
    assert by_host["kvm-b"] == (FirewallSource("fw-b", "fortigate", None, b.console),)
    assert check_console("ssh://audit@[fd00::11]:2222") == ("audit", "fd00::11", 2222)
    # discovery without an inventory: no firewall sources, exactly as before
    assert all(h.firewalls == () for h in inventory_from_specs(["ssh://root@kvm1"]).hosts)


def test_console_command_line_has_no_host_names(tmp_path: Path) -> None:
    source = FirewallSource("fw-$(reboot)", "fortigate", None, "ssh://audit@fw-a.example:2022")
    argv = console_argv(source, CollectOptions(ssh_config="/etc/cfg", timeout=7))
    assert argv[-3:] == ["audit", "--", "fw-a.example"]
    assert argv[:2] == ["ssh", "-T"] and "BatchMode=yes" in argv and "-F" in argv
    assert "fw-$(reboot)" not in " ".join(argv)  # the domain never reaches a command line


# --- audits -------------------------------------------------------------------------------------


def run(path: Path) -> Audit:
    inventory = load_inventory(path)
    bundles = collect_all(list(inventory.hosts), CollectOptions())
    return audit(CHECKS, inventory, [parse_bundle(b) for b in bundles])


def fw_statuses(result: Audit) -> dict[tuple[str, str], str]:
    return {
        (f.check.id, f.subject): f.status
        for f in result.findings
        if f.check.id.startswith(("KVMHA-FW-", "KVMHA-HB-"))
    }


def detail(result: Audit, check: str, subject: str = "edge-fw") -> str:
    (f,) = [f for f in result.findings if f.check.id == check and f.subject == subject]
    return str(f.detail)


GOOD_FGT = {
    ("KVMHA-FW-001", "fw-a"): "pass",
    ("KVMHA-FW-001", "fw-b"): "pass",
    ("KVMHA-FW-002", "edge-fw"): "pass",
    ("KVMHA-FW-003", "edge-fw"): "pass",
    ("KVMHA-FW-004", "edge-fw"): "pass",
    ("KVMHA-FW-005", "edge-fw"): "pass",
    # unicast heartbeat, decided by the configuration: the broadcast host requirements skip
    ("KVMHA-HB-001", "kvm-a"): "skip",
    ("KVMHA-HB-001", "kvm-b"): "skip",
    ("KVMHA-HB-002", "fw-a"): "skip",
    ("KVMHA-HB-002", "fw-b"): "skip",
    ("KVMHA-HB-003", "edge-fw"): "pass",
}


def test_good_fortigate_pair(tmp_path: Path) -> None:
    result = run(write_inventory(tmp_path, "fortigate", fgt()))
    assert fw_statuses(result) == GOOD_FGT
    assert detail(result, "KVMHA-FW-004") == (
        "fw-a 169.254.90.1/24 <-> fw-b 169.254.90.2/24: peers address each other"
    )
    assert detail(result, "KVMHA-FW-005") == (
        "heartbeat over If2 (fw-a port2 = NIC #2 (If2), fw-b port2 = NIC #2 (If2)) "
        "on bridge br2-external VLAN 102"
    )
    # the configurations (unicast, hbdev port2) decide what is traced: If1 is a data pair with
    # no virtual MACs, If2 carries the unicast heartbeat the recording (inventory-decided) lacks
    traced = {
        f.subject: (f.status, f.detail) for f in result.findings if f.check.id == "KVMHA-TRACE-001"
    }
    assert traced["fw-a:If1"][0] == traced["fw-b:If1"][0] == "skip"
    assert traced["fw-a:If2"][0] == "error"
    assert (
        "no trace of FGCP unicast heartbeat TCP/703 169.254.90.1 -> 169.254.90.2"
        in (traced["fw-a:If2"][1])
    )
    # every other finding is what the recorded scenario gives without configurations
    plain = run(BUNDLES / "two-ok" / "clusters.toml")
    others = {
        (f.check.id, f.subject): f.status
        for f in plain.findings
        if not f.check.id.startswith(("KVMHA-FW-", "KVMHA-FIRM-", "KVMHA-HB-", "KVMHA-TRACE-"))
    }
    assert others.items() <= {(f.check.id, f.subject): f.status for f in result.findings}.items()


def test_good_cos_pair_keeps_broadcast_requirements(tmp_path: Path) -> None:
    result = run(write_inventory(tmp_path, "cos-core", cos()))
    got = fw_statuses(result)
    assert got == {
        **{k: "pass" for k in GOOD_FGT},
        ("KVMHA-FW-004", "edge-fw"): "skip",  # cOS Core has no unicast heartbeat
        ("KVMHA-HB-003", "edge-fw"): "skip",
    }
    assert detail(result, "KVMHA-FW-002") == (
        "edge-fw: cOS Core cluster ID 42, master, sync interface If2 on every member"
    )


@pytest.mark.parametrize(
    ("vendor", "members", "check", "status", "words"),
    [
        (
            "fortigate",
            fgt(b="fgt-b-group-mismatch.conf"),
            "KVMHA-FW-002",
            "fail",
            "group-id differs: fw-a 10, fw-b 11",
        ),
        (
            "fortigate",
            fgt(a="fgt-a-peer-wrong.conf"),
            "KVMHA-FW-004",
            "fail",
            "fw-a: unicast-hb-peerip 169.254.90.9 is not fw-b's heartbeat address (169.254.90.2)",
        ),
        (
            "fortigate",
            fgt("fgt-a-hb-not-pair.conf", "fgt-b-hb-not-pair.conf"),
            "KVMHA-FW-005",
            "fail",
            "fw-a: port3 would be NIC #3, but fw-a has 2 NICs: no interface pair",
        ),
        (
            "cos-core",
            cos(slave="cos-slave-cluster-mismatch.txt"),
            "KVMHA-FW-002",
            "fail",
            "cluster ID differs: fw-a 42, fw-b 43",
        ),
        (
            "cos-core",
            cos(slave="cos-slave-two-masters.txt"),
            "KVMHA-FW-002",
            "fail",
            "not one master and one slave: fw-a master, fw-b master",
        ),
        (
            "cos-core",
            cos("cos-master-sync-not-pair.txt", "cos-slave-sync-not-pair.txt"),
            "KVMHA-FW-005",
            "fail",
            "fw-a: If3 would be NIC #3, but fw-a has 2 NICs",
        ),
        (
            "fortigate",
            fgt(b="fgt-malformed.conf"),
            "KVMHA-FW-002",
            "error",
            "kvm-b: firewall configuration of fw-b is malformed: line 3: a double quote is never closed",
        ),
        (
            "cos-core",
            cos(slave="cos-malformed.txt"),
            "KVMHA-FW-005",
            "error",
            "kvm-b: firewall configuration of fw-b is malformed: line 6: not a 'Property: value' row",
        ),
        (
            "fortigate",
            fgt(b="fgt-unreadable.conf"),
            "KVMHA-FW-003",
            "error",
            "fw-b: config " + str(DATA / "fgt-unreadable.conf") + ": not UTF-8 text",
        ),
        (
            "fortigate",
            fgt(b="no-such.conf"),
            "KVMHA-FW-001",
            "error",
            "fw-b: config " + str(DATA / "no-such.conf") + ": cannot open: No such file",
        ),
    ],
)
def test_one_defect_per_file(
    tmp_path: Path, vendor: str, members: list[dict[str, str]], check: str, status: str, words: str
) -> None:
    result = run(write_inventory(tmp_path, vendor, members))
    subject = "fw-b" if check == "KVMHA-FW-001" else "edge-fw"
    (f,) = [f for f in result.findings if f.check.id == check and f.subject == subject]
    assert f.status == status
    assert words in f.detail
    if status == "error":  # every check that needs the broken member's facts cannot pass
        for other in FW:
            assert all(
                g.status in ("error", "pass") for g in result.findings if g.check.id == other
            )
            assert any(g.status == "error" for g in result.findings if g.check.id == other)


def test_declared_heartbeat_contradicting_the_config(tmp_path: Path) -> None:
    result = run(write_inventory(tmp_path, "fortigate", fgt(), heartbeat="broadcast"))
    (f,) = [f for f in result.findings if f.check.id == "KVMHA-FW-003"]
    assert f.status == "fail"
    assert f.detail == (
        'the inventory declares heartbeat = "broadcast", but the firewalls\' configuration uses '
        "unicast heartbeat"
    )
    assert (f.expected, f.found) == (
        'heartbeat = "unicast" (from the configuration)',
        'heartbeat = "broadcast" (inventory)',
    )
    # the host side is judged for the configuration's heartbeat all the same
    assert fw_statuses(result)[("KVMHA-HB-001", "kvm-a")] == "skip"
    same = run(write_inventory(tmp_path, "fortigate", fgt(), heartbeat="unicast"))
    assert fw_statuses(same)[("KVMHA-FW-003", "edge-fw")] == "pass"


def test_no_config_declared_skips_with_reason(tmp_path: Path) -> None:
    members = [{"host": "kvm-a", "domain": "fw-a"}, {"host": "kvm-b", "domain": "fw-b"}]
    result = run(write_inventory(tmp_path, "fortigate", members))
    for f in result.findings:
        if f.check.id in FW:
            assert f.status == "skip"
    assert detail(result, "KVMHA-FW-002") == (
        "no firewall configuration declared for edge-fw (inventory member keys 'config' or 'console')"
    )
    assert detail(result, "KVMHA-FW-001", "fw-a") == "no 'config' or 'console' declared for fw-a"
    # broadcast (the inventory's default) is what the heartbeat checks judge then
    assert fw_statuses(result)[("KVMHA-HB-001", "kvm-a")] == "pass"


def test_one_member_without_config_is_an_error(tmp_path: Path) -> None:
    members = fgt()
    del members[1]["config"]
    result = run(write_inventory(tmp_path, "fortigate", members))
    assert fw_statuses(result)[("KVMHA-FW-002", "edge-fw")] == "error"
    assert "fw-b on kvm-b declares no 'config' or 'console'" in detail(result, "KVMHA-FW-002")
    # the inventory's declaration stays the fallback of the heartbeat checks
    assert fw_statuses(result)[("KVMHA-HB-001", "kvm-a")] == "pass"


def test_recorded_bundles_with_config_sections_replay_to_the_same_findings(
    tmp_path: Path,
) -> None:
    path = write_inventory(tmp_path, "fortigate", fgt(b="fgt-b-group-mismatch.conf"))
    inventory = load_inventory(path)
    bundles = collect_all(list(inventory.hosts), CollectOptions())
    first = audit(CHECKS, inventory, [parse_bundle(b) for b in bundles])
    record = tmp_path / "rec"
    for b in bundles:
        b.write(record / b.host)
    # nothing secret in the recording
    for file in record.rglob("*"):
        if file.is_file():
            text = file.read_text()
            assert not [s for s in SECRETS if s in text], file
    names = sorted(p.name for p in (record / "kvm-a" / "sections" / "fwconfig").iterdir())
    assert names == ["fortigate.fw-a"]
    # replay: the configuration files are gone, the recorded sections are the evidence
    replay_dir = tmp_path / "replay"
    replay_dir.mkdir()
    text = path.read_text().replace(str(BUNDLES / "two-ok"), str(record))
    text = text.replace(str(DATA), str(tmp_path / "gone"))
    (replay_dir / "clusters.toml").write_text(text)
    second = run(replay_dir / "clusters.toml")
    assert [(f.check.id, f.subject, f.status, f.detail) for f in second.findings] == [
        (f.check.id, f.subject, f.status, f.detail) for f in first.findings
    ]
    assert fw_statuses(second)[("KVMHA-FW-002", "edge-fw")] == "fail"


def test_console_not_in_a_recording_is_an_error(tmp_path: Path) -> None:
    members = fgt()
    members[1] = {"host": "kvm-b", "domain": "fw-b", "console": "ssh://audit@192.0.2.9"}
    result = run(write_inventory(tmp_path, "fortigate", members))
    assert "console ssh://audit@192.0.2.9 not in the recorded bundle" in detail(
        result, "KVMHA-FW-001", "fw-b"
    )


# --- end to end: nothing secret reaches the terminal, the reports or the recording --------------


def test_plugin_keeps_secrets_out_of_every_output(pytester: pytest.Pytester) -> None:
    path = write_inventory(pytester.path, "fortigate", fgt(b="fgt-malformed.conf"))
    result = pytester.runpytest(
        f"--kvmha-inventory={path}",
        "--kvmha-report=r.json",
        "--kvmha-report-md=r.md",
        "--kvmha-report-html=r.html",
        "--kvmha-record=rec",
        "-rA",
        "-v",
    )
    out = result.stdout.str() + result.stderr.str()
    assert "KVMHA-FW-002[edge-fw]" in out  # the items are there
    texts = [out] + [
        p.read_text(errors="replace")
        for p in pytester.path.rglob("*")
        if p.is_file() and p.suffix != ".toml"
    ]
    for text in texts:
        assert not [s for s in SECRETS if s in text]
    report = json.loads((pytester.path / "r.json").read_text())
    got = {(f["check"], f["subject"]): f["status"] for f in report["findings"]}
    assert got[("KVMHA-FW-001", "fw-b")] == "error"
    assert got[("KVMHA-FW-001", "fw-a")] == "pass"


def test_list_checks_shows_the_firewall_checks(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--kvmha-list-checks", "-v")
    out = result.stdout.str()
    for check in FW:
        assert check in out
    assert "The heartbeat/sync interface is a wired interface pair" in out


# --- consoles without the lab: a fake ssh on PATH ---------------------------------------------


def fake_ssh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str) -> Path:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    ssh = bindir / "ssh"
    ssh.write_text("#!/bin/sh\n" + body)
    ssh.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{__import__('os').environ['PATH']}")
    return tmp_path / "stdin"


def collect_console(tmp_path: Path, timeout: float = 30) -> EvidenceBundle:
    from pytest_kvmha.collect.host import collect
    from pytest_kvmha.config.target import HostTarget

    bundles = tmp_path / "b"
    shutil.copytree(BUNDLES / "two-ok" / "kvm-b", bundles / "kvm-b")
    target = HostTarget(
        "kvm-b",
        f"replay://{bundles / 'kvm-b'}",
        firewalls=(FirewallSource("fw-b", "fortigate", None, "ssh://audit@192.0.2.9:2222"),),
    )
    # a live console read (the replay flag is only for recorded bundles)
    from pytest_kvmha.collect.firewall import FirewallCollection

    bundle = collect(target, CollectOptions(timeout=timeout))
    bundle.sections.pop(section_name("fortigate", "fw-b"))
    bundle.sections.pop(status_section_name("fortigate", "fw-b"))
    FirewallCollection(target.firewalls, CollectOptions(timeout=timeout)).start().finish(bundle)
    return bundle


def test_console_answer_is_stripped_and_one_round_trip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stdin = fake_ssh(
        tmp_path,
        monkeypatch,
        f'cat > "{tmp_path}/stdin"\necho "$@" > "{tmp_path}/argv"\n'
        f'cat "{STATUS / "fgt-b-7x.txt"}" "{DATA / "fgt-b.conf"}"\n',
    )
    bundle = collect_console(tmp_path)
    section = bundle.sections[section_name("fortigate", "fw-b")]
    assert section.rc == 0 and not [s for s in SECRETS if s in section.stdout]
    # the HA status first, then the configuration, in the one session
    assert stdin.read_text() == (
        "get system ha status\nshow system ha\nshow system interface\nget system status\n"
    )
    status = bundle.sections[status_section_name("fortigate", "fw-b")]
    assert status.stdout == (STATUS / "fgt-b-7x.txt").read_text()
    assert section.stdout.startswith("#config-version=")
    argv = (tmp_path / "argv").read_text().split()
    assert argv[-4:] == ["-l", "audit", "--", "192.0.2.9"] and "2222" in argv
    recorded = EvidenceBundle.read(BUNDLES / "two-ok" / "kvm-b").round_trips
    assert bundle.round_trips == recorded + 1  # the recording's round trips, and the console
    parsed = parse_bundle(bundle)
    facts = parsed.firewalls["fw-b"].facts
    assert facts is not None and facts.group_id == 10
    ha = parsed.ha_status["fw-b"].status
    assert isinstance(ha, FgcpStatus) and ha.this_serial == "FGVMK6TM26000022"


def test_console_failure_and_timeout_are_the_sections_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_ssh(tmp_path, monkeypatch, "printf 'denied \\033[31mred\\n' >&2\nexit 255\n")
    bundle = collect_console(tmp_path)
    section = bundle.sections[section_name("fortigate", "fw-b")]
    assert section.rc == 255
    assert (
        section.stderr
        == "fw-b: console ssh://audit@192.0.2.9:2222: denied ?[31mred (exit status 255)"
    )
    # the HA status came over the same session: the same failure is its error
    assert bundle.sections[status_section_name("fortigate", "fw-b")] == section
    (tmp_path / "bin" / "ssh").write_text("#!/bin/sh\nsleep 30\n")
    (tmp_path / "b").rename(tmp_path / "b-old")
    section = collect_console(tmp_path, timeout=1).sections[section_name("fortigate", "fw-b")]
    assert (section.rc, section.stderr) == (
        1,
        "fw-b: console ssh://audit@192.0.2.9:2222: no answer within 1 s",
    )


def test_cos_core_inventory_declaring_unicast_contradicts_the_config(tmp_path: Path) -> None:
    result = run(write_inventory(tmp_path, "cos-core", cos(), heartbeat="unicast"))
    got = fw_statuses(result)
    assert got[("KVMHA-FW-003", "edge-fw")] == "fail"
    assert detail(result, "KVMHA-FW-003").startswith('the inventory declares heartbeat = "unicast"')
    # judged for broadcast (the configuration's): the promiscuity check runs, HB-003 skips
    assert got[("KVMHA-HB-001", "kvm-a")] == "pass"
    assert got[("KVMHA-HB-003", "edge-fw")] == "skip"


def test_fortios_console_prompts_are_not_statements() -> None:
    text = (
        "FGT-A # \n"
        "FGT-A (global) # show system ha\n"
        "config system ha\n    set group-id 3\nend\n"
        "FGT-A $ show system interface\n"
        'config system interface\n    edit "port2"\n        set ip 10.0.0.1/30\n    next\nend\n'
        "FGT-A # "
    )
    facts = fgcp_facts(parse_fortios(text))
    assert facts.group_id == 3 and str(facts.addresses["port2"]) == "10.0.0.1/30"


# --- portN -> NIC: the guest's interface order is PCI order -----------------------------------


def _member_with_nics_in_pci_order(tmp_path: Path, slots: list[int]) -> Member:
    """fw-a of two-ok with its NICs (document order) moved to the given PCI slots."""

    d = copy_scenario("two-ok", tmp_path)
    hb = HostBundle(d / "kvm-a")

    def move(xml: str) -> str:
        blocks = xml.split("<interface ")
        for k, slot in enumerate(slots, start=1):
            blocks[k] = re.sub(r"slot='0x[0-9a-f]+'", f"slot='{slot:#04x}'", blocks[k], count=1)
        return "<interface ".join(blocks)

    hb.edit_domain("fw-a", move)
    facts = parse_bundle(EvidenceBundle.read(d / "kvm-a"))
    return Member(MemberSpec("kvm-a", "fw-a", "master"), facts)


@pytest.mark.parametrize(
    ("slots", "order"),
    [([5, 6], [0, 1]), ([6, 5], [1, 0])],
    ids=["document-order", "reversed"],
)
def test_nic_in_pci_order_maps_portN_to_the_nth_nic_by_pci_address(
    tmp_path: Path, slots: list[int], order: list[int]
) -> None:
    """port1 is the NIC at the lowest PCI address, port2 the next (FortiGate-VM portN, cOS
    Core's N-th Ethernet interface); n outside 1..#NICs is no NIC."""
    m = _member_with_nics_in_pci_order(tmp_path, slots)
    assert [nic_in_pci_order(m, n) for n in (1, 2)] == order
    for n in (0, 3):
        with pytest.raises(IndexError):
            nic_in_pci_order(m, n)


# --- the firewall helpers the checks share (member_firewall, config_heartbeat) -----------------


def _fgcp(unicast: bool) -> FgcpFacts:
    return FgcpFacts(
        group_id=1, group_name="g", mode="a-p", hbdev=(), unicast_hb=unicast,
        unicast_hb_peerip=None, unicast_hb_netmask=None, hb_interval=None,
        hb_lost_threshold=None, addresses={},
    )  # fmt: skip


def _fw_member(tmp_path: Path, domain: str, found: FirewallConfig | None, **host: Any) -> Member:
    facts = parse_bundle(EvidenceBundle.read(BUNDLES / "two-ok" / "kvm-a"))
    firewalls = {firewall_key(domain): found} if found is not None else {}
    facts = dataclasses.replace(facts, firewalls=firewalls, **host)
    return Member(MemberSpec("kvm-a", domain, "master", config=str(tmp_path / "x.conf")), facts)


def _fw_cluster(*members: Member) -> Cluster:
    spec = ClusterSpec("c", "fortigate", "broadcast", tuple(m.spec for m in members), ())
    return Cluster(spec, members)


@pytest.mark.parametrize("status", ["unreachable", "error"])
def test_member_firewall_of_a_host_not_read_says_why(tmp_path: Path, status: str) -> None:
    m = _fw_member(tmp_path, "fw-a", None, status=status, error="kvm-a: ssh: timed out")
    with pytest.raises(MissingFacts, match="^kvm-a: ssh: timed out$"):
        member_firewall(m)


def test_member_firewall_declared_but_not_collected(tmp_path: Path) -> None:
    m = _fw_member(tmp_path, "fw-a", None)
    with pytest.raises(MissingFacts) as exc:
        member_firewall(m)
    assert str(exc.value) == (
        f"fw-a on kvm-a: firewall configuration (config {tmp_path / 'x.conf'}) is not in the "
        "evidence bundle"
    )


def test_config_heartbeat_needs_every_member_and_one_mode(tmp_path: Path) -> None:
    def fw(domain: str, unicast: bool | None) -> Member:
        found = FirewallConfig(
            domain, "fortigate", _fgcp(unicast) if unicast is not None else None,
            None if unicast is not None else f"{domain}: unreadable",
        )  # fmt: skip
        return _fw_member(tmp_path, domain, found)

    assert config_heartbeat(_fw_cluster(fw("fw-a", True), fw("fw-b", True))) == "unicast"
    # a member whose configuration cannot be read: the inventory decides (no error here)
    assert config_heartbeat(_fw_cluster(fw("fw-a", True), fw("fw-b", None))) is None
    # the members disagree: no mode from the configuration (KVMHA-FW-003 reports it)
    assert config_heartbeat(_fw_cluster(fw("fw-a", True), fw("fw-b", False))) is None
    assert config_heartbeat(_fw_cluster(fw("fw-a", False), fw("fw-b", True))) is None


@pytest.mark.parametrize(("drop", "named"), [([2], 2), ([1, 2], 1)], ids=["second", "both"])
def test_nic_in_pci_order_names_the_nic_without_an_address(
    tmp_path: Path, drop: list[int], named: int
) -> None:
    """The first NIC (document order, 1-based) without a PCI address is named."""
    d = copy_scenario("two-ok", tmp_path)
    hb = HostBundle(d / "kvm-a")

    def drop_addresses(xml: str) -> str:
        blocks = xml.split("<interface ")
        for k in drop:
            blocks[k] = re.sub(r"\s*<address type='pci'[^>]*/>", "", blocks[k], count=1)
        return "<interface ".join(blocks)

    hb.edit_domain("fw-a", drop_addresses)
    m = Member(
        MemberSpec("kvm-a", "fw-a", "master"), parse_bundle(EvidenceBundle.read(d / "kvm-a"))
    )
    with pytest.raises(MissingFacts, match=f"^fw-a on kvm-a: NIC #{named} has no PCI address "):
        nic_in_pci_order(m, 1)


@pytest.mark.parametrize(
    ("problem", "message"),
    [(None, "fw-a: no firewall configuration facts"), ("fw-a: line 3: bad", "fw-a: line 3: bad")],
    ids=["no-facts", "problem-with-facts"],
)
def test_member_firewall_without_usable_facts_is_missing(
    tmp_path: Path, problem: str | None, message: str
) -> None:
    """Declared and collected, but no facts (or facts with a problem): an error, never read as
    'not declared' (a skip)."""
    facts = _fgcp(False) if problem is not None else None
    m = _fw_member(tmp_path, "fw-a", FirewallConfig("fw-a", "fortigate", facts, problem))
    with pytest.raises(MissingFacts) as exc:
        member_firewall(m)
    assert str(exc.value) == message


@pytest.mark.parametrize(("group_a", "verdict"), [("0", "pass"), ("1", "fail")])
def test_group_id_left_out_is_the_default_0(tmp_path: Path, group_a: str, verdict: str) -> None:
    """A member whose configuration leaves group-id out (``show`` omits defaults) has group-id 0
    (FortiOS CLI reference, config system ha): equal to a peer's explicit 0, not to 1."""
    a = (DATA / "fgt-a.conf").read_text().replace("set group-id 10", f"set group-id {group_a}")
    b = (DATA / "fgt-b.conf").read_text().replace("    set group-id 10\n", "")
    assert "group-id" not in b
    (tmp_path / "a.conf").write_text(a)
    (tmp_path / "b.conf").write_text(b)
    result = run(
        write_inventory(
            tmp_path, "fortigate", fgt(str(tmp_path / "a.conf"), str(tmp_path / "b.conf"))
        )
    )
    assert fw_statuses(result)[("KVMHA-FW-002", "edge-fw")] == verdict
    if verdict == "fail":
        assert "group-id differs: fw-a 1, fw-b 0" in detail(result, "KVMHA-FW-002")


@pytest.mark.parametrize("peer", ["    set unicast-hb-peerip 0.0.0.0\n", ""])
def test_unicast_peer_0000_or_left_out_is_not_set(tmp_path: Path, peer: str) -> None:
    """unicast-hb-peerip 0.0.0.0 (the address KVMHA-FW-004 reads as unset) says "not set",
    exactly as a configuration that leaves it out: not "not fw-b's heartbeat address"."""
    a = (DATA / "fgt-a.conf").read_text().replace("    set unicast-hb-peerip 169.254.90.2\n", peer)
    (tmp_path / "a.conf").write_text(a)
    result = run(write_inventory(tmp_path, "fortigate", fgt(str(tmp_path / "a.conf"))))
    assert fw_statuses(result)[("KVMHA-FW-004", "edge-fw")] == "fail"
    assert detail(result, "KVMHA-FW-004").count("unicast-hb-peerip") == 1
    assert "fw-a: unicast-hb-peerip is not set" in detail(result, "KVMHA-FW-004")


def test_cos_member_with_ha_disabled_fails_fw002(tmp_path: Path) -> None:
    """A cOS Core member whose HighAvailability object says Enabled: No is no cluster member,
    whatever else agrees."""
    slave = (DATA / "cos-slave.txt").read_text()
    assert "Enabled: Yes" in slave
    (tmp_path / "slave.txt").write_text(slave.replace("Enabled: Yes", "Enabled: No", 1))
    result = run(write_inventory(tmp_path, "cos-core", cos(slave=str(tmp_path / "slave.txt"))))
    assert fw_statuses(result)[("KVMHA-FW-002", "edge-fw")] == "fail"
    assert detail(result, "KVMHA-FW-002").endswith("HA is not enabled on fw-b")


@pytest.mark.parametrize(("mode", "shown"), [("    set mode a-p\n", "a-p"), ("", "standalone")])
def test_fw001_names_the_ha_mode(tmp_path: Path, mode: str, shown: str) -> None:
    """FW-001 says what it read: the configured mode, or FortiOS's default standalone."""
    a = (DATA / "fgt-a.conf").read_text()
    assert "    set mode a-p\n" in a
    (tmp_path / "a.conf").write_text(a.replace("    set mode a-p\n", mode))
    result = run(write_inventory(tmp_path, "fortigate", fgt(str(tmp_path / "a.conf"))))
    assert detail(result, "KVMHA-FW-001", "fw-a") == (
        f"fw-a: FGCP group-id 10 group-name kvm-ha, mode {shown}, unicast heartbeat over port2"
    )


def test_config_values_in_messages_are_cut_at_80_characters() -> None:
    from pytest_kvmha.checks.firewall_agreement import show

    assert show("x" * 80) == "x" * 80
    assert show("x" * 81) == repr("x" * 80)
    assert show("a\nb") == repr("a\nb")
