"""The namespace lab's one exception."""

from __future__ import annotations


class LabError(RuntimeError):
    """A lab operation failed (a command on a lab host, a daemon that did not come up, ...)."""
