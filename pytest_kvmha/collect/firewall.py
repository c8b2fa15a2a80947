"""Collector of the firewalls' own HA configuration: a saved file, or a read-only CLI over SSH.

Part of the collection layer (it does I/O). Each declared member's text becomes one section of
its host's evidence bundle (``fwconfig/<vendor>.<escaped domain>``), with its secrets removed
BEFORE it is stored, recorded or shown. A failure is the section's error, never an exception.

A console is asked the vendor's fixed commands (:data:`pytest_kvmha.parse.firewall.CONSOLE_COMMANDS`:
the HA status command, then the ``show`` commands) on standard input, in ONE ssh session (one
round trip per firewall), bounded by the timeout; the answer is cut where the configuration
starts (:func:`pytest_kvmha.parse.ha_status.split_console_answer`) into the configuration section
and the status section ``fwstatus/<vendor>.<escaped domain>``. A saved file has no status
section: it holds no run-time state. A FortiGate whose answer says VDOMs are on (or refused the
reads, as multi-VDOM mode does at the top level) is asked once more, the same commands inside
``config global`` ... ``end`` (``CONSOLE_GLOBAL_COMMANDS``): two round trips for it. No name from
a host or an inventory goes into a command; the destination is the validated console URL.
"""

from __future__ import annotations

import os
import stat
import subprocess
import threading
import time

from pytest_kvmha.bundle.store import MAX_SECTION_BYTES, EvidenceBundle, Section
from pytest_kvmha.collect.transport import kill_session
from pytest_kvmha.config.firewalls import FirewallSource, check_console
from pytest_kvmha.config.redact import redact
from pytest_kvmha.config.target import CollectOptions, HostTarget
from pytest_kvmha.parse.firewall import (
    CONSOLE_COMMANDS,
    CONSOLE_GLOBAL_COMMANDS,
    console_needs_global,
    section_name,
)
from pytest_kvmha.parse.ha_status import split_console_answer, status_section_name
from pytest_kvmha.parse.secrets import strip_secrets


def _section(source: FirewallSource) -> str:
    return section_name(source.vendor, source.domain)


def _sections(source: FirewallSource) -> tuple[str, ...]:
    """The sections a source fills: its configuration, and a console's HA status too."""
    if source.console is None:
        return (_section(source),)
    return (_section(source), status_section_name(source.vendor, source.domain))


def _all(source: FirewallSource, section: Section) -> dict[str, Section]:
    return dict.fromkeys(_sections(source), section)


class FirewallCollection:
    """The firewall sections of one host, read in a thread while the host itself is collected
    (so a slow console does not add to the host's time)."""

    def __init__(
        self, sources: tuple[FirewallSource, ...], options: CollectOptions, *, replay: bool = False
    ) -> None:
        self.sources = sources
        self.options = options
        self.replay = replay
        self.sections: dict[str, Section] = {}
        self.commands: list[dict[str, object]] = []
        self.round_trips = 0
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def start(self) -> FirewallCollection:
        # one thread per firewall: each console has the whole timeout, not a share of it
        for source in self.sources:
            thread = threading.Thread(
                target=self._run, args=(source,), daemon=True, name="kvmha-fwconfig"
            )
            thread.start()
            self._threads.append(thread)
        return self

    def _run(self, source: FirewallSource) -> None:
        sections = self._read_safe(source)
        with self._lock:
            self.sections.update(sections)

    def _read_safe(self, source: FirewallSource) -> dict[str, Section]:
        try:
            return self._read(source)
        except Exception as exc:  # noqa: BLE001 - one firewall must not cost the audit
            why = f"{source.domain}: {type(exc).__name__}: {redact(str(exc))}"
            return _all(source, Section("", why, 1))

    def _read(self, source: FirewallSource) -> dict[str, Section]:
        if source.config is not None:
            return {_section(source): read_config_file(source)}
        assert source.console is not None
        if self.replay:
            why = f"{source.domain}: console {source.console} not in the recorded bundle"
            return _all(source, Section("", why, 1))
        config, status = self._console_round(source, CONSOLE_COMMANDS.get(source.vendor, ()))
        if config.rc == 0 and console_needs_global(source.vendor, config.stdout + status.stdout):
            # multi-VDOM mode: the first answer says so (or was refused); the HA settings and
            # status are read again inside "config global", and that answer is the sections
            config, status = self._console_round(source, CONSOLE_GLOBAL_COMMANDS[source.vendor])
        return {_section(source): config, status_section_name(source.vendor, source.domain): status}

    def _console_round(
        self, source: FirewallSource, commands: tuple[str, ...]
    ) -> tuple[Section, Section]:
        t0 = time.monotonic()
        config, status = read_console(source, self.options, commands)
        with self._lock:
            self.round_trips += 1
            self.commands.append(
                {
                    "command": f"ssh console {source.console}: " + "; ".join(commands),
                    "rc": config.rc,
                    "seconds": round(time.monotonic() - t0, 3),
                }
            )
        return config, status

    def finish(self, bundle: EvidenceBundle) -> None:
        """Wait (bounded by the timeout) and add the sections the bundle does not hold already:
        a recorded bundle keeps the text it recorded."""
        deadline = time.monotonic() + self.options.timeout + 10
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        for source in self.sources:
            names = [n for n in _sections(source) if n not in bundle.sections]
            if not names:
                continue
            if self.replay:
                read = self._read_safe(source)
                bundle.sections.update({n: read[n] for n in names})
                continue
            for name in names:
                with self._lock:
                    got = self.sections.get(name)
                bundle.sections[name] = got or Section(
                    "", f"{source.domain}: no answer within {self.options.timeout:g} s", 1
                )
        with self._lock:
            bundle.round_trips += self.round_trips
            bundle.commands += self.commands


