"""A host script's output back into sections: the boundary markers, the one ``ovs-tables``
line per table, the many virsh dumps of one connection, and text that is not UTF-8."""

from __future__ import annotations

import re

from pytest_kvmha.bundle.contract import (
    BATCH_PREFIX,
    BATCHED,
    BOUNDARY_PREFIX,
    OVS_COLUMNS,
    OVS_TABLES_SECTION,
    ovs_section,
)
from pytest_kvmha.bundle.store import MISSING_RC, Section


class BatchOutputError(Exception):
    pass


def split_sections(output: str, boundary: str) -> dict[str, Section]:
    """Split the batch script's stdout back into sections."""
    marker = re.compile(
        r"\n?" + re.escape(BOUNDARY_PREFIX + boundary) + r" (BEGIN|STDERR|END) (\S+)(?: (-?\d+))?\n"
    )
    sections: dict[str, Section] = {}
    pos = 0
    current: str | None = None
    stdout = ""
    stage = ""
    for match in marker.finditer(output):
        kind, name, rc = match.groups()
        chunk = output[pos : match.start()]
        pos = match.end()
        if kind == "BEGIN":
            current, stage = name, "out"
        elif kind == "STDERR" and current == name and stage == "out":
            stdout, stage = chunk, "err"
        elif kind == "END" and current == name and stage == "err":
            sections[name] = Section(stdout, chunk, int(rc or 0))
            current, stage = None, ""
        else:
            raise BatchOutputError(f"garbled batch output near section {name!r}")
    if current is not None:
        raise BatchOutputError(
            f"batch output ends inside section {current!r} (host gone mid-audit?)"
        )
    return sections


def split_ovs_tables(sections: dict[str, Section]) -> dict[str, Section]:
    """Split the one ``ovs-tables`` section (one JSON line per table, in OVS_COLUMNS order) into
    the per-table sections ``ovs-<table>`` a bundle records. If ovs-vsctl failed, or printed
    another number of lines, every table carries the failure."""
    merged = sections.get(OVS_TABLES_SECTION)
    if merged is None:
        return sections
    out = {k: v for k, v in sections.items() if k != OVS_TABLES_SECTION}
    lines = [line for line in merged.stdout.splitlines() if line.strip()]
    if merged.rc == 0 and len(lines) != len(OVS_COLUMNS):
        why = f"ovs-vsctl printed {len(lines)} tables, expected {len(OVS_COLUMNS)}"
        merged = Section("", (merged.stderr + "\n" + why).strip(), 1)
        lines = []
    for k, table in enumerate(OVS_COLUMNS):
        text = lines[k] + "\n" if merged.rc == 0 else ""
        out[ovs_section(table)] = Section(text, merged.stderr, merged.rc)
    return out


def unbatch(sections: dict[str, Section], boundary: str) -> dict[str, Section]:
    """Split each ``batch-<kind>`` section (many virsh dumps over one connection) into the
    per-UUID sections ``<kind>/<uuid>`` that a bundle records. virsh reports no exit status per
    command, so a dump that came back empty is recorded as failed, with the batch's stderr."""
    marker = re.compile(re.escape(BOUNDARY_PREFIX + boundary) + r":([0-9a-fA-F-]+):")
    out = {k: v for k, v in sections.items() if not k.startswith(BATCH_PREFIX)}
    for kind in BATCHED:
        batch = sections.get(BATCH_PREFIX + kind)
        if batch is None:
            continue
        pieces = marker.split(batch.stdout)
        for uuid, text in zip(pieces[1::2], pieces[2::2], strict=True):
            text = text.lstrip("\n")
            if text.endswith("\n\n"):
                text = text[:-1]  # virsh separates command outputs with a blank line
            ok = bool(text.strip())
            out[f"{kind}/{uuid.lower()}"] = Section(
                text, "" if ok else (batch.stderr.strip() or "empty output"), 0 if ok else 1
            )
    return out


def host_text(data: bytes) -> str:
    """A host's output as text: UTF-8, undecodable bytes kept as lone surrogates (PEP 383), so
    that only the sections holding them are damaged (``not_utf8``) and not the whole host. (Also
    spares testinfra's decode, which asks the host for its locale: a second round trip.)"""
    return data.decode("utf-8", "surrogateescape")


def not_utf8(sections: dict[str, Section]) -> dict[str, Section]:
    """Sections whose output is not UTF-8 become damaged sections (as in a replayed bundle)."""
    out = {}
    for name, sec in sections.items():
        bad = next((i for i, c in enumerate(sec.stdout) if "\udc80" <= c <= "\udcff"), None)
        stderr = sec.stderr.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        if bad is None:
            out[name] = Section(sec.stdout, stderr, sec.rc)
        else:
            byte = ord(sec.stdout[bad]) - 0xDC00
            why = f"{name}: output is not UTF-8 text (byte {byte:#04x} at character {bad})"
            out[name] = Section("", why, MISSING_RC)
    return out
