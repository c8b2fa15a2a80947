"""The members of a cluster run the same firmware on the same model, with the same VDOM mode.

FortiOS facts come from each member's configuration header (``#config-version=...``) and its
console's ``get system status`` (:mod:`pytest_kvmha.parse.fortios_status`); when a member has
both, the console's (what runs now) is compared, the header's (what the backup was saved on)
otherwise. cOS Core: what is read from it (``show HighAvailability``, ``show Interface
EthernetInterface``) carries no firmware version, and no documented CLI output that gives it
was found, so the check is ``skip`` for cOS Core and says so. Missing facts on a FortiGate
member are an ``error``, never a pass.
"""

from __future__ import annotations

from pytest_kvmha.facts.firewall import CosHaFacts, FgcpFacts, Firmware
from pytest_kvmha.model import (
    FIREWALL_CONFIG,
    MissingFacts,
    Scope,
    Verdict,
    check,
    failed,
    passed,
    skipped,
)
from pytest_kvmha.topology import Cluster, Member

from .firewall_agreement import show as _show
from .firewall_wiring import cluster_facts

FGT_SAME = (
    "FortiOS 7.4.1 Administration Guide, FGCP HA between FortiGates of the same model with "
    "different AC and DC PSUs (same model, same firmware); FortiOS 6.0.0 CLI Reference, get "
    "system status"
)
COS_SAME = "Clavister cOS Core 14.00 Administration Guide, 12.3.1 Hardware Setup (same version)"
REMEDIATION = (
    "Upgrade the member on the other build so both run the same FortiOS version and build "
    "(execute restore image, or the GUI's firmware upgrade), on FortiGates of the same model; "
    "make the VDOM mode the same on both (config system global / set vdom-mode). Then re-read "
    "the configurations (a new backup or the console)."
)


def _current(m: Member, facts: FgcpFacts) -> Firmware:
    """The member's firmware as its console shows it, else as its backup's header says."""
    by_source = {f.source: f for f in facts.firmware}
    got = by_source.get("get system status") or by_source.get("config header")
    if got is None:
        raise MissingFacts(
            f"{m.label}: its firmware is not known: the configuration text has no "
            "'#config-version' header and no 'get system status' answer (a bootstrap file or a "
            "'show' capture); declare a backup (config = PATH) or a console"
        )
    return got


def _vdoms(on: bool | None) -> str:
    return "VDOMs on" if on else "VDOMs off"


@check(
    "KVMHA-FIRM-001",
    title="The members run the same firmware on the same model, with the same VDOM mode",
    severity="critical",
    scope=Scope.CLUSTER,
    needs=[FIREWALL_CONFIG],
    rationale="""
        FGCP forms a cluster only of FortiGates of the same model running the same firmware
        (version and build), and the VDOM setup is part of the configuration it synchronizes:
        two members on different builds, or one with VDOMs and one without, do not form a
        cluster (or fall apart after an upgrade of one of them), however well the host carries
        their heartbeats. cOS Core requires the same cOS Core version on master and slave as
        well. The facts come from each FortiGate's configuration header and its console's
        'get system status'; a member whose firmware is not known is an error.""",
    remediation=REMEDIATION,
    source="; ".join((FGT_SAME, COS_SAME)),
)
def same_firmware(cluster: Cluster) -> Verdict:
    if isinstance(got := cluster_facts(cluster), Verdict):
        return got  # skip: no member declares a configuration
    cos = [m.label for m, f in got if isinstance(f, CosHaFacts)]
    if cos and len(cos) == len(got):
        return skipped(
            f"{cluster.name}: cOS Core's 'show HighAvailability' and 'show Interface "
            "EthernetInterface' carry no firmware version, and no documented cOS Core CLI "
            "output giving it was found: compare the versions by hand (cOS Core "
            "14.00 Administration Guide 12.3.1: the same version on master and slave)"
        )
    if cos:  # a discovered cluster can mix vendors; KVMHA-FW-002 fails it
        raise MissingFacts(
            f"FortiOS and cOS Core members ({', '.join(cos)} cOS Core): no firmware to compare"
        )
    current = [(m, _current(m, f)) for m, f in got if isinstance(f, FgcpFacts)]
    problems = []
    builds = {(fw.version, fw.build) for _, fw in current}
    if len(builds) > 1:
        problems.append(
            "firmware differs: "
            + ", ".join(
                f"{m.label} {fw.version} build {fw.build} ({fw.source})" for m, fw in current
            )
        )
    sources = {fw.source for _, fw in current}
    if len(sources) == 1 and len({fw.model for _, fw in current}) > 1:
        problems.append(
            "model differs: " + ", ".join(f"{m.label} {_show(fw.model)}" for m, fw in current)
        )
    modes = [(m, fw.vdoms) for m, fw in current]
    if not problems and any(on is None for _, on in modes):
        unknown = ", ".join(m.label for m, on in modes if on is None)
        raise MissingFacts(f"the VDOM mode of {unknown} is not shown by its firmware facts")
    if len({on for _, on in modes if on is not None}) > 1:
        problems.append(
            "VDOM mode differs: " + ", ".join(f"{m.label} {_vdoms(on)}" for m, on in modes)
        )
    if problems:
        return failed(
            "; ".join(problems),
            expected="one model, firmware build and VDOM mode on every member",
            found="; ".join(problems),
        )
    if len(sources) > 1:
        # version, build and VDOM mode agree, but the header's platform code (FGVMK6) and the
        # console's model name (FortiGate-VM64-KVM) cannot be compared with each other
        raise MissingFacts(
            "the models cannot be compared: "
            + ", ".join(f"{m.label} {_show(fw.model)} from its {fw.source}" for m, fw in current)
            + " (the header gives the platform code, the console the model name); read both "
            "members the same way"
        )
    fw = current[0][1]
    return passed(
        f"{cluster.name}: FortiOS {fw.version} build {fw.build} on {_show(fw.model)}, "
        f"{_vdoms(fw.vdoms)}, on every member (from the {fw.source})"
    )
