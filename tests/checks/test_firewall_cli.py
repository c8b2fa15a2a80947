"""Firewall configurations read as the vendors' CLIs read them: FortiOS abbreviations, ``end``
inside ``edit``, byte-order marks and line endings, multi-VDOM backups, ``show`` against
``show full-configuration`` (firmware defaults, the heartbeat interval in ms), refused console
commands; cOS Core interfaces mapped to NICs by the PCI address the firewall shows.

Audits replay the recorded lab scenario two-ok with the saved configurations of
tests/data/fwconfig, as tests/checks/test_firewall.py does.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from pytest_kvmha.audit.engine import Audit
from pytest_kvmha.facts.firewall import FgcpFacts
from pytest_kvmha.model import MissingFacts
from pytest_kvmha.parse.cos_core import cos_ha_facts, parse_cos_show
from pytest_kvmha.parse.evidence import ConfigParseError
from pytest_kvmha.parse.firewall import parse_firewall_config, section_name
from pytest_kvmha.parse.fortios import fgcp_facts, find_block, parse_fortios
from pytest_kvmha.parse.host import parse_bundle
from pytest_kvmha.parse.secrets import strip_secrets

from .test_firewall import (
    DATA,
    GOOD_FGT,
    collect_console,
    cos,
    detail,
    fake_ssh,
    fgt,
    fw_statuses,
    run,
    write_inventory,
)


def findings(result: Audit) -> list[tuple[str, str, str, str]]:
    return [(f.check.id, f.subject, f.status, str(f.detail)) for f in result.findings]


def facts_of(name: str) -> FgcpFacts:
    facts = parse_firewall_config(strip_secrets((DATA / name).read_text()), "fortigate")
    assert isinstance(facts, FgcpFacts)
    return facts


# --- FortiOS as the CLI reads it ----------------------------------------------------------------


def test_abbreviated_bootstrap_audits_as_its_unabbreviated_twin(tmp_path: Path) -> None:
    full = run(write_inventory(tmp_path, "fortigate", fgt()))
    short = run(
        write_inventory(tmp_path, "fortigate", fgt("fgt-a-bootstrap.conf", "fgt-b-bootstrap.conf"))
    )
    # a bootstrap file carries no '#config-version' header: its firmware is not known (an
    # error of KVMHA-FIRM-001, tests/checks/test_firmware.py); everything else is the same
    firm = [f for f in findings(short) if f[0] == "KVMHA-FIRM-001"]
    assert [f[2] for f in firm] == ["error"]
    assert [f for f in findings(short) if f not in firm] == [
        f for f in findings(full) if f[0] != "KVMHA-FIRM-001"
    ]
    # the unicast cluster written with "config sys ha" is judged unicast
    assert fw_statuses(short) == GOOD_FGT
    assert detail(short, "KVMHA-FW-003") == (
        "unicast heartbeat from the firewalls' configuration (the inventory declares none)"
    )


def test_an_abbreviated_file_is_told_fortios() -> None:
    with pytest.raises(ConfigParseError, match="the text is a FortiOS configuration, but the "):
        parse_firewall_config((DATA / "fgt-a-bootstrap.conf").read_text(), "cos-core")


def test_abbreviations_expand_against_the_cli_words() -> None:
    root = parse_fortios(
        "conf sys int\n"
        '    ed "port2"\n'
        "        set ip 10.0.0.1 255.255.255.252\n"
        "    n\n"
        "en\n"
        "config system ha\n"  # the exact word "ha" wins over "ha-monitor"
        "    set group-id 4\n"
        "end\n"
        "config sys ha-m\n"
        "end\n"
        "conf fir pol\n"  # "fir" is firewall; "pol", under a table not listed, stays as written
        "end\n"
    )
    assert set(root.blocks) == {
        "system interface",
        "system ha",
        "system ha-monitor",
        "firewall pol",
    }
    facts = fgcp_facts(root)
    assert facts.group_id == 4 and str(facts.addresses["port2"]) == "10.0.0.1/30"
    with pytest.raises(
        ConfigParseError, match="^line 2: ambiguous statement 'se': it abbreviates set, select"
    ):
        parse_fortios("config system ha\n    se group-id 4\nend\n")


def test_end_inside_edit_saves_the_entry_and_closes_the_table() -> None:
    root = parse_fortios(
        "config system interface\n"
        '    edit "port1"\n'
        "        config ipv6\n"
        "            set ip6-address ::/0\n"
        "        end\n"  # closes ipv6 only
        "        set ip 192.0.2.1/24\n"
        "    end\n"  # closes port1 and system interface
        "config system ha\n"
        "    set group-id 3\n"
        "end\n"
    )
    port1 = root.blocks["system interface"].entries["port1"]
    assert port1.value("ip") == ("192.0.2.1/24",)
    assert port1.blocks["ipv6"].value("ip6-address") == ("::/0",)
    assert fgcp_facts(root).group_id == 3  # "config system ha" is at the top level again


def test_hbdev_names_without_a_priority() -> None:
    facts = fgcp_facts(
        parse_fortios('config system ha\n    set hbdev "port3" port4 40 port5\nend\n')
    )
    assert [(h.interface, h.priority) for h in facts.hbdev] == [
        ("port3", None),
        ("port4", 40),
        ("port5", None),
    ]


@pytest.mark.parametrize(
    "ending", [("\r\n", False), ("\r", False), ("\r\n", True), ("\n", True)], ids=str
)
def test_line_endings_and_byte_order_mark(ending: tuple[str, bool], tmp_path: Path) -> None:
    eol, bom = ending
    text = (DATA / "fgt-b.conf").read_text().replace("\n", eol)
    text = ("\ufeff" if bom else "") + text
    stripped = strip_secrets(text)
    assert "hAsEcReTPaSsWoRd" not in stripped and "gUeStPaSsWd" not in stripped
    assert parse_firewall_config(stripped, "fortigate") == facts_of("fgt-b.conf")
    # a secret without ENC is removed too (a CR-only file is not one long line)
    plain = strip_secrets(
        f"config vpn ipsec phase1-interface{eol}    edit t{eol}"
        f"        set psksecret pLaInPsK{eol}    next{eol}end{eol}"
    )
    assert "pLaInPsK" not in plain
    # errors name the same line whatever the line ending
    broken = text.replace("    set group-id 10", "    set group-id ten")
    with pytest.raises(ConfigParseError, match="^line 18: 'group-id' must be one integer"):
        parse_firewall_config(broken, "fortigate")


def test_saved_backup_with_crlf_and_bom_audits_as_the_plain_one(tmp_path: Path) -> None:
    raw = (DATA / "fgt-b-crlf-bom.conf").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and b"\r\n" in raw
    plain = run(write_inventory(tmp_path, "fortigate", fgt()))
    windows = run(write_inventory(tmp_path, "fortigate", fgt(b="fgt-b-crlf-bom.conf")))
    assert findings(windows) == findings(plain)


def test_multi_vdom_backup_reads_system_ha_under_config_global(tmp_path: Path) -> None:
    root = parse_fortios((DATA / "fgt-a-multivdom.conf").read_text())
    assert find_block(root, "system ha") is root.blocks["global"].blocks["system ha"]
    assert set(root.blocks["vdom"].entries) == {"root", "dmz"}
    assert "firewall policy" in root.blocks["vdom"].entries["root"].blocks
    multi = facts_of("fgt-a-multivdom.conf")
    assert str(multi.addresses["port3"]) == "198.51.100.1/24"  # the dmz VDOM's interface
    assert multi == replace(
        facts_of("fgt-a.conf"), addresses=multi.addresses, firmware=multi.firmware
    )
    result = run(write_inventory(tmp_path, "fortigate", fgt(a="fgt-a-multivdom.conf")))
    assert fw_statuses(result) == GOOD_FGT
    # abbreviated paths resolve inside "config global" and inside a VDOM's entry too
    short = parse_fortios(
        "conf glo\n    conf sys ha\n        set group-id 5\n    end\nend\n"
        "conf vd\n    edit root\n        conf sys setti\n        end\n    next\nend\n"
    )
    assert fgcp_facts(short).group_id == 5
    assert "system settings" in short.blocks["vdom"].entries["root"].blocks


def test_refused_console_command_is_reported_as_such() -> None:
    text = (
        "FGT-MV # show full-configuration system ha\n"
        "command parse error before 'system'\n"
        "Command fail. Return code -61\n"
        "FGT-MV # show system interface\n"
        "Command fail. Return code -61\n"
    )
    with pytest.raises(ConfigParseError) as exc:
        parse_firewall_config(text, "fortigate")
    assert exc.value.line == 2
    assert "the FortiGate refused a command (\"command parse error before 'system'\")" in str(
        exc.value
    )
    assert "multi-VDOM mode" in str(exc.value)


# --- show against show full-configuration: firmware defaults and timers --------------------------


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("fgt-a-show-full.txt", "fgt-b-show.txt"),
        ("fgt-a-show.txt", "fgt-b-show-full.txt"),
        ("fgt-a-show.txt", "fgt-b-show.txt"),
        ("fgt-a-show-full.txt", "fgt-b-show-full.txt"),
    ],
)
def test_show_and_show_full_configuration_compare_equal(tmp_path: Path, a: str, b: str) -> None:
    # one member's HA block captured both ways: the facts keep what was shown ...
    for member in ("a", "b"):
        full, short = facts_of(f"fgt-{member}-show-full.txt"), facts_of(f"fgt-{member}-show.txt")
        assert (full.group_id, full.hb_lost_threshold, full.hb_interval_unit) == (0, 20, "100ms")
        assert (short.group_id, short.hb_lost_threshold, short.hb_interval_unit) == (None,) * 3
        assert full == replace(
            short,
            group_id=0,
            hb_interval=2,
            hb_interval_unit="100ms",
            hb_lost_threshold=20,
            ha_eth_type=full.ha_eth_type,
            hc_eth_type=full.hc_eth_type,
            l2ep_eth_type=full.l2ep_eth_type,
        )
    # ... and KVMHA-FW-002 compares them equal, mixed either way
    result = run(write_inventory(tmp_path, "fortigate", fgt(a, b)))
    assert fw_statuses(result) == GOOD_FGT
    assert detail(result, "KVMHA-FW-002").startswith("edge-fw: FGCP group-id 0")


@pytest.mark.parametrize(
    ("change", "words"),
    [
        # 20 x 10 ms = 2 x 100 ms (the default): equal
        ("    set hb-interval 20\n    set hb-interval-in-milliseconds 10ms\n", None),
        (
            "    set hb-interval 2\n    set hb-interval-in-milliseconds 10ms\n",
            "hb-interval (ms) differs: fw-a 200, fw-b 20",
        ),
        ("    set hb-interval 4\n", "hb-interval (ms) differs: fw-a 200, fw-b 400"),
        ("    set group-id 0\n", None),
        ("    set group-id 1\n", "group-id differs: fw-a 0, fw-b 1"),
        ('    set ha-eth-type "8890"\n', None),
        ('    set l2ep-eth-type "88a3"\n', "l2ep-eth-type differs: fw-a 8893, fw-b 88a3"),
        # hb-lost-threshold: left out = the default, 6 or 20 (the documents disagree)
        # shown on both: compared as shown
        ("    set hb-lost-threshold 6\n", "hb-lost-threshold differs: fw-a 20, fw-b 6"),
        ("    set hb-lost-threshold 20\n", None),
        ("    set hb-lost-threshold 10\n", "hb-lost-threshold differs: fw-a 20, fw-b 10"),
        ('    set hbdev "port2" 40\n', "hbdev priority of port2 differs: fw-a 50, fw-b 40"),
        ('    set hbdev "port2"\n', None),
        ('    set hbdev "port2" "port1"\n', 'hbdev differs: fw-a "port2", fw-b "port2" "port1"'),
    ],
)
def test_defaults_and_timers_in_fw002(tmp_path: Path, change: str, words: str | None) -> None:
    text = (DATA / "fgt-b-show.txt").read_text()
    if "hbdev" in change:
        text = text.replace('    set hbdev "port2" 50\n', "")
    text = text.replace("    set override disable\n", change + "    set override disable\n")
    b = tmp_path / "fgt-b-changed.txt"
    b.write_text(text)
    members = fgt("fgt-a-show-full.txt")
    members[1]["config"] = str(b)
    result = run(write_inventory(tmp_path, "fortigate", members))
    status = fw_statuses(result)[("KVMHA-FW-002", "edge-fw")]
    if words is None:
        assert status == "pass", detail(result, "KVMHA-FW-002")
    else:
        assert status == "fail"
        assert words in detail(result, "KVMHA-FW-002")


@pytest.mark.parametrize(("shown", "agrees"), [(None, True), (6, True), (20, True), (10, False)])
def test_lost_threshold_left_out_is_6_or_20(
    tmp_path: Path, shown: int | None, agrees: bool
) -> None:
    text = (DATA / "fgt-b-show.txt").read_text()
    if shown is not None:
        text = text.replace(
            "    set override", f"    set hb-lost-threshold {shown}\n    set override"
        )
    (tmp_path / "b.txt").write_text(text)
    members = fgt("fgt-b-show.txt")  # fw-a leaves hb-lost-threshold out
    members[1]["config"] = str(tmp_path / "b.txt")
    result = run(write_inventory(tmp_path, "fortigate", members))
    got = detail(result, "KVMHA-FW-002")
    assert ("hb-lost-threshold differs" not in got) is agrees, got
    if not agrees:
        assert "hb-lost-threshold differs: fw-a (not shown: default 6 or 20), fw-b 10" in got


# --- cOS Core: NICs by the PCI address the firewall shows ---------------------------------------


def test_cos_pci_properties_are_read() -> None:
    facts = cos_ha_facts(parse_cos_show((DATA / "cos-master-pci.txt").read_text()))
    assert facts.ethernet == ("If2", "If1")
    assert dict(facts.pci) == {"If2": (0, 4, 0), "If1": (0, 3, 0)}
    with pytest.raises(ConfigParseError, match="PCI address without its slot, port"):
        cos_ha_facts(
            parse_cos_show(
                "  Property  Value\n----------  -----\n ClusterID: 1\n    NodeID: Master\n\n"
                "  Property  Value\n----------  -----\n      Name: If1\n    PCIBus: 0\n"
            )
        )


def test_cos_sync_interface_is_mapped_by_pci_address_not_list_order(tmp_path: Path) -> None:
    result = run(
        write_inventory(tmp_path, "cos-core", cos("cos-master-pci.txt", "cos-slave-pci.txt"))
    )
    assert fw_statuses(result)[("KVMHA-FW-005", "edge-fw")] == "pass"
    assert detail(result, "KVMHA-FW-005") == (
        "heartbeat over If2 (fw-a If2 = NIC #2 (If2), fw-b If2 = NIC #2 (If2)) "
        "on bridge br2-external VLAN 102"
    )
    # the same list without PCI properties: If2 is shown first, so it is taken as NIC #1
    for role in ("master", "slave"):
        text = (DATA / f"cos-{role}-pci.txt").read_text()
        lines = [ln for ln in text.splitlines(keepends=True) if " PCI" not in ln]
        (tmp_path / f"cos-{role}-nopci.txt").write_text("".join(lines))
    members = cos(str(tmp_path / "cos-master-nopci.txt"), str(tmp_path / "cos-slave-nopci.txt"))
    by_order = run(write_inventory(tmp_path, "cos-core", members))
    assert "fw-a If2 = NIC #1 (If1)" in detail(by_order, "KVMHA-FW-005")
    # a PCI address no NIC has
    wrong = (DATA / "cos-slave-pci.txt").read_text().replace("PCISlot: 4", "PCISlot: 9")
    (tmp_path / "cos-slave-wrong.txt").write_text(wrong)
    members = cos("cos-master-pci.txt", str(tmp_path / "cos-slave-wrong.txt"))
    result = run(write_inventory(tmp_path, "cos-core", members))
    assert fw_statuses(result)[("KVMHA-FW-005", "edge-fw")] == "fail"
    assert (
        "fw-b: If2 is at PCI bus 0 slot 9 port 0 (as the firewall shows it), but no one NIC "
        "of fw-b has that address"
    ) in detail(result, "KVMHA-FW-005")


# --- multi-VDOM consoles: the HA settings read inside "config global" ---------------------------


def _vdom_console(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, global_answer: str) -> Path:
    """A fake console in multi-VDOM mode: the top level refuses 'show system ha' (and says
    'Virtual domain configuration: multiple'); a session that starts with 'config global' gets
    ``global_answer``. Each session's standard input is kept (stdin.1, stdin.2, ...)."""
    fake_ssh(
        tmp_path,
        monkeypatch,
        f'n=$(ls "{tmp_path}" | grep -c "^stdin\\.")\n'
        f'cat > "{tmp_path}/stdin.$((n + 1))"\n'
        f'if head -n 1 "{tmp_path}/stdin.$((n + 1))" | grep -qx "config global"; then\n'
        f'  cat "{global_answer}"\nelse\n  cat "{DATA / "fgt-b-console-top.txt"}"\nfi\n',
    )
    return tmp_path


