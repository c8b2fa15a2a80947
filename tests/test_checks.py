"""Every check of the catalogue, driven by defect bundles derived from the recorded scenarios.

Each test copies a recorded scenario, edits its raw evidence (XML, OVS JSON, ip JSON, package
lines, bundle.json, the inventory) exactly where a real host would differ, audits it through the
real collectors (replay://), parsers and checks, and asserts the exact status of the findings it
is about AND that every other finding is unchanged from the scenario's expected statuses.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from pytest_kvmha.bundle.store import EvidenceBundle
from pytest_kvmha.model import Severity
from tests.scenarios import SCENARIOS

from .bundlekit import BUNDLES, HostBundle, copy_scenario, finding, run, untraced
from .bundlekit import statuses as _statuses

Key = tuple[str, str]

# --- helpers: raw-evidence edits a real host would show ------------------------------------


# KVMHA-TRACE-001 reads traces recorded for the unedited bundle: the edits here change what it
# plans, so it errs or skips (never passes); its own tests are tests/test_trace.py.
def statuses(result: Any) -> dict[Key, str]:
    return untraced(_statuses(result))


def expected(scenario: str, changes: Mapping[Key, str | None] = {}) -> dict[Key, str]:
    """The scenario's recorded statuses with ``changes`` applied (None removes a finding)."""
    out = untraced(SCENARIOS[scenario].expected)
    for key, status in changes.items():
        if status is None:
            out.pop(key)
        else:
            out[key] = status
    return out


def host(d: Path, name: str) -> HostBundle:
    return HostBundle(d / name)


def edit_toml(d: Path, fn: Callable[[str], str]) -> None:
    path = d / "clusters.toml"
    new = fn(path.read_text())
    assert new != path.read_text(), "inventory edit changed nothing"
    path.write_text(new)


def set_section(
    hb: HostBundle,
    name: str,
    *,
    stdout: str | None = None,
    rc: int | None = None,
    stderr: str | None = None,
) -> None:
    """Change a section's output and/or its exit status and stderr (kept in bundle.json)."""
    if stdout is not None:
        (hb.dir / "sections" / name).write_text(stdout)

    def meta(m: dict[str, Any]) -> None:
        info = m["sections"][name]
        if rc is not None:
            info["rc"] = rc
        if stderr is not None:
            info["stderr"] = stderr

    hb.set_meta(meta)


def add_section(hb: HostBundle, name: str, stdout: str, rc: int = 0, stderr: str = "") -> None:
    path = hb.dir / "sections" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(stdout)
    hb.set_meta(lambda m: m["sections"].__setitem__(name, {"rc": rc, "stderr": stderr}))


def drop_section(hb: HostBundle, name: str) -> None:
    """The section was never collected: gone from bundle.json and from disk."""
    hb.set_meta(lambda m: m["sections"].pop(name))
    (hb.dir / "sections" / name).unlink()


def reload(hb: HostBundle) -> None:
    """Re-read the bundle after edits on disk (HostBundle reads it once)."""
    hb.bundle = EvidenceBundle.read(hb.dir)


def domain_uuid(hb: HostBundle, domain: str) -> str:
    """The UUID of ``domain`` as its XML on disk says now (edits included)."""
    reload(hb)  # re-read the edited sections
    (name,) = {n.split("/", 1)[1] for n in hb.domain_sections(domain)}
    return name


def edit_live(hb: HostBundle, domain: str, fn: Callable[[str], str]) -> None:
    """Only the running state differs (e.g. the tap libvirt created), not the persistent XML."""
    hb.edit(f"domain-live/{domain_uuid(hb, domain)}", fn)


def drop_lines(hb: HostBundle, section: str, needle: str) -> None:
    hb.edit(section, lambda t: "".join(ln for ln in t.splitlines(True) if needle not in ln))


def _refs(cell: Any) -> list[Any]:
    """An OVSDB reference column: ["uuid", u] or ["set", [["uuid", u], ...]]."""
    return cell[1] if cell[0] == "set" else [cell]


def remove_ovs_port(hb: HostBundle, port: str) -> None:
    """``ovs-vsctl del-port``: the Port row, its Interface rows and the bridge's reference."""
    ph, prows = hb.ovs_rows("Port")
    (prow,) = [r for r in prows if r[ph.index("name")] == port]
    port_uuid = prow[ph.index("_uuid")][1]
    iface_uuids = {u[1] for u in _refs(prow[ph.index("interfaces")])}

    def ports(doc: Any) -> None:
        doc["data"] = [r for r in doc["data"] if r[doc["headings"].index("name")] != port]

    def ifaces(doc: Any) -> None:
        doc["data"] = [
            r for r in doc["data"] if r[doc["headings"].index("_uuid")][1] not in iface_uuids
        ]

    def bridges(doc: Any) -> None:
        col = doc["headings"].index("ports")
        for r in doc["data"]:
            refs = [u for u in _refs(r[col]) if u[1] != port_uuid]
            r[col] = ["set", refs] if len(refs) != 1 else refs[0]

    hb.edit_json("ovs-Port", ports)
    hb.edit_json("ovs-Interface", ifaces)
    hb.edit_json("ovs-Bridge", bridges)
    reload(hb)


def vm_ports(hb: HostBundle, uuid: str) -> list[str]:
    """The OVS ports libvirt created for a running domain (Interface external_ids:vm-id)."""
    ih, irows = hb.ovs_rows("Interface")
    names = []
    for r in irows:
        ids = dict(r[ih.index("external_ids")][1])
        if ids.get("vm-id") == uuid:
            names.append(r[ih.index("name")])
    return names


def stop_domain(hb: HostBundle, domain: str) -> None:
    """``virsh destroy``: no longer listed active, no live XML, its vnet ports gone from OVS."""
    uuid = domain_uuid(hb, domain)
    drop_lines(hb, "virsh-active", uuid)
    drop_section(hb, f"domain-live/{uuid}")
    for port in vm_ports(hb, uuid):
        remove_ovs_port(hb, port)
    reload(hb)


def undefine_domain(hb: HostBundle, domain: str) -> None:
    """``virsh destroy`` + ``virsh undefine``: not listed at all."""
    uuid = domain_uuid(hb, domain)
    stop_domain(hb, domain)
    drop_lines(hb, "virsh-domains", uuid)
    drop_section(hb, f"domain-inactive/{uuid}")
    reload(hb)


NIC = re.compile(r"    <interface type='[^']*'[^>]*>\n.*?    </interface>\n", re.S)


def edit_nic(mac: str, fn: Callable[[str], str]) -> Callable[[str], str]:
    """An XML edit applied to the <interface> block with ``mac`` only."""

    def apply(xml: str) -> str:
        blocks = [m for m in NIC.finditer(xml) if f"address='{mac}'" in m.group(0)]
        assert len(blocks) == 1, f"no single NIC {mac}"
        m = blocks[0]
        return xml[: m.start()] + fn(m.group(0)) + xml[m.end() :]

    return apply


def drop_vlan(block: str) -> str:
    return re.sub(r"      <vlan>\n.*?      </vlan>\n", "", block, flags=re.S)


def drop_virtualport(xml: str) -> str:
    return re.sub(r"\s*<virtualport type='openvswitch'(/>|>.*?</virtualport>)", "", xml, flags=re.S)


def live_nics(scenario: str, host_name: str, domain: str) -> tuple[str, list[tuple[str, str]]]:
    """(uuid, [(MAC, vnet port), ...]) of a running domain in a recording: read, not hard-coded,
    so the tests survive scripts/record-bundles.py."""
    from pytest_kvmha.bundle.store import EvidenceBundle
    from pytest_kvmha.parse.host import parse_bundle

    facts = parse_bundle(EvidenceBundle.read(BUNDLES / scenario / host_name))
    assert facts.domains is not None
    dom = facts.domains[domain]
    return dom.uuid, [(n.mac or "", n.target_dev or "") for n in dom.nics]


