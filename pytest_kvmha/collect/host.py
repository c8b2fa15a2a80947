"""Collect one host: the only code in pytest-kvmha that talks to hosts, with the firewall
console collector (:mod:`pytest_kvmha.collect.firewall`).

Every shell-level fact of a host (packages, Open vSwitch JSON, links, libvirt XML) comes back from
ONE remote command, the fixed batch script of :mod:`pytest_kvmha.collect.script`; libvirt may be
read through libvirt-python instead, and a local host's links through netlink.
"""

from __future__ import annotations

import secrets
import time
from urllib.parse import urlsplit

from pytest_kvmha.bundle.contract import BOUNDARY_PREFIX, MKTEMP
from pytest_kvmha.bundle.store import EvidenceBundle, now_stamp
from pytest_kvmha.collect.firewall import collect_firewalls
from pytest_kvmha.collect.framing import (
    BatchOutputError,
    host_text,
    not_utf8,
    split_ovs_tables,
    split_sections,
    unbatch,
)
from pytest_kvmha.collect.libvirt import collect_libvirt
from pytest_kvmha.collect.netlink import collect_links_netlink
from pytest_kvmha.collect.replay import replay
from pytest_kvmha.collect.script import batch_script
from pytest_kvmha.collect.transport import (
    UNREACHABLE_RC,
    CollectTimeout,
    failure_reason,
    remote_command,
    run_retrying,
    testinfra_host,
)
from pytest_kvmha.config.hosts import check_virsh_uri
from pytest_kvmha.config.redact import redact
from pytest_kvmha.config.target import CollectOptions, HostTarget


def collect(target: HostTarget, options: CollectOptions) -> EvidenceBundle:
    """Collect one host's evidence bundle. Never raises: failures become the bundle's status."""
    started = time.monotonic()
    scheme = urlsplit(target.spec).scheme
    firewalls = collect_firewalls(target, options)
    if scheme == "replay":
        bundle = replay(target)
        firewalls.finish(bundle)
        return bundle
    # The bundle (and so every report and recording) only ever holds the redacted spec.
    bundle = EvidenceBundle(target.name, redact(target.spec), scheme or "local", now_stamp())
    try:
        _collect_shell(bundle, target, options)
        if target.libvirt_uri:
            collect_libvirt(bundle, target.libvirt_uri, secure=options.secure)
        if scheme in ("local", ""):
            collect_links_netlink(bundle)
    except Exception as exc:  # a broken host must not stop the audit of the others
        if bundle.status == "ok":
            bundle.status = "error"
            bundle.error = f"{target.name}: collection failed: {type(exc).__name__}: {exc}"
    firewalls.finish(bundle)
    if bundle.error:
        bundle.error = redact(bundle.error)
    bundle.seconds = time.monotonic() - started
    return bundle


def _collect_shell(bundle: EvidenceBundle, target: HostTarget, options: CollectOptions) -> None:
    scheme = urlsplit(target.spec).scheme
    boundary = secrets.token_hex(12)
    script = batch_script(
        boundary,
        skip_links=scheme in ("local", ""),
        skip_virsh=bool(target.libvirt_uri),
        secure=options.secure,
        timeout=options.timeout,
    )
    # the pinned virsh URI is an argument of the fixed script ($1), validated and quoted
    args = (check_virsh_uri(target.virsh_uri),) if target.virsh_uri else ()
    command = remote_command(script, options.timeout, *args)
    host = testinfra_host(target.spec, options)
    t0 = time.monotonic()
    try:
        result, refused = run_retrying(host, command, bundle, t0 + options.timeout)
    except CollectTimeout as exc:
        bundle.round_trips += 1
        bundle.status = "unreachable"
        bundle.error = f"{target.name}: {exc}"
        return
    except Exception as exc:
        bundle.round_trips += 1
        bundle.status = "unreachable"
        bundle.error = f"{target.name}: cannot run commands: {failure_reason(exc)}"
        return
    bundle.round_trips += 1
    bundle.commands.append(
        {
            "command": "sh -c <batch script>",
            "rc": result.rc,
            "seconds": round(time.monotonic() - t0, 3),
        }
    )
    stdout = host_text(result.stdout_bytes)
    if f"{BOUNDARY_PREFIX}{boundary} BEGIN" not in stdout:
        reason = host_text(result.stderr_bytes).strip().splitlines()
        why = reason[-1] if reason else f"exit status {result.rc}"
        if refused is not None and bundle.retries:
            why = f"{refused} (after {len(bundle.retries)} retries)"
        status = "unreachable" if result.rc == UNREACHABLE_RC or not stdout else "error"
        bundle.status, bundle.error = status, f"{target.name}: {why}"
        return
    try:
        raw = split_ovs_tables(split_sections(stdout, boundary))
        bundle.sections.update(not_utf8(unbatch(raw, boundary)))
    except BatchOutputError as exc:
        bundle.status, bundle.error = "error", f"{target.name}: {exc}"
        return
    tmp = bundle.sections.pop(MKTEMP, None)
    if tmp is not None:  # the script could not make its private directory: nothing was read
        bundle.status = "error"
        bundle.error = f"{target.name}: collector cannot run: {tmp.stderr.strip()}"
