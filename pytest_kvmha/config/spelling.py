"""Did-you-mean for names the inventory gives and a host does not have (a domain, a bridge).

A typo in the inventory must read as a typo: the finding lists what the host has, names the
close match, and its remediation corrects the inventory instead of creating the misspelt thing.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

SHOWN = 8  # names listed before "and N more"


def close_match(name: str, candidates: Iterable[str]) -> str | None:
    """The one candidate ``name`` is most likely a misspelling of, or None."""
    found = difflib.get_close_matches(name, [c for c in candidates if c != name], n=1, cutoff=0.75)
    return found[0] if found else None


def listing(candidates: Iterable[str]) -> str:
    """``a, b, c`` (sorted, at most :data:`SHOWN`, then ``and N more``), or ``none``."""
    names = sorted(set(candidates))
    if not names:
        return "none"
    more = len(names) - SHOWN
    return ", ".join(names[:SHOWN]) + (f" and {more} more" if more > 0 else "")


def has(owner: str, kind: str, candidates: Iterable[str], name: str) -> str:
    """``kvm-b has domains fw-a, fw-b: did you mean fw-b?`` for a ``name`` it lacks."""
    names = list(candidates)
    match = close_match(name, names)
    text = f"{owner} has {kind}s {listing(names)}" if names else f"{owner} has no {kind}"
    return text + (f": did you mean {match}?" if match else "")
