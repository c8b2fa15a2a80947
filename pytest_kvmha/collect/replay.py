"""A recorded bundle read back as a host's collection (``replay://DIR/<host>``)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from pytest_kvmha.bundle.store import BundleError, EvidenceBundle, now_stamp
from pytest_kvmha.config.redact import redact
from pytest_kvmha.config.target import HostTarget


def replay(target: HostTarget) -> EvidenceBundle:
    parts = urlsplit(target.spec)
    directory = Path(parts.netloc + parts.path)
    try:
        bundle = EvidenceBundle.read(directory)
    except BundleError as exc:
        return EvidenceBundle(
            target.name, redact(target.spec), "replay", now_stamp(), status="error", error=str(exc)
        )
    bundle.host = target.name
    bundle.spec = redact(target.spec)
    return bundle
