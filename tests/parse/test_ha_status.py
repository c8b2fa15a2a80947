"""The firewalls' own HA status (issue 18, "did the cluster form?"): FortiOS ``get system ha
status`` in its 6.x (Master/Slave) and 7.x (Primary/Secondary) wordings, cOS Core ``ha``, the
cut of one console answer into status and configuration, and output that is not understood.

The texts in tests/data/hastatus are written here, shaped like the vendors' documented output.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_kvmha.facts.ha_status import CosStatus, FgcpStatus, FgcpUnit
from pytest_kvmha.parse import ha_status
from pytest_kvmha.parse.cos_status import parse_cos_status
from pytest_kvmha.parse.evidence import ConfigParseError
from pytest_kvmha.parse.fortios_hastatus import parse_fortios_status

split_console_answer = ha_status.split_console_answer

DATA = Path(__file__).parent.parent / "data" / "hastatus"
FWCONFIG = Path(__file__).parent.parent / "data" / "fwconfig"
A, B = "FGVMK6TM26000011", "FGVMK6TM26000022"


def fgt(name: str) -> FgcpStatus:
    return parse_fortios_status((DATA / name).read_text())


# --- FortiOS ------------------------------------------------------------------------------------


def test_fortios_7x_primary_view() -> None:
    st = fgt("fgt-a-7x.txt")
    assert st.health == "OK" and st.mode == "HA A-P" and st.group_id == 10
    assert st.units == (FgcpUnit(A, "primary", "fgt-a"), FgcpUnit(B, "secondary", "fgt-b"))
    assert (st.this_serial, st.this_state) == (A, "work")
    assert dict(st.config_status) == {A: "in-sync", B: "in-sync"}
    assert st.primaries == (A,) and not st.standalone


def test_fortios_7x_secondary_view_lists_itself_first() -> None:
    """6.0 CLI Reference: the list under vcluster 1 starts with the unit logged into."""
    st = fgt("fgt-b-7x.txt")
    assert (st.this_serial, st.this_state) == (B, "standby")
    assert [u.serial for u in st.units] == [B, A] and st.primaries == (A,)


@pytest.mark.parametrize("member", ["a", "b"])
def test_fortios_6x_master_slave_reads_as_7x_primary_secondary(member: str) -> None:
    """One cluster, worded by 6.x (Master/Slave, 'operating cluster index', chksum dump lines)
    and by 7.x (Primary/Secondary, 'HA operating index'): the same facts."""
    assert fgt(f"fgt-{member}-6x.txt") == fgt(f"fgt-{member}-7x.txt")


def test_fortios_virtual_clusters_judge_vcluster_1() -> None:
    """With virtual clustering a second "vcluster 2:" block follows, with its own roles
    (6.0 CLI Reference); this unit and the cluster's roles are those of vcluster 1."""
    st = fgt("fgt-a-vcluster2.txt")
    assert st.units == fgt("fgt-a-7x.txt").units and st.primaries == (A,)
    assert (st.this_serial, st.this_state) == (A, "work")


def test_fortios_selection_log_at_the_left_margin() -> None:
    """The 'Primary selected using:' entries as some documents print them, unindented."""
    text = (DATA / "fgt-a-7x.txt").read_text().replace("    <2026/", "<2026/")
    assert parse_fortios_status(text) == fgt("fgt-a-7x.txt")


def test_fortios_split_member_sees_only_itself() -> None:
    st = fgt("fgt-b-alone.txt")
    assert st.units == (FgcpUnit(B, "primary", "fgt-b"),)
    assert st.this_serial == B and st.primaries == (B,)


def test_fortios_lost_member_and_out_of_sync_are_read_as_shown() -> None:
    assert fgt("fgt-a-lost.txt").health == f"ERROR {B} is lost @ 2026/12/01 09:30:48"
    assert fgt("fgt-b-out-of-sync.txt").config_status[B] == "out-of-sync"


