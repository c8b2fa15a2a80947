"""KVMHA-FIRM-001: the members run the same firmware on the same model, with the same VDOM mode
(issue 18). Audits replay the recorded scenario two-ok with the saved configurations of
tests/data/fwconfig (backups with their '#config-version' header, console captures with 'get
system status'), edited per case, as tests/checks/test_firewall.py does.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pytest_kvmha.checks import firmware

from pytest_kvmha.audit.engine import Audit
from pytest_kvmha.model import MissingFacts

from .test_firewall import DATA, cos, detail, fgt, run, write_inventory

FIRM = "KVMHA-FIRM-001"
HEADER = "#config-version=FGVMK6-7.2.5-FW-build1517-230606:opmode=0:vdom=0:user=admin"


def status(result: Audit) -> str:
    (f,) = [f for f in result.findings if f.check.id == FIRM and f.subject == "edge-fw"]
    return f.status


def edited(tmp_path: Path, name: str, old: str, new: str) -> str:
    text = (DATA / name).read_text()
    assert old in text
    out = tmp_path / f"edited-{name}"
    out.write_text(text.replace(old, new))
    return str(out)


def audit_pair(tmp_path: Path, a: str, b: str) -> Audit:
    members = fgt()
    members[0]["config"], members[1]["config"] = a, b
    return run(write_inventory(tmp_path, "fortigate", members))


def test_same_build_and_model_passes(tmp_path: Path) -> None:
    result = run(write_inventory(tmp_path, "fortigate", fgt()))
    assert status(result) == "pass"
    assert detail(result, FIRM) == (
        "edge-fw: FortiOS 7.2.5 build 1517 on FGVMK6, VDOMs off, on every member "
        "(from the config header)"
    )


@pytest.mark.parametrize(
    ("header", "words"),
    [
        (
            HEADER.replace("build1517-230606", "build1396-230131").replace("7.2.5", "7.2.4"),
            "firmware differs: fw-a 7.2.5 build 1517 (config header), "
            "fw-b 7.2.4 build 1396 (config header)",
        ),
        (HEADER.replace("build1517", "build1518"), "fw-b 7.2.5 build 1518 (config header)"),
        (HEADER.replace("FGVMK6", "FGVM64"), "model differs: fw-a FGVMK6, fw-b FGVM64"),
        (HEADER.replace("vdom=0", "vdom=1"), "VDOM mode differs: fw-a VDOMs off, fw-b VDOMs on"),
    ],
    ids=["version", "build", "model", "vdom"],
)
def test_a_mismatch_in_the_headers_fails(tmp_path: Path, header: str, words: str) -> None:
    b = edited(tmp_path, "fgt-b.conf", HEADER, header)
    result = audit_pair(tmp_path, str(DATA / "fgt-a.conf"), b)
    assert status(result) == "fail"
    assert words in detail(result, FIRM), detail(result, FIRM)


def test_multi_vdom_backup_against_a_single_vdom_one_fails(tmp_path: Path) -> None:
    result = audit_pair(tmp_path, str(DATA / "fgt-a-multivdom.conf"), str(DATA / "fgt-b.conf"))
    assert status(result) == "fail"
    assert "VDOM mode differs: fw-a VDOMs on, fw-b VDOMs off" in detail(result, FIRM)


def test_a_member_without_firmware_facts_is_an_error(tmp_path: Path) -> None:
    # a bootstrap file has no header: never a pass, even though the other member is known
    result = audit_pair(tmp_path, str(DATA / "fgt-a.conf"), str(DATA / "fgt-b-bootstrap.conf"))
    assert status(result) == "error"
    assert detail(result, FIRM).startswith(
        "cannot evaluate: fw-b: its firmware is not known: the configuration text has no '#config-version' "
        "header and no 'get system status' answer"
    )


def _console_capture(tmp_path: Path, version: str, vdoms: str) -> str:
    """fw-b read over a console (saved): 'show' output and a 'get system status' answer."""
    capture = (DATA / "fgt-b-console-global.txt").read_text()
    capture = capture.replace("v7.2.5,build1517", version).replace(
        "Virtual domain configuration: multiple", f"Virtual domain configuration: {vdoms}"
    )
    out = tmp_path / "fgt-b-capture.txt"
    out.write_text(capture)
    return str(out)


def test_console_status_against_a_backup_header(tmp_path: Path) -> None:
    a = str(DATA / "fgt-a.conf")
    # same version, build and VDOM mode, but the header's platform code (FGVMK6) and the
    # console's model name (FortiGate-VM64-KVM) cannot be compared: an error, not a pass
    result = audit_pair(tmp_path, a, _console_capture(tmp_path, "v7.2.5,build1517", "disable"))
    assert status(result) == "error"
    assert "the models cannot be compared: fw-a FGVMK6 from its config header, " in detail(
        result, FIRM
    )
    # a different build is a failure whatever the sources
    result = audit_pair(tmp_path, a, _console_capture(tmp_path, "v7.2.6,build1575", "disable"))
    assert status(result) == "fail"
    assert "fw-b 7.2.6 build 1575 (get system status)" in detail(result, FIRM)


def test_the_console_wins_over_the_header_of_the_same_member(tmp_path: Path) -> None:
    # a backup saved before an upgrade, with the console's status appended: the status counts
    capture = tmp_path / "fgt-b-capture.txt"
    status_lines = (
        (DATA / "fgt-b-console-top.txt").read_text().split("FGT-B # get system status\n")[1]
    )
    b_text = (DATA / "fgt-b.conf").read_text().replace("build1517", "build1396")
    capture.write_text(b_text + "FGT-B # get system status\n" + status_lines)
    a = tmp_path / "fgt-a-capture.txt"
    a.write_text((DATA / "fgt-a.conf").read_text() + "FGT-A # get system status\n" + status_lines)
    result = audit_pair(tmp_path, str(a), str(capture))
    assert status(result) == "pass", detail(result, FIRM)
    assert detail(result, FIRM).endswith("VDOMs on, on every member (from the get system status)")


def test_cos_core_is_skipped_and_says_why(tmp_path: Path) -> None:
    result = run(write_inventory(tmp_path, "cos-core", cos()))
    assert status(result) == "skip"
    assert "carry no firmware version" in detail(result, FIRM)


def test_members_of_different_vendors_are_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # an inventory declares one vendor per cluster, so only a discovered cluster (vendor told
    # from each member's text) can mix them (KVMHA-FW-002 fails it): the members' facts are
    # given here directly; there is no firmware to compare, which is never a pass
    from types import SimpleNamespace

    from pytest_kvmha.parse.cos_core import cos_ha_facts, parse_cos_show
    from pytest_kvmha.parse.firewall import parse_firewall_config

    fgt_a = parse_firewall_config((DATA / "fgt-a.conf").read_text(), "fortigate")
    cos_b = cos_ha_facts(parse_cos_show((DATA / "cos-slave.txt").read_text()))
    got = [(SimpleNamespace(label="fw-a"), fgt_a), (SimpleNamespace(label="fw-b"), cos_b)]
    monkeypatch.setattr(firmware, "cluster_facts", lambda cluster: got)
    with pytest.raises(MissingFacts, match=r"^FortiOS and cOS Core members \(fw-b cOS Core\)"):
        firmware.same_firmware(SimpleNamespace(name="edge-fw"))  # type: ignore[arg-type]
