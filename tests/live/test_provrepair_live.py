"""The README's worked provisioning example, run exactly as documented against wired but broken
two-server lab clusters whose inventories declare no uplinks: applied, and as a dry run."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_kvmha.config.inventory import load_inventory
from pytest_kvmha.testing import Lab
from tests.scenarios import SCENARIOS

from .test_provision_live import build, differences, pytest_run, snapshot

pytestmark = pytest.mark.live

EXAMPLE = Path(__file__).parents[2] / "examples" / "provisioning" / "test_edge_fw.py"


def readme_command(lab: Lab, cwd: Path, inventory: Path, *extra: str):  # type: ignore[no-untyped-def]
    """`pytest examples/provisioning/test_edge_fw.py --kvmha-inventory=clusters.toml
    --kvmha-ssh-config=...` (+ --kvmha-allow-provision): no --kvmha-no-audit-items."""
    return pytest_run(
        cwd,
        str(EXAMPLE),
        f"--kvmha-inventory={inventory}",
        f"--kvmha-ssh-config={lab.ssh_config}",
        "--kvmha-datapath=netdev",
        f"--kvmha-backup-dir={cwd / 'backups'}",
        "-s",
        *extra,
    )


@pytest.mark.parametrize("name", ["per-pair-missing-vlan", "wrong-member-tag"])
def test_worked_example_provisions_existing_wiring(lab: Lab, name: str, tmp_path: Path) -> None:
    inventory = build(lab, SCENARIOS[name], tmp_path)
    (cluster,) = load_inventory(inventory).clusters
    assert not cluster.uplinks and cluster.trunk_bridge is None
    before = snapshot(lab, inventory)
    proc = readme_command(lab, tmp_path, inventory, "--kvmha-allow-provision")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    # no audit item ran: the only check ids printed are the plan's "# fixes" notes
    assert "1 passed" in proc.stdout and "KVMHA-" not in unaudited(proc.stdout), out
    # Shown once in the "kvmha plans" summary (-rA repeats the report section under PASSES).
    assert len([x for x in plans(proc.stdout) if x.startswith("plan for edge-fw:")]) == 1, out
    assert differences(before, snapshot(lab, inventory)) == []


def plans(stdout: str) -> list[str]:
    """The lines of the "kvmha plans" summary, without their indentation."""
    lines = stdout.split("= kvmha plans =", 1)[1].split("\n=")[0].splitlines()[1:]
    return [x.strip() for x in lines]


def unaudited(stdout: str) -> str:
    """The output without the plan's notes of which finding each step fixes."""
    return "\n".join(x for x in stdout.splitlines() if not x.lstrip().startswith("# fixes "))


def test_worked_example_dry_run_prints_its_plan_once(lab: Lab, tmp_path: Path) -> None:
    inventory = build(lab, SCENARIOS["per-pair-promisc-off"], tmp_path)
    before = snapshot(lab, inventory)
    proc = readme_command(lab, tmp_path, inventory)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "1 passed" in proc.stdout and "KVMHA-" not in unaudited(proc.stdout), out
    # shown once in the "kvmha plans" summary (-rA repeats the report section under PASSES)
    assert plans(proc.stdout).count("plan for edge-fw: 1 step") == 1, out
    assert "[kvm-b] ip link set dev up2-b promisc on" in proc.stdout
    assert differences(before, snapshot(lab, inventory)) == []
