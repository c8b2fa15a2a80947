"""Many hosts at once: a bounded pool of collecting threads, each host within its deadline."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from pytest_kvmha.bundle.store import EvidenceBundle, now_stamp
from pytest_kvmha.collect.host import collect
from pytest_kvmha.collect.transport import KILL_AFTER
from pytest_kvmha.config.redact import redact
from pytest_kvmha.config.target import CollectOptions, HostTarget

Collect = Callable[[HostTarget, CollectOptions], EvidenceBundle]
# progress(done, total, unreachable): called once per host as its bundle arrives
Progress = Callable[[int, int, int], None]
# on_bundle(index, bundle): called once per host as its bundle arrives, in the collecting thread
# (so a host is parsed while the others are still being collected); calls are serialized.
OnBundle = Callable[[int, EvidenceBundle], None]


def collect_all(
    targets: list[HostTarget],
    options: CollectOptions,
    collect_one: Collect = collect,
    progress: Progress | None = None,
    on_bundle: OnBundle | None = None,
) -> list[EvidenceBundle]:
    """Collect every host, at most ``options.max_parallel`` at once, keeping the input order.

    Each host gets ``options.timeout`` seconds from the moment its collection starts: one that
    connects and then hangs becomes an ``unreachable`` bundle, its slot goes to a fresh thread,
    and the others are still audited. (Daemon threads: a stuck connection cannot keep pytest
    from exiting.) ``progress`` is told as each host is done (the caller decides whether and
    where to show it: this module does no terminal output)."""
    total = len(targets)
    if not isinstance(options.max_parallel, int) or options.max_parallel < 1:
        raise ValueError(f"max_parallel must be a positive integer, not {options.max_parallel!r}")
    results: list[EvidenceBundle | None] = [None] * total
    cond = threading.Condition()  # guards the bookkeeping below
    callbacks = threading.Lock()  # one progress/on_bundle call at a time, none after the end
    started: dict[int, float] = {}
    claimed: set[int] = set()  # a result (real or timed out) is being delivered
    finished: set[int] = set()
    abandoned: set[int] = set()  # timed out: its thread's late answer is dropped
    unreachable = 0
    next_index = 0
    failures: list[Exception] = []

    def deliver(i: int, bundle: EvidenceBundle) -> None:
        nonlocal unreachable
        with cond:
            if i in claimed:
                return
            claimed.add(i)
        with callbacks:
            results[i] = bundle
            unreachable += bundle.status == "unreachable"
            if on_bundle is not None:
                try:
                    on_bundle(i, bundle)
                except Exception as exc:  # re-raised in the caller's thread at the end
                    failures.append(exc)
            if progress is not None:
                progress(len(finished) + 1, total, unreachable)
            with cond:
                finished.add(i)
                cond.notify_all()

    def work() -> None:
        nonlocal next_index
        while True:
            with cond:
                if next_index >= total:
                    return
                i = next_index
                next_index += 1
                started[i] = time.monotonic()
            bundle = collect_one(targets[i], options)
            deliver(i, bundle)
            with cond:
                if i in abandoned:  # a fresh thread took this slot when it timed out
                    return

    def spawn() -> None:
        threading.Thread(target=work, daemon=True, name="kvmha-collect").start()

    for _ in range(min(options.max_parallel, total)):
        spawn()
    # The grace lets each collector kill what it started and report that itself.
    limit = options.timeout + KILL_AFTER
    with cond:
        while len(finished) < total:
            now = time.monotonic()
            overdue = [
                i
                for i, t in started.items()
                if i not in claimed and now >= t + limit and i not in abandoned
            ]
            for i in overdue:
                abandoned.add(i)
            if overdue:
                cond.release()
                try:
                    for i in overdue:
                        target = targets[i]
                        deliver(
                            i,
                            EvidenceBundle(
                                target.name,
                                redact(target.spec),
                                urlsplit(target.spec).scheme or "local",
                                now_stamp(),
                                status="unreachable",
                                error=f"{target.name}: no answer within {options.timeout:g} s "
                                "(host gone mid-audit?)",
                            ),
                        )
                        spawn()  # the stuck thread keeps its connection; the queue goes on
                finally:
                    cond.acquire()
                continue
            waits = [t + limit - now for i, t in started.items() if i not in claimed]
            cond.wait(max(0.01, min(waits, default=1.0)))
    if failures:
        raise failures[0]
    return [r for r in results if r is not None]
