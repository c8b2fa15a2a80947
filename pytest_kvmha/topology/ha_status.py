"""A member's own HA status as the checks ask for it: read over its console, or why not."""

from __future__ import annotations

from pytest_kvmha.config.names import firewall_key
from pytest_kvmha.facts.ha_status import HaStatus
from pytest_kvmha.model import MissingFacts
from pytest_kvmha.topology.cluster import Member


def member_ha_status(member: Member) -> HaStatus | None:
    """What the member's console reported (``get system ha status``, cOS Core ``ha``); None when
    the inventory declares no console for it (a saved ``config`` holds no run-time state).
    Raises MissingFacts when a console is declared and its status was not read or understood."""
    spec = member.spec
    if spec.console is None:
        return None
    found = member.host.ha_status.get(firewall_key(spec.domain))
    if found is None:
        if member.host.status != "ok":
            raise MissingFacts(member.host.error or f"{member.host.name}: {member.host.status}")
        raise MissingFacts(
            f"{spec.domain} on {member.host.name}: the HA status of console {spec.console} is "
            "not in the evidence bundle (recorded before the status was read?)"
        )
    if found.problem is not None or found.status is None:
        raise MissingFacts(found.problem or f"{spec.domain}: no HA status facts")
    return found.status
