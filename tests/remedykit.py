"""A small interpreter that applies a finding's remediation to a copied recorded bundle.

A remediation is tested by applying it: each line the checks print is parsed as the shell would
(``shlex``, so the quoting is exercised too) and applied to the raw evidence the way the host
would change:

- ``ovs-vsctl [set|clear|add] port P ...`` (``--`` joins commands in one transaction) on the
  Port row's ``tag``, ``trunks`` and ``vlan_mode`` columns, with ovs-vsctl's semantics: ``set``
  replaces a column, ``clear`` empties it, ``add`` adds to a set (ovs-vsctl(8), Database
  Commands);
- ``ovs-vsctl set bridge B stp_enable=... rstp_enable=...`` on the Bridge row; with both off,
  the bridge's ports lose their ``status`` STP keys and ``rstp_status`` (ovs-vswitchd.conf.db(5),
  Port "Port Status": stp_* "only if STP is enabled", rstp_* likewise for RSTP);
- ``ip link set dev X promisc on`` on the link's flags and promiscuity;
- ``ip link set dev X mtu N`` on the link's ``mtu``, and on the OVS Interface row's ``mtu`` of
  the same device, which reports the kernel device's MTU (ovs-vswitchd.conf.db(5), Interface
  mtu);
- ``apt-get remove -y PKG`` on the package list;
- ``virsh edit DOMAIN  # ..., NIC MAC: FRAGMENT`` for the fragments the checks print: a
  ``<vlan><tag id=.../></vlan>`` that replaces the NIC's VLAN, ``remove <filterref .../>``,
  and a PCI ``<address .../>`` that replaces the NIC's. ``virsh edit`` changes the persistent
  definition; the running domain takes it at its next start, which is modelled by applying
  the same edit to its live XML.

Anything else raises ``NotApplicable``: the caller lists what stays uncovered, by name.
"""

from __future__ import annotations

import html
import json
import re
import shlex
from pathlib import Path
from typing import Any

from .bundlekit import HostBundle, edit_nic, host, reload


class NotApplicable(Exception):
    """A remediation line this interpreter cannot apply offline."""


def _hosts_with_domain(d: Path, domain: str) -> list[HostBundle]:
    out = []
    for sub in sorted(p for p in d.iterdir() if (p / "bundle.json").exists()):
        hb = host(d, sub.name)
        if hb.domain_sections(domain):
            out.append(hb)
    return out


def _note_host(note: str) -> str | None:
    m = re.match(r"on ([^,:\s]+)", note)
    return m.group(1) if m else None


def apply_remediation(d: Path, subject_host: str | None, remediation: str) -> None:
    """Apply every line of ``remediation``; ``subject_host`` is the host a line without an
    ``on HOST`` note runs on (the finding's host)."""
    for line in remediation.splitlines():
        code, _, note = line.partition("  # ")
        if line.startswith("#"):
            raise NotApplicable(f"comment, no command: {line}")
        argv = shlex.split(code)
        where = _note_host(note) or subject_host
        if argv[0] == "virsh":
            _virsh(d, argv, note, where)
            continue
        if where is None:
            raise NotApplicable(f"no host for {line}")
        hb = host(d, where)
        if argv[0] == "ovs-vsctl":
            _ovs_vsctl(hb, argv[1:])
        elif argv[:4] == ["ip", "link", "set", "dev"] and argv[5:] == ["promisc", "on"]:
            _promisc_on(hb, argv[4])
        elif argv[:4] == ["ip", "link", "set", "dev"] and len(argv) == 7 and argv[5] == "mtu":
            _set_mtu(hb, argv[4], int(argv[6]))
        elif argv[:3] == ["ip", "link", "set"] and len(argv) > 5 and argv[4] == "vf":
            _vf_settings(hb, argv[3], int(argv[5]), argv[6:])
        elif argv[:3] == ["apt-get", "remove", "-y"]:
            for pkg in argv[3:]:
                _remove_package(hb, pkg)
        else:
            raise NotApplicable(line)
        reload(hb)


def _set_cell(hb: HostBundle, port: str, column: str, value: Any) -> None:
    """Set a Port column; setting the value it has already is a no-op, as in OVSDB."""
    heading, rows = hb.ovs_rows("Port")
    (row,) = [r for r in rows if r[heading.index("name")] == port]
    if row[heading.index(column)] != value:
        hb.edit_ovs_row("Port", port, column, value)
        reload(hb)


def _ovsdb_set(values: list[Any]) -> list[Any]:
    return ["set", values]


def _cell_values(cell: Any) -> list[Any]:
    if isinstance(cell, list) and cell and cell[0] == "set":
        return list(cell[1])
    return [cell]


