"""Worked example: provision a two-server HA cluster, audit it, and tear it down.

Run against your hosts (the inventory names the cluster, its members, pairs, VLANs and uplinks):

    pytest examples/provisioning/test_edge_fw.py --kvmha-inventory=clusters.toml \\
        --kvmha-ssh-config=~/.ssh/config --kvmha-allow-provision

Without --kvmha-allow-provision it is a dry run: nothing changes, the test passes once the plan
is made (a plan that cannot be made fails it), and the "kvmha plans" summary shows the plan,
each step with its reason. Given a test path, pytest-kvmha runs this test and audits nothing at
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
    if plan.dry_run:
        # No --kvmha-allow-provision: nothing changed, so the hosts are as they were and there
        # is nothing new to audit (`pytest --kvmha-inventory=...` audits them as they are).
        # The plan is in the "kvmha plans" summary; what plans do not do (remove packages)
        # is there as a note.
        return

    audit = kvmha_audit("edge-fw")
    failing = [
        f"{f.nodeid}: {f.detail}"
        for f in audit.findings
        if f.status == ERROR or (f.status == FAIL and f.check.severity >= Severity.MEDIUM)
    ]
    assert not failing, "\n".join(failing)
