"""The trace phase: ONE more round trip per host holding ports of audited clusters, running
``ofproto/trace`` for each planned (key, bridge, flow) and ``dpif/show`` (see
:mod:`pytest_kvmha.topology.traceplan` for the plan, :mod:`pytest_kvmha.parse.trace` for the
reading)."""

from __future__ import annotations

import secrets
import time

from pytest_kvmha.bundle.contract import (
    BRIDGE_NAME,
    DPIF_SECTION,
    FLOW,
    MKTEMP,
    TRACE_KEY,
    TRACE_PREFIX,
)
from pytest_kvmha.bundle.store import EvidenceBundle
from pytest_kvmha.collect.framing import BatchOutputError, host_text, not_utf8, split_sections
from pytest_kvmha.collect.script import trace_script
from pytest_kvmha.collect.transport import (
    failure_reason,
    remote_command,
    run_retrying,
    testinfra_host,
)
from pytest_kvmha.config.redact import redact
from pytest_kvmha.config.target import CollectOptions, HostTarget


def trace_arguments(specs: list[tuple[str, str, str]]) -> list[str]:
    """(key, bridge, flow) triples as the script's positional arguments, each validated."""
    args: list[str] = []
    for key, bridge, flow in specs:
        if not (
            TRACE_KEY.fullmatch(key) and BRIDGE_NAME.fullmatch(bridge) and FLOW.fullmatch(flow)
        ):
            raise ValueError(f"refusing to trace {bridge!r} {flow!r}: not a plain bridge/flow")
        args += [key, bridge, flow]
    return args


def collect_traces(
    bundle: EvidenceBundle,
    target: HostTarget,
    options: CollectOptions,
    specs: list[tuple[str, str, str]],
) -> None:
    """Run ``ofproto/trace`` for each (key, bridge, flow) and ``dpif/show`` on the host, in one
    round trip, adding sections ``trace-dpif`` and ``trace/<key>`` to ``bundle``. Never raises:
    what could not be traced stays missing, and the trace check reports it as an error."""
    t0 = time.monotonic()
    try:
        args = trace_arguments(specs)
        boundary = secrets.token_hex(12)
        command = remote_command(trace_script(boundary, options.timeout), options.timeout, *args)
        host = testinfra_host(target.spec, options)
        result, _ = run_retrying(host, command, bundle, t0 + options.timeout)
    except Exception as exc:  # unreachable now, timeout, refused argument: the check errs
        bundle.round_trips += 1
        bundle.commands.append(
            {"command": "sh -c <trace script>", "rc": None, "error": redact(failure_reason(exc))}
        )
        return
    bundle.round_trips += 1
    bundle.commands.append(
        {
            "command": "sh -c <trace script>",
            "rc": result.rc,
            "traces": len(specs),
            "seconds": round(time.monotonic() - t0, 3),
        }
    )
    try:
        sections = split_sections(host_text(result.stdout_bytes), boundary)
    except BatchOutputError:
        return
    sections.pop(MKTEMP, None)
    bundle.sections.update(
        {
            k: v
            for k, v in not_utf8(sections).items()
            if k == DPIF_SECTION or k.startswith(TRACE_PREFIX)
        }
    )