def _ovs_vsctl(hb: HostBundle, args: list[str]) -> None:
    commands: list[list[str]] = [[]]
    for a in args:
        if a == "--":
            commands.append([])
        else:
            commands[-1].append(a)
    for cmd in commands:
        if len(cmd) >= 4 and cmd[0] == "set" and cmd[1].lower() == "bridge":  # table names:
            # ovs-vsctl(8) matches them case-insensitively
            _set_bridge(hb, cmd[2], cmd[3:])
            continue
        if len(cmd) < 4 or cmd[1] != "port":
            raise NotApplicable("ovs-vsctl " + shlex.join(cmd))
        verb, _, port, *rest = cmd
        heading, rows = hb.ovs_rows("Port")
        (row,) = [r for r in rows if r[heading.index("name")] == port]
        if verb == "set":
            for pair in rest:
                col, _, value = pair.partition("=")
                if col == "tag":
                    _set_cell(hb, port, "tag", int(value))
                elif col == "trunks":
                    vlans = [int(v) for v in value.split(",") if v]
                    _set_cell(hb, port, "trunks", _ovsdb_set(vlans))
                elif col == "vlan_mode":
                    _set_cell(hb, port, "vlan_mode", value)
                else:
                    raise NotApplicable(f"ovs-vsctl set port column {col}")
        elif verb == "clear":
            for col in rest:
                _set_cell(hb, port, col, _ovsdb_set([]))
        elif verb == "add" and rest[0] == "trunks":
            now = _cell_values(row[heading.index("trunks")])
            new = sorted({*now, *(int(v) for v in rest[1:])})
            _set_cell(hb, port, "trunks", _ovsdb_set(new))
        else:
            raise NotApplicable("ovs-vsctl " + shlex.join(cmd))
        reload(hb)


BOOLEAN = {"true": True, "false": False}


def _set_bridge(hb: HostBundle, bridge: str, pairs: list[str]) -> None:
    for pair in pairs:
        col, _, value = pair.partition("=")
        if col not in ("stp_enable", "rstp_enable") or value not in BOOLEAN:
            raise NotApplicable(f"ovs-vsctl set bridge {bridge} {pair}")
        heading, rows = hb.ovs_rows("Bridge")
        (row,) = [r for r in rows if r[heading.index("name")] == bridge]
        if row[heading.index(col)] != BOOLEAN[value]:
            hb.edit_ovs_row("Bridge", bridge, col, BOOLEAN[value])
            reload(hb)
    heading, rows = hb.ovs_rows("Bridge")
    (row,) = [r for r in rows if r[heading.index("name")] == bridge]
    if row[heading.index("stp_enable")] or row[heading.index("rstp_enable")]:
        return
    # Both off: OVS drops the spanning-tree keys from the bridge's ports.
    ports = {_uuid(ref) for ref in _cell_values(row[heading.index("ports")])}

    def drop_stp(doc: Any) -> None:
        h = doc["headings"]
        for r in doc["data"]:
            if _uuid(r[h.index("_uuid")]) not in ports:
                continue
            for col, prefix in (("status", "stp_"), ("rstp_status", "rstp_")):
                if col in h and isinstance(r[h.index(col)], list):
                    kept = [kv for kv in r[h.index(col)][1] if not kv[0].startswith(prefix)]
                    r[h.index(col)] = ["map", kept]

    doc = json.loads(hb.text("ovs-Port"))
    drop_stp(doc)
    if doc != json.loads(hb.text("ovs-Port")):
        hb.edit_json("ovs-Port", drop_stp)
        reload(hb)


def _uuid(ref: Any) -> str:
    return str(ref[1]) if isinstance(ref, list) and ref and ref[0] == "uuid" else str(ref)


def _set_mtu(hb: HostBundle, dev: str, mtu: int) -> None:
    def change(doc: Any) -> None:
        (link,) = [x for x in doc if x.get("ifname") == dev]
        link["mtu"] = mtu

    hb.edit_json("links", change)
    reload(hb)
    heading, rows = hb.ovs_rows("Interface")
    if "mtu" not in heading:
        return
    now = [r[heading.index("mtu")] for r in rows if r[heading.index("name")] == dev]
    if now and now != [mtu]:
        hb.edit_ovs_row("Interface", dev, "mtu", mtu)
        reload(hb)


def _promisc_on(hb: HostBundle, dev: str) -> None:
    def change(doc: Any) -> None:
        (link,) = [x for x in doc if x.get("ifname") == dev]
        if "PROMISC" not in link["flags"]:
            link["flags"].append("PROMISC")
        link["promiscuity"] = max(1, int(link.get("promiscuity", 0)))

    hb.edit_json("links", change)


