"""Discovery without an inventory finds HA pairs, not every VM on a bridge.

Recorded lab bundles with ordinary VMs added (defined, stopped: exactly the sections a real host
records for them) go through the real collector, parser and engine; the plugin's behaviour
(report, terminal, exit status) through pytester.
"""

from __future__ import annotations

import json
import shutil
import uuid as uuidlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from pytest_kvmha.audit.engine import Audit, audit, same_hosts
from pytest_kvmha.collect.pool import collect_all
from pytest_kvmha.config.inventory import inventory_from_specs
from pytest_kvmha.config.target import CollectOptions
from pytest_kvmha.facts import HostFacts
from pytest_kvmha.parse.host import parse_bundle

from ..bundlekit import BUNDLES, CHECKS, copy_scenario, run

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

EXAMPLES = Path(__file__).parents[2] / "examples" / "bundles"
DISC = "KVMHA-DISC-001"


def add_domain(host_dir: Path, name: str, bridges: Sequence[str], *, ovs: bool = True) -> str:
    """Define a stopped VM in a recorded bundle: its inactive XML and its UUID in the list."""
    uuid = str(uuidlib.uuid4())
    nics = "".join(
        f"<interface type='bridge'><mac address='52:54:00:{k:02x}:{len(name):02x}:{abs(hash(name)) % 256:02x}'/>"
        f"<source bridge='{b}'/>"
        + ("<virtualport type='openvswitch'/>" if ovs else "")
        + f"<model type='virtio'/><address type='pci' domain='0x0000' bus='0x00' "
        f"slot='{3 + k:#04x}' function='0x0'/></interface>"
        for k, b in enumerate(bridges)
    )
    xml = (
        f"<domain type='qemu'><name>{name}</name><uuid>{uuid}</uuid>"
        "<memory unit='KiB'>65536</memory><os><type arch='x86_64' machine='pc'>hvm</type></os>"
        f"<devices>{nics}</devices></domain>\n"
    )
    sections = host_dir / "sections"
    (sections / "domain-inactive").mkdir(exist_ok=True)
    (sections / "domain-inactive" / uuid).write_text(xml)
    with (sections / "virsh-domains").open("a") as out:
        out.write(uuid + "\n")
    meta_path = host_dir / "bundle.json"
    meta = json.loads(meta_path.read_text())
    meta["sections"][f"domain-inactive/{uuid}"] = {"rc": 0, "stderr": ""}
    meta_path.write_text(json.dumps(meta))
    return uuid


def discover_audit(*host_dirs: Path) -> Audit:
    """Audit host bundles given as ``--kvmha-host=replay://...`` would: no inventory."""
    inventory = inventory_from_specs([f"replay://{d}" for d in host_dirs])
    bundles = collect_all(list(inventory.hosts), CollectOptions())
    return audit(CHECKS, inventory, [parse_bundle(b) for b in bundles])


def bad(result: Audit) -> dict[str, str]:
    return {f.nodeid: f.status for f in result.findings if f.status in ("fail", "error")}


# --- A cluster is exactly two domains ---------------------------------------------------------


