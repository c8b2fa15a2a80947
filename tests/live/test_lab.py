"""Live tests of the namespace lab (root, Open vSwitch, libvirtd, sshd needed)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_kvmha.testing import (
    Lab,
    LabError,
    LabNic,
    firewall_domain_xml,
    missing_requirements,
    slot_index,
    slot_prefix,
)

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(bool(missing_requirements()), reason="; ".join(missing_requirements())),
]


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    lab = Lab(
        hosts=2, prefix=slot_prefix("kvmhat"), first_host=slot_index(3)
    )  # beside the session lab
    lab.start()
    try:
        yield lab
    finally:
        problems = lab.stop()
        assert problems == []


def ssh(lab: Lab, addr: str, *argv: str) -> str:
    proc = subprocess.run(
        ["ssh", "-F", str(lab.ssh_config), f"root@{addr}", *argv],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def ovs_rows(host, table: str, columns: str) -> list[dict[str, object]]:
    data = json.loads(host.ovs_vsctl("--format=json", f"--columns={columns}", "list", table))
    return [dict(zip(data["headings"], row, strict=False)) for row in data["data"]]


def test_hosts_are_separate(lab: Lab) -> None:
    h1, h2 = lab.hosts
    a, b = slot_index(3), slot_index(4)
    assert (h1.mgmt_addr, h2.mgmt_addr) == (f"10.250.{a}.2", f"10.250.{b}.2")
    assert h1.spec == f"ssh://root@10.250.{a}.2"
    h1.add_bridge("br-only-h1")
    h2.add_bridge("br-only-h2")
    h1.define_domain(firewall_domain_xml("only-h1", []), start=False)
    assert ssh(lab, h1.mgmt_addr, "virsh", "list", "--all", "--name").split() == ["only-h1"]
    assert ssh(lab, h2.mgmt_addr, "virsh", "list", "--all", "--name").split() == []
    assert "br-only-h1" in ssh(lab, h1.name, "ovs-vsctl", "list-br").split()
    assert ssh(lab, h2.name, "ovs-vsctl", "list-br").split() == ["br-only-h2"]
    ids = {ssh(lab, h.mgmt_addr, "cat", "/etc/machine-id").strip() for h in lab.hosts}
    assert len(ids) == 2 and Path("/etc/machine-id").read_text().strip() not in ids
    # ip link inside sees the management veth, not the root namespace's eth0
    links = ssh(lab, h1.mgmt_addr, "ip", "-o", "link")
    assert "mgmt0" in links and "eth0" not in links


def test_testinfra_over_ssh_config(lab: Lab) -> None:
    testinfra = pytest.importorskip("testinfra")
    h1, h2 = lab.hosts
    t1 = testinfra.get_host(h1.spec, ssh_config=str(lab.ssh_config))
    t2 = testinfra.get_host(h2.spec, ssh_config=str(lab.ssh_config))
    assert "br-only-h1" in t1.check_output("ovs-vsctl list-br").split()
    assert "br-only-h1" not in t2.check_output("ovs-vsctl list-br").split()
    out = t1.run("ovs-appctl version")
    assert out.rc == 0 and "ovs-vswitchd" in out.stdout
    # multiplexed: testinfra's ssh commands go over the lab's ControlMaster
    check = subprocess.run(
        ["ssh", "-F", str(lab.ssh_config), "-O", "check", h1.mgmt_addr],
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stderr


def test_virtualport_domain_on_netdev_bridge(lab: Lab) -> None:
    h1 = lab.hosts[0]
    h1.add_bridge("br1-internal")
    mac = "52:54:00:aa:00:01"
    h1.define_domain(
        firewall_domain_xml(
            "fw-a",
            [LabNic("br1-internal", slot=3, vlan=42, mac=mac)],
            uuid="11111111-2222-3333-4444-555555555555",
        )
    )
    state = ssh(lab, h1.mgmt_addr, "virsh", "domstate", "fw-a").strip()
    assert state == "paused"
    ports = ssh(lab, h1.mgmt_addr, "ovs-vsctl", "list-ports", "br1-internal").split()
    vnets = [p for p in ports if p.startswith("vnet")]
    assert len(vnets) == 1
    ifaces = {r["name"]: r for r in ovs_rows(h1, "Interface", "name,external_ids")}
    ext = dict(ifaces[vnets[0]]["external_ids"][1])
    assert ext["attached-mac"] == mac
    assert ext["vm-id"] == "11111111-2222-3333-4444-555555555555"
    tags = {r["name"]: r["tag"] for r in ovs_rows(h1, "Port", "name,tag")}
    assert tags[vnets[0]] == 42
    # not visible on the other host
    assert vnets[0] not in lab.hosts[1].ovs_vsctl("show")


def test_plain_bridge_nic_on_ovs_fails_to_start(lab: Lab) -> None:
    h1 = lab.hosts[0]
    h1.add_bridge("br2-external")
    with pytest.raises(LabError, match="Operation not supported|Unable to add bridge"):
        h1.define_domain(
            firewall_domain_xml("fw-novp", [LabNic("br2-external", slot=3, virtualport=False)])
        )
    assert h1.virsh("domstate", "fw-novp").strip() == "shut off"


def test_filterref_is_kept_in_inactive_xml(lab: Lab) -> None:
    h2 = lab.hosts[1]
    h2.add_bridge("br1-internal")
    h2.define_domain(
        firewall_domain_xml("fw-filter", [LabNic("br1-internal", 3, filterref="clean-traffic")]),
        start=False,
    )
    assert "filter='clean-traffic'" in h2.virsh("dumpxml", "--inactive", "fw-filter")


def test_wire_ends_join_each_hosts_bridge(lab: Lab) -> None:
    h1, h2 = lab.hosts
    h1.add_bridge("br3-internal")
    h2.add_bridge("br3-internal")
    lab.wire(h1, "up3", h2, "up3")
    h1.ovs_vsctl("add-port", "br3-internal", "up3", "--", "set", "Port", "up3", "trunks=[42,123]")
    h2.ovs_vsctl("add-port", "br3-internal", "up3")
    assert "up3" in ssh(lab, h1.mgmt_addr, "ovs-vsctl", "list-ports", "br3-internal").split()
    assert "up3" in ssh(lab, h2.mgmt_addr, "ovs-vsctl", "list-ports", "br3-internal").split()
    ofports = {r["name"]: r["ofport"] for r in ovs_rows(h1, "Interface", "name,ofport")}
    assert isinstance(ofports["up3"], int) and ofports["up3"] > 0
    link = json.loads(ssh(lab, h2.mgmt_addr, "ip", "-j", "link", "show", "up3"))[0]
    assert "UP" in link["flags"]
    # OVS made it promiscuous; set_promisc can clear it for negative tests
    h2.set_promisc("up3", False)
    flags = int(h2.run(["cat", "/sys/class/net/up3/flags"]).stdout, 16)
    assert not flags & 0x100
    h2.set_promisc("up3", True)
    flags = int(h2.run(["cat", "/sys/class/net/up3/flags"]).stdout, 16)
    assert flags & 0x100


def test_default_datapath_error_is_raised(lab: Lab) -> None:
    with pytest.raises(LabError, match="datapath"):
        lab.hosts[1].add_bridge("br-system", datapath_type="system")


def test_set_package_installed(lab: Lab) -> None:
    h1, h2 = lab.hosts
    query = ["dpkg-query", "-W", "-f=${Status}", "bridge-utils"]
    h1.set_package_installed("bridge-utils", True)
    assert ssh(lab, h1.mgmt_addr, *query[:2], "'-f=${Status}'", query[3]) == "install ok installed"
    proc = h2.run(query, check=False)
    assert proc.stdout != "install ok installed"
    h1.set_package_installed("bridge-utils", False)
    assert h1.run(query).stdout == "deinstall ok config-files"
    h1.set_package_installed("bridge-utils", False, purged=True)
    assert h1.run(query, check=False).returncode != 0
    h1.set_package_installed("bridge-utils", True)
    assert h1.run(query).stdout == "install ok installed"
    # the rest of the database still parses
    assert "install ok installed" in h1.run(["dpkg-query", "-W", "-f=${Status}", "dpkg"]).stdout


def test_q35_domain_with_two_nics_starts(lab: Lab) -> None:
    h2 = lab.hosts[1]
    h2.add_bridge("br1-internal")
    h2.add_bridge("br2-external")
    xml = firewall_domain_xml(
        "fw-q35",
        [LabNic("br1-internal", slot=1, vlan=10), LabNic("br2-external", slot=2, vlan=20)],
        machine="q35",
    )
    assert xml.count("pcie-root-port") == 2
    h2.define_domain(xml)
    assert h2.virsh("domstate", "fw-q35").strip() == "paused"
    live = h2.virsh("dumpxml", "fw-q35")
    assert re.search(r"<address type='pci' domain='0x0000' bus='0x01' slot='0x00'", live)
    assert re.search(r"<address type='pci' domain='0x0000' bus='0x02' slot='0x00'", live)
    assert "<target chassis='2' port='0x11'/>" in live
    tags = sorted(
        t for t in (r["tag"] for r in ovs_rows(h2, "Port", "name,tag")) if isinstance(t, int)
    )
    assert tags == [10, 20]


def test_stop_sshd_makes_host_unreachable() -> None:
    with Lab(hosts=1, prefix=slot_prefix("kvmhau"), first_host=slot_index(5)) as lab:
        h = lab.hosts[0]
        assert ssh(lab, h.mgmt_addr, "true") == ""
        lab.stop_sshd(h)
        proc = subprocess.run(
            ["ssh", "-F", str(lab.ssh_config), "-o", "ConnectTimeout=3", h.mgmt_addr, "true"],
            check=False,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert proc.returncode == 255
        assert h.virsh("list", "--all", "--name").strip() == ""  # the host itself still runs


def _lab_leftovers(prefix: str, workdir: Path) -> list[str]:
    left = []
    netns = subprocess.run(["ip", "netns", "list"], check=False, capture_output=True, text=True)
    for line in netns.stdout.splitlines():
        if line.startswith(f"{prefix}-h"):
            left.append(f"netns {line}")
    for ifname in os.listdir("/sys/class/net"):
        if ifname.startswith(f"{prefix}-h"):
            left.append(f"link {ifname}")
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if str(workdir) in cmdline or f"{prefix}-h" in cmdline:
            left.append(f"process {pid}: {cmdline[:120]}")
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        if str(workdir) in line or f"/run/netns/{prefix}-h" in line:
            left.append(f"mount {line}")
    return left


def test_stop_leaves_nothing_behind(tmp_path_factory: pytest.TempPathFactory) -> None:
    workdir = Path("/tmp") / f"kvmha-t{os.getpid()}"
    prefix = slot_prefix("kvmhas")
    lab = Lab(workdir, hosts=2, prefix=prefix, first_host=slot_index(6))
    lab.start()
    try:
        h1, h2 = lab.hosts
        h1.add_bridge("br1")
        h2.add_bridge("br1")
        lab.wire(h1, "w1", h2, "w1")
        h1.define_domain(firewall_domain_xml("fw", [LabNic("br1", 3)]))
        assert ssh(lab, h1.name, "virsh", "domstate", "fw").strip() == "paused"
        assert _lab_leftovers(prefix, workdir)  # sanity: the probe sees a running lab
    finally:
        problems = lab.stop()
    assert problems == []
    assert _lab_leftovers(prefix, workdir) == []
    shutil.rmtree(workdir, ignore_errors=True)


def test_start_cleans_stale_lab() -> None:
    """A crashed run (namespaces + daemons left behind, no stop()) is cleaned by the next start."""
    workdir = Path("/tmp") / f"kvmha-c{os.getpid()}"
    prefix = slot_prefix("kvmhac")
    crashed = Lab(workdir, hosts=1, prefix=prefix, first_host=slot_index(8))
    crashed.start()
    keeper = crashed.hosts[0].keeper_pid
    assert keeper is not None
    # simulate a crash: forget the object, keep everything running
    lab = Lab(workdir, hosts=1, prefix=prefix, first_host=slot_index(8))
    try:
        lab.start()
        assert lab.hosts[0].keeper_pid != keeper
        assert lab.hosts[0].virsh("list", "--all", "--name").strip() == ""
    finally:
        assert lab.stop() == []
    assert _lab_leftovers(prefix, workdir) == []
    shutil.rmtree(workdir, ignore_errors=True)
