"""Worked example: provision a two-server HA cluster, audit it, and tear it down.

Run against your hosts (the inventory names the cluster, its members, pairs, VLANs and uplinks):

    pytest examples/provisioning/test_edge_fw.py --kvmha-inventory=clusters.toml \\
        --kvmha-ssh-config=~/.ssh/config --kvmha-allow-provision

Without --kvmha-allow-provision the plan is printed once, nothing changes and the test is
skipped (a dry run). Given a test path, pytest-kvmha runs this test and audits nothing at
collection (--kvmha-audit would add the audit items).
The project's own tests run this very file against the namespace lab (tests/live).
"""

from __future__ import annotations

import pytest

from pytest_kvmha.model import ERROR, FAIL, Severity


@pytest.mark.kvmha_destructive
def test_edge_fw_provisioned_conforms(kvmha_provision, kvmha_audit):
    # Plans the minimal change, backs every host up, applies it; the exact prior state is
    # restored when this test ends, whatever happens in between.
    plan = kvmha_provision("edge-fw")
    if plan.steps and not plan.applied:
        # A dry run (no --kvmha-allow-provision): the fixture printed the plan and changed
        # nothing, so the hosts are as broken as before: nothing to audit yet.
        pytest.skip("dry run: the plan was printed, not applied")
    if plan.applied:
        print(plan.render())  # what was changed (a dry run printed it already)

    audit = kvmha_audit("edge-fw")
    failing = [
        f"{f.nodeid}: {f.detail}"
        for f in audit.findings
        if f.status == ERROR or (f.status == FAIL and f.check.severity >= Severity.MEDIUM)
    ]
    assert not failing, "\n".join(failing)
