"""Evidence bundles: the raw output collected from one host, as recorded on disk.

Layout of ``DIR/<host>/``::

    bundle.json                 meta: host, spec, collector, when, round trips, commands, sections
    sections/<name>             raw stdout of each section (e.g. ``ovs-Bridge``, ``domain-live/<uuid>``)

``bundle.json`` keeps each section's return code and stderr, so a replay sees exactly what the
live audit saw, failures included.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_kvmha.config.names import host_name_problem
from pytest_kvmha.config.redact import redact

SCHEMA = "kvmha-bundle/1"
# A section larger than this is not evidence but an attack (or /dev/zero): refused, not read.
MAX_SECTION_BYTES = 64 * 1024 * 1024
_NOFOLLOW = os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
MISSING_RC = -1  # a section listed in bundle.json whose file is gone or not UTF-8: damaged evidence
_SECTION_NAME = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)?$")


class BundleError(Exception):
    """A recorded bundle cannot be read; the message names the file."""


def host_dir(parent: Path, host: str) -> Path:
    """``parent/host``, refusing a host name that would climb out of ``parent``."""
    problem = host_name_problem(host)
    if problem is not None:
        raise BundleError(f"host name {problem}: refusing to write under {parent}")
    return parent / host


@dataclass(frozen=True, slots=True)
class Section:
    stdout: str
    stderr: str = ""
    rc: int = 0


def now_stamp() -> str:
    """The ``collected_at`` of a bundle made now: UTC, ISO 8601, to the second."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


@dataclass
class EvidenceBundle:
    host: str
    spec: str
    collector: str
    collected_at: str
    status: str = "ok"  # ok | unreachable | error
    error: str | None = None
    round_trips: int = 0
    seconds: float = 0.0
    commands: list[dict[str, Any]] = field(default_factory=list)
    sections: dict[str, Section] = field(default_factory=dict)
    # What the collection cost: bytes the host sent back (stdout and stderr of every attempt),
    # bytes of command line sent to it, and each handshake refused and retried ({reason, delay}).
    bytes_received: int = 0
    bytes_sent: int = 0
    retries: list[dict[str, Any]] = field(default_factory=list)

    def meta(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "host": self.host,
            "spec": redact(self.spec),
            "collector": self.collector,
            "collected_at": self.collected_at,
            "status": self.status,
            "error": self.error,
            "round_trips": self.round_trips,
            "seconds": round(self.seconds, 3),
            "bytes_received": self.bytes_received,
            "bytes_sent": self.bytes_sent,
            "retries": self.retries,
            "commands": self.commands,
            "sections": {
                name: {"rc": s.rc, "stderr": s.stderr} for name, s in sorted(self.sections.items())
            },
        }

    def sha256(self) -> str:
        """A digest of the evidence itself: every section's name, exit status, stderr and stdout.

        Sorted and length-framed, so it does not depend on collection order, and the same for a
        live audit, its recording and the replay of that recording (metadata such as the time of
        collection is left out on purpose)."""
        digest = hashlib.sha256(b"kvmha-bundle-sections/1\n")
        for name, section in sorted(self.sections.items()):
            for part in (name, str(section.rc), section.stderr, section.stdout):
                data = part.encode("utf-8", "surrogateescape")
                digest.update(b"%d:" % len(data))
                digest.update(data)
        return digest.hexdigest()

    def write(self, directory: Path) -> Path:
        """Write the bundle under ``directory`` (``DIR/<host>``); returns that directory.

        A bundle may hold secrets (domain XML read with --security-info): directories are made
        0700 and files 0600, and nothing is written through a symlink planted in the way."""
        for name in self.sections:
            if not _SECTION_NAME.match(name) or ".." in name:
                raise BundleError(f"{self.host}: refusing to write section name {name!r}")
        directory.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        top = _open_dir(directory, create=True)
        try:
            for name, section in self.sections.items():
                *dirs, leaf = ["sections", *name.split("/")]
                fd = _open_subdir(top, dirs, directory, create=True)
                try:
                    _write_file(fd, leaf, section.stdout, directory / "sections" / name)
                finally:
                    os.close(fd)
            meta = json.dumps(self.meta(), indent=2, sort_keys=False) + "\n"
            _write_file(top, "bundle.json", meta, directory / "bundle.json")
        finally:
            os.close(top)
        return directory

    @classmethod
    def read(cls, directory: Path) -> EvidenceBundle:
        meta_path = directory / "bundle.json"
        try:
            top = _open_dir(directory, create=False)
        except FileNotFoundError:
            raise BundleError(f"{meta_path}: no such file (not a recorded kvmha bundle)") from None
        try:
            return cls._read(directory, top)
        finally:
            os.close(top)

    @classmethod
    def _read(cls, directory: Path, top: int) -> EvidenceBundle:
        meta_path = directory / "bundle.json"
        try:
            meta = json.loads(_read_file(top, [], "bundle.json", meta_path))
        except FileNotFoundError:
            raise BundleError(f"{meta_path}: no such file (not a recorded kvmha bundle)") from None
        except (OSError, ValueError, RecursionError) as exc:  # ValueError: bad JSON or UTF-8
            raise BundleError(f"{meta_path}: unreadable: {exc}") from None
        if not isinstance(meta, dict) or meta.get("schema") != SCHEMA:
            raise BundleError(f"{meta_path}: field 'schema' must be {SCHEMA!r}")
        sections: dict[str, Section] = {}
        listed = meta.get("sections") or {}
        if not isinstance(listed, dict):
            raise BundleError(f"{meta_path}: field 'sections' must be a table")
        for name, info in listed.items():
            if not isinstance(name, str) or not _SECTION_NAME.match(name) or ".." in name:
                raise BundleError(f"{meta_path}: bad section name {name!r}")
            if not isinstance(info, dict):
                raise BundleError(f"{meta_path}: section {name!r} must be a table")
            path = directory / "sections" / name
            *dirs, leaf = ["sections", *name.split("/")]
            try:
                stdout = _read_file(top, dirs, leaf, path)
            except FileNotFoundError:
                stdout = ""
                info = {**info, "rc": info.get("rc", 0), "stderr": f"{path}: missing from bundle"}
                info["missing"] = True
            except UnicodeDecodeError as exc:
                # One damaged section is a problem of what depends on it; the rest is audited.
                stdout = ""
                info = {
                    **info,
                    "stderr": f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})",
                }
                info["missing"] = True
            except OSError as exc:
                raise BundleError(f"{path}: unreadable: {exc}") from None
            rc = info.get("rc", 0)
            if not isinstance(rc, int):
                raise BundleError(f"{meta_path}: section {name!r} field 'rc' must be an integer")
            sections[name] = Section(
                stdout, str(info.get("stderr", "")), MISSING_RC if info.get("missing") else rc
            )
        error = meta.get("error")
        try:  # a tampered bundle.json names its bad field instead of crashing the replay
            if error is not None and not isinstance(error, str):
                raise TypeError("field 'error' must be a string or null")
            round_trips = int(meta.get("round_trips", 0) or 0)
            seconds = float(meta.get("seconds", 0.0) or 0.0)
            commands = list(meta.get("commands") or [])
            # Bundles recorded before these were kept have none: zero, not an error.
            bytes_received = int(meta.get("bytes_received", 0) or 0)
            bytes_sent = int(meta.get("bytes_sent", 0) or 0)
            retries = list(meta.get("retries") or [])
            if not all(isinstance(r, dict) for r in retries):
                raise TypeError("field 'retries' must be a list of tables")
        except (TypeError, ValueError, OverflowError) as exc:
            raise BundleError(f"{meta_path}: malformed field: {exc}") from None
        return cls(
            host=str(meta.get("host") or directory.name),
            spec=str(meta.get("spec") or f"replay://{directory}"),
            collector=str(meta.get("collector", "unknown")),
            collected_at=str(meta.get("collected_at", "")),
            status=str(meta.get("status", "ok")),
            error=error,
            round_trips=round_trips,
            seconds=seconds,
            commands=commands,
            sections=sections,
            bytes_received=bytes_received,
            bytes_sent=bytes_sent,
            retries=retries,
        )


