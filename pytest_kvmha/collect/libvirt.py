"""libvirt read through libvirt-python (an inventory's ``libvirt_uri``): one connection, the
same sections and raw XML as the batch script's virsh."""

from __future__ import annotations

import time

from pytest_kvmha.bundle.contract import (
    LIBVIRT_URI,
    VIRSH_ACTIVE,
    VIRSH_DOMAINS,
    VIRSH_NETWORKS,
    VIRSH_NWFILTERS,
    VIRSH_PAUSED,
)
from pytest_kvmha.bundle.store import EvidenceBundle, Section


def collect_libvirt(bundle: EvidenceBundle, uri: str, *, secure: bool = False) -> None:
    """libvirt sections through libvirt-python: one connection, same raw XML as virsh."""
    try:
        import libvirt
    except ImportError:
        bundle.sections[VIRSH_DOMAINS] = Section(
            "", "libvirt-python is not installed (pip install 'pytest-kvmha[libvirt]')", 127
        )
        return
    bundle.sections[LIBVIRT_URI] = Section(f"inventory\n{uri}\n")
    t0 = time.monotonic()
    try:
        conn = libvirt.open(uri) if secure else libvirt.openReadOnly(uri)
    except libvirt.libvirtError as exc:
        bundle.sections[VIRSH_DOMAINS] = Section("", f"{uri}: {exc}", 1)
        bundle.round_trips += 1
        return
    xml_flags = libvirt.VIR_DOMAIN_XML_SECURE if secure else 0
    try:
        doms = conn.listAllDomains(0)
        uuids = [d.UUIDString() for d in doms]
        active = [d.UUIDString() for d in doms if d.isActive()]
        bundle.sections[VIRSH_DOMAINS] = Section("\n".join(uuids) + "\n")
        bundle.sections[VIRSH_ACTIVE] = Section("\n".join(active) + "\n")
        paused = [d.UUIDString() for d in doms if d.state()[0] == libvirt.VIR_DOMAIN_PAUSED]
        bundle.sections[VIRSH_PAUSED] = Section("".join(u + "\n" for u in paused))
        for d in doms:
            u = d.UUIDString()
            bundle.sections[f"domain-inactive/{u}"] = Section(
                d.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE | xml_flags)
            )
            if d.isActive():
                bundle.sections[f"domain-live/{u}"] = Section(d.XMLDesc(xml_flags))
        nets = conn.listAllNetworks(0)
        bundle.sections[VIRSH_NETWORKS] = Section("".join(n.UUIDString() + "\n" for n in nets))
        for n in nets:
            bundle.sections[f"network/{n.UUIDString()}"] = Section(n.XMLDesc(0))
        try:
            filters = conn.listAllNWFilters(0)
        except libvirt.libvirtError as exc:  # e.g. the test driver has no nwfilter support
            bundle.sections[VIRSH_NWFILTERS] = Section("", f"{uri}: {exc}", 1)
            filters = []
        else:
            bundle.sections[VIRSH_NWFILTERS] = Section(
                "".join(f"{f.UUIDString()}  {f.name()}\n" for f in filters)
            )
        for f in filters:
            bundle.sections[f"nwfilter/{f.UUIDString()}"] = Section(f.XMLDesc(0))
    finally:
        conn.close()
    bundle.round_trips += 1
    bundle.commands.append(
        {"command": f"libvirt-python {uri}", "rc": 0, "seconds": round(time.monotonic() - t0, 3)}
    )
