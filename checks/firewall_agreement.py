"""What KVMHA-FW-002 compares between the members of one cluster: FGCP's ``config system ha``
keys (each at its firmware default where ``show`` left it out, the heartbeat interval in
milliseconds) and cOS Core's HighAvailability object. Pure; no checks here.
"""

from __future__ import annotations

from collections.abc import Callable

from pytest_kvmha.facts.firewall import CosHaFacts, FgcpFacts
from pytest_kvmha.topology import Member
from pytest_kvmha.vendors import fortigate


def show(value: object) -> str:
    """A value taken from a firewall's configuration, safe to put in a message."""
    text = str(value)
    if not text.isprintable() or len(text) > 80:
        return repr(text[:80])
    return text


def _hbdev(f: FgcpFacts) -> str | None:
    return " ".join(f'"{h.interface}"' for h in f.hbdev) or None


def _hb_interval_ms(f: FgcpFacts) -> int:
    """The heartbeat interval in ms: hb-interval in units of hb-interval-in-milliseconds, each
    at its firmware default when not shown (2 x 100 ms)."""
    unit = fortigate.HB_INTERVAL_UNITS_MS[f.hb_interval_unit or fortigate.DEFAULT_HB_INTERVAL_UNIT]
    return (f.hb_interval if f.hb_interval is not None else fortigate.DEFAULT_HB_INTERVAL) * unit


def _fgcp_fields() -> tuple[tuple[str, Callable[[FgcpFacts], object]], ...]:
    """The keys both members must agree on, each at its firmware default when ``show`` left it
    out, so that ``show`` and ``show full-configuration`` of one setup compare equal."""
    return (
        (
            "group-id",
            lambda f: f.group_id if f.group_id is not None else fortigate.DEFAULT_GROUP_ID,
        ),
        ("group-name", lambda f: f.group_name),
        ("mode", lambda f: f.mode),
        ("hbdev", _hbdev),
        ("unicast-hb", lambda f: "enable" if f.unicast_hb else "disable"),
        ("hb-interval (ms)", _hb_interval_ms),
        *(
            (key, lambda f, key=key, default=default: f.eth_types.get(key, default))
            for key, default in fortigate.DEFAULT_ETH_TYPES.items()
        ),
    )


def _shown(key: str, value: object) -> str:
    if key.endswith("eth-type") and isinstance(value, int):
        return f"{value:04x}"
    return show(value)


def _hbdev_priorities(members: list[tuple[Member, FgcpFacts]]) -> list[str]:
    """Priorities of one heartbeat interface, compared where both members give one."""
    problems = []
    given: dict[str, dict[str, int]] = {}
    for m, f in members:
        for h in f.hbdev:
            if h.priority is not None:
                given.setdefault(h.interface, {})[m.label] = h.priority
    for name, prios in given.items():
        if len(set(prios.values())) > 1:
            shown = ", ".join(f"{label} {p}" for label, p in prios.items())
            problems.append(f"hbdev priority of {show(name)} differs: {shown}")
    return problems


def _lost_threshold(members: list[tuple[Member, FgcpFacts]]) -> list[str]:
    """hb-lost-threshold: the documented default is 6 or 20 (it differs by model and release),
    so a value left out agrees with a shown 6 or 20, and shown values are compared as shown."""
    shown = {m.label: f.hb_lost_threshold for m, f in members}
    values = {v for v in shown.values() if v is not None}
    defaults = set(fortigate.DEFAULT_HB_LOST_THRESHOLDS)
    if len(values) > 1 or (None in shown.values() and values and not values <= defaults):
        text = ", ".join(
            f"{label} {v if v is not None else '(not shown: default 6 or 20)'}"
            for label, v in shown.items()
        )
        return [f"hb-lost-threshold differs: {text}"]
    return []


def fgcp_agreement(members: list[tuple[Member, FgcpFacts]]) -> list[str]:
    problems = []
    for m, f in members:
        if not f.ha_section:
            problems.append(f"{m.label} has no 'config system ha'")
        elif f.mode in (None, "standalone"):
            problems.append(f"{m.label} is in mode standalone (not an HA cluster member)")
    for key, get in _fgcp_fields():
        values = {m.label: get(f) for m, f in members}
        if len(set(values.values())) > 1:
            shown = ", ".join(
                f"{label} {_shown(key, v) if v is not None else '(not shown: default)'}"
                for label, v in values.items()
            )
            problems.append(f"{key} differs: {shown}")
    return problems + _hbdev_priorities(members) + _lost_threshold(members)


def cos_agreement(members: list[tuple[Member, CosHaFacts]]) -> list[str]:
    problems = []
    ids = {m.label: f.cluster_id for m, f in members}
    if None in ids.values():
        problems.append(
            "cluster ID not shown for " + ", ".join(k for k, v in ids.items() if v is None)
        )
    elif len(set(ids.values())) > 1:
        problems.append("cluster ID differs: " + ", ".join(f"{k} {v}" for k, v in ids.items()))
    roles = sorted((f.role or "no role") for _, f in members)
    if roles != ["master", "slave"]:
        problems.append(
            "not one master and one slave: "
            + ", ".join(f"{m.label} {f.role or 'no role'}" for m, f in members)
        )
    syncs = {m.label: f.sync_interface for m, f in members}
    if None in syncs.values():
        problems.append(
            "sync interface not shown for " + ", ".join(k for k, v in syncs.items() if v is None)
        )
    elif len(set(syncs.values())) > 1:
        problems.append(
            "sync interface differs: " + ", ".join(f"{k} {show(v)}" for k, v in syncs.items())
        )
    for m, f in members:
        if f.enabled is False:
            problems.append(f"HA is not enabled on {m.label}")
    return problems
