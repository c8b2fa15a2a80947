"""Open vSwitch's database (``ovs-vsctl --format=json list TABLE``) as frozen facts. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from types import MappingProxyType
from typing import Any

from pytest_kvmha.bundle.contract import OVS_COLUMNS, OVS_LATER_COLUMNS
from pytest_kvmha.bundle.store import Section
from pytest_kvmha.facts.host import OvsBridge, OvsInterface, OvsPort, OvsState
from pytest_kvmha.parse.bonds import build_bonds
from pytest_kvmha.parse.evidence import FactError, load_json, present, refuse_control_chars, show

# Cells follow RFC 7047: an atom (string, integer, real, boolean, ["uuid", x]), ["set", [atoms]]
# (a one-member set may be the bare atom) or ["map", [[atom, atom], ...]]. Anything else, and any
# column of the wrong type for its schema (ovs-vswitchd.conf.db(5)), is damaged evidence: the
# whole OVS section becomes a problem naming table, row and column, never a silently empty value.

VLAN_MODES = frozenset({"access", "trunk", "native-tagged", "native-untagged", "dot1q-tunnel"})


class _Uuid(str):
    """A uuid atom (``["uuid", x]``), told apart from a plain string of the same text."""

    __slots__ = ()


class _CellError(ValueError):
    """A cell that is not OVSDB JSON; the caller names table, row and column."""


def _scalar(cell: Any) -> Any:
    if isinstance(cell, (str, int, float)):  # bool is an int: the typed getters tell them apart
        return cell
    if (
        isinstance(cell, list)
        and len(cell) == 2
        and cell[0] in ("uuid", "named-uuid")
        and isinstance(cell[1], str)
    ):
        return _Uuid(cell[1])
    raise _CellError(f"not an OVSDB atom: {show(cell)}")


def _atom(cell: Any) -> Any:
    """Decode an OVSDB JSON cell: ["uuid", x] -> x, ["set", [...]] -> list, ["map", ...] -> dict."""
    if isinstance(cell, list) and len(cell) == 2 and cell[0] == "set":
        if not isinstance(cell[1], list):
            raise _CellError(f"malformed set: {show(cell)}")
        return [_scalar(v) for v in cell[1]]
    if isinstance(cell, list) and len(cell) == 2 and cell[0] == "map":
        pairs = cell[1]
        if not isinstance(pairs, list) or not all(
            isinstance(p, list) and len(p) == 2 for p in pairs
        ):
            raise _CellError(f"malformed map: {show(cell)}")
        out: dict[Any, Any] = {}
        for key, value in pairs:
            k = _scalar(key)
            if k in out:
                raise _CellError(f"map key {show(k)} appears twice")
            out[k] = _scalar(value)
        return out
    return _scalar(cell)


def _ovs_rows(
    text: str, what: str
) -> tuple[list[str], list[tuple[dict[str, Any], dict[str, Any]]]]:
    """The headings, and the (decoded, raw) cells of each row by heading."""
    doc = load_json(text, what)
    if (
        not isinstance(doc, dict)
        or not isinstance(doc.get("headings"), list)
        or not isinstance(doc.get("data"), list)
    ):
        raise FactError(f"{what}: expected {{'headings': [...], 'data': [...]}}")
    headings = doc["headings"]
    if not all(isinstance(h, str) for h in headings) or len(set(headings)) != len(headings):
        raise FactError(f"{what}: headings must be distinct column names: {show(headings)}")
    rows = []
    for number, row in enumerate(doc["data"], 1):
        if not isinstance(row, list) or len(row) != len(headings):
            raise FactError(f"{what}: row {number} does not match headings")
        raw = dict(zip(headings, row, strict=True))
        decoded = {}
        for h, cell in raw.items():
            try:
                decoded[h] = _atom(cell)
            except _CellError as exc:
                raise FactError(f"{what}: row {number}, column {h!r}: {exc}") from None
        rows.append((decoded, raw))
    return headings, rows


def parse_ovs_table(text: str, what: str) -> list[dict[str, Any]]:
    return [decoded for decoded, _ in _ovs_rows(text, what)[1]]


class _OvsRow:
    """One row of an OVS table; each getter checks its column's type and names where it broke."""

    def __init__(self, what: str, number: int, cells: dict[str, Any], raw: dict[str, Any]) -> None:
        self.what, self.number, self.cells, self.raw = what, number, cells, raw

    def error(self, column: str, problem: str) -> FactError:
        name = self.cells.get("name")
        label = f" ({show(name)})" if type(name) is str else ""
        return FactError(f"{self.what}: row {self.number}{label}: column {column!r}: {problem}")

    def _get(self, column: str) -> Any:
        if column not in self.cells:
            raise self.error(column, "missing")
        return self.cells[column]

    def _bad(self, column: str, expected: str) -> FactError:
        return self.error(column, f"expected {expected}, found {show(self.raw[column])}")

    def _optional(self, column: str) -> Any:
        value = self._get(column)
        if isinstance(value, list):
            if len(value) > 1:
                raise self._bad(column, "at most one value")
            return value[0] if value else None
        return value

    def uuid(self, column: str = "_uuid") -> str:
        value = self._get(column)
        if not isinstance(value, _Uuid) or not value:
            raise self._bad(column, "a uuid")
        return str(value)

    def string(self, column: str) -> str:
        value = self._get(column)
        if type(value) is not str:
            raise self._bad(column, "a string")
        return value

    def optional_string(self, column: str) -> str | None:
        value = self._optional(column)
        if value is not None and type(value) is not str:
            raise self._bad(column, "a string or nothing")
        return value

    def optional_int(self, column: str, low: int, high: int) -> int | None:
        value = self._optional(column)
        if value is not None and (type(value) is not int or not low <= value <= high):
            raise self._bad(column, f"an integer {low}..{high} or nothing")
        return value

    def integer(self, column: str, low: int, high: int) -> int:
        value = self._get(column)
        if type(value) is not int or not low <= value <= high:
            raise self._bad(column, f"an integer {low}..{high}")
        return value

    def int_set(self, column: str, low: int, high: int) -> tuple[int, ...]:
        value = self._get(column)
        values = value if isinstance(value, list) else [value]
        if any(type(v) is not int or not low <= v <= high for v in values):
            raise self._bad(column, f"a set of integers {low}..{high}")
        return tuple(sorted(set(values)))

    def uuid_set(self, column: str) -> tuple[str, ...]:
        value = self._get(column)
        values = value if isinstance(value, list) else [value]
        if not all(isinstance(v, _Uuid) and v for v in values):
            raise self._bad(column, "a set of uuids")
        return tuple(str(v) for v in values)

    def known(self, column: str) -> bool:
        """Whether ``column`` was collected (a column added later may be absent)."""
        return column in self.cells

    def boolean(self, column: str) -> bool:
        value = self._get(column)
        if type(value) is not bool:
            raise self._bad(column, "true or false")
        return value

    def str_map(self, column: str) -> Mapping[str, str]:
        value = self._get(column)
        if not isinstance(value, dict) or not all(
            type(k) is str and type(v) is str for k, v in value.items()
        ):
            raise self._bad(column, "a map of strings")
        return MappingProxyType(dict(value))