def collect_firewalls(target: HostTarget, options: CollectOptions) -> FirewallCollection:
    """Start reading ``target``'s firewall configurations; ``.finish(bundle)`` adds them."""
    sources = tuple(s for s in target.firewalls if isinstance(s, FirewallSource))
    replay = target.spec.startswith("replay://")
    if replay:  # a recording holds what it recorded: only what it lacks is read now (files)
        return FirewallCollection(sources, options, replay=True)
    return FirewallCollection(sources, options).start()


def read_config_file(source: FirewallSource) -> Section:
    """A saved configuration: a regular UTF-8 file under the size cap, secrets removed."""
    path = source.config or ""
    where = f"{source.domain}: config {path}"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        return Section("", f"{where}: cannot open: {exc.strerror or exc}", 1)
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            return Section("", f"{where}: not a regular file", 1)
        data = f.read(MAX_SECTION_BYTES + 1)
    if len(data) > MAX_SECTION_BYTES:
        return Section("", f"{where}: over the {MAX_SECTION_BYTES} byte limit", 1)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Section("", f"{where}: not UTF-8 text ({exc.reason} at byte {exc.start})", 1)
    return Section(strip_secrets(text))


def console_argv(source: FirewallSource, options: CollectOptions) -> list[str]:
    """The ssh command line of a console read: options, then ``--`` and the destination."""
    user, addr, port = check_console(source.console or "")
    argv = [
        "ssh",
        "-T",
        "-o",
        "BatchMode=yes",
        "-o",
        f"ConnectTimeout={int(min(options.timeout, 30)) or 1}",
        # one read, then gone: no multiplexing master left behind by an ssh_config's
        # "ControlMaster auto" (command-line options win over the config file)
        "-o",
        "ControlMaster=no",
        "-o",
        "ControlPath=none",
    ]
    if options.ssh_config:
        argv += ["-F", options.ssh_config]
    if options.ssh_identity_file:
        argv += ["-i", options.ssh_identity_file]
    if port is not None:
        argv += ["-p", str(port)]
    return [*argv, "-l", user, "--", addr]


def read_console(
    source: FirewallSource, options: CollectOptions, commands: tuple[str, ...] | None = None
) -> tuple[Section, Section]:
    """(configuration, HA status): the answers of the vendor's fixed commands (or ``commands``,
    one of the fixed lists) over one ssh session, cut where the configuration starts; a failure
    is the error of both."""
    commands = CONSOLE_COMMANDS.get(source.vendor) if commands is None else commands
    where = f"{source.domain}: console {source.console}"
    if not commands:
        failed = Section("", f"{where}: no console commands for vendor {source.vendor!r}", 1)
        return failed, failed
    whole = _ask(source, options, commands, where)
    status, config = split_console_answer(source.vendor, whole.stdout)
    # each part stripped on its own: the secret rules tell the formats apart by the first line
    return (
        Section(strip_secrets(config), whole.stderr, whole.rc),
        Section(strip_secrets(status), whole.stderr, whole.rc),
    )


def _ask(
    source: FirewallSource, options: CollectOptions, commands: tuple[str, ...], where: str
) -> Section:
    """The raw answer of one ssh session (stdout NOT yet stripped of secrets)."""
    proc = subprocess.Popen(
        console_argv(source, options),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(("\n".join(commands) + "\n").encode(), timeout=options.timeout)
    except subprocess.TimeoutExpired:
        kill_session(proc)
        return Section("", f"{where}: no answer within {options.timeout:g} s", 1)
    if len(out) > MAX_SECTION_BYTES:
        return Section("", f"{where}: answer over the {MAX_SECTION_BYTES} byte limit", 1)
    stdout = out.decode("utf-8", "replace")
    if proc.returncode != 0:
        lines = [ln for ln in err.decode("utf-8", "replace").strip().splitlines() if ln.strip()]
        # the console's own words are host data: no control characters reach a terminal
        last = "".join(c if c.isprintable() else "?" for c in lines[-1][:300]) if lines else ""
        why = strip_secrets(redact(last)) if last else f"exit status {proc.returncode}"
        return Section(stdout, f"{where}: {why} (exit status {proc.returncode})", proc.returncode)
    return Section(stdout)
