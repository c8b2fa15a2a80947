"""KVMHA-HA-001 (checks/ha_status.py), offline: the recorded two-ok scenario with a console
declared for each member and what the console answered added to its host's bundle (the
configuration section and the HA status section, as the collector stores them; texts from
tests/data/fwconfig and tests/data/hastatus). Replay keeps recorded sections, so the audit reads
exactly these answers.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_kvmha.parse.firewall import section_name
from pytest_kvmha.parse.ha_status import status_section_name

from ..bundlekit import add_section, copy_scenario, edit_toml, finding, host, run, untraced
from ..bundlekit import statuses as all_statuses

HA = "KVMHA-HA-001"
DATA = Path(__file__).parent.parent / "data"
A, B = "FGVMK6TM26000011", "FGVMK6TM26000022"
CONSOLE = {"fw-a": "ssh://audit@192.0.2.11", "fw-b": "ssh://audit@192.0.2.12"}
CONFIGS = {
    "fortigate": ("fgt-a.conf", "fgt-b.conf"),
    "cos-core": ("cos-master.txt", "cos-slave.txt"),
}
# a status file's name or the text itself; (rc, stderr): the console failed; None: not collected
Answer = str | tuple[int, str] | None


def status_text(answer: str) -> str:
    return answer if "\n" in answer else (DATA / "hastatus" / answer).read_text()


def edited(name: str, old: str, new: str) -> str:
    """A status file with one line changed (the rest as written)."""
    text = status_text(name)
    assert old in text, old
    return text.replace(old, new)


def cluster(
    tmp_path: Path,
    vendor: str,
    a: Answer,
    b: Answer,
    *,
    consoles: tuple[str, ...] = ("fw-a", "fw-b"),
) -> Path:
    """two-ok with ``consoles`` declared (the others declare their saved configuration) and the
    console answers ``a``/``b`` of fw-a/fw-b in the bundles."""
    d = copy_scenario("two-ok", tmp_path)
    members = (("kvm-a", "fw-a", "master", a), ("kvm-b", "fw-b", "slave", b))

    def declare(text: str) -> str:
        text = text.replace('vendor = "fortigate"', f'vendor = "{vendor}"')
        text = text.replace('heartbeat = "broadcast"\n', "")  # the configurations decide
        for (_, domain, role, _), conf in zip(members, CONFIGS[vendor], strict=True):
            key = (
                f'console = "{CONSOLE[domain]}"'
                if domain in consoles
                else f'config = "{DATA / "fwconfig" / conf}"'
            )
            old = f'domain = "{domain}", role = "{role}" }}'
            text = text.replace(old, f'domain = "{domain}", role = "{role}", {key} }}')
        return text

    edit_toml(d, declare)
    for (name, domain, _, answer), conf in zip(members, CONFIGS[vendor], strict=True):
        if domain not in consoles:
            continue
        hb = host(d, name)
        add_section(hb, section_name(vendor, domain), (DATA / "fwconfig" / conf).read_text())
        if isinstance(answer, tuple):
            rc, stderr = answer
            for section in (section_name(vendor, domain), status_section_name(vendor, domain)):
                add_section(hb, section, "", rc=rc, stderr=stderr)
        elif answer is not None:
            add_section(hb, status_section_name(vendor, domain), status_text(answer))
    return d


def judged(d: Path) -> tuple[str, str]:
    f = finding(run(d), HA, "edge-fw")
    return f.status, str(f.detail)


# --- FortiOS --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("fgt-a-7x.txt", "fgt-b-7x.txt"),
        ("fgt-a-6x.txt", "fgt-b-6x.txt"),
        ("fgt-a-6x.txt", "fgt-b-7x.txt"),
    ],
    ids=["7.x", "6.x", "mixed"],
)
def test_formed_fortigate_cluster_passes(tmp_path: Path, a: str, b: str) -> None:
    """Master/Slave (6.x) and Primary/Secondary (7.x) read alike; the finding names who is who."""
    assert judged(cluster(tmp_path, "fortigate", a, b)) == (
        "pass",
        f"edge-fw: one cluster (Mode HA A-P, group 10): primary {A} (fw-a), secondary {B} "
        "(fw-b); configuration in-sync; seen alike by fw-a, fw-b",
    )


def test_split_cluster_fails_although_the_host_passes_everything(tmp_path: Path) -> None:
    """Both members alone and primary: every other finding is what a formed cluster gets (all
    pass or skip), KVMHA-HA-001 alone fails, naming the split."""
    ok_dir = cluster(tmp_path / "ok", "fortigate", "fgt-a-7x.txt", "fgt-b-7x.txt")
    formed = untraced(all_statuses(run(ok_dir)))
    split_dir = cluster(tmp_path / "split", "fortigate", "fgt-a-alone.txt", "fgt-b-alone.txt")
    result = run(split_dir)
    split = untraced(all_statuses(result))
    assert formed[(HA, "edge-fw")] == "pass" and split[(HA, "edge-fw")] == "fail"
    assert {k: v for k, v in split.items() if k[0] != HA} == {
        k: v for k, v in formed.items() if k[0] != HA
    }
    assert set(formed.values()) == {"pass", "skip"}, formed
    f = finding(result, HA, "edge-fw")
    assert f.detail == (
        f"fw-a sees only itself ({A}): peer missing; fw-b sees only itself ({B}): peer missing; "
        f"fw-a does not see fw-b ({B}); fw-b does not see fw-a ({A}); "
        "fw-a and fw-b are each primary (split brain)"
    )
    assert str(f.check.severity) == "critical"


@pytest.mark.parametrize(
    ("vendor", "a", "b", "expected"),
    [
        (
            "fortigate",
            "fgt-a-lost.txt",
            "fgt-b-alone.txt",
            f"fw-a reports HA Health Status: ERROR {B} is lost @ 2026/12/01 09:30:48",
        ),
        (
            "fortigate",
            "fgt-a-7x.txt",
            "fgt-b-out-of-sync.txt",
            f"fw-b: configuration of {B} is out-of-sync",
        ),
        (
            "fortigate",
            "fgt-standalone.txt",
            "fgt-b-7x.txt",
            "fw-a runs standalone (Mode: standalone)",
        ),
        ("fortigate", "fgt-a-7x.txt", "fgt-b-alone.txt", "fw-b sees only itself"),
        (
            "cos-core",
            "cos-master-alone.txt",
            "cos-slave-alone.txt",
            "fw-a (master, active) does not see its peer alive; fw-b (slave, active) does not see "
            "its peer alive; fw-a and fw-b are each active (split brain)",
        ),
        (
            "cos-core",
            "cos-master-sync.txt",
            "cos-slave-syncing.txt",
            "fw-b: HA object sync 64% (not in sync)",
        ),
        (
            "cos-core",
            "cos-master.txt",
            "cos-standalone.txt",
            "fw-b is a standalone system (HA not configured)",
        ),
        ("cos-core", "cos-master.txt", "cos-master.txt", "2 members are masters"),
    ],
    ids=[
        "fgt-lost",
        "fgt-out-of-sync",
        "fgt-standalone",
        "fgt-one-sided",
        "cos-split",
        "cos-syncing",
        "cos-standalone",
        "cos-two-masters",
    ],
)
def test_not_formed_fails(tmp_path: Path, vendor: str, a: str, b: str, expected: str) -> None:
    status, detail = judged(cluster(tmp_path, vendor, a, b))
    assert status == "fail" and expected in detail, detail


def test_one_sided_view_names_the_disagreement(tmp_path: Path) -> None:
    """fw-a sees both with itself primary; fw-b sees only itself, as primary: both primary."""
    _, detail = judged(cluster(tmp_path, "fortigate", "fgt-a-7x.txt", "fgt-b-alone.txt"))
    assert detail == (
        f"fw-b sees only itself ({B}): peer missing; fw-b does not see fw-a ({A}); "
        "fw-a and fw-b are each primary (split brain)"
    )


@pytest.mark.parametrize(
    ("b", "message"),
    [
        (
            "fgt-garbage.txt",
            "cannot evaluate: kvm-b: HA status of fw-b is not understood: line 1: not a 'Key: value' line: "
            "'Welcome to the maintenance shell'",
        ),
        (
            (255, "fw-b: console ssh://audit@192.0.2.12: Connection refused (exit status 255)"),
            "cannot evaluate: kvm-b: HA status of fw-b could not be read: fw-b: console "
            "ssh://audit@192.0.2.12: Connection refused (exit status 255)",
        ),
        # a recording made before the status was read: the replay cannot ask the console
        (
            None,
            "cannot evaluate: kvm-b: HA status of fw-b could not be read: fw-b: console "
            "ssh://audit@192.0.2.12 not in the recorded bundle",
        ),
    ],
    ids=["garbage", "console-failed", "not-recorded"],
)
def test_status_not_read_or_not_understood_is_an_error(
    tmp_path: Path, b: Answer, message: str
) -> None:
    """fw-a's view alone is a formed cluster; fw-b's own view is unknown: error, never pass."""
    assert judged(cluster(tmp_path, "fortigate", "fgt-a-7x.txt", b)) == ("error", message)


def test_a_split_seen_by_one_console_fails_even_if_the_other_is_unknown(tmp_path: Path) -> None:
    status, detail = judged(cluster(tmp_path, "fortigate", "fgt-a-alone.txt", "fgt-garbage.txt"))
    assert status == "fail"
    assert detail.startswith(f"fw-a sees only itself ({A}): peer missing; not known: kvm-b:")


def test_member_without_console_leaves_its_view_unknown(tmp_path: Path) -> None:
    d = cluster(tmp_path, "fortigate", "fgt-a-7x.txt", None, consoles=("fw-a",))
    assert judged(d) == (
        "error",
        "cannot evaluate: fw-b declares no console (a saved 'config' holds no run-time state): its own view of "
        "the cluster is not read",
    )


A_SYNC = f"    {A}(updated 1 seconds ago): in-sync\n"
B_SYNC = f"    {B}(updated 3 seconds ago): in-sync\n"
A_OPERATING = f"Primary: {A}, HA operating index = 0\nSecondary: {B}, HA operating index = 1\n"


@pytest.mark.parametrize(
    ("a", "b", "status", "detail"),
    [
        (
            "fgt-a-7x.txt",
            edited("fgt-b-7x.txt", "vcluster 1: standby", "vcluster 1: hello"),
            "fail",
            "fw-b is in the hello state (still looking for the other units)",
        ),
        (
            edited("fgt-a-7x.txt", f"Secondary: {B}, HA operating", f"Primary: {B}, HA operating"),
            "fgt-b-7x.txt",
            "fail",
            f"fw-a names 2 primary units ({A}, {B})",
        ),
        (
            # each member says it is secondary and the other is primary
            edited(
                "fgt-a-7x.txt",
                A_OPERATING,
                f"Secondary: {A}, HA operating index = 1\nPrimary: {B}, HA operating index = 0\n",
            ),
            "fgt-b-7x.txt",
            "fail",
            f"the members name different primaries: fw-a {B}, fw-b {A}",
        ),
        (
            edited(
                "fgt-a-7x.txt",
                A_OPERATING,
                A_OPERATING + "Secondary: FGVMK6TM26000033, HA operating index = 2\n",
            ),
            "fgt-b-7x.txt",
            "fail",
            "fw-a lists 3 units; the cluster has 2 members; not known: fw-a's Configuration "
            "Status has no line for FGVMK6TM26000033",
        ),
        (
            edited("fgt-a-7x.txt", "Configuration Status:\n" + A_SYNC + B_SYNC, ""),
            "fgt-b-7x.txt",
            "error",
            "cannot evaluate: fw-a shows no 'Configuration Status': the sync state is not known",
        ),
        (
            edited("fgt-a-7x.txt", B_SYNC, ""),
            "fgt-b-7x.txt",
            "error",
            f"cannot evaluate: fw-a's Configuration Status has no line for {B}",
        ),
    ],
    ids=["hello", "two-primaries", "other-primary", "three-units", "no-sync", "no-sync-line"],
)
def test_fortigate_views_judged_line_by_line(
    tmp_path: Path, a: str, b: str, status: str, detail: str
) -> None:
    assert judged(cluster(tmp_path, "fortigate", a, b)) == (status, detail)


def test_no_cos_node_active_fails(tmp_path: Path) -> None:
    a = edited("cos-master.txt", "currently ACTIVE (will forward traffic)", "currently INACTIVE")
    assert judged(cluster(tmp_path, "cos-core", a, "cos-slave.txt")) == (
        "fail",
        "no member is active",
    )


def test_a_view_that_does_not_say_which_unit_it_is_is_an_error(tmp_path: Path) -> None:
    """fw-b lists both units, but without the list under vcluster 1 it does not say which one
    it is: whether each member sees the other cannot be told."""
    assert judged(cluster(tmp_path, "fortigate", "fgt-a-7x.txt", "fgt-b-index-only.txt")) == (
        "error",
        "cannot evaluate: fw-b lists no units under 'vcluster 1': which unit it is is unknown",
    )


def test_two_consoles_reaching_one_unit_is_an_error(tmp_path: Path) -> None:
    assert judged(cluster(tmp_path, "fortigate", "fgt-a-7x.txt", "fgt-a-7x.txt")) == (
        "error",
        f"cannot evaluate: fw-a and fw-b answer as one unit ({A}): two consoles reach one firewall",
    )


def test_no_console_declared_skips_saying_so(tmp_path: Path) -> None:
    d = cluster(tmp_path, "fortigate", None, None, consoles=())
    assert judged(d) == (
        "skip",
        "no console declared for edge-fw: the firewalls' own HA status is read over a console "
        "only (inventory member key 'console'; a saved 'config' holds no run-time state)",
    )


# --- cOS Core -------------------------------------------------------------------------------------


def test_formed_cos_cluster_passes(tmp_path: Path) -> None:
    assert judged(cluster(tmp_path / "1", "cos-core", "cos-master.txt", "cos-slave.txt")) == (
        "pass",
        "edge-fw: fw-a master active, fw-b slave inactive; each sees its peer alive; no 'HA "
        "object sync' line shown, so the sync is not judged",
    )
    status, detail = judged(
        cluster(tmp_path / "2", "cos-core", "cos-master-sync.txt", "cos-slave-sync.txt")
    )
    assert (status, detail.rpartition("; ")[2]) == ("pass", "HA object sync 100%")


def test_cos_output_not_understood_is_an_error(tmp_path: Path) -> None:
    assert judged(cluster(tmp_path, "cos-core", "cos-master.txt", "cos-peer-unknown.txt")) == (
        "error",
        "cannot evaluate: kvm-b: HA status of fw-b is not understood: peer state 'SYNCHRONIZING' is not understood",
    )
