"""Network links (``ip -d -j link``) and package states as frozen facts. Pure: no I/O."""

from __future__ import annotations

import re
from types import MappingProxyType

from pytest_kvmha.facts.host import Link, PackageState, VirtualFunction
from pytest_kvmha.parse.evidence import FactError, load_json, refuse_control_chars, show


def parse_links(text: str) -> dict[str, Link]:
    """``ip -d -j link`` (or the same shape from netlink). Every field read is type-checked: a
    wrongly typed one makes the whole section a problem, never a default value."""
    doc = load_json(text, "links: output of 'ip -d -j link'")
    if not isinstance(doc, list):
        raise FactError("links: expected a JSON list from 'ip -d -j link'")
    links: dict[str, Link] = {}
    for number, entry in enumerate(doc, 1):
        if not isinstance(entry, dict):
            raise FactError(f"links: entry {number}: expected a JSON object, found {show(entry)}")
        name = entry.get("ifname")
        if type(name) is not str or not name:
            raise FactError(f"links: entry {number}: 'ifname' must be a name, found {show(name)}")
        where = f"links: entry {number} ({show(name)})"
        if name in links:
            raise FactError(f"{where}: interface listed twice")
        flags = entry.get("flags")
        if not isinstance(flags, list) or not all(type(f) is str for f in flags):
            raise FactError(f"{where}: 'flags' must be a list of names, found {show(flags)}")
        promiscuity = entry.get("promiscuity")  # netlink may not report it: None, not 0
        if promiscuity is not None and (
            type(promiscuity) is not int or not 0 <= promiscuity < 2**32
        ):
            raise FactError(f"{where}: 'promiscuity' must be a counter, found {show(promiscuity)}")
        info = entry.get("linkinfo")
        if info is not None and not isinstance(info, dict):
            raise FactError(f"{where}: 'linkinfo' must be an object, found {show(info)}")
        kind = info.get("info_kind") if info else None
        if kind is not None and type(kind) is not str:
            raise FactError(f"{where}: 'info_kind' must be a string, found {show(kind)}")
        mac = entry.get("address")
        if mac is not None and type(mac) is not str:
            raise FactError(f"{where}: 'address' must be a string, found {show(mac)}")
        mtu = entry.get("mtu")  # iproute2 prints it for every link; None: not reported
        if mtu is not None and (type(mtu) is not int or not 0 <= mtu < 2**32):
            raise FactError(f"{where}: 'mtu' must be a byte count, found {show(mtu)}")
        links[name] = Link(
            name=name,
            flags=frozenset(flags),
            promiscuity=promiscuity,
            kind=kind,
            mac=mac,
            mtu=mtu,
            vfs=_vfs(entry.get("vfinfo_list"), where),
        )
    refuse_control_chars("links", link=list(links.values()))
    return links


def _vfs(found: object, where: str) -> tuple[VirtualFunction, ...]:
    """A PF's ``vfinfo_list`` (iproute2 ``print_vfinfo``: ``vf``, ``address``, ``vlan_list`` of
    ``{"vlan": N}``, ``spoofchk``, ``link_state``, ``trust``), each field type-checked."""
    if found is None:
        return ()
    if not isinstance(found, list):
        raise FactError(f"{where}: 'vfinfo_list' must be a list, found {show(found)}")
    out = []
    for k, vf in enumerate(found):
        at = f"{where}: vfinfo_list[{k}]"
        if not isinstance(vf, dict) or type(vf.get("vf")) is not int or vf["vf"] < 0:
            raise FactError(f"{at}: expected an object with a VF number, found {show(vf)}")
        mac = vf.get("address")
        if mac is not None and type(mac) is not str:
            raise FactError(f"{at}: 'address' must be a string, found {show(mac)}")
        for key in ("spoofchk", "trust"):
            if vf.get(key) is not None and type(vf[key]) is not bool:
                raise FactError(f"{at}: {key!r} must be true or false, found {show(vf[key])}")
        state = vf.get("link_state")
        if state is not None and type(state) is not str:
            raise FactError(f"{at}: 'link_state' must be a string, found {show(state)}")
        vlans = vf.get("vlan_list", [])
        if not isinstance(vlans, list) or not all(
            isinstance(v, dict) and type(v.get("vlan")) is int for v in vlans
        ):
            raise FactError(f"{at}: 'vlan_list' must list {{\"vlan\": N}}, found {show(vlans)}")
        vlan = next((v["vlan"] for v in vlans if v["vlan"]), None)
        out.append(
            VirtualFunction(
                vf["vf"],
                mac.lower() if mac else None,
                vlan,
                vf.get("spoofchk"),
                vf.get("trust"),
                state,
            )  # fmt: skip
        )
    return tuple(out)


_PACKAGE_NAME = re.compile(r"[a-z0-9][a-z0-9.+_-]*")

DPKG_PRESENT = frozenset(
    {
        "installed",
        "unpacked",
        "half-installed",
        "half-configured",
        "triggers-awaited",
        "triggers-pending",
    }
)


DPKG_STATES = DPKG_PRESENT | {"not-installed", "config-files"}


def parse_packages(text: str) -> PackageState:
    lines = text.splitlines()
    if not lines or not lines[0].startswith("manager="):
        raise FactError("packages: first line must be manager=<name>")
    manager = lines[0].split("=", 1)[1].strip() or None
    if manager == "none":
        return PackageState(None, MappingProxyType({}))
    installed: dict[str, bool] = {}
    for line in lines[1:]:
        parts = line.split("\t", 2)
        if len(parts) < 2 or not _PACKAGE_NAME.fullmatch(parts[0]):
            continue  # a further line of a query's multi-line message
        name, rc, status = parts[0], parts[1], parts[2] if len(parts) > 2 else ""
        if not re.fullmatch(r"-?[0-9]{1,4}", rc):
            raise FactError(f"packages: {name}: exit status is not a number: {show(rc)}")
        if name in installed:
            raise FactError(f"packages: {name}: reported twice")
        if manager == "dpkg":
            # 'install ok installed', and the unpacked/half-* states: brctl is on disk then.
            # 'deinstall ok config-files' (removed, not purged) and 'not-installed' are absent.
            state = status.split()[-1] if status.split() else ""
            if rc == "0" and (len(status.split()) != 3 or state not in DPKG_STATES):
                raise FactError(f"packages: {name}: not a dpkg status: {show(status)}")
            installed[name] = rc == "0" and state in DPKG_PRESENT
        else:
            installed[name] = rc == "0"
    return PackageState(manager, MappingProxyType(installed))
