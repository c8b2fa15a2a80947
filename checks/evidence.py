"""Evidence completeness: every problem recorded for a host is an error, never silence.

A section that could not be read (virsh cannot connect, a command is missing, a domain's XML does
not parse) leaves the checks that need it unevaluated, and may hide clusters from discovery
altogether. This check turns each recorded problem into its own ``error`` finding, so that an
audit which saw nothing cannot end green."""

from __future__ import annotations

from pytest_kvmha.facts import HostFacts
from pytest_kvmha.model import ERROR, Scope, Verdict, check

# What makes each section readable again (keys of HostFacts.problems; domain:<uuid> aside).
FIXES = {
    "identity": "make /etc/machine-id (or hostname) readable",
    "packages": "make the package manager's database readable (dpkg-query, rpm, pacman, apk)",
    "ovs": "make ovs-vsctl work for the audit account (ovsdb-server running, socket readable)",
    "links": "make 'ip -d -j link show' work (iproute2 with JSON output)",
    "libvirt": "make 'virsh list --all' work for the audit account: libvirtd running, its socket "
    "readable, virsh installed, the right URI (LIBVIRT_DEFAULT_URI or the inventory's virsh_uri)",
    "networks": "make 'virsh net-list --all' and 'virsh net-dumpxml' work",
    "nwfilters": "make 'virsh nwfilter-list' and 'virsh nwfilter-dumpxml' work",
    "traces": "audit again: the recorded ofproto/trace output (trace-dpif, trace/*) is damaged",
    "libvirt-uri": "set LIBVIRT_DEFAULT_URI to a plain libvirt URI, or pin virsh_uri in the inventory",
}


@check(
    "KVMHA-HOST-000",
    title="The host's evidence was read completely",
    severity="critical",
    scope=Scope.HOST_PROBLEM,
    rationale="""
        A check whose facts are missing is not evaluated, and domains that cannot be listed are
        not even looked at: an audit that passes without them gates nothing. Every section that
        could not be collected or parsed is reported as an error, naming the host and the
        reason.""",
    remediation="Make the failing command work on the host for the audit account, then audit "
    "again (the detail names the section and the command's own error).",
    source="pytest-kvmha: fail closed (issue 6)",
)
def evidence_read(host: HostFacts, section: str) -> Verdict:
    problem = host.problems[section]
    what = "domain " + section.split(":", 1)[1] if section.startswith("domain:") else section
    fix = FIXES.get(section, "fix or remove the domain whose XML does not parse")
    return Verdict(
        ERROR,
        f"{what} not read, the checks that need it were not evaluated: {problem}",
        expected=f"{what} read and parsed on {host.name}",
        remediation=fix,
    )