def _ovs_table(sec: Section, table: str) -> tuple[list[str], list[_OvsRow]]:
    """A table's rows, each with a distinct ``_uuid`` and (where it has one) a distinct name."""
    what = f"ovs-{table}"
    headings, cells = _ovs_rows(sec.stdout, what)
    later = OVS_LATER_COLUMNS.get(table, ())
    missing = [c for c in OVS_COLUMNS[table] if c not in headings and c not in later]
    if missing:  # even in an empty table: the output is not what was asked for
        raise FactError(f"{what}: column {', '.join(map(repr, missing))} missing from the headings")
    rows = [_OvsRow(what, n, c, r) for n, (c, r) in enumerate(cells, 1)]
    seen: dict[str, int] = {}
    names: dict[str, int] = {}
    for row in rows:
        uuid = row.uuid()
        if uuid in seen:
            raise row.error("_uuid", f"{uuid} is also row {seen[uuid]}")
        seen[uuid] = row.number
        if table != "Open_vSwitch":
            name = row.string("name")
            if name in names:  # OVS keeps names unique per table
                raise row.error("name", f"{show(name)} is also row {names[name]}")
            names[name] = row.number
    return headings, rows


def build_ovs(sections: Mapping[str, Section]) -> OvsState:
    version_sec = present(sections, "ovs-version")
    if version_sec is None:
        raise FactError("ovs-version: section missing from bundle")
    if version_sec.rc == 127 or (version_sec.rc != 0 and "not found" in version_sec.stderr):
        return OvsState(False, False, False, None, (), problem="ovs-vsctl: command not found")
    version = version_sec.stdout.strip().splitlines()[0] if version_sec.stdout.strip() else None
    vswitchd = present(sections, "ovs-vswitchd")
    vswitchd_ok = vswitchd is not None and vswitchd.rc == 0
    tables: dict[str, list[_OvsRow]] = {}
    headings: dict[str, list[str]] = {}
    for table in ("Open_vSwitch", "Bridge", "Port", "Interface"):
        sec = present(sections, f"ovs-{table}")
        if sec is None:
            raise FactError(f"ovs-{table}: section missing from bundle")
        if sec.rc != 0:
            return OvsState(
                True,
                False,
                vswitchd_ok,
                version,
                (),
                problem=f"ovs-vsctl list {table} failed (rc {sec.rc}): {sec.stderr.strip()}",
            )
        headings[table], tables[table] = _ovs_table(sec, table)
    ifaces = {}
    for row in tables["Interface"]:
        row.optional_string("mac_in_use")  # not used, but a damaged row is damaged evidence
        uuid = row.uuid()
        ifaces[uuid] = OvsInterface(
            name=row.string("name"),
            uuid=uuid,
            type=row.string("type"),
            options=row.str_map("options"),
            external_ids=row.str_map("external_ids"),
            ofport=row.optional_int("ofport", -1, 65535),
            error=row.optional_string("error"),
            mtu=row.optional_int("mtu", 0, 2**31 - 1) if row.known("mtu") else None,
            mtu_request=(
                row.optional_int("mtu_request", 1, 2**31 - 1) if row.known("mtu_request") else None
            ),
        )
    ports: dict[str, OvsPort] = {}
    for row in tables["Port"]:
        members = []
        for u in row.uuid_set("interfaces"):
            if u not in ifaces:
                raise row.error("interfaces", f"names unknown interface {u}")
            members.append(ifaces[u])
        vlan_mode = row.optional_string("vlan_mode")
        if vlan_mode is not None and vlan_mode not in VLAN_MODES:
            raise row.error("vlan_mode", f"unknown VLAN mode {show(vlan_mode)}")
        uuid = row.uuid()
        ports[uuid] = OvsPort(
            name=row.string("name"),
            uuid=uuid,
            bridge=None,  # set below, from the bridge that lists it
            tag=row.optional_int("tag", 0, 4095),
            trunks=row.int_set("trunks", 0, 4095),
            vlan_mode=vlan_mode,
            interfaces=tuple(members),
            other_config=row.str_map("other_config") if row.known("other_config") else None,
            status=row.str_map("status") if row.known("status") else None,
            rstp_status=row.str_map("rstp_status") if row.known("rstp_status") else None,
            bond_mode=row.optional_string("bond_mode") if row.known("bond_mode") else None,
            lacp=row.optional_string("lacp") if row.known("lacp") else None,
        )
    bridges = []
    for row in tables["Bridge"]:
        name = row.string("name")
        bports = []
        for u in row.uuid_set("ports"):
            if u not in ports:
                raise row.error("ports", f"names unknown port {u}")
            bports.append(replace(ports[u], bridge=name))
        bridges.append(
            OvsBridge(
                name=name,
                uuid=row.uuid(),
                datapath_type=row.string("datapath_type") or "system",
                ports=tuple(sorted(bports, key=lambda p: p.name)),
                stp_enable=row.boolean("stp_enable") if row.known("stp_enable") else None,
                rstp_enable=row.boolean("rstp_enable") if row.known("rstp_enable") else None,
                other_config=row.str_map("other_config") if row.known("other_config") else None,
            )
        )
    refuse_control_chars("ovs", bridge=bridges)
    if len(tables["Open_vSwitch"]) > 1:
        raise FactError("ovs-Open_vSwitch: more than one row in a table that has one")
    cfg = tables["Open_vSwitch"][0] if tables["Open_vSwitch"] else None
    if cfg is not None:
        cfg.optional_string("ovs_version")
        cur_cfg = cfg.integer("cur_cfg", 0, 2**63 - 1)
        next_cfg = cfg.integer("next_cfg", 0, 2**63 - 1)
    problem = None
    if not vswitchd_ok:
        detail = vswitchd.stderr.strip() if vswitchd is not None else "section missing"
        problem = f"ovs-vswitchd does not answer: {detail}"
    elif cfg is not None and cur_cfg != next_cfg:
        problem = (
            f"ovs-vswitchd has not applied the database (cur_cfg {cur_cfg} != next_cfg {next_cfg})"
        )
    missing = tuple(
        f"{table}.{column}"
        for table, columns in OVS_LATER_COLUMNS.items()
        for column in columns
        if column not in headings[table]
    )
    try:
        bonds, bonds_problem = build_bonds(sections), None
    except FactError as exc:
        bonds, bonds_problem = None, str(exc)
    return OvsState(
        installed=True,
        db_answers=True,  # every table above was listed
        vswitchd_answers=vswitchd_ok,
        version=version,
        bridges=tuple(sorted(bridges, key=lambda b: b.name)),
        problem=problem,
        missing_columns=missing,
        bonds=bonds,
        bonds_problem=bonds_problem,
    )