def _vf_settings(hb: HostBundle, pf: str, vf: int, settings: list[str]) -> None:
    """``ip link set PF vf N spoofchk on|off trust on|off`` (ip-link(8)) on the PF's
    ``vfinfo_list`` entry, as ``ip -d -j link`` shows it afterwards."""
    if len(settings) % 2 or any(k not in ("spoofchk", "trust") for k in settings[::2]):
        raise NotApplicable(f"ip link set {pf} vf {vf} {' '.join(settings)}")

    def change(doc: Any) -> None:
        (link,) = [x for x in doc if x.get("ifname") == pf]
        (entry,) = [v for v in link["vfinfo_list"] if v["vf"] == vf]
        for key, value in zip(settings[::2], settings[1::2], strict=True):
            entry[key] = {"on": True, "off": False}[value]

    hb.edit_json("links", change)


def _remove_package(hb: HostBundle, pkg: str) -> None:
    # apt-get remove (not purge) leaves the configuration files: dpkg-query then reports
    # "deinstall ok config-files" for it (dpkg-query(1), --showformat ${Status}).
    hb.edit(
        "packages",
        lambda t: re.sub(
            rf"(?m)^{re.escape(pkg)}\t0\t.*$", f"{pkg}\t0\tdeinstall ok config-files", t
        ),
    )


VLAN_XML = re.compile(r"<vlan><tag id='(\d+)'/></vlan>$")
FILTER_XML = re.compile(r"remove <filterref filter='([^']*)'/>$")
PCI_XML = re.compile(r"(<address type='pci'[^>]*/>)$")


CONTROLLER_NOTE = re.compile(
    r"copy \S+'s <controller type='pci' index='(\d+)' model='[^']*'> with "
    r"(<target chassis='\d+' port='0x[0-9a-f]+'/>) at PCI address "
    r"([0-9a-f]{4}):([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])$"
)


def _copy_controller(
    hb: HostBundle, domain: str, index: str, target: str, dom: str, bus: str, slot: str, fn: str
) -> None:
    address = (
        f"<address type='pci' domain='0x{dom}' bus='0x{bus}' slot='0x{slot}' function='0x{fn}'/>"
    )
    block = re.compile(
        rf"    <controller type='pci' index='{index}'[^>]*>\n.*?    </controller>\n", re.S
    )

    def edit(xml: str) -> str:
        (m,) = list(block.finditer(xml))
        b = re.sub(r"<target [^>]*/>", target, m.group(0))
        b = re.sub(r"<address type='pci'[^>]*/>", address, b)
        return xml[: m.start()] + b + xml[m.end() :]

    hb.edit_domain(domain, edit)
    reload(hb)


def _virsh(d: Path, argv: list[str], note: str, where: str | None) -> None:
    if argv[1:2] != ["edit"] or len(argv) != 3:
        raise NotApplicable(shlex.join(argv))
    domain = argv[2]
    if c := CONTROLLER_NOTE.search(html.unescape(note)):
        hosts = [host(d, where)] if where else _hosts_with_domain(d, domain)
        _copy_controller(hosts[0], domain, *c.groups())
        return
    m = re.search(r"NIC ([0-9a-f:]{17}): (.*)$", note)
    if m is None:
        raise NotApplicable(f"virsh edit {domain}: no NIC named in {note!r}")
    mac, fragment = m.group(1), html.unescape(m.group(2))
    hosts = [host(d, where)] if where else _hosts_with_domain(d, domain)
    if len(hosts) != 1:
        raise NotApplicable(f"virsh edit {domain}: on which host of {hosts}")
    if v := VLAN_XML.search(fragment):
        tag = f"      <vlan>\n        <tag id='{v.group(1)}'/>\n      </vlan>\n"

        def block_edit(b: str) -> str:
            b = re.sub(r"      <vlan>\n.*?      </vlan>\n", "", b, flags=re.S)
            return b.replace("    </interface>\n", tag + "    </interface>\n")
    elif f := FILTER_XML.search(fragment):

        def block_edit(b: str) -> str:
            return re.sub(rf"\s*<filterref filter='{re.escape(f.group(1))}'(/>|>.*?</filterref>)",
                          "", b, flags=re.S)  # fmt: skip
    elif p := PCI_XML.search(fragment):

        def block_edit(b: str) -> str:
            return re.sub(r"<address type='pci'[^>]*/>", p.group(1), b)
    else:
        raise NotApplicable(f"virsh edit {domain}: fragment {fragment!r}")
    hb = hosts[0]
    # The persistent definition, and the live XML as it reads after the domain's next start.
    hb.edit_domain(domain, edit_nic(mac, block_edit))
    reload(hb)
