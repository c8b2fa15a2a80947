"""Cluster shape: two members, both present, same NIC count, on two servers."""

from __future__ import annotations

from pytest_kvmha.config.spelling import close_match, has
from pytest_kvmha.model import MissingFacts, Scope, Verdict, check, failed, passed
from pytest_kvmha.remediation import comment
from pytest_kvmha.topology import Cluster, require_domains


@check(
    "KVMHA-TOPO-001",
    title="Cluster has exactly two members with the same number of NICs",
    severity="critical",
    scope=Scope.CLUSTER,
    rationale="""
        cOS Core and FortiGate-VM HA pair interfaces one to one: If1 with If1, If2 with If2.
        A missing domain or an extra/missing NIC leaves an interface without its partner.""",
    remediation="Define both member domains with the same number of <interface> elements "
    "(virsh edit DOMAIN).",
    source="Clavister cOS Core KVM Installation Guide, ch. 7; FortiGate-VM KVM guide, HA",
)
def two_matching_members(cluster: Cluster) -> Verdict:
    members = cluster.members
    if len(members) != 2:
        return failed(
            f"cluster {cluster.name} has {len(members)} members",
            expected="exactly 2 members",
            found=", ".join(f"{m.spec.domain}@{m.host.name}" for m in members),
        )
    # per (host, domain): two members may share a domain name on two hosts
    missing, counts, fixes, present = [], {}, [], []
    for m in members:
        domains = require_domains(m.host)
        dom = domains.get(m.spec.domain)
        if dom is None:
            missing.append(f"{m.spec.domain} on {m.host.name}")
            present.append(has(m.host.name, "domain", domains, m.spec.domain))
            # a close match is a typo in the inventory: correct it there, never define the
            # misspelt domain
            match = close_match(m.spec.domain, domains)
            fixes.append(
                comment(
                    f"did you mean {match}? correct the inventory: cluster {cluster.name}, "
                    f'member on {m.host.name}: domain = "{match}"'
                )
                if match
                else comment(
                    f"define domain {m.spec.domain} on {m.host.name} (virsh define with its XML), "
                    "or correct its name in the inventory"
                )
            )
        else:
            counts[cluster.spec.label(m.spec)] = len(dom.nics)
    if missing:
        broken = [p for m in members for k, p in m.host.problems.items() if k.startswith("domain:")]
        if broken:
            raise MissingFacts("; ".join(broken))
        return failed(
            "domain not defined: " + ", ".join(missing) + " (" + "; ".join(present) + ")",
            expected="both member domains defined",
            found="missing: " + ", ".join(missing),
            remediation="\n".join(fixes),
        )
    if len(set(counts.values())) != 1:
        found = ", ".join(f"{d}: {n} NICs" for d, n in counts.items())
        return failed(f"NIC counts differ ({found})", expected="same number of NICs", found=found)
    n = next(iter(counts.values()))
    declared = len(cluster.spec.pairs)
    if declared and n < declared:
        return failed(
            f"{declared} pairs declared but the members have {n} NICs",
            expected=f"at least {declared} NICs per member",
            found=f"{n} NICs",
        )
    return passed(f"2 members ({', '.join(counts)}), {n} NICs each")


@check(
    "KVMHA-TOPO-002",
    title="Members run on different physical servers",
    severity="low",
    scope=Scope.CLUSTER,
    rationale="""
        Two members on one server share its power, disks and NICs: the cluster survives a
        firewall failure but not a server failure. Told apart by /etc/machine-id, so two
        inventory names for one machine are caught too.""",
    remediation="Move one member to a second KVM server and carry each pair between the servers "
    "on its own VLAN.",
    source="Clavister cOS Core KVM Installation Guide, ch. 7 ('A Single Physical Server is Assumed')",
)
def different_servers(cluster: Cluster) -> Verdict:
    if cluster.two_servers():
        return passed("members run on " + " and ".join(h.name for h in cluster.hosts()))
    hosts = cluster.hosts()
    if len(hosts) > 1:
        found = f"{' and '.join(h.name for h in hosts)} share machine-id {hosts[0].identity}"
    else:
        found = f"both members on {hosts[0].name}"
    return failed(
        f"all members run on one physical server: {found}",
        expected="members on two physical servers",
        found=found,
    )
