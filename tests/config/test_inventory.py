"""Inventory files: clear usage errors naming the file, table and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_kvmha.config.inventory import InventoryError, inventory_from_specs, load_inventory

GOOD = """
[hosts.kvm-a]
spec = "ssh://root@10.250.1.2"
[hosts.kvm-b]
spec = "ssh://root@10.250.2.2"
libvirt = "qemu+ssh://root@10.250.2.2/system"

[clusters.edge-fw]
vendor = "cos-core"
members = [
  { host = "kvm-a", domain = "fw-master", role = "master" },
  { host = "kvm-b", domain = "fw-slave",  role = "slave" },
]
[[clusters.edge-fw.pairs]]
name = "If1"
bridge = "br1-internal"
vlan = 101
[[clusters.edge-fw.pairs]]
bridge = "br2-external"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "clusters.toml"
    path.write_text(text)
    return path


def test_good_inventory(tmp_path: Path) -> None:
    inv = load_inventory(write(tmp_path, GOOD))
    assert [h.name for h in inv.hosts] == ["kvm-a", "kvm-b"]
    assert inv.hosts[1].libvirt_uri == "qemu+ssh://root@10.250.2.2/system"
    (cluster,) = inv.clusters
    assert cluster.heartbeat == "broadcast"  # the default
    assert [(p.name, p.bridge, p.vlan) for p in cluster.pairs] == [
        ("If1", "br1-internal", 101),
        ("If2", "br2-external", None),
    ]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ('host = "kvm-b", domain = "fw-slave"', 'host = "kvm-c", domain = "fw-slave"'),
            r'cluster "edge-fw", member 2 \(line 12\): key .host. names unknown host .kvm-c.',
        ),
        (
            ('domain = "fw-slave",  ', ""),
            r'cluster "edge-fw", member 2 \(line 12\): missing key .domain.',
        ),
        (
            ('vendor = "cos-core"', 'vendor = "pfsense"'),
            r'cluster "edge-fw" \(line 8\): key .vendor. must be one of',
        ),
        (
            ("vlan = 101", "vlan = 5000"),
            r'cluster "edge-fw", pair 1 \(line 14\): key .vlan. must be an integer 1..4094',
        ),
        (
            ('spec = "ssh://root@10.250.1.2"', 'spec = "root@10.250.1.2"'),
            r'host "kvm-a" \(line 2\): host spec',
        ),
        (
            ("[hosts.kvm-a]", "[hosts.kvm-a]\nport = 22"),
            r'host "kvm-a" \(line 2\): unknown key .port.',
        ),
        (
            ('vendor = "cos-core"', 'vendor = "cos-core"\nheartbeat = "multicast"'),
            "key 'heartbeat'",
        ),
        (("[clusters.edge-fw]", "[cluster.edge-fw]"), "unknown top-level table 'cluster'"),
    ],
)
def test_errors_name_file_table_and_key(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    path = write(tmp_path, GOOD.replace(*change))
    with pytest.raises(InventoryError, match=message) as err:
        load_inventory(path)
    assert str(err.value).startswith(str(path))


def test_not_toml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InventoryError, match="not valid TOML"):
        load_inventory(write(tmp_path, "[hosts\n"))
    with pytest.raises(InventoryError, match="no such inventory file"):
        load_inventory(tmp_path / "nope.toml")


def test_hosts_from_specs_named_after_host_part() -> None:
    inv = inventory_from_specs(["ssh://root@kvm1", "ssh://admin@kvm1:2222", "local://"])
    assert [h.name for h in inv.hosts] == ["kvm1", "kvm1-2", "local"]