# --- bundles are data, not paths --------------------------------------------------------------
# A bundle is read and written one path component at a time, relative to an open directory,
# with O_NOFOLLOW: a symlink anywhere inside (or the bundle directory itself being one) is
# refused, as are FIFOs, devices and oversized files, so a planted `sections/x -> /etc/passwd`
# or `-> /dev/zero` is an error, never evidence.


def _open_dir(path: Path, *, create: bool) -> int:
    if create:
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            pass
    return _open(path, os.O_RDONLY | os.O_DIRECTORY | _NOFOLLOW, None, path)


def _open(name: str | Path, flags: int, dir_fd: int | None, where: Path) -> int:
    """``os.open``; a missing file raises FileNotFoundError, any other refusal (a symlink, not
    a directory, no permission) a BundleError naming ``where``."""
    try:
        return os.open(name, flags, dir_fd=dir_fd)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise BundleError(f"{where}: {_why(exc, where)}") from None


def _open_subdir(top: int, parts: list[str], base: Path, *, create: bool) -> int:
    fd = os.dup(top)
    where = base
    try:
        for part in parts:
            where = where / part
            if create:
                try:
                    os.mkdir(part, 0o700, dir_fd=fd)
                except FileExistsError:
                    pass
            nxt = _open(part, os.O_RDONLY | os.O_DIRECTORY | _NOFOLLOW, fd, where)
            os.close(fd)
            fd = nxt
    except BaseException:
        os.close(fd)
        raise
    return fd


def _why(exc: OSError, path: Path) -> str:
    if os.path.islink(path):
        return "is a symlink: a bundle holds regular files and directories only"
    if exc.errno is not None and exc.strerror and "directory" in exc.strerror.lower():
        return "not a directory (a bundle holds regular files and directories only)"
    return f"unreadable: {exc.strerror or exc}"


def _read_file(top: int, dirs: list[str], leaf: str, path: Path) -> str:
    """A regular file's text, refusing symlinks, special files and files over the size cap."""
    fd_dir = _open_subdir(top, dirs, path.parents[len(dirs)], create=False)
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer.
        fd = _open(leaf, os.O_RDONLY | os.O_NONBLOCK | _NOFOLLOW, fd_dir, path)
    finally:
        os.close(fd_dir)
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise BundleError(f"{path}: not a regular file: a bundle holds regular files only")
        if st.st_size > MAX_SECTION_BYTES:
            raise BundleError(
                f"{path}: {st.st_size} bytes, over the {MAX_SECTION_BYTES} byte limit per section"
            )
        data = f.read(MAX_SECTION_BYTES + 1)
    if len(data) > MAX_SECTION_BYTES:
        raise BundleError(f"{path}: over the {MAX_SECTION_BYTES} byte limit per section")
    return data.decode("utf-8")


def _write_file(dir_fd: int, name: str, text: str, path: Path) -> None:
    """Write ``text`` as a new 0600 file ``name``: never through a symlink in its place."""
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        pass
    else:
        if not stat.S_ISREG(st.st_mode):
            raise BundleError(f"{path}: exists and is not a regular file (symlink?): not written")
        os.unlink(name, dir_fd=dir_fd)
    try:
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600, dir_fd=dir_fd)
    except OSError as exc:
        raise BundleError(f"{path}: cannot write: {exc.strerror or exc}") from None
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
