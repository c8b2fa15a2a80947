"""End to end over SSH: the firewall side (read-only CLI consoles) and the host side together.

The appliances cannot run here, so each firewall's console is a stand-in: an sshd in a lab host's
namespace whose ForceCommand (``fwcli_standin.py``) answers the fixed ``show`` commands from a
saved configuration and refuses anything else. The inventory gives each member
``console = "ssh://root@ADDR:PORT"``; the audit runs ``python -m pytest --kvmha-inventory`` as
users do, records its bundles, and the recording replays to the same findings.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_kvmha.testing import Lab, LabHost
from pytest_kvmha.testing.processes import kill_and_wait
from tests.checks.test_firewall import GOOD_FGT
from tests.scenarios import SCENARIOS, reset

from .test_audit_live import run_audit, statuses

pytestmark = pytest.mark.live

DATA = Path(__file__).parent.parent / "data" / "fwconfig"
STANDIN = Path(__file__).parent / "fwcli_standin.py"
SECRETS = ("SH2sEcReTaDmInHaSh", "hAsEcReTPaSsWoRd", "pSkSeCrEtVaLuE", "PRIVATEKEYBYTES")

STATUS = Path(__file__).parent.parent / "data" / "hastatus"
StartConsole = Callable[[LabHost, int, str, Path, Path], str]


@pytest.fixture
def console(lab: Lab, tmp_path: Path) -> Iterator[StartConsole]:
    """Start stand-in CLI endpoints (one sshd each) answering from a saved configuration and a
    saved HA status; returns the console URL. Each sshd is ended by its own PID afterwards."""
    started: list[int] = []

    def start(host: LabHost, port: int, vendor: str, config: Path, status: Path) -> str:
        command = shlex.join([sys.executable, str(STANDIN), vendor, str(config), str(status)])
        started.append(lab.start_restricted_sshd(host, port, command, tmp_path / f"console-{port}"))
        return f"ssh://root@{host.mgmt_addr}:{port}"

    try:
        yield start
    finally:
        kill_and_wait({pid: "sshd" for pid in started})


def inventory_with_consoles(lab: Lab, a: str, b: str, heartbeat: str) -> str:
    text = SCENARIOS["two-ok"].inventory(lab)
    text = text.replace('heartbeat = "broadcast"', f'heartbeat = "{heartbeat}"')
    text = text.replace(
        'domain = "fw-a", role = "master" }',
        f'domain = "fw-a", role = "master", console = "{a}" }}',
    )
    text = text.replace(
        'domain = "fw-b", role = "slave" }', f'domain = "fw-b", role = "slave", console = "{b}" }}'
    )
    assert text.count("console = ") == 2
    return text


def audit_over_consoles(
    lab: Lab,
    tmp_path: Path,
    console: StartConsole,
    configs: tuple[Path, Path],
    ports: tuple[int, int],
    *extra: str,
    status: tuple[str, str] = ("fgt-a-7x.txt", "fgt-b-7x.txt"),
) -> tuple[int, str, dict[str, Any], Path]:
    """two-ok built, fw-a and fw-b read over stand-in consoles of ``configs`` (unicast
    heartbeat, as the saved configurations say) answering the HA status files ``status``,
    audited: (rc, output, report, inventory)."""
    reset(lab)
    SCENARIOS["two-ok"].build(lab)
    a = console(lab.hosts[0], ports[0], "fortigate", configs[0], STATUS / status[0])
    b = console(lab.hosts[1], ports[1], "fortigate", configs[1], STATUS / status[1])
    inventory = tmp_path / "clusters.toml"
    inventory.write_text(inventory_with_consoles(lab, a, b, "unicast"))
    rc, out, report = run_audit(
        tmp_path, f"--kvmha-inventory={inventory}", f"--kvmha-ssh-config={lab.ssh_config}", *extra
    )
    return rc, out, report, inventory


def console_round_trips(report: dict[str, Any]) -> list[int]:
    """Each host's round trips beyond the host's own batch (and its trace phase)."""
    hosts = {h["name"]: h for h in report["hosts"]}
    return [
        hosts[name]["round_trips"] - SCENARIOS["two-ok"].round_trips(i)
        for i, name in enumerate(("kvm-a", "kvm-b"))
    ]


def fortigate_pair(
    lab: Lab, tmp_path: Path, console: StartConsole, port: int, status: tuple[str, str]
) -> Path:
    """The two-ok lab built, fgt-a.conf/fgt-b.conf behind stand-in consoles on ``port`` and
    ``port + 1`` that answer the HA status files ``status``, and the inventory naming them."""
    reset(lab)
    SCENARIOS["two-ok"].build(lab)
    urls = [
        console(lab.hosts[k], port + k, "fortigate", DATA / conf, STATUS / answer)
        for k, (conf, answer) in enumerate(zip(("fgt-a.conf", "fgt-b.conf"), status, strict=True))
    ]
    inventory = tmp_path / "clusters.toml"
    inventory.write_text(inventory_with_consoles(lab, urls[0], urls[1], "unicast"))
    return inventory


def expected(**changes: str) -> dict[tuple[str, str], str]:
    e = dict(SCENARIOS["two-ok"].expected)
    e.update(
        {
            **GOOD_FGT,  # unicast heartbeat: no broadcast host requirements
            ("KVMHA-FIRM-001", "edge-fw"): "pass",  # "get system status" of both consoles
            ("KVMHA-HA-001", "edge-fw"): "pass",  # "get system ha status" of both consoles
            # If1 is a data pair of a unicast cluster: no virtual MACs, no HA frame to trace
            ("KVMHA-TRACE-001", "fw-a:If1"): "skip",
            ("KVMHA-TRACE-001", "fw-b:If1"): "skip",
        }
    )
    for key, status in changes.items():
        check, subject = key.rsplit("__", 1)
        e[(check.replace("_", "-"), subject.replace("_", "-"))] = status
    return e


def test_consoles_audit_firewall_and_host_side(
    lab: Lab, tmp_path: Path, console: StartConsole
) -> None:
    rc, out, report, inventory = audit_over_consoles(
        lab,
        tmp_path,
        console,
        (DATA / "fgt-a.conf", DATA / "fgt-b.conf"),
        (2201, 2202),
        f"--kvmha-record={tmp_path / 'bundles'}",
    )
    assert statuses(report) == expected(), out
    assert rc == 0, out
    # the host's batch (and its trace phase), plus one per firewall console of a member on it
    assert console_round_trips(report) == [1, 1]
    f = next(f for f in report["findings"] if f["check"] == "KVMHA-FW-005")
    assert f["detail"] == (
        "heartbeat over If2 (fw-a port2 = NIC #2 (If2), fw-b port2 = NIC #2 (If2)) "
        "on bridge br2-external VLAN 102"
    )
    # nothing secret in the terminal, the report or the recording
    recorded = [p.read_text() for p in (tmp_path / "bundles").rglob("*") if p.is_file()]
    for text in [out, json.dumps(report), *recorded]:
        assert not [s for s in SECRETS if s in text]
    assert (tmp_path / "bundles" / "kvm-a" / "sections" / "fwconfig" / "fortigate.fw-a").is_file()

    # The recording replays (consoles not contacted) to the same findings.
    replay = tmp_path / "replay.toml"
    text = inventory.read_text()
    for i, name in enumerate(("kvm-a", "kvm-b")):
        text = text.replace(json.dumps(lab.hosts[i].spec), json.dumps(f"replay://bundles/{name}"))
    replay.write_text(text)
    (tmp_path / "again").mkdir()
    rc2, out2, report2 = run_audit(tmp_path / "again", f"--kvmha-inventory={replay}")
    assert statuses(report2) == statuses(report), out2
    assert rc2 == rc


def test_split_cluster_fails_while_the_host_side_passes(
    lab: Lab, tmp_path: Path, console: StartConsole
) -> None:
    """The consoles answer that each FortiGate is alone and primary (what a lost heartbeat
    leaves): the wiring is the conforming two-ok lab, every host check passes as in the formed
    run above, and KVMHA-HA-001 alone fails, naming the split; the audit exits 1."""
    statuses_ = ("fgt-a-alone.txt", "fgt-b-alone.txt")
    inventory = fortigate_pair(lab, tmp_path, console, 2205, statuses_)
    rc, out, report = run_audit(
        tmp_path, f"--kvmha-inventory={inventory}", f"--kvmha-ssh-config={lab.ssh_config}"
    )
    assert statuses(report) == expected(KVMHA_HA_001__edge_fw="fail"), out
    f = next(f for f in report["findings"] if f["check"] == "KVMHA-HA-001")
    assert f["detail"].endswith("fw-a and fw-b are each primary (split brain)"), f
    assert rc == 1
    # one session per console still: the status came with the configuration
    hosts = {h["name"]: h for h in report["hosts"]}
    for i, name in enumerate(("kvm-a", "kvm-b")):
        assert hosts[name]["round_trips"] == SCENARIOS["two-ok"].round_trips(i) + 1


def test_console_defects_and_refusals(lab: Lab, tmp_path: Path, console: StartConsole) -> None:
    reset(lab)
    SCENARIOS["two-ok"].build(lab)
    a = console(lab.hosts[0], 2203, "fortigate", DATA / "fgt-a.conf", STATUS / "fgt-a-alone.txt")
    b = console(
        lab.hosts[1],
        2204,
        "fortigate",
        DATA / "fgt-b-group-mismatch.conf",
        STATUS / "fgt-b-alone.txt",
    )
    inventory = tmp_path / "clusters.toml"
    # a console that does not answer: nothing listens on that port
    dead = f"ssh://root@{lab.hosts[1].mgmt_addr}:2299"
    inventory.write_text(inventory_with_consoles(lab, a, b, "broadcast"))
    rc, out, report = run_audit(
        tmp_path, f"--kvmha-inventory={inventory}", f"--kvmha-ssh-config={lab.ssh_config}"
    )
    got = statuses(report)
    assert got[("KVMHA-FW-002", "edge-fw")] == "fail", out
    f = next(f for f in report["findings"] if f["check"] == "KVMHA-FW-002")
    assert f["detail"].startswith("group-id differs: fw-a 10, fw-b 11"), f
    f = next(f for f in report["findings"] if f["check"] == "KVMHA-FW-003")
    assert (f["status"], f["found"]) == ("fail", 'heartbeat = "broadcast" (inventory)'), f
    assert rc == 1

    (tmp_path / "dead").mkdir()
    inventory.write_text(inventory_with_consoles(lab, a, dead, "unicast"))
    rc, out, report = run_audit(
        tmp_path / "dead", f"--kvmha-inventory={inventory}", f"--kvmha-ssh-config={lab.ssh_config}"
    )
    f = next(
        f for f in report["findings"] if f["check"] == "KVMHA-FW-001" and f["subject"] == "fw-b"
    )
    assert f["status"] == "error" and f"console {dead}" in f["detail"], f
    assert statuses(report)[("KVMHA-OVS-002", "If1")] == "pass"  # the host side still audited

    # the stand-in is read-only: any other command is refused, with nothing answered
    proc = subprocess.run(
        [
            "ssh",
            "-F",
            str(lab.ssh_config),
            "-o",
            "ControlMaster=no",
            "-o",
            "ControlPath=none",
            "-p",
            "2203",
            lab.hosts[0].mgmt_addr,
            "execute factoryreset",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2 and proc.stdout == "", proc
    assert "not allowed" in proc.stderr


def test_multi_vdom_consoles_are_read_in_global_scope(
    lab: Lab, tmp_path: Path, console: StartConsole
) -> None:
    """Two FortiGates in multi-VDOM mode: the first read is refused at the top level (the
    stand-in answers as the CLI does), the second, inside 'config global', gives the HA
    settings: the same findings as the single-VDOM pair, two console round trips each."""
    multi = (DATA / "fgt-a-multivdom.conf", DATA / "fgt-b-multivdom.conf")
    rc, out, report, _ = audit_over_consoles(lab, tmp_path, console, multi, (2205, 2206))
    # every finding as for the single-VDOM pair; two console round trips per host
    assert (statuses(report), rc, console_round_trips(report)) == (expected(), 0, [2, 2]), out
    (firm,) = [f["detail"] for f in report["findings"] if f["check"] == "KVMHA-FIRM-001"]
    assert firm == (
        "edge-fw: FortiOS 7.2.5 build 1517 on FortiGate-VM64-KVM, VDOMs on, on every member "
        "(from the get system status)"
    )
    for text in (out, json.dumps(report)):
        assert not [s for s in SECRETS if s in text]


def test_firmware_mismatch_fails_over_the_consoles(
    lab: Lab, tmp_path: Path, console: StartConsole
) -> None:
    older = tmp_path / "fgt-b-older.conf"
    older.write_text(
        (DATA / "fgt-b.conf").read_text().replace("7.2.5-FW-build1517", "7.2.4-FW-build1396")
    )
    pair = (DATA / "fgt-a.conf", older)
    rc, out, report, _ = audit_over_consoles(lab, tmp_path, console, pair, (2207, 2208))
    assert statuses(report) == expected(KVMHA_FIRM_001__edge_fw="fail"), out
    f = next(f for f in report["findings"] if f["check"] == "KVMHA-FIRM-001")
    assert f["detail"] == (
        "firmware differs: fw-a 7.2.5 build 1517 (get system status), "
        "fw-b 7.2.4 build 1396 (get system status)"
    )
    assert rc == 1, out