def test_75_vms_on_virbr0_make_no_cluster(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    for i in range(75):
        add_domain(d / "kvm-a", f"vm{i:02d}", ["virbr0"], ovs=False)
    result = discover_audit(d / "kvm-a", d / "kvm-b")
    assert [c.name for c in result.clusters] == ["fw-a+fw-b"]
    assert max(len(f.nodeid) for f in result.findings) < 80
    # Recorded with the inventory's FGCP frames only; a discovered cluster (vendor unknown) is
    # traced with the cOS Core frames too, which this recording lacks: an error, not a pass.
    traced = {k: v for k, v in bad(result).items() if "KVMHA-TRACE-001" in k}
    assert set(traced.values()) == {"error"} and len(traced) == 4
    assert {k: v for k, v in bad(result).items() if k not in traced} == {}
    assert result.discovery is not None
    assert result.discovery.skipped == {"kvm-a": {"fewer than 2 NICs": 75}}
    assert result.discovery.domains == {"kvm-a": 76, "kvm-b": 1}
    assert result.discovery.ambiguous == ()


def test_two_nic_vms_without_ovs_are_no_candidates(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    for i in range(4):
        add_domain(d / "kvm-a", f"lan{i}", ["virbr0", "br0"], ovs=False)
    result = discover_audit(d / "kvm-a", d / "kvm-b")
    assert [c.name for c in result.clusters] == ["fw-a+fw-b"]
    assert result.discovery is not None
    assert result.discovery.skipped == {"kvm-a": {"no NIC on an OVS bridge": 4}}


def test_dmz_server_on_the_pair_bridge_does_not_join(tmp_path: Path) -> None:
    """The demo's dmz pair has one NIC each on br3-dmz; web1 is a server on that bridge."""
    shutil.copytree(EXAMPLES, tmp_path / "b")
    add_domain(tmp_path / "b" / "kvm-a", "web1", ["br3-dmz"])
    result = discover_audit(tmp_path / "b" / "kvm-a", tmp_path / "b" / "kvm-b")
    assert [c.name for c in result.clusters] == ["fw-a+fw-b"]  # never "dmz-a+dmz-b+web1"
    assert all(len(c.members) == 2 for c in result.clusters)


def test_third_domain_with_the_pair_layout_makes_it_ambiguous(tmp_path: Path) -> None:
    d = copy_scenario("single-ok", tmp_path)
    add_domain(d / "kvm-a", "web1", ["br1-internal", "br2-external"])
    result = discover_audit(d / "kvm-a", d / "kvm-b")
    assert result.clusters == ()  # not "fw-master+fw-slave+web1"
    assert result.discovery is not None
    (amb,) = result.discovery.ambiguous
    assert amb.as_json() == {
        "domains": ["fw-master", "fw-slave", "web1"],
        "hosts": ["kvm-a"],
        "members": [
            {"host": "kvm-a", "domain": "fw-master"},
            {"host": "kvm-a", "domain": "fw-slave"},
            {"host": "kvm-a", "domain": "web1"},
        ],
        "layout": ["br1-internal", "br2-external"],
        "reason": "3 domains share this NIC-to-bridge layout and an HA cluster is exactly two: "
        "name the pair in an inventory (--kvmha-inventory)",
    }
    # Nothing audited is never green: the run says why there is no cluster.
    assert bad(result) == {f"kvmha/discovery/{DISC}[clusters]": "error"}


def test_pair_found_next_to_ordinary_vms_passes(tmp_path: Path) -> None:
    d = copy_scenario("single-ok", tmp_path)
    a = d / "kvm-a"
    for i in range(3):
        add_domain(a, f"lan{i}", ["br-lan"])  # single NIC on an OVS LAN bridge
    for i in range(3):
        add_domain(a, f"app{i}", ["br-lan", "br-dmz"])  # two NICs, one shared layout
    add_domain(a, "db1", ["br1-internal"])  # a protected server on the pair's internal bridge
    add_domain(a, "proxy", ["br2-external", "br1-internal"])  # both pair bridges, other order
    result = discover_audit(a, d / "kvm-b")
    assert [c.name for c in result.clusters] == ["fw-master+fw-slave"]
    (cluster,) = result.clusters
    assert [(m.domain, m.role) for m in cluster.members] == [
        ("fw-master", "master"),
        ("fw-slave", "slave"),
    ]
    # KVMHA-TRACE-001 errs: recorded with the inventory's cOS Core frames only, while a
    # discovered cluster (vendor unknown) is traced with the FGCP frames too.
    traced = {k: v for k, v in bad(result).items() if "KVMHA-TRACE-001" in k}
    assert set(traced.values()) == {"error"} and len(traced) == 4
    assert {k: v for k, v in bad(result).items() if k not in traced} == {
        "kvmha/fw-master+fw-slave/KVMHA-TOPO-002[fw-master+fw-slave]": "fail"
    }
    assert {f.status for f in result.findings if f.check.id == "KVMHA-OVS-002"} == {"pass"}
    assert result.discovery is not None
    assert [a.as_json()["domains"] for a in result.discovery.ambiguous] == [
        ["app0", "app1", "app2"]
    ]


def test_one_domain_name_on_two_hosts_gets_unique_cluster_names(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    for host in ("kvm-a", "kvm-b"):
        add_domain(d / host, "edge", ["br1-internal", "br-x"])
    result = discover_audit(d / "kvm-a", d / "kvm-b")
    assert [c.name for c in result.clusters] == ["edge@kvm-a+edge@kvm-b", "fw-a+fw-b"]


# --- Nothing found ------------------------------------------------------------------------------


def test_nothing_found_is_an_error(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    result = discover_audit(d / "kvm-a")  # fw-a alone: its peer fw-b is on kvm-b
    assert result.clusters == ()
    (f,) = [f for f in result.findings if f.check.id == DISC]
    assert (f.status, f.nodeid) == ("error", f"kvmha/discovery/{DISC}[clusters]")
    assert f.detail == (
        "no HA cluster found: 1 domain read on kvm-a, none pair up; write an inventory"
    )


def test_nothing_found_names_unread_hosts(tmp_path: Path) -> None:
    d = copy_scenario("unreachable", tmp_path)
    result = discover_audit(d / "kvm-a", d / "kvm-b")
    (f,) = [f for f in result.findings if f.check.id == DISC]
    assert f.detail == (
        "no HA cluster found: 1 domain read on kvm-a; domains of kvm-b not read, none pair up; "
        "write an inventory"
    )


def test_no_host_answered_says_so_not_write_an_inventory(tmp_path: Path) -> None:
    """Every host unreachable: DISC-001 says no host answered and why, and does not advise an
    inventory (which would not help)."""
    d = copy_scenario("unreachable", tmp_path)
    result = discover_audit(d / "kvm-b")
    (f,) = [f for f in result.findings if f.check.id == DISC]
    assert f.detail.startswith("no host answered, so no cluster could be discovered: kvm-b: ssh: ")
    assert "Connection refused" in f.detail and "inventory" not in f.detail
    assert f.remediation is not None and "reachable" in f.remediation


def test_inventory_clusters_never_get_the_discovery_error(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    result = run(d)
    assert result.discovery is None
    assert DISC not in {f.check.id for f in result.findings}


def test_discovery_error_is_not_in_the_catalogue() -> None:
    assert DISC not in {c.id for c in CHECKS}


# --- The same host given twice ------------------------------------------------------------------


def test_same_host_twice_is_found(tmp_path: Path) -> None:
    d = copy_scenario("two-ok", tmp_path)
    shutil.copytree(d / "kvm-a", tmp_path / "alias")
    inventory = inventory_from_specs([f"replay://{d / 'kvm-a'}", f"replay://{tmp_path / 'alias'}"])
    hosts = [parse_bundle(b) for b in collect_all(list(inventory.hosts), CollectOptions())]
    assert [(a.name, b.name) for a, b in same_hosts(hosts)] == [("kvm-a", "alias")]


def test_same_spec_twice_is_one_host_even_without_domains() -> None:
    def host(name: str, spec: str, identity: str | None) -> HostFacts:
        return HostFacts(name, spec, "ok", None, identity=identity, domains={})

    one, again = host("kvm1", "ssh://kvm1", "m1"), host("kvm1-2", "ssh://kvm1", "m1")
    assert same_hosts([one, again]) == [(one, again)]
    assert same_hosts([one, host("kvm2", "ssh://kvm2", "m1")]) == []  # a cloned machine-id
    assert same_hosts([host("a", "ssh://x", None), host("b", "ssh://x", None)]) == []  # unknown


def test_recordings_of_one_lab_host_are_not_one_host(tmp_path: Path) -> None:
    """Every recorded kvm-a comes from one lab host (one machine-id) at different times."""
    specs = [f"replay://{BUNDLES / s / 'kvm-a'}" for s in ("two-ok", "single-ok", "vlan-clash")]
    hosts = [
        parse_bundle(b)
        for b in collect_all(list(inventory_from_specs(specs).hosts), CollectOptions())
    ]
    assert len({h.identity for h in hosts}) == 1
    assert same_hosts(hosts) == []


# --- The plugin ---------------------------------------------------------------------------------


def report(pytester: pytest.Pytester) -> Any:
    return json.loads((pytester.path / "r.json").read_text())


def test_plugin_reports_ambiguous_layouts(pytester: pytest.Pytester) -> None:
    d = copy_scenario("single-ok", pytester.path)
    for i in range(3):
        add_domain(d / "kvm-a", f"app{i}", ["br-lan", "br-dmz"])
    result = pytester.runpytest(
        f"--kvmha-host=replay://{d / 'kvm-a'}", "--kvmha-report=r.json", "--kvmha-report-md=r.md"
    )
    result.stdout.fnmatch_lines(
        [
            "cluster fw-master+fw-slave (discovered): fw-master@kvm-a (master), fw-slave@kvm-a (slave): *",
            "ambiguous layout (br-lan, br-dmz): app0@kvm-a, app1@kvm-a, app2@kvm-a: 3 domains share"
            " this NIC-to-bridge layout and an HA cluster is exactly two: name the pair in an"
            " inventory (--kvmha-inventory)",
        ]
    )
    r = report(pytester)
    assert [a["domains"] for a in r["discovery"]["ambiguous"]] == [["app0", "app1", "app2"]]
    assert r["discovery"]["clusters"] == ["fw-master+fw-slave"]
    assert r["discovery"]["domains"] == {"kvm-a": 5}
    # (the Markdown breaks e-mail autolinks with an empty comment before each @)
    assert "app0@kvm-a" in (pytester.path / "r.md").read_text().replace("<!-- -->", "")


def test_plugin_nothing_found_fails_the_run(pytester: pytest.Pytester) -> None:
    d = copy_scenario("two-ok", pytester.path)
    result = pytester.runpytest(f"--kvmha-host=replay://{d / 'kvm-a'}", "--kvmha-report=r.json")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "*detail:      no HA cluster found: 1 domain read on kvm-a, none pair up; write an inventory",
            f"ERROR kvmha/discovery/{DISC}[[]clusters[]]*",
        ]
    )
    r = report(pytester)
    (f,) = [f for f in r["findings"] if f["check"] == DISC]
    assert (f["status"], f["host"], f["cluster"]) == ("error", None, None)
    assert r["summary"]["error"] == 1


@pytest.mark.parametrize("how", ["specs", "inventory"])
def test_plugin_same_host_twice_is_a_usage_error(pytester: pytest.Pytester, how: str) -> None:
    d = copy_scenario("two-ok", pytester.path)
    one, two = f"replay://{d / 'kvm-a'}", f"replay://{d / 'kvm-a'}/"
    if how == "specs":
        args = [f"--kvmha-host={one}", f"--kvmha-host={two}"]
        names = ("kvm-a", "kvm-a-2")
    else:
        pytester.path.joinpath("inv.toml").write_text(
            f'[hosts.kvm1]\nspec = "{one}"\n[hosts.firewall-host]\nspec = "{two}"\n'
        )
        args = ["--kvmha-inventory=inv.toml"]
        names = ("kvm1", "firewall-host")
    result = pytester.runpytest(*args, "--kvmha-report=r.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f"*hosts {names[0]} ({one}) and {names[1]} ({two}) are one machine (machine-id *"]
    )
    assert report(pytester)["errors"]