# MACs and ports of the recordings
A_UUID, [(A_IF1, A_VNET1), (A_IF2, A_VNET2)] = live_nics("two-ok", "kvm-a", "fw-a")
B_UUID, [(B_IF1, B_VNET1), (B_IF2, B_VNET2)] = live_nics("two-ok", "kvm-b", "fw-b")

PKG = "KVMHA-PKG-001"
OVS1, OVS2 = "KVMHA-OVS-001", "KVMHA-OVS-002"
TOPO1, TOPO2 = "KVMHA-TOPO-001", "KVMHA-TOPO-002"
VIRT1, VIRT2, VIRT3 = "KVMHA-VIRT-001", "KVMHA-VIRT-002", "KVMHA-VIRT-003"
HB1, HB2, HB3 = "KVMHA-HB-001", "KVMHA-HB-002", "KVMHA-HB-003"
VLAN1, VLAN2 = "KVMHA-VLAN-001", "KVMHA-VLAN-002"
HOST0 = "KVMHA-HOST-000"  # one error per problem recorded for a host


def problem_errors(result: Any) -> dict[Key, str]:
    """The KVMHA-HOST-000 errors of the problems the parser recorded (see test_failclosed)."""
    return {(HOST0, k): "error" for h in result.hosts for k in h.problems}


def test_base_scenarios_replay_as_recorded(tmp_path: Path) -> None:
    """The copies the tests edit start from exactly the recorded expectations."""
    for name in ("two-ok", "single-ok", "q35-ok", "network-ok"):
        assert statuses(run(copy_scenario(name, tmp_path))) == expected(name)


# --- KVMHA-PKG-001 ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("packages", "status", "remediation"),
    [
        (
            "manager=rpm\nbridge-utils\t0\tbridge-utils-1.7.1-3.el9.x86_64\n"
            "openvswitch-switch\t1\tpackage openvswitch-switch is not installed\n"
            "openvswitch\t0\topenvswitch3.1-3.1.0-52.el9s.x86_64\n",
            "fail",
            "dnf remove -y bridge-utils",
        ),
        (
            "manager=rpm\nbridge-utils\t1\tpackage bridge-utils is not installed\n"
            "openvswitch-switch\t1\tpackage openvswitch-switch is not installed\n"
            "openvswitch\t0\topenvswitch3.1-3.1.0-52.el9s.x86_64\n",
            "pass",
            None,
        ),
        (
            "manager=pacman\nbridge-utils\t0\tbridge-utils 1.7.1-2\n"
            "openvswitch-switch\t1\terror: package 'openvswitch-switch' was not found\n"
            "openvswitch\t0\topenvswitch 3.3.0-1\n",
            "fail",
            "pacman -R --noconfirm bridge-utils",
        ),
        (
            "manager=pacman\nbridge-utils\t1\terror: package 'bridge-utils' was not found\n"
            "openvswitch-switch\t1\terror: package 'openvswitch-switch' was not found\n"
            "openvswitch\t0\topenvswitch 3.3.0-1\n",
            "pass",
            None,
        ),
        (
            "manager=apk\nbridge-utils\t0\tbridge-utils\n"
            "openvswitch-switch\t1\t\nopenvswitch\t0\topenvswitch\n",
            "fail",
            "apk del bridge-utils",
        ),
        (
            "manager=apk\nbridge-utils\t1\t\nopenvswitch-switch\t1\t\nopenvswitch\t0\topenvswitch\n",
            "pass",
            None,
        ),
        (
            "manager=dpkg\nbridge-utils\t0\tdeinstall ok config-files\n"
            "openvswitch-switch\t0\tinstall ok installed\nopenvswitch\t1\t\n",
            "pass",
            None,
        ),
        (
            "manager=dpkg\nbridge-utils\t0\thold ok installed\n"
            "openvswitch-switch\t0\tinstall ok installed\nopenvswitch\t1\t\n",
            "fail",
            "apt-get remove -y bridge-utils",
        ),
    ],
    ids=[
        "rpm-installed",
        "rpm-absent",
        "pacman-installed",
        "pacman-absent",
        "apk-installed",
        "apk-absent",
        "dpkg-config-files",
        "dpkg-hold-installed",
    ],
)
def test_pkg_bridge_utils_per_package_manager(
    tmp_path: Path, packages: str, status: str, remediation: str | None
) -> None:
    d = copy_scenario("two-ok", tmp_path)
    host(d, "kvm-a").edit("packages", lambda _: packages)
    result = run(d)
    assert statuses(result) == expected("two-ok", {(PKG, "kvm-a"): status})
    f = finding(result, PKG, "kvm-a")
    manager = packages.split("\n", 1)[0].split("=")[1]
    assert f"({manager})" in f.detail
    assert f.remediation == remediation


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        # what older collectors printed on a host with none of dpkg/rpm/pacman/apk (exit 3)
        (
            lambda hb: set_section(hb, "packages", stdout="manager=none\n", rc=3),
            "no known package manager",
        ),
        (
            lambda hb: set_section(hb, "packages", stdout="manager=none\n"),
            "no known package manager",
        ),
        (lambda hb: drop_section(hb, "packages"), "packages: section missing from bundle"),
        (
            lambda hb: set_section(hb, "packages", rc=1, stderr="dpkg-query: error: parsing file"),
            "command failed (rc 1): dpkg-query: error: parsing file",
        ),
        (lambda hb: set_section(hb, "packages", stdout="bridge-utils\t1\t\n"), "manager=<name>"),
        (
            lambda hb: set_section(
                hb, "packages", stdout="manager=dpkg\nopenvswitch-switch\t0\tinstall ok installed\n"
            ),
            "bridge-utils state not reported by dpkg",
        ),
    ],
    ids=["manager-none-rc3", "manager-none", "missing", "rc1", "no-manager-line", "not-reported"],
)
def test_pkg_unknown_state_is_an_error(tmp_path: Path, edit: Any, message: str) -> None:
    d = copy_scenario("two-ok", tmp_path)
    edit(host(d, "kvm-a"))
    result = run(d)
    changes = {(PKG, "kvm-a"): "error", **problem_errors(result)}
    assert statuses(result) == expected("two-ok", changes)
    assert message in finding(result, PKG, "kvm-a").detail