def test_multi_vdom_console_is_read_again_in_global_scope(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _vdom_console(tmp_path, monkeypatch, str(DATA / "fgt-b-console-global.txt"))
    bundle = collect_console(tmp_path)
    first = (tmp_path / "stdin.1").read_text().splitlines()
    second = (tmp_path / "stdin.2").read_text().splitlines()
    assert first == [
        "get system ha status",
        "show system ha",
        "show system interface",
        "get system status",
    ]
    assert second == ["config global", *first, "end"]
    assert not (tmp_path / "stdin.3").exists()
    consoles = [c for c in bundle.commands if str(c["command"]).startswith("ssh console")]
    assert [str(c["command"]).split(": ", 1)[1] for c in consoles] == [
        "; ".join(first),
        "; ".join(second),
    ]
    section = bundle.sections[section_name("fortigate", "fw-b")]
    assert section.rc == 0 and "hAsEcReTPaSsWoRd" not in section.stdout
    assert "(global) # show system ha" in section.stdout  # the global answer is the section
    got = parse_bundle(bundle).firewalls["fw-b"]
    assert got.problem is None and isinstance(got.facts, FgcpFacts)
    assert got.facts == replace(
        facts_of("fgt-b.conf"), firmware=got.facts.firmware, addresses=got.facts.addresses
    )
    assert [(f.source, f.version, f.build, f.vdoms) for f in got.facts.firmware] == [
        ("get system status", "7.2.5", 1517, True)
    ]


def test_single_vdom_console_is_read_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    answer = tmp_path / "single.txt"
    text = (DATA / "fgt-b-console-top.txt").read_text()
    text = text.replace(
        "Virtual domain configuration: multiple", "Virtual domain configuration: disable"
    )
    head, _, status = text.partition("FGT-B # get system status\n")
    answer.write_text(
        (DATA / "fgt-b-show.txt").read_text() + "FGT-B # get system status\n" + status
    )
    fake_ssh(tmp_path, monkeypatch, f'cat > "{tmp_path}/stdin.1"\ncat "{answer}"\n')
    got = parse_bundle(collect_console(tmp_path)).firewalls["fw-b"]
    assert got.problem is None and isinstance(got.facts, FgcpFacts)
    assert [(f.model, f.vdoms) for f in got.facts.firmware] == [("FortiGate-VM64-KVM", False)]
    assert not (tmp_path / "stdin.2").exists()


def test_multi_vdom_console_refusal_is_the_members_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a console in multi-VDOM mode whose account may not enter global scope: the reads are
    # refused at the top level, and "config global" is refused as well (exit status 0: the CLI
    # session itself ended normally)
    refused = tmp_path / "refused.txt"
    refused.write_text(
        "FGT-B # config global\ncommand parse error before 'global'\n"
        "Command fail. Return code -61\n" + (DATA / "fgt-b-console-top.txt").read_text()
    )
    _vdom_console(tmp_path, monkeypatch, str(refused))
    got = parse_bundle(collect_console(tmp_path)).firewalls["fw-b"]
    assert got.facts is None and got.problem is not None
    assert "line 2: the FortiGate refused a command" in got.problem
    assert "inside 'config global' when the account may not enter global scope" in got.problem
    assert (tmp_path / "stdin.2").exists() and not (tmp_path / "stdin.3").exists()


def test_global_scope_prompts_and_echoes_are_not_statements() -> None:
    # the shape of Fortinet's example (Transparent Mode for FortiOS 5.6.3, Virtual Clustering):
    # "FGT1 (global) # show system ha" then the block, with a secondary-vcluster table in it
    text = (
        "FGT1 # config global\n"
        "FGT1 (global) # show system ha\n"
        'config system ha\n    set mode a-p\n    set hbdev "port5" 0 "port6" 0\n'
        '    set vcluster2 enable\n    config secondary-vcluster\n        set vdom "Vdom2"\n'
        "    end\nend\n"
        "FGT1 (global) # end\n"
        "FGT1 # \n"
    )
    facts = parse_firewall_config(text, "fortigate")
    assert isinstance(facts, FgcpFacts) and facts.mode == "a-p"
    assert [h.interface for h in facts.hbdev] == ["port5", "port6"]
    # an "end" that is output (no prompt before it) still closes a block; one too many fails
    with pytest.raises(ConfigParseError, match="'end' with no open 'config'"):
        parse_firewall_config(text.replace("FGT1 (global) # end", "end"), "fortigate")


# --- firmware facts: the backup header and "get system status" ----------------------------------


def test_firmware_from_the_header_and_the_status() -> None:
    a = facts_of("fgt-a.conf")
    assert [(f.source, f.model, f.version, f.build, f.vdoms) for f in a.firmware] == [
        ("config header", "FGVMK6", "7.2.5", 1517, False)
    ]
    multi = facts_of("fgt-a-multivdom.conf")
    assert [f.vdoms for f in multi.firmware] == [True]
    assert facts_of("fgt-a-bootstrap.conf").firmware == ()  # a bootstrap file has no header
    with pytest.raises(ConfigParseError, match="line 1: '#config-version' header"):
        parse_firewall_config("#config-version=FGVMK6-seven\nconfig system ha\nend\n", "fortigate")
    with pytest.raises(ConfigParseError, match="'get system status' Version 'FortiGate v7'"):
        parse_firewall_config("config system ha\nend\nVersion: FortiGate v7\n", "fortigate")


def test_cos_vendor_model_maps_nics_by_the_pci_address_shown(tmp_path: Path) -> None:
    # the frames the vendor model gives each NIC (the trace, KVMHA-HB-002) follow the PCI
    # address the firewall shows, not its list order: If2 is listed first but sits at slot 4
    from pytest_kvmha.bundle.store import EvidenceBundle
    from pytest_kvmha.config.inventory import MemberSpec
    from pytest_kvmha.topology.cluster import Member
    from pytest_kvmha.topology.traffic import interface_of as _interface

    from .test_firewall import BUNDLES, _member_with_nics_in_pci_order

    facts = cos_ha_facts(parse_cos_show((DATA / "cos-master-pci.txt").read_text()))
    recorded = parse_bundle(EvidenceBundle.read(BUNDLES / "two-ok" / "kvm-a"))  # slots 3, 4
    member = Member(MemberSpec("kvm-a", "fw-a", "master"), recorded)
    assert [_interface(member, k, facts) for k in (0, 1)] == ["If1", "If2"]
    listed = replace(facts, pci={})  # the same list without PCI properties: list order
    assert [_interface(member, k, listed) for k in (0, 1)] == ["If2", "If1"]
    # a NIC at an address no interface shows: not guessed
    moved = _member_with_nics_in_pci_order(tmp_path / "b", [3, 9])
    with pytest.raises(MissingFacts, match="NIC #2 is at PCI bus 0 slot 9 function 0, but no"):
        _interface(moved, 1, facts)
