"""checks/evidence.py (KVMHA-HOST-000) and what any check does with evidence it cannot
read: unreadable bundles, missing section files, unknown states, hostile domain names.

How the tests edit and audit a recorded scenario: tests/checks/__init__.py.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import pytest

from ..bundlekit import (
    copy_scenario,
    drop_vlan,
    edit_nic,
    edit_toml,
    finding,
    host,
    run,
    set_section,
    stop_domain,
    use_filter,
)
from .checkkit import (
    A_UUID,
    B_IF1,
    B_IF2,
    HB1,
    HB2,
    HOST0,
    OVS1,
    PKG,
    TOPO1,
    TOPO2,
    VIRT1,
    VIRT2,
    VIRT3,
    VLAN1,
    VLAN2,
    Key,
    errors_without_member,
    expected,
    statuses,
)


def test_base_scenarios_replay_as_recorded(tmp_path: Path) -> None:
    """The copies the tests edit start from exactly the recorded expectations."""
    for name in ("two-ok", "single-ok", "q35-ok", "network-ok"):
        assert statuses(run(copy_scenario(name, tmp_path))) == expected(name)


# --- robustness ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda p: p.unlink(), "no such file (not a recorded kvmha bundle)"),
        (lambda p: p.write_text("{not json"), "unreadable"),
        (lambda p: p.write_text('{"schema": "other/1"}'), "field 'schema' must be"),
    ],
    ids=["missing", "not-json", "wrong-schema"],
)
def test_unreadable_bundle_json_errors_that_host_only(
    tmp_path: Path, edit: Any, message: str
) -> None:
    d = copy_scenario("two-ok", tmp_path)
    meta = d / "kvm-b" / "bundle.json"
    edit(meta)
    result = run(d)
    assert statuses(result) == expected("unreachable")
    (kvm_b,) = [h for h in result.hosts if h.name == "kvm-b"]
    assert kvm_b.status == "error" and kvm_b.error is not None
    assert str(meta) in kvm_b.error and message in kvm_b.error
    assert str(meta) in finding(result, PKG, "kvm-b").detail
    assert finding(result, PKG, "kvm-a").status == "pass"


@pytest.mark.parametrize(
    ("section", "changes"),
    [
        (
            "links",
            {
                (HB1, "kvm-a"): "error",
                (HOST0, "links"): "error",
                ("KVMHA-OVS-005", "If1"): "error",
                ("KVMHA-OVS-005", "If2"): "error",
            },
        ),
        ("packages", {(PKG, "kvm-a"): "error", (HOST0, "packages"): "error"}),
        (
            "identity",
            {
                (HOST0, "identity"): "error",
                (TOPO2, "edge-fw"): "error",
                ("KVMHA-OVS-005", "If1"): "error",
                ("KVMHA-OVS-005", "If2"): "error",
                (VLAN1, "If1"): "error",
                (VLAN1, "If2"): "error",
                (VLAN2, "kvm-a"): "error",
                (VLAN2, "kvm-b"): "error",
            },
        ),
        (
            f"domain-live/{A_UUID}",
            {
                (HOST0, f"domain:{A_UUID}"): "error",
                (TOPO1, "edge-fw"): "error",
                **errors_without_member("kvm-a", "fw-a"),
            },
        ),
    ],
    ids=["links", "packages", "identity", "domain-live"],
)
def test_section_file_missing_on_disk_errors_what_depends_on_it(
    tmp_path: Path, section: str, changes: dict[Key, str]
) -> None:
    d = copy_scenario("two-ok", tmp_path)
    path = d / "kvm-a" / "sections" / section
    path.unlink()
    result = run(d)
    assert statuses(result) == expected("two-ok", changes)
    errors = [f for f in result.findings if f.status == "error"]
    assert errors and all(str(path) in f.detail for f in errors)


@pytest.mark.parametrize("section", ["ovs-Port", "ovs-vswitchd"])
def test_ovs_section_missing_on_disk_is_an_error_not_a_failure(
    tmp_path: Path, section: str
) -> None:
    d = copy_scenario("two-ok", tmp_path)
    (d / "kvm-a" / "sections" / section).unlink()
    assert statuses(run(d))[(OVS1, "kvm-a")] == "error"


@pytest.mark.parametrize("how", ["missing-on-disk", "rc1"])
def test_virsh_active_unknown_is_not_a_pass(tmp_path: Path, how: str) -> None:
    d = copy_scenario("two-ok", tmp_path)
    hb = host(d, "kvm-a")
    if how == "rc1":
        set_section(
            hb, "virsh-active", stdout="", rc=1, stderr="error: failed to connect to the hypervisor"
        )
    else:
        (hb.dir / "sections" / "virsh-active").unlink()
    assert statuses(run(d))[(VIRT1, "fw-a:If1")] == "error"


EVIL = "fw-b;rm -rf /"


def test_domain_name_with_shell_metacharacters_is_quoted(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    hb = host(d, "kvm-b")
    hb.edit_domain("fw-b", lambda x: x.replace("<name>fw-b</name>", f"<name>{EVIL}</name>"))
    edit_toml(d, lambda t: t.replace('domain = "fw-b"', f'domain = "{EVIL}"'))
    # defects whose remediations name the domain: model, PCI slot, MAC filter, VLAN (stopped)
    stop_domain(hb, EVIL)
    hb.edit_domain(
        EVIL,
        lambda x: edit_nic(
            B_IF2,
            lambda b: (
                drop_vlan(b)
                .replace("<model type='virtio'/>", "<model type='e1000'/>")
                .replace("slot='0x04'", "slot='0x05'")
            ),
        )(x),
    )
    use_filter(hb, EVIL, B_IF1, "clean-traffic")
    result = run(d)
    renamed = {
        (c, s.replace("fw-b", EVIL, 1) if s.startswith("fw-b") else s): st
        for (c, s), st in expected("two-ok").items()
    }
    renamed.update(
        {
            (VIRT2, "If2"): "fail",
            (VIRT3, "If2"): "fail",
            (HB2, EVIL): "fail",
            (VLAN1, "If2"): "fail",
        }
    )
    assert statuses(result) == renamed
    q = shlex.quote(EVIL)
    assert q == "'fw-b;rm -rf /'"
    for check, subject in ((VIRT2, "If2"), (VIRT3, "If2"), (HB2, EVIL), (VLAN1, "If2")):
        rem = finding(result, check, subject).remediation
        assert rem.startswith(f"virsh edit {q}  # "), (check, rem)
        assert shlex.split(rem.split("#", 1)[0]) == ["virsh", "edit", EVIL]
    assert f"kvmha/edge-fw/{VIRT1}[{EVIL}:If1]" in {f.nodeid for f in result.findings}
