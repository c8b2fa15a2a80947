"""Libvirt domain XML for the lab's stand-in firewall VMs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import quoteattr


@dataclass(frozen=True)
class LabNic:
    """One ``<interface type='bridge'>`` of a lab firewall domain.

    ``slot`` is the PCI slot on bus 0 for ``machine="pc"`` (i440fx). For ``machine="q35"`` each NIC
    sits behind its own ``pcie-root-port``; the root port's index is ``bus`` if non-zero, else
    ``slot``; the NIC then gets ``bus=<that index>``, ``slot=0`` (a root port has one slot).
    """

    bridge: str
    slot: int
    model: str = "virtio"
    vlan: int | None = None
    virtualport: bool = True
    filterref: str | None = None
    mac: str | None = None
    bus: int = 0
    function: int = 0


CONSOLE_PASSWORD = "kvmha-pw"  # qemu VNC passwords are at most 8 characters


def _q35_port_index(nic: LabNic) -> int:
    return nic.bus if nic.bus else nic.slot


def firewall_domain_xml(
    name: str,
    nics: Sequence[LabNic],
    *,
    machine: str = "pc",
    uuid: str | None = None,
    console_password: str | None = CONSOLE_PASSWORD,
) -> str:
    """Return a minimal libvirt domain XML for a lab "firewall" VM.

    ``type='qemu'``, 64 MiB, 1 vCPU, no disk, no memballoon, a VNC console with password
    ``console_password`` (None: no graphics). ``machine`` is the
    QEMU machine type (``"pc"``, ``"q35"``, or a versioned name such as ``"pc-q35-7.2"``); any
    machine whose name contains ``q35`` gets one ``pcie-root-port`` controller per NIC bus
    (``index``, ``<target chassis=index port=0x10+index-1/>``).
    """
    q35 = "q35" in machine
    lines = [
        "<domain type='qemu'>",
        f"  <name>{_xml_text(name)}</name>",
    ]
    if uuid:
        lines.append(f"  <uuid>{_xml_text(uuid)}</uuid>")
    lines += [
        "  <memory unit='MiB'>64</memory>",
        "  <currentMemory unit='MiB'>64</currentMemory>",
        "  <vcpu>1</vcpu>",
        "  <os>",
        f"    <type arch='x86_64' machine={quoteattr(machine)}>hvm</type>",
        "  </os>",
        "  <on_poweroff>destroy</on_poweroff>",
        "  <on_reboot>restart</on_reboot>",
        "  <on_crash>destroy</on_crash>",
        "  <devices>",
    ]
    if q35:
        seen: set[int] = set()
        for nic in nics:
            index = _q35_port_index(nic)
            if index in seen:
                continue
            seen.add(index)
            if index < 1:
                raise ValueError(f"q35 root-port index must be >= 1 (nic {nic})")
            lines += [
                f"    <controller type='pci' index='{index}' model='pcie-root-port'>",
                f"      <target chassis='{index}' port='{0x10 + index - 1:#x}'/>",
                "    </controller>",
            ]
    for nic in nics:
        lines.append("    <interface type='bridge'>")
        if nic.mac:
            lines.append(f"      <mac address={quoteattr(nic.mac)}/>")
        lines.append(f"      <source bridge={quoteattr(nic.bridge)}/>")
        if nic.vlan is not None:
            lines.append(f"      <vlan><tag id='{int(nic.vlan)}'/></vlan>")
        if nic.virtualport:
            lines.append("      <virtualport type='openvswitch'/>")
        lines.append(f"      <model type={quoteattr(nic.model)}/>")
        if nic.filterref:
            lines.append(f"      <filterref filter={quoteattr(nic.filterref)}/>")
        if q35:
            bus, slot = _q35_port_index(nic), (nic.slot if nic.bus else 0)
        else:
            bus, slot = nic.bus, nic.slot
        lines.append(
            f"      <address type='pci' domain='0x0000' bus='{bus:#04x}' slot='{slot:#04x}'"
            f" function='{nic.function:#x}'/>"
        )
        lines.append("    </interface>")
    if console_password is not None:
        # A secure attribute, left out of XML dumped without --security-info: provisioning
        # must carry it through plans, backups and restores.
        lines.append(
            "    <graphics type='vnc' autoport='yes' listen='127.0.0.1'"
            f" passwd={quoteattr(console_password)}/>"
        )
    lines += [
        "    <memballoon model='none'/>",
        "  </devices>",
        "</domain>",
    ]
    return "\n".join(lines) + "\n"


def _xml_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