def test_fortios_without_the_operating_list_does_not_guess_which_unit_it_is() -> None:
    """The cluster-index list is in serial-number order, not "this unit first": without the
    list under vcluster 1 the unit logged into is not known."""
    text = (DATA / "fgt-b-7x.txt").read_text()
    text = text[: text.index("Secondary: FGVMK6TM26000022, HA operating index")]
    st = parse_fortios_status(text)
    assert [u.serial for u in st.units] == [B, A] and st.this_serial is None
    assert st.this_state == "standby"


def test_fortios_standalone_needs_no_unit_list() -> None:
    st = fgt("fgt-standalone.txt")
    assert st.standalone and st.units == () and st.this_serial is None


def test_fortios_console_echo_and_crlf() -> None:
    text = "fgt-a # get system ha status\r\n" + (DATA / "fgt-a-7x.txt").read_text().replace(
        "\n", "\r\n"
    )
    assert parse_fortios_status(text + "\r\nfgt-a # ") == fgt("fgt-a-7x.txt")


# --- cOS Core -----------------------------------------------------------------------------------


def cos(name: str) -> CosStatus:
    return parse_cos_status((DATA / name).read_text())


def test_cos_documented_wordings() -> None:
    """D-Link's 'an HA MASTER ... ACTIVE (will forward traffic)' and SEG-100's 'a HA SLAVE ...
    Inactive (for 47s)' with 'HA object sync: N%'."""
    assert cos("cos-master.txt") == CosStatus(True, "master", True, True, None)
    assert cos("cos-slave.txt") == CosStatus(True, "slave", False, True, None)
    assert cos("cos-master-sync.txt") == CosStatus(True, "master", True, True, 100)
    assert cos("cos-slave-syncing.txt").object_sync == 64
    assert cos("cos-slave-alone.txt") == CosStatus(True, "slave", True, False, None)
    assert cos("cos-standalone.txt") == CosStatus(False, None, None, None)


FGT, COS = "fortigate", "cos-core"
NOT_UNDERSTOOD = {
    # FortiOS
    "fgt-garbage": (FGT, DATA / "fgt-garbage.txt", "line 1: not a 'Key: value' line"),
    "fgt-refused": (FGT, DATA / "fgt-refused.txt", "line 1: the FortiGate refused the command"),
    "fgt-paged": (FGT, DATA / "fgt-paged.txt", "line 5: the console paged its output"),
    "fgt-no-mode": (FGT, "Model: FortiGate-VM64\nGroup: 1\n", "no 'Mode:' line"),
    "fgt-no-units": (
        FGT,
        "Mode: HA A-P\nvcluster 1: work 169.254.0.1\n",
        "a cluster mode but no Primary/Secondary unit lines",
    ),
    "fgt-no-vcluster": (
        FGT,
        f"Mode: HA A-P\nPrimary : fgt-a, {A}, HA cluster index = 0\n",
        "no 'vcluster 1: <state> <address>' line",
    ),
    "fgt-bad-state": (
        FGT,
        "Mode: HA A-P\nvcluster 1: dancing 169.254.0.1\n",
        "line 2: unknown HA state 'dancing'",
    ),
    "fgt-bad-group": (FGT, "Mode: HA A-P\nGroup: ten\n", "line 2: group id 'ten' is not a number"),
    "fgt-twice": (FGT, "Mode: HA A-P\nMode: standalone\n", "line 2: 'Mode' shown twice"),
    "fgt-bad-unit": (FGT, "Mode: HA A-P\nPrimary: somebody\n", "line 2: unit line not understood"),
    "fgt-bad-serial": (
        FGT,
        "Mode: HA A-P\nPrimary: x!y, HA cluster index = 0\n",
        "line 2: 'x!y' is not a serial number",
    ),
    "fgt-duplicate": (
        FGT,
        "Mode: HA A-P\nnumber of vcluster: 1\nvcluster 1: work 169.254.0.1\n"
        f"Primary: {A}, HA operating index = 0\nSecondary: {A}, HA operating index = 1\n",
        "a serial number is listed twice in one unit list",
    ),
    "fgt-empty": (FGT, " \n", "no answer to the HA status command"),
    # cOS Core
    "cos-garbage": (COS, DATA / "cos-garbage.txt", "line 2: not a line of the 'ha' command"),
    "cos-peer-word": (COS, DATA / "cos-peer-unknown.txt", "peer state 'SYNCHRONIZING' is not"),
    "cos-no-state": (
        COS,
        "This device is an HA MASTER\nHA cluster peer is ALIVE\n",
        "no state line: not the output of the cOS Core 'ha' command",
    ),
    "cos-twice": (
        COS,
        "This device is an HA MASTER\nThis device is an HA SLAVE\n",
        "line 2: the role line is shown twice",
    ),
    "cos-standalone-and-ha": (
        COS,
        "This device is a standalone system (HA not configured)\nHA cluster peer is ALIVE\n",
        "a standalone system that also shows HA state lines",
    ),
    "cos-sync": (
        COS,
        "This device is an HA MASTER\nThis device is currently ACTIVE\n"
        "HA cluster peer is ALIVE\nHA object sync: 180%\n",
        "HA object sync 180% is over 100%",
    ),
    "cos-only-prompt": (COS, "Device:/> ha\n", "no role, state, peer line"),
}