def test_pkg_manager_none_as_collected_says_why(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    set_section(host(d, "kvm-a"), "packages", stdout="manager=none\n", rc=3)
    assert "no known package manager" in finding(run(d), PKG, "kvm-a").detail


def test_pkg_dpkg_unpacked_counts_as_installed(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    host(d, "kvm-a").edit(
        "packages",
        lambda t: t.replace("bridge-utils\t1\t\n", "bridge-utils\t0\tinstall ok unpacked\n"),
    )
    assert statuses(run(d))[(PKG, "kvm-a")] == "fail"


# --- KVMHA-OVS-001 ---------------------------------------------------------------------------

OVS_DEPENDENT_A = {
    (OVS2, "If1"): "error",
    (OVS2, "If2"): "error",
    (VIRT1, "fw-a:If1"): "error",
    (VIRT1, "fw-a:If2"): "error",
    (HB1, "kvm-a"): "error",
    (VLAN1, "If1"): "error",
    (VLAN1, "If2"): "error",
    (VLAN2, "kvm-a"): "error",
    # kvm-b's uplink is judged per pair from every member's placement, fw-a's included
    (VLAN2, "kvm-b"): "error",
}


def _no_ovs(hb: HostBundle) -> None:
    # the batch script's else-branch: only ovs-version, rc 127; no other OVS section
    set_section(hb, "ovs-version", stdout="", rc=127, stderr="ovs-vsctl: command not found\n")
    for name in ("ovs-vswitchd", "ovs-Open_vSwitch", "ovs-Bridge", "ovs-Port", "ovs-Interface"):
        drop_section(hb, name)


def _db_down(hb: HostBundle) -> None:
    err = "ovs-vsctl: unix:/var/run/openvswitch/db.sock: database connection failed (No such file or directory)\n"
    for name in ("ovs-Open_vSwitch", "ovs-Bridge", "ovs-Port", "ovs-Interface"):
        set_section(hb, name, stdout="", rc=1, stderr=err)


def test_ovs_not_installed_fails_and_dependent_checks_error(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    _no_ovs(host(d, "kvm-a"))
    result = run(d)
    assert statuses(result) == expected("two-ok", {(OVS1, "kvm-a"): "fail", **OVS_DEPENDENT_A})
    f = finding(result, OVS1, "kvm-a")
    assert "not installed" in f.detail and "apt-get install -y openvswitch-switch" in f.remediation
    assert "not installed (see KVMHA-OVS-001)" in finding(result, VIRT1, "fw-a:If1").detail


def test_ovsdb_not_answering_fails_and_dependent_checks_error(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    _db_down(host(d, "kvm-a"))
    result = run(d)
    assert statuses(result) == expected("two-ok", {(OVS1, "kvm-a"): "fail", **OVS_DEPENDENT_A})
    f = finding(result, OVS1, "kvm-a")
    assert "database connection failed" in f.detail and "systemctl restart" in f.remediation


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda hb: set_section(
                hb,
                "ovs-vswitchd",
                stdout="",
                rc=1,
                stderr="2026-11-22T05:00:05Z|00001|unixctl|WARN|failed to connect to "
                "/var/run/openvswitch/ovs-vswitchd.4242.ctl\novs-appctl: cannot connect to "
                '"/var/run/openvswitch/ovs-vswitchd.4242.ctl" (Connection refused)\n',
            ),
            "ovs-vswitchd does not answer: ",
        ),
        (
            lambda hb: hb.edit_json(
                "ovs-Open_vSwitch", lambda doc: doc["data"][0].__setitem__(3, 21)
            ),
            "cur_cfg 20 != next_cfg 21",
        ),
    ],
    ids=["vswitchd-down", "cfg-not-applied"],
)
def test_ovs_vswitchd_not_working_fails_only_ovs001(
    tmp_path: Path, edit: Any, message: str
) -> None:
    d = copy_scenario("two-ok", tmp_path)
    edit(host(d, "kvm-a"))
    result = run(d)
    # the database answers, so the configuration is still audited
    assert statuses(result) == expected("two-ok", {(OVS1, "kvm-a"): "fail"})
    f = finding(result, OVS1, "kvm-a")
    assert message in f.detail and "ovs-appctl version" in f.remediation


# --- KVMHA-TOPO-001 --------------------------------------------------------------------------

FW_B_GONE = {
    (TOPO1, "edge-fw"): "fail",
    (OVS2, "If1"): "error",
    (OVS2, "If2"): "error",
    (VIRT1, "fw-b:If1"): "error",
    (VIRT1, "fw-b:If2"): "error",
    (VIRT2, "If1"): "error",
    (VIRT2, "If2"): "error",
    (VIRT3, "If1"): "error",
    (VIRT3, "If2"): "error",
    (HB1, "kvm-b"): "error",
    (HB2, "fw-b"): "error",
    (VLAN1, "If1"): "error",
    (VLAN1, "If2"): "error",
    (VLAN2, "kvm-a"): "error",
    (VLAN2, "kvm-b"): "error",
}


def test_topo_member_domain_not_defined(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    undefine_domain(host(d, "kvm-b"), "fw-b")
    result = run(d)
    assert statuses(result) == expected("two-ok", FW_B_GONE)
    f = finding(result, TOPO1, "edge-fw")
    assert f.detail == "domain not defined: fw-b on kvm-b"
    assert "not found on host kvm-b" in finding(result, VIRT1, "fw-b:If1").detail


def test_topo_nic_count_mismatch(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    hb = host(d, "kvm-b")
    hb.edit_domain("fw-b", edit_nic(B_IF2, lambda _: ""))  # virsh detach-interface --config --live
    remove_ovs_port(hb, B_VNET2)
    result = run(d)
    assert statuses(result) == expected(
        "two-ok",
        {
            (TOPO1, "edge-fw"): "fail",
            (OVS2, "If2"): "error",
            (VIRT1, "fw-b:If2"): "error",
            (VIRT2, "If2"): "error",
            (VIRT3, "If2"): "error",
            (HB1, "kvm-b"): "error",
            (HB2, "fw-b"): "error",
            (VLAN1, "If2"): "error",
            # If1's "used by no other pair" needs If2's VLAN on both members
            (VLAN1, "If1"): "error",
            (VLAN2, "kvm-a"): "error",
            (VLAN2, "kvm-b"): "error",
        },
    )
    assert (
        finding(result, TOPO1, "edge-fw").detail == "NIC counts differ (fw-a: 2 NICs, fw-b: 1 NICs)"
    )
    assert "fw-b on kvm-b has no NIC #2" in finding(result, VIRT2, "If2").detail


def add_third_member(d: Path, *, heartbeat: str = "broadcast") -> None:
    """A third firewall fw-c, defined (stopped) on kvm-b, listed as a member."""
    hb = host(d, "kvm-b")
    uuid_b = domain_uuid(hb, "fw-b")
    uuid_c = "5d1c0e4a-9b1f-4c39-8f64-3e0f5a6b7c8d"
    xml = (hb.dir / "sections" / f"domain-inactive/{uuid_b}").read_text()
    xml = (
        xml.replace("<name>fw-b</name>", "<name>fw-c</name>")
        .replace(uuid_b, uuid_c)
        .replace(B_IF1, "52:54:00:ee:00:01")
        .replace(B_IF2, "52:54:00:ee:00:02")
    )
    add_section(hb, f"domain-inactive/{uuid_c}", xml)
    hb.edit("virsh-domains", lambda t: t + uuid_c + "\n")
    edit_toml(
        d,
        lambda t: t.replace(
            '  { host = "kvm-b", domain = "fw-b", role = "slave" },\n',
            '  { host = "kvm-b", domain = "fw-b", role = "slave" },\n'
            '  { host = "kvm-b", domain = "fw-c", role = "slave" },\n',
        ).replace('heartbeat = "broadcast"', f'heartbeat = "{heartbeat}"'),
    )


FW_C_PASSES = {
    (VIRT1, "fw-c:If1"): "pass",
    (VIRT1, "fw-c:If2"): "pass",
    (HB2, "fw-c"): "pass",
    ("KVMHA-FW-001", "fw-c"): "skip",  # no firewall configuration declared (issue 10)
}


def test_topo_three_members(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    add_third_member(d)
    result = run(d)
    assert statuses(result) == expected("two-ok", {(TOPO1, "edge-fw"): "fail", **FW_C_PASSES})
    f = finding(result, TOPO1, "edge-fw")
    assert f.detail == "cluster edge-fw has 3 members"
    assert f.found == "fw-a@kvm-a, fw-b@kvm-b, fw-c@kvm-b"


BROKEN_FW_B = {
    (TOPO1, "edge-fw"): "error",
    **{k: v for k, v in FW_B_GONE.items() if k != (TOPO1, "edge-fw")},
}


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda x: x[: len(x) // 2], "malformed XML"),
        (
            lambda x: (
                '<!DOCTYPE domain [<!ENTITY nic "br2-external">]>\n'
                + x.replace("<source bridge='br2-external'/>", "<source bridge='&nic;'/>")
            ),
            "DTDs and entities are not accepted",
        ),
        (
            lambda x: x.replace("<uuid>", "<uuidx>").replace("</uuid>", "</uuidx>"),
            "without <name> or <uuid>",
        ),
    ],
    ids=["truncated", "doctype-entity", "no-uuid"],
)
def test_broken_member_xml_errors_its_cluster_only(tmp_path: Path, edit: Any, message: str) -> None:
    d = copy_scenario("two-ok", tmp_path)
    hb = host(d, "kvm-b")
    uuid = domain_uuid(hb, "fw-b")
    hb.edit(f"domain-live/{uuid}", edit)
    result = run(d)
    # kvm-b's host checks, fw-a's member checks and kvm-a's uplink still pass
    assert statuses(result) == expected(
        "two-ok", {**BROKEN_FW_B, (HOST0, f"domain:{uuid}"): "error"}
    )
    for f in (finding(result, TOPO1, "edge-fw"), finding(result, VIRT1, "fw-b:If1")):
        assert f"domain-live/{uuid}" in f.detail and message in f.detail
    assert [h.problems for h in result.hosts if h.name == "kvm-b"][0].keys() == {f"domain:{uuid}"}


# --- KVMHA-TOPO-002 --------------------------------------------------------------------------


def test_topo_same_machine_id_is_one_server(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    machine_id = host(d, "kvm-a").text("identity").splitlines()[0]
    host(d, "kvm-b").edit("identity", lambda t: machine_id + "\n" + t.split("\n", 1)[1])
    result = run(d)
    assert statuses(result) == expected(
        "two-ok",
        {
            (TOPO2, "edge-fw"): "fail",
            (VLAN1, "If1"): "skip",
            (VLAN1, "If2"): "skip",
            (VLAN2, "kvm-a"): "skip",
            (VLAN2, "kvm-b"): "skip",
        },
    )
    assert (
        finding(result, TOPO2, "edge-fw").found == f"kvm-a and kvm-b share machine-id {machine_id}"
    )


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda hb: drop_section(hb, "identity"), "identity: section missing from bundle"),
        (lambda hb: set_section(hb, "identity", stdout=""), "machine identity unknown"),
    ],
    ids=["missing", "empty"],
)
def test_topo_identity_unknown_is_an_error(tmp_path: Path, edit: Any, message: str) -> None:
    d = copy_scenario("two-ok", tmp_path)
    edit(host(d, "kvm-b"))
    result = run(d)
    assert statuses(result) == expected(
        "two-ok",
        {
            (TOPO2, "edge-fw"): "error",
            (VLAN1, "If1"): "error",
            (VLAN1, "If2"): "error",
            (VLAN2, "kvm-a"): "error",
            (VLAN2, "kvm-b"): "error",
            **problem_errors(result),  # the missing section (an empty one is no problem)
        },
    )
    assert message in finding(result, TOPO2, "edge-fw").detail


# --- KVMHA-OVS-002 ---------------------------------------------------------------------------

SLAVE_IF2 = live_nics("q35-ok", "kvm-a", "fw-slave")[1][1][0]


def _single_ok_slave_if2(d: Path) -> tuple[HostBundle, str, str]:
    """fw-slave's If2 NIC on single-ok: (bundle, MAC, vnet port)."""
    hb = host(d, "kvm-a")
    uuid = domain_uuid(hb, "fw-slave")
    live = (hb.dir / "sections" / f"domain-live/{uuid}").read_text()
    blocks = [m.group(0) for m in NIC.finditer(live)]
    mac = re.search(r"<mac address='([^']+)'", blocks[1]).group(1)  # type: ignore[union-attr]
    vnet = re.search(r"<target dev='([^']+)'", blocks[1]).group(1)  # type: ignore[union-attr]
    return hb, mac, vnet


def test_ovs2_nic_on_a_linux_bridge(tmp_path: Path) -> None:
    d = copy_scenario("single-ok", tmp_path)
    hb, mac, vnet = _single_ok_slave_if2(d)
    hb.edit_domain(
        "fw-slave",
        edit_nic(mac, lambda b: drop_virtualport(b).replace("br2-external", "br2-linux")),
    )
    remove_ovs_port(hb, vnet)
    result = run(d)
    assert statuses(result) == expected(
        "single-ok", {(OVS2, "If2"): "fail", (VIRT1, "fw-slave:If2"): "fail"}
    )
    f = finding(result, OVS2, "If2")
    assert "fw-slave NIC #2 is on br2-linux, not an OVS bridge on kvm-a" in f.detail
    assert "bridges differ: fw-master on br2-external, fw-slave on br2-linux" in f.detail
    assert f.remediation.splitlines() == [
        # br2-external exists on kvm-a: only the NIC moves
        "virsh edit fw-slave  # on kvm-a, NIC #2: <source bridge='br2-external'/>",
    ]
    v = finding(result, VIRT1, "fw-slave:If2")
    assert (
        "source br2-linux is not an OVS bridge" in v.detail and "virtualport is missing" in v.detail
    )


def test_ovs2_declared_bridge_differs(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    edit_toml(d, lambda t: t.replace('bridge = "br2-external"', 'bridge = "br2-dmz"'))
    result = run(d)
    assert statuses(result) == expected("two-ok", {(OVS2, "If2"): "fail"})
    f = finding(result, OVS2, "If2")
    assert "declared bridge is br2-dmz" in f.detail
    assert f.remediation.splitlines()[0] == "ovs-vsctl --may-exist add-br br2-dmz  # on kvm-a"


def test_ovs2_shared_bridge_between_pairs(tmp_path: Path) -> None:
    d = copy_scenario("single-ok", tmp_path)
    edit_toml(d, lambda t: t.replace('bridge = "br2-external"\n', ""))
    hb, mac, vnet = _single_ok_slave_if2(d)
    # fw-slave's If2 NIC moved to br1-internal, persistent and live (ovs-vsctl shows it there)
    hb.edit_domain("fw-slave", edit_nic(mac, lambda b: b.replace("br2-external", "br1-internal")))

    def move(doc: Any) -> None:
        h = doc["headings"]
        pu = [r for r in host(d, "kvm-a").ovs_rows("Port")[1] if r[1] == vnet][0][0]
        for r in doc["data"]:
            refs = [u for u in _refs(r[h.index("ports")]) if u != pu]
            if r[h.index("name")] == "br1-internal":
                refs.append(pu)
            r[h.index("ports")] = ["set", refs]

    hb.edit_json("ovs-Bridge", move)
    result = run(d)
    assert statuses(result) == expected("single-ok", {(OVS2, "If1"): "fail", (OVS2, "If2"): "fail"})
    assert "br1-internal on kvm-a is also used by pair If1" in finding(result, OVS2, "If2").detail


# --- KVMHA-VIRT-001 --------------------------------------------------------------------------


def test_virt1_running_nic_without_ovs_port(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    remove_ovs_port(host(d, "kvm-b"), B_VNET2)
    result = run(d)
    assert statuses(result) == expected("two-ok", {(VIRT1, "fw-b:If2"): "fail"})
    f = finding(result, VIRT1, "fw-b:If2")
    assert f"running, but no OVS port carries MAC {B_IF2} (target {B_VNET2})" in f.detail
    assert f.remediation.startswith(f"virsh edit fw-b  # NIC {B_IF2}")


def test_virt1_port_found_by_attached_mac_when_target_dev_differs(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    # the live XML names a tap that OVS does not know; external_ids:attached-mac + vm-id find it
    edit_live(
        host(d, "kvm-b"),
        "fw-b",
        lambda x: x.replace(f"<target dev='{B_VNET2}'/>", "<target dev='vnet9'/>"),
    )
    result = run(d)
    assert statuses(result) == expected("two-ok")
    assert f"port {B_VNET2}" in finding(result, VIRT1, "fw-b:If2").detail


def test_virt1_attached_mac_of_another_vm_is_not_this_nic(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    hb = host(d, "kvm-b")
    edit_live(
        hb, "fw-b", lambda x: x.replace(f"<target dev='{B_VNET2}'/>", "<target dev='vnet9'/>")
    )

    def other_vm(doc: Any) -> None:
        h = doc["headings"]
        for r in doc["data"]:
            if r[h.index("name")] == B_VNET2:
                r[h.index("external_ids")] = [
                    "map",
                    [
                        [k, "0f0f0f0f-0000-4000-8000-000000000001" if k == "vm-id" else v]
                        for k, v in r[h.index("external_ids")][1]
                    ],
                ]

    hb.edit_json("ovs-Interface", other_vm)
    result = run(d)
    assert statuses(result)[(VIRT1, "fw-b:If2")] == "fail"


def macvtap(trust: bool) -> Callable[[str], str]:
    def apply(block: str) -> str:
        out = drop_vlan(drop_virtualport(block))
        out = re.sub(
            r"<interface type='bridge'>",
            "<interface type='direct'%s>" % (" trustGuestRxFilters='yes'" if trust else ""),
            out,
        )
        out = re.sub(r"<source bridge='[^']+'/>", "<source dev='eno2' mode='bridge'/>", out)
        return re.sub(r"<target dev='vnet\d+'/>", "<target dev='macvtap0'/>", out)

    return apply


@pytest.mark.parametrize(
    ("trust", "hb2"), [(False, "fail"), (True, "pass")], ids=["untrusted", "trusted"]
)
def test_virt1_macvtap_nic(tmp_path: Path, trust: bool, hb2: str) -> None:
    d = copy_scenario("single-ok", tmp_path)
    hb, mac, vnet = _single_ok_slave_if2(d)
    hb.edit_domain("fw-slave", edit_nic(mac, macvtap(trust)))
    remove_ovs_port(hb, vnet)
    result = run(d)
    assert statuses(result) == expected(
        "single-ok",
        {(VIRT1, "fw-slave:If2"): "fail", (OVS2, "If2"): "fail", (HB2, "fw-slave"): hb2},
    )
    v = finding(result, VIRT1, "fw-slave:If2")
    assert "type='direct', not a bridge or OVS-backed network" in v.detail
    assert v.remediation.startswith("virsh edit fw-slave  # NIC")
    assert "<source bridge='br2-external'/><virtualport type='openvswitch'/>" in v.remediation
    h = finding(result, HB2, "fw-slave")
    if not trust:
        assert h.detail == f"fw-slave: NIC #2 ({mac}) is macvtap without trustGuestRxFilters='yes'"
        assert "<interface type='direct' trustGuestRxFilters='yes'>" in h.remediation


def test_virt1_network_without_virtualport(tmp_path: Path) -> None:
    d = copy_scenario("network-ok", tmp_path)
    hb = host(d, "kvm-a")
    (net,) = [n for n in hb.sections("network/") if "ha-br2-external" in hb.text(n)]
    hb.edit(net, lambda x: x.replace("  <virtualport type='openvswitch'/>\n", ""))
    # without it libvirt cannot plug the NIC into OVS: fw-slave is down, judged from its config
    stop_domain(hb, "fw-slave")
    result = run(d)
    # fw-master still runs on the network, but would fail at its next start too
    assert statuses(result) == expected(
        "network-ok", {(VIRT1, "fw-slave:If2"): "fail", (VIRT1, "fw-master:If2"): "fail"}
    )
    assert "the NIC fails at the next start" in finding(result, VIRT1, "fw-master:If2").detail
    f = finding(result, VIRT1, "fw-slave:If2")
    assert "virtualport is missing" in f.detail
    assert "type='network' source=br2-external virtualport=None" == f.found


def test_virt1_stopped_network_nic_with_virtualport_passes(tmp_path: Path) -> None:
    d = copy_scenario("network-ok", tmp_path)
    stop_domain(host(d, "kvm-a"), "fw-slave")
    result = run(d)
    assert statuses(result) == expected("network-ok")
    assert (
        "on OVS bridge br2-external with virtualport"
        in finding(result, VIRT1, "fw-slave:If2").detail
    )


def test_virt1_network_not_defined_is_an_error(tmp_path: Path) -> None:
    d = copy_scenario("network-ok", tmp_path)
    hb = host(d, "kvm-a")
    stop_domain(hb, "fw-slave")
    hb.edit_domain("fw-slave", lambda x: x.replace("network='ha-br2-external'", "network='ha-dmz'"))
    result = run(d)
    assert statuses(result)[(VIRT1, "fw-slave:If2")] == "error"
    assert (
        "libvirt network 'ha-dmz', which is not defined on kvm-a"
        in finding(result, VIRT1, "fw-slave:If2").detail
    )


# --- KVMHA-VIRT-002 / 003 --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda x: x.replace(
                "<target chassis='2' port='0x11'/>", "<target chassis='5' port='0x11'/>"
            ),
            "chassis=5",
        ),
        (
            lambda x: x.replace(
                "<target chassis='2' port='0x11'/>", "<target chassis='2' port='0x14'/>"
            ),
            "port=20",
        ),
    ],
    ids=["chassis", "port"],
)
def test_virt2_q35_root_ports_differ(tmp_path: Path, edit: Any, message: str) -> None:
    d = copy_scenario("q35-ok", tmp_path)
    host(d, "kvm-a").edit_domain("fw-slave", edit)
    result = run(d)
    assert statuses(result) == expected("q35-ok", {(VIRT2, "If2"): "fail"})
    f = finding(result, VIRT2, "If2")
    assert "the PCI controllers behind bus 0x02 differ" in f.detail
    assert message in f.found and "fw-slave: pcie-root-port index=2" in f.found
    assert "index='2' model='pcie-root-port'" in f.remediation


def test_virt2_q35_function_differs(tmp_path: Path) -> None:
    d = copy_scenario("q35-ok", tmp_path)
    host(d, "kvm-a").edit_domain(
        "fw-slave",
        edit_nic(
            SLAVE_IF2,
            lambda b: b.replace(
                "bus='0x02' slot='0x00' function='0x0'", "bus='0x02' slot='0x00' function='0x1'"
            ),
        ),
    )
    result = run(d)
    assert statuses(result) == expected("q35-ok", {(VIRT2, "If2"): "fail"})
    f = finding(result, VIRT2, "If2")
    assert f.found == "fw-master: 0000:02:00.0, fw-slave: 0000:02:00.1"
    assert f.remediation == (
        f"virsh edit fw-slave  # NIC {SLAVE_IF2}: <address type='pci' domain='0x0000' "
        "bus='0x02' slot='0x00' function='0x0'/>"
    )


def test_virt2_missing_pci_address(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    host(d, "kvm-b").edit_domain(
        "fw-b", edit_nic(B_IF1, lambda b: re.sub(r"      <address type='pci'[^>]*/>\n", "", b))
    )
    result = run(d)
    assert statuses(result) == expected("two-ok", {(VIRT2, "If1"): "fail"})
    assert "fw-b: no PCI address" in finding(result, VIRT2, "If1").detail


def test_virt3_model_differs(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    host(d, "kvm-b").edit_domain(
        "fw-b",
        edit_nic(B_IF2, lambda b: b.replace("<model type='virtio'/>", "<model type='e1000'/>")),
    )
    result = run(d)
    assert statuses(result) == expected("two-ok", {(VIRT3, "If2"): "fail"})
    f = finding(result, VIRT3, "If2")
    assert f.check.severity is Severity.MEDIUM
    assert f.found == "fw-a: virtio, fw-b: e1000"
    assert f.remediation == "virsh edit fw-b  # NIC #2: <model type='virtio'/>"


# --- KVMHA-HB-001 ----------------------------------------------------------------------------


def edit_link(name: str, **fields: Any) -> Callable[[Any], None]:
    def apply(doc: Any) -> None:
        (entry,) = [e for e in doc if e["ifname"] == name]
        entry.update(fields)

    return apply


def test_hb1_kernel_datapath_promiscuity_counter_counts(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    hb = host(d, "kvm-a")
    for br in ("br-trunk", "br1-internal", "br2-external"):
        hb.edit_ovs_row("Bridge", br, "datapath_type", "system")
    hb.edit_json(
        "links",
        edit_link("up-a", flags=["BROADCAST", "MULTICAST", "UP", "LOWER_UP"], promiscuity=1),
    )
    result = run(d)
    assert statuses(result) == expected("two-ok")
    assert finding(result, HB1, "kvm-a").detail == "kvm-a: uplinks promiscuous: up-a"


def test_hb1_uplink_not_promiscuous(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    host(d, "kvm-a").edit_json(
        "links",
        edit_link("up-a", flags=["BROADCAST", "MULTICAST", "UP", "LOWER_UP"], promiscuity=0),
    )
    result = run(d)
    assert statuses(result) == expected("two-ok", {(HB1, "kvm-a"): "fail"})
    f = finding(result, HB1, "kvm-a")
    assert "not promiscuous: up-a (on br-trunk, promiscuity 0)" in f.detail
    assert f.remediation == "ip link set dev up-a promisc on"


def test_hb1_uplink_netdev_missing(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    hb = host(d, "kvm-a")
    hb.edit_json("links", lambda doc: doc.remove([e for e in doc if e["ifname"] == "up-a"][0]))
    hb.edit_ovs_row("Interface", "up-a", "ofport", -1)
    hb.edit_ovs_row(
        "Interface", "up-a", "error", "could not open network device up-a (No such device)"
    )
    result = run(d)
    assert statuses(result) == expected("two-ok", {(HB1, "kvm-a"): "fail"})
    assert "no such host NIC: up-a (on br-trunk)" in finding(result, HB1, "kvm-a").detail


def test_hb1_bond_uplink_members_are_checked(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    hb = host(d, "kvm-a")
    # ovs-vsctl add-bond br-trunk bond0 up-a eno3 trunks=101,102: port bond0, two system interfaces
    ih, irows = hb.ovs_rows("Interface")
    (up,) = [r for r in irows if r[ih.index("name")] == "up-a"]
    eno3 = json.loads(json.dumps(up))
    eno3[ih.index("_uuid")] = ["uuid", "7e57b0d3-0000-4000-8000-00000000e703"]
    eno3[ih.index("name")] = "eno3"
    eno3[ih.index("mac_in_use")] = "66:98:a0:d0:45:92"
    hb.edit_json("ovs-Interface", lambda doc: doc["data"].append(eno3))

    def bond(doc: Any) -> None:
        h = doc["headings"]
        for r in doc["data"]:
            if r[h.index("name")] == "up-a":
                r[h.index("name")] = "bond0"
                r[h.index("interfaces")] = ["set", [up[0], eno3[0]]]

    hb.edit_json("ovs-Port", bond)

    def links(doc: Any) -> None:
        (e,) = [e for e in doc if e["ifname"] == "up-a"]
        e2 = dict(e, ifname="eno3", ifindex=99, address="66:98:a0:d0:45:92")
        doc.append(e2)

    hb.edit_json("links", links)
    result = run(d)
    assert statuses(result) == expected("two-ok")


def test_hb1_unicast_heartbeat_skips(tmp_path: Path) -> None:
    d = copy_scenario("promisc-off", tmp_path)  # the uplink is not promiscuous: irrelevant
    edit_toml(d, lambda t: t.replace('heartbeat = "broadcast"', 'heartbeat = "unicast"'))
    result = run(d)
    assert statuses(result) == expected(
        "two-ok",
        {
            (HB1, "kvm-a"): "skip",
            (HB1, "kvm-b"): "skip",
            (HB2, "fw-a"): "skip",
            (HB2, "fw-b"): "skip",
            (HB3, "edge-fw"): "pass",
        },
    )
    assert "unicast heartbeat" in finding(result, HB1, "kvm-a").detail


def test_hb1_links_missing_is_an_error(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    drop_section(host(d, "kvm-a"), "links")
    result = run(d)
    assert statuses(result) == expected(
        "two-ok", {(HB1, "kvm-a"): "error", (HOST0, "links"): "error"}
    )
    assert "links: section missing from bundle" in finding(result, HB1, "kvm-a").detail


# --- KVMHA-HB-002 ----------------------------------------------------------------------------


def add_nwfilter(hb: HostBundle, name: str, uuid: str, refs: list[str]) -> None:
    body = "".join(f"  <filterref filter='{r}'/>\n" for r in refs)
    add_section(
        hb,
        f"nwfilter/{uuid}",
        f"<filter name='{name}' chain='root'>\n  <uuid>{uuid}</uuid>\n{body}"
        "  <rule action='accept' direction='inout' priority='500'/>\n</filter>\n",
    )
    hb.edit("virsh-nwfilters", lambda t: t + f" {uuid}   {name}\n")


def use_filter(hb: HostBundle, domain: str, mac: str, name: str) -> None:
    hb.edit_domain(
        domain,
        edit_nic(
            mac,
            lambda b: b.replace(
                "      <model type=", f"      <filterref filter='{name}'/>\n      <model type="
            ),
        ),
    )


@pytest.mark.parametrize(
    ("filters", "chain"),
    [
        ({"ha-guard": ["clean-traffic"]}, "ha-guard -> clean-traffic"),
        (
            {"ha-guard": ["allow-arp", "ha-base"], "ha-base": ["no-mac-spoofing"]},
            "ha-guard -> ha-base -> no-mac-spoofing",
        ),
    ],
    ids=["one-level", "two-levels"],
)
def test_hb2_nested_spoofing_filter(
    tmp_path: Path, filters: dict[str, list[str]], chain: str
) -> None:
    d = copy_scenario("two-ok", tmp_path)
    hb = host(d, "kvm-b")
    for i, (name, refs) in enumerate(filters.items()):
        add_nwfilter(hb, name, f"a5e1f0c2-0000-4000-8000-00000000000{i}", refs)
    use_filter(hb, "fw-b", B_IF1, "ha-guard")
    result = run(d)
    assert statuses(result) == expected("two-ok", {(HB2, "fw-b"): "fail"})
    f = finding(result, HB2, "fw-b")
    assert f.detail == f"fw-b: NIC #1 ({B_IF1}) filter {chain}"
    assert f.remediation == f"virsh edit fw-b  # NIC {B_IF1}: remove <filterref filter='ha-guard'/>"


def test_hb2_harmless_filter_passes(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    hb = host(d, "kvm-b")
    add_nwfilter(
        hb, "ha-guard", "a5e1f0c2-0000-4000-8000-000000000000", ["allow-arp", "no-ip-multicast"]
    )
    use_filter(hb, "fw-b", B_IF1, "ha-guard")
    assert statuses(run(d)) == expected("two-ok")


def test_hb2_undefined_filter_is_an_error(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    hb = host(d, "kvm-b")
    use_filter(hb, "fw-b", B_IF1, "ha-guard")
    result = run(d)
    assert statuses(result) == expected("two-ok", {(HB2, "fw-b"): "error"})
    assert (
        "nwfilter 'ha-guard' is referenced but not defined" in finding(result, HB2, "fw-b").detail
    )


def test_hb2_spoofing_filter_found_despite_an_undefined_sibling(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    hb = host(d, "kvm-b")
    add_nwfilter(
        hb, "ha-guard", "a5e1f0c2-0000-4000-8000-000000000000", ["no-mac-spoofing", "ha-site"]
    )
    use_filter(hb, "fw-b", B_IF1, "ha-guard")
    assert statuses(run(d))[(HB2, "fw-b")] == "fail"


def test_hb2_spoofing_filter_found_with_undefined_sibling_last(tmp_path: Path) -> None:
    """The mirror of the xfail above: with the undefined reference first, it fails as it should."""
    d = copy_scenario("two-ok", tmp_path)
    hb = host(d, "kvm-b")
    add_nwfilter(
        hb, "ha-guard", "a5e1f0c2-0000-4000-8000-000000000000", ["ha-site", "no-mac-spoofing"]
    )
    use_filter(hb, "fw-b", B_IF1, "ha-guard")
    assert statuses(run(d)) == expected("two-ok", {(HB2, "fw-b"): "fail"})


# --- KVMHA-HB-003 ----------------------------------------------------------------------------


@pytest.mark.parametrize(("heartbeat", "hb3"), [("unicast", "fail"), ("broadcast", "skip")])
def test_hb3_unicast_three_members(tmp_path: Path, heartbeat: str, hb3: str) -> None:
    d = copy_scenario("two-ok", tmp_path)
    add_third_member(d, heartbeat=heartbeat)
    result = run(d)
    changes: dict[Key, str] = {(TOPO1, "edge-fw"): "fail", (HB3, "edge-fw"): hb3, **FW_C_PASSES}
    if heartbeat == "unicast":
        changes.update({(HB1, "kvm-a"): "skip", (HB1, "kvm-b"): "skip"})
        changes.update({(HB2, m): "skip" for m in ("fw-a", "fw-b", "fw-c")})
    assert statuses(result) == expected("two-ok", changes)
    if heartbeat == "unicast":
        assert finding(result, HB3, "edge-fw").detail == "unicast heartbeat with 3 members"


# --- KVMHA-VLAN-001 --------------------------------------------------------------------------


def untag_vm_ports(hb: HostBundle, domain: str, ports: tuple[str, ...]) -> None:
    """The VM ports carry no access tag, live or in the persistent XML."""
    for p in ports:
        hb.edit_ovs_row("Port", p, "tag", ["set", []])
    hb.edit_domain(domain, drop_vlan)


@pytest.mark.parametrize("hosts", [("kvm-a",), ("kvm-a", "kvm-b")], ids=["one-server", "both"])
def test_vlan1_tag_on_patch_port(tmp_path: Path, hosts: tuple[str, ...]) -> None:
    d = copy_scenario("two-ok", tmp_path)
    vm = {"kvm-a": ("fw-a", (A_VNET1, A_VNET2)), "kvm-b": ("fw-b", (B_VNET1, B_VNET2))}
    for h in hosts:
        hb = host(d, h)
        untag_vm_ports(hb, *vm[h])
        hb.edit_ovs_row("Port", "patch-1-out", "tag", 101)
        hb.edit_ovs_row("Port", "patch-2-out", "tag", 102)
    result = run(d)
    assert statuses(result) == expected("two-ok")
    if hosts == ("kvm-a", "kvm-b"):
        assert "patch port tag on bridge br1-internal" in finding(result, VLAN1, "If1").detail


def test_vlan1_vm_ports_untagged(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    untag_vm_ports(host(d, "kvm-a"), "fw-a", (A_VNET1, A_VNET2))
    result = run(d)
    assert statuses(result) == expected("two-ok", {(VLAN1, "If1"): "fail", (VLAN1, "If2"): "fail"})
    f = finding(result, VLAN1, "If2")
    assert "untagged on fw-a@kvm-a" in f.detail
    assert f.found == "fw-a@kvm-a: untagged, fw-b@kvm-b: 102"
    assert f.remediation.splitlines() == [
        f"ovs-vsctl set port {A_VNET2} tag=102  # on kvm-a, now",
        f"virsh edit fw-a  # on kvm-a, NIC {A_IF2}: <vlan><tag id='102'/></vlan>",
    ]


@pytest.mark.parametrize(
    ("keep_vlan", "status"), [(True, "pass"), (False, "fail")], ids=["vlan-in-xml", "no-vlan"]
)
def test_vlan1_stopped_domain_judged_from_inactive_xml(
    tmp_path: Path, keep_vlan: bool, status: str
) -> None:
    d = copy_scenario("two-ok", tmp_path)
    hb = host(d, "kvm-b")
    stop_domain(hb, "fw-b")
    if not keep_vlan:
        hb.edit_domain("fw-b", edit_nic(B_IF2, drop_vlan))
    result = run(d)
    assert statuses(result) == expected("two-ok", {(VLAN1, "If2"): status})
    if not keep_vlan:
        f = finding(result, VLAN1, "If2")
        assert f.found == "fw-a@kvm-a: 102, fw-b@kvm-b: untagged"
        assert (
            f.remediation
            == f"virsh edit fw-b  # on kvm-b, NIC {B_IF2}: <vlan><tag id='102'/></vlan>"
        )


@pytest.mark.parametrize("declared", [True, False], ids=["declared", "undeclared"])
def test_vlan1_different_vlan_on_the_two_servers(tmp_path: Path, declared: bool) -> None:
    d = copy_scenario("two-ok", tmp_path)
    if not declared:
        edit_toml(d, lambda t: t.replace("vlan = 101\n", "").replace("vlan = 102\n", ""))
    hb = host(d, "kvm-b")
    hb.edit_ovs_row("Port", B_VNET2, "tag", 202)
    hb.edit_domain(
        "fw-b", edit_nic(B_IF2, lambda b: b.replace("<tag id='102'/>", "<tag id='202'/>"))
    )
    result = run(d)
    changes = {(VLAN1, "If2"): "fail"}
    if not declared:  # then the uplink must carry what the port uses
        changes[(VLAN2, "kvm-b")] = "fail"
    assert statuses(result) == expected("two-ok", changes)
    f = finding(result, VLAN1, "If2")
    assert "VLANs differ between the servers" in f.detail
    assert f.found == "fw-a@kvm-a: 102, fw-b@kvm-b: 202"
    if declared:
        assert "declared VLAN is 102" in f.detail
        assert (
            f.remediation.splitlines()[0]
            == f"ovs-vsctl set port {B_VNET2} tag=102  # on kvm-b, now"
        )
    else:
        assert "VLAN 202 not carried by up-b" in finding(result, VLAN2, "kvm-b").detail


def test_vlan1_undeclared_mismatch_remediation_follows_the_master(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    edit_toml(d, lambda t: t.replace("vlan = 101\n", "").replace("vlan = 102\n", ""))
    hb = host(d, "kvm-b")
    hb.edit_ovs_row("Port", B_VNET2, "tag", 202)
    hb.edit_domain(
        "fw-b", edit_nic(B_IF2, lambda b: b.replace("<tag id='102'/>", "<tag id='202'/>"))
    )
    assert finding(run(d), VLAN1, "If2").remediation.splitlines() == [
        f"ovs-vsctl set port {B_VNET2} tag=102  # on kvm-b, now",
        f"virsh edit fw-b  # on kvm-b, NIC {B_IF2}: <vlan><tag id='102'/></vlan>",
    ]


def test_vlan1_declared_vlan_differs(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    edit_toml(d, lambda t: t.replace("vlan = 101", "vlan = 111"))
    result = run(d)
    # the uplinks trunk [101, 102]: the declared 111 is not carried either
    assert statuses(result) == expected(
        "two-ok", {(VLAN1, "If1"): "fail", (VLAN2, "kvm-a"): "fail", (VLAN2, "kvm-b"): "fail"}
    )
    f = finding(result, VLAN1, "If1")
    assert "declared VLAN is 111" in f.detail
    assert f.remediation.splitlines() == [
        f"ovs-vsctl set port {A_VNET1} tag=111  # on kvm-a, now",
        f"virsh edit fw-a  # on kvm-a, NIC {A_IF1}: <vlan><tag id='111'/></vlan>",
        f"ovs-vsctl set port {B_VNET1} tag=111  # on kvm-b, now",
        f"virsh edit fw-b  # on kvm-b, NIC {B_IF1}: <vlan><tag id='111'/></vlan>",
    ]


def test_vlan1_two_pairs_one_vlan(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    edit_toml(d, lambda t: t.replace("vlan = 102\n", ""))
    for h, dom, mac, vnet in (("kvm-a", "fw-a", A_IF2, A_VNET2), ("kvm-b", "fw-b", B_IF2, B_VNET2)):
        hb = host(d, h)
        hb.edit_ovs_row("Port", vnet, "tag", 101)
        hb.edit_domain(
            dom, edit_nic(mac, lambda b: b.replace("<tag id='102'/>", "<tag id='101'/>"))
        )
    result = run(d)
    assert statuses(result) == expected("two-ok", {(VLAN1, "If1"): "fail", (VLAN1, "If2"): "fail"})
    assert "VLAN 101 is also used by pair If1" in finding(result, VLAN1, "If2").detail


# --- KVMHA-VLAN-002 --------------------------------------------------------------------------


def test_vlan2_uplink_misses_a_vlan(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    host(d, "kvm-a").edit_ovs_row("Port", "up-a", "trunks", ["set", [101]])
    result = run(d)
    assert statuses(result) == expected("two-ok", {(VLAN2, "kvm-a"): "fail"})
    f = finding(result, VLAN2, "kvm-a")
    assert f.detail == "kvm-a: pair If2: VLAN 102 not carried by up-a (trunk, trunks [101])"
    assert f.remediation == "ovs-vsctl add port up-a trunks 102"


def test_vlan2_empty_trunks_carry_all(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    host(d, "kvm-a").edit_ovs_row("Port", "up-a", "trunks", ["set", []])
    result = run(d)
    assert statuses(result) == expected("two-ok")
    assert finding(result, VLAN2, "kvm-a").detail == "kvm-a: uplinks carry VLANs 101, 102"


def _access_uplink(hb: HostBundle) -> None:
    hb.edit_ovs_row("Port", "up-a", "tag", 101)
    hb.edit_ovs_row("Port", "up-a", "trunks", ["set", []])
    hb.edit_ovs_row("Port", "up-a", "vlan_mode", "access")


def test_vlan2_uplink_in_access_mode(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    _access_uplink(host(d, "kvm-a"))
    result = run(d)
    assert statuses(result) == expected("two-ok", {(VLAN2, "kvm-a"): "fail"})
    f = finding(result, VLAN2, "kvm-a")
    assert "pair If1: VLAN 101 not carried by up-a (access, trunks all)" in f.detail
    assert "pair If2: VLAN 102 not carried by up-a (access, trunks all)" in f.detail


def test_vlan2_access_uplink_remediation_changes_the_mode(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    _access_uplink(host(d, "kvm-a"))
    remediation = finding(run(d), VLAN2, "kvm-a").remediation
    assert "vlan_mode" in remediation or "clear port up-a tag" in remediation


def test_vlan2_native_tagged_uplink_carries_its_native_vlan(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    hb = host(d, "kvm-a")
    hb.edit_ovs_row("Port", "up-a", "tag", 102)
    hb.edit_ovs_row("Port", "up-a", "trunks", ["set", [101]])
    hb.edit_ovs_row("Port", "up-a", "vlan_mode", "native-tagged")
    assert statuses(run(d)) == expected("two-ok")


def test_vlan2_no_uplink(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    remove_ovs_port(host(d, "kvm-a"), "up-a")
    result = run(d)
    assert statuses(result) == expected(
        "two-ok", {(VLAN2, "kvm-a"): "fail", (HB1, "kvm-a"): "fail"}
    )
    f = finding(result, VLAN2, "kvm-a")
    assert "pair If1 (VLAN 101): no uplink reachable from br1-internal" in f.detail
    assert f.remediation.splitlines() == [
        "# on kvm-a: add the physical NIC that reaches the other server to bridge br1-internal"
        " as a trunk carrying VLAN 101 (ovs-vsctl add-port with trunks)",
        "# on kvm-a: add the physical NIC that reaches the other server to bridge br2-external"
        " as a trunk carrying VLAN 102 (ovs-vsctl add-port with trunks)",
    ]
    assert "no physical uplink" in finding(result, HB1, "kvm-a").detail


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
        ("links", {(HB1, "kvm-a"): "error", (HOST0, "links"): "error"}),
        ("packages", {(PKG, "kvm-a"): "error", (HOST0, "packages"): "error"}),
        (
            "identity",
            {
                (HOST0, "identity"): "error",
                (TOPO2, "edge-fw"): "error",
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
                (OVS2, "If1"): "error",
                (OVS2, "If2"): "error",
                (VIRT1, "fw-a:If1"): "error",
                (VIRT1, "fw-a:If2"): "error",
                (VIRT2, "If1"): "error",
                (VIRT2, "If2"): "error",
                (VIRT3, "If1"): "error",
                (VIRT3, "If2"): "error",
                (HB1, "kvm-a"): "error",
                (HB2, "fw-a"): "error",
                (VLAN1, "If1"): "error",
                (VLAN1, "If2"): "error",
                (VLAN2, "kvm-a"): "error",
                (VLAN2, "kvm-b"): "error",
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


# --- drift: running now, broken at the next start ---------------------------------------------


def edit_inactive(hb: HostBundle, domain: str, fn: Any) -> None:
    (name,) = [n for n in hb.domain_sections(domain) if n.startswith("domain-inactive/")]
    hb.edit(name, fn)


def test_virt1_persistent_xml_lost_virtualport(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    edit_inactive(host(d, "kvm-b"), "fw-b", lambda x: drop_virtualport(x))
    result = run(d)
    assert statuses(result) == expected(
        "two-ok", {(VIRT1, "fw-b:If1"): "fail", (VIRT1, "fw-b:If2"): "fail"}
    )
    assert "persistent XML lacks <virtualport" in finding(result, VIRT1, "fw-b:If1").detail


def test_vlan1_live_only_tag_is_lost_at_next_start(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    edit_inactive(
        host(d, "kvm-b"), "fw-b", lambda x: x.replace("<tag id='102'/>", "<tag id='202'/>")
    )
    result = run(d)
    assert statuses(result) == expected("two-ok", {(VLAN1, "If2"): "fail"})
    assert (
        "fw-b@kvm-b: VLAN 102 is set on the running port only; the persistent XML says 202"
        in finding(result, VLAN1, "If2").detail
    )
