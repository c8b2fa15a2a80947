"""Host specs are checked before any host is contacted: ssh:// without a host, a port outside
1..65535, and a replay:// path that is not a recorded bundle are usage errors saying so."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pytest_kvmha.config.inventory import InventoryError, inventory_from_specs

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

EXAMPLES = Path(__file__).parents[2] / "examples"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("ssh://", "names no host"),
        ("ssh://root@", "names no host"),
        ("paramiko://", "names no host"),
        ("ssh://root@127.0.0.1:99999", "port must be a number in 1..65535"),
        ("ssh://root@127.0.0.1:0", "port must be a number in 1..65535"),
        ("ssh://root@127.0.0.1:x", "port must be a number in 1..65535"),
        ("ssh://root:pw@kvm1:70000", "'ssh://root:\\*\\*\\*@kvm1:70000'"),
    ],
)
def test_bad_network_specs_are_refused(spec: str, message: str) -> None:
    with pytest.raises(InventoryError, match=message) as exc:
        inventory_from_specs([spec])
    assert "--kvmha-host" in str(exc.value) and ":pw@" not in str(exc.value)


def test_good_specs_pass() -> None:
    inv = inventory_from_specs(["ssh://root@kvm1:2222", "ssh://kvm2", "local://"])
    assert [h.name for h in inv.hosts] == ["kvm1", "kvm2", "local"]


def test_replay_of_a_folder_of_bundles_suggests_one_spec_per_host(
    pytester: pytest.Pytester,
) -> None:
    shutil.copytree(EXAMPLES / "bundles", pytester.path / "bundles")
    result = pytester.runpytest("--kvmha-host=replay://bundles")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*host bundles: replay://*bundles: not a recorded bundle (no bundle.json); it holds "
            "the bundles of kvm-a, kvm-b: give one replay:// spec per host*"
        ]
    )
    missing = pytester.runpytest("--kvmha-host=replay://nowhere/kvm-a")
    assert missing.ret == pytest.ExitCode.USAGE_ERROR
    missing.stderr.fnmatch_lines(["*host kvm-a: replay://*nowhere/kvm-a: no such directory*"])


def test_ssh_without_host_is_a_usage_error_in_the_plugin(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--kvmha-host=ssh://")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--kvmha-host: host spec 'ssh://' names no host*"])
