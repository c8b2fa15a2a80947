"""On the lab: a FortiOS configuration written as operators write it (abbreviated words, ``end``
closing an ``edit``) audits exactly as its unabbreviated twin, host side included.

Both audits run ``python -m pytest --kvmha-inventory`` over the live two-ok lab (real OVS,
libvirt, sshd); the members' configurations are saved files (inventory key ``config``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_kvmha.testing import Lab
from tests.scenarios import SCENARIOS, reset

from .test_audit_live import run_audit, statuses
from .test_fwconfig_live import expected

pytestmark = pytest.mark.live

DATA = Path(__file__).parent.parent / "data" / "fwconfig"


def inventory_with_configs(lab: Lab, a: Path, b: Path) -> str:
    text = SCENARIOS["two-ok"].inventory(lab)
    text = text.replace('heartbeat = "broadcast"', 'heartbeat = "unicast"')
    for domain, role, path in (("fw-a", "master", a), ("fw-b", "slave", b)):
        text = text.replace(
            f'domain = "{domain}", role = "{role}" }}',
            f'domain = "{domain}", role = "{role}", config = {json.dumps(str(path))} }}',
        )
    assert text.count("config = ") == 2
    return text


def test_abbreviated_configuration_audits_as_its_twin(lab: Lab, tmp_path: Path) -> None:
    reset(lab)
    SCENARIOS["two-ok"].build(lab)
    found = []
    for name, (a, b) in {
        "full": ("fgt-a.conf", "fgt-b.conf"),
        "abbreviated": ("fgt-a-bootstrap.conf", "fgt-b-bootstrap.conf"),
    }.items():
        (tmp_path / name).mkdir()
        inventory = tmp_path / name / "clusters.toml"
        inventory.write_text(inventory_with_configs(lab, DATA / a, DATA / b))
        rc, out, report = run_audit(
            tmp_path / name,
            f"--kvmha-inventory={inventory}",
            f"--kvmha-ssh-config={lab.ssh_config}",
        )
        # a unicast cluster written with "config sys ha": judged unicast, every check as
        # expected; a bootstrap file has no '#config-version' header, so the firmware is not
        # known there (KVMHA-FIRM-001 errs: never a pass without the facts); saved files hold
        # no run-time state: KVMHA-HA-001 has no console to read
        firm = "pass" if name == "full" else "error"
        assert statuses(report) == expected(
            KVMHA_FIRM_001__edge_fw=firm, KVMHA_HA_001__edge_fw="skip"
        ), out
        assert rc == (0 if name == "full" else 1), out
        found.append(
            sorted(
                (f["check"], f["subject"], f["status"], f["detail"])
                for f in report["findings"]
                if f["check"] != "KVMHA-FIRM-001"
            )
        )
    assert found[0] == found[1]
