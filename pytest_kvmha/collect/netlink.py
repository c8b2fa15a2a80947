"""Local link state through netlink (pyroute2), for a ``local://`` host: the batch script skips
``ip -d -j link`` there, and this writes the ``links`` section in its shape."""

from __future__ import annotations

import json
from typing import Any

from pyroute2 import IPRoute

from pytest_kvmha.bundle.contract import LINKS
from pytest_kvmha.bundle.store import EvidenceBundle, Section


def collect_links_netlink(bundle: EvidenceBundle) -> None:
    """Local link state through pyroute2, written in the shape of ``ip -d -j link``."""
    flag_names = {
        0x1: "UP",
        0x2: "BROADCAST",
        0x8: "LOOPBACK",
        0x100: "PROMISC",
        0x1000: "MULTICAST",
    }
    links = []
    with IPRoute() as ipr:
        for msg in ipr.get_links():
            flags = msg["flags"]
            info = msg.get_attr("IFLA_LINKINFO")
            kind = info.get_attr("IFLA_INFO_KIND") if info is not None else None
            entry: dict[str, Any] = {
                "ifindex": msg["index"],
                "ifname": msg.get_attr("IFLA_IFNAME"),
                "flags": [n for bit, n in flag_names.items() if flags & bit],
                "address": msg.get_attr("IFLA_ADDRESS"),
                "promiscuity": msg.get_attr("IFLA_PROMISCUITY"),
                "mtu": msg.get_attr("IFLA_MTU"),
            }
            if kind:
                entry["linkinfo"] = {"info_kind": kind}
            links.append(entry)
    bundle.sections[LINKS] = Section(json.dumps(links))
    bundle.commands.append({"command": "pyroute2 RTM_GETLINK", "rc": 0, "seconds": 0.0})
