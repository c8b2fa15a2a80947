"""Host-level checks: packages and the Open vSwitch service."""

from __future__ import annotations

from pytest_kvmha.facts import HostFacts
from pytest_kvmha.model import MissingFacts, Scope, Verdict, check, failed, passed
from pytest_kvmha.remediation import REMOVE
from pytest_kvmha.topology import require_host


@check(
    "KVMHA-PKG-001",
    title="bridge-utils is not installed",
    severity="high",
    scope=Scope.HOST,
    rationale="""
        The cOS Core KVM guide requires removing bridge-utils before installing Open vSwitch:
        Linux-bridge tooling on the host competes with OVS for the HA interfaces.""",
    remediation="Remove the bridge-utils package (apt-get remove / dnf remove / pacman -R / apk del).",
    source="Clavister cOS Core KVM Installation Guide, ch. 7 (High Availability Setup)",
)
def bridge_utils_absent(host: HostFacts) -> Verdict:
    require_host(host)
    pkgs = host.packages
    if pkgs is None:
        raise MissingFacts(host.problems.get("packages", f"{host.name}: no package facts"))
    if pkgs.manager is None:
        raise MissingFacts(f"{host.name}: no known package manager (dpkg, rpm, pacman, apk)")
    state = pkgs.installed.get("bridge-utils")
    if state is None:
        raise MissingFacts(f"{host.name}: bridge-utils state not reported by {pkgs.manager}")
    if state:
        return failed(
            f"bridge-utils is installed on {host.name} ({pkgs.manager})",
            expected="bridge-utils not installed",
            found="bridge-utils installed",
            remediation=REMOVE[pkgs.manager],
        )
    return passed(f"bridge-utils is not installed on {host.name} ({pkgs.manager})")


@check(
    "KVMHA-OVS-001",
    title="Open vSwitch is installed and answering",
    severity="critical",
    scope=Scope.HOST,
    rationale="""
        Every HA interface pair is joined through an OVS bridge; without a running ovsdb-server
        and ovs-vswitchd no pair can pass heartbeats or sync traffic.""",
    remediation="Install openvswitch-switch and start ovsdb-server and ovs-vswitchd "
    "(systemctl enable --now openvswitch-switch).",
    source="Clavister cOS Core KVM Installation Guide, ch. 7; ovs-vsctl(8), ovs-appctl(8)",
)
def ovs_answers(host: HostFacts) -> Verdict:
    require_host(host)
    ovs = host.ovs
    if ovs is None:
        raise MissingFacts(host.problems.get("ovs", f"{host.name}: no Open vSwitch facts"))
    if not ovs.installed:
        return failed(
            f"Open vSwitch is not installed on {host.name} (ovs-vsctl not found)",
            expected="ovs-vsctl present, database and switch daemon answering",
            found="ovs-vsctl: command not found",
            remediation="apt-get install -y openvswitch-switch  # or dnf install openvswitch",
        )
    if not ovs.db_answers:
        return failed(
            f"the OVS database on {host.name} does not answer: {ovs.problem}",
            expected="ovsdb-server answering",
            found=ovs.problem,
            remediation="systemctl restart openvswitch-switch  # or: /usr/share/openvswitch/scripts/ovs-ctl start",
        )
    if not ovs.vswitchd_answers or ovs.problem:
        return failed(
            f"ovs-vswitchd on {host.name} is not working: {ovs.problem}",
            expected="ovs-vswitchd answering and in sync with the database",
            found=ovs.problem,
            remediation="systemctl restart openvswitch-switch  # then: ovs-appctl version",
        )
    return passed(f"{ovs.version or 'Open vSwitch'} answers on {host.name}")