@pytest.mark.parametrize("case", sorted(NOT_UNDERSTOOD))
def test_output_not_understood_is_an_error(case: str) -> None:
    vendor, text, message = NOT_UNDERSTOOD[case]
    raw = text.read_text() if isinstance(text, Path) else text
    with pytest.raises(ConfigParseError) as exc:
        ha_status.parse_status_text(raw, vendor)
    assert message in str(exc.value), exc.value


# --- one console answer, two sections -----------------------------------------------------------


def test_fortios_answer_is_cut_where_the_configuration_starts() -> None:
    status = (DATA / "fgt-a-7x.txt").read_text()
    config = (FWCONFIG / "fgt-a-show.txt").read_text()  # starts "fgt-a # show system ha"
    assert split_console_answer("fortigate", status + config) == (status, config)
    # without the echo: at "config system ha"; a backup: at "#config-version"
    bare = config.replace("fgt-a # show system ha\n", "")
    assert split_console_answer("fortigate", status + bare) == (status, bare)
    backup = (FWCONFIG / "fgt-a.conf").read_text()
    assert split_console_answer("fortigate", status + backup) == (status, backup)
    # a recording made before the status was read: all configuration, no status
    assert split_console_answer("fortigate", backup) == ("", backup)


def test_cos_answer_is_cut_at_the_first_show() -> None:
    status = (DATA / "cos-master.txt").read_text()
    config = (FWCONFIG / "cos-master.txt").read_text()  # starts "Device:/> show HighAvailability"
    assert split_console_answer("cos-core", status + config) == (status, config)


def test_answer_without_a_configuration_is_both_parts() -> None:
    """A refusal of every command (multi-VDOM mode) reaches both parsers, which name it."""
    refused = "command parse error before 'system'\nCommand fail. Return code -61\n"
    assert split_console_answer("fortigate", refused) == (refused, refused)


def test_status_section_errors_name_the_member() -> None:
    name = ha_status.status_section_name("fortigate", "fw b")
    assert name == "fwstatus/fortigate.fw_20b"
    got = ha_status.parse_ha_status_section(
        "kvm-b", name, "", "fw b: console ...: refused (exit 255)", 255
    )
    assert got is not None and got.status is None and got.domain == "fw b"
    assert (
        got.problem
        == "kvm-b: HA status of fw b could not be read: fw b: console ...: refused (exit 255)"
    )
    got = ha_status.parse_ha_status_section("kvm-b", name, "Welcome\n", "", 0)
    assert got is not None and got.problem == (
        "kvm-b: HA status of fw b is not understood: line 1: not a 'Key: value' line: 'Welcome'"
    )
    got = ha_status.parse_ha_status_section("kvm-b", name, "", "", 0)
    assert got is not None and got.problem == (
        "kvm-b: HA status of fw b is not understood: no answer to the HA status command"
    )
    assert (
        ha_status.parse_ha_status_section("kvm-b", "fwconfig/fortigate.fw_20b", "", "", 0) is None
    )
    ok = ha_status.parse_ha_status_section(
        "kvm-b", name, (DATA / "fgt-b-7x.txt").read_text(), "", 0
    )
    assert ok is not None and ok.problem is None and isinstance(ok.status, FgcpStatus)
