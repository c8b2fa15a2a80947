"""A member's own HA status as the checks ask for it: read over its console, or why not."""

from __future__ import annotations

from pytest_kvmha.config.names import firewall_key
from pytest_kvmha.facts.ha_status import HaStatus
from pytest_kvmha.topology.cluster import Member, require_read


def member_ha_status(member: Member) -> HaStatus | None:
    """What the member's console reported (``get system ha status``, cOS Core ``ha``); None when
    the inventory declares no console for it (a saved ``config`` holds no run-time state).
    Raises MissingFacts when a console is declared and its status was not read or understood."""
    if member.spec.console is None:
        return None
    found = member.host.ha_status.get(firewall_key(member.spec.domain))
    what = f"HA status (console {member.spec.console})"
    return require_read(member, found, what, lambda f: f.status)
