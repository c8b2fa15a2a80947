"""JUnit XML (pytest's ``--junitxml``) with the context of each finding.

pytest derives a test case's ``classname`` from its node id's ``::`` parts; an audit item's node
id (``kvmha/<cluster>/<CHECK>[<subject>]``) has none, so its ``classname`` would be empty and its
``name`` ``kvmha.<cluster>.<CHECK>[<subject>]``. pytest offers no public hook to change either, so
each audit item carries its context as properties (``Item.user_properties``, public) and, once
pytest has written the file, this module rewrites the audit test cases from those properties:
``classname`` = the cluster (the host for host checks, ``segment`` for a segment's finding;
``what-if.<cluster>`` for what-if items),
``name`` = ``<CHECK>[<subject>]``, a failure's or error's ``message`` = the finding's detail, and a
failed finding below ``--kvmha-fail-on`` gets its detail in ``system-out``. Other test cases are
left exactly as pytest wrote them.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

import pytest

from pytest_kvmha.model import FAIL, Finding, Severity

PROPERTIES = (
    "check",
    "title",
    "severity",
    "status",
    "host",
    "cluster",
    "subject",
    "expected",
    "found",
    "detail",
    "nodeid",
    "gating",
    "fail_on",
)


def junit_properties(
    finding: Finding, fail_on: Severity, *, gating: bool, whatif: bool = False
) -> list[tuple[str, object]]:
    """The properties of one audit item, in a fixed order; a missing value is ``""``.

    ``gating`` says whether this finding fails the run, as the gate decided it (an error, or a
    failure neither waived, below ``fail_on`` nor known since the baseline): the plugin passes
    it in, so JUnit cannot disagree with the exit status."""
    f = finding
    values: dict[str, object] = {
        "check": f.check.id,
        "title": f.check.title,
        "severity": str(f.check.severity),
        "status": f.status,
        "host": f.host,
        "cluster": f.cluster,
        "subject": f.subject,
        "expected": f.expected,
        "found": f.found,
        "detail": f.detail,
        "nodeid": ("kvmha-whatif/" + f.nodeid.split("/", 1)[1]) if whatif else f.nodeid,
        "gating": "true" if gating else "false",
        "fail_on": str(fail_on),
    }
    return [(k, "" if values[k] is None else values[k]) for k in PROPERTIES]


def _below(severity: str, fail_on: str) -> bool:
    try:
        return Severity.parse(severity) < Severity.parse(fail_on)
    except ValueError:
        return False


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    # pytest's junitxml writes its file at session finish, before any plugin is unconfigured.
    if hasattr(config, "workerinput"):
        return
    path = config.getoption("xmlpath", None)
    if not path:
        return
    path = Path(os.path.expanduser(os.path.expandvars(str(path)))).absolute()
    if not path.is_file():
        return
    try:
        rewrite_junit(path)
    except Exception as exc:  # noqa: BLE001 - the file pytest wrote stays usable as it is
        warnings.warn(
            pytest.PytestWarning(f"kvmha: could not add audit context to {path}: {exc}"),
            stacklevel=1,
        )


def rewrite_junit(path: Path) -> int:
    """Rewrite the audit test cases of a JUnit file in place; returns how many."""
    from lxml import etree

    # pytest escapes what XML cannot hold before writing; huge_tree for fleets of findings
    tree = etree.parse(str(path), etree.XMLParser(huge_tree=True, resolve_entities=False))
    changed = 0
    for case in tree.iter("testcase"):
        props = {
            p.get("name"): p.get("value") or ""
            for p in case.findall("properties/property")
            if p.get("name") in PROPERTIES
        }
        if not {"check", "nodeid", "gating"} <= props.keys() or not props["nodeid"].startswith(
            "kvmha"
        ):
            continue
        whatif = props["nodeid"].startswith("kvmha-whatif/")
        # a segment's finding is about several clusters: its class is "segment" (its node id's)
        segment = props["nodeid"].split("/", 2)[1:2] == ["segment"] and not props.get("cluster")
        owner = props.get("cluster") or props.get("host") or ("segment" if segment else "kvmha")
        case.set("classname", f"what-if.{owner}" if whatif else owner)
        case.set("name", f"{props['check']}[{props.get('subject', '')}]")
        detail = props.get("detail", "")
        for outcome in case.findall("failure") + case.findall("error"):
            outcome.set("message", detail)
        for skipped in case.findall("skipped"):  # "nodeid:None: reason": no line to point at
            if skipped.get("type") == "pytest.skip":
                skipped.text = f"{props['nodeid']}: {skipped.get('message') or ''}"
        if props.get("status") == FAIL and props["gating"] == "false":
            below = _below(props.get("severity", ""), props.get("fail_on", ""))
            why = (
                f"failed below --kvmha-fail-on={props.get('fail_on', '')}"
                if below
                else "failed, waived or known since the baseline"
            )
            note = (
                f"{props['check']} {why} "
                f"(severity {props.get('severity', '')}, not gating): {detail}"
            )
            out = case.find("system-out")
            if out is None:
                out = etree.SubElement(case, "system-out")
                out.text = note
            else:
                out.text = note + "\n" + (out.text or "")
        changed += 1
    if changed:
        fd, tmp = tempfile.mkstemp(prefix=".kvmha-", dir=path.parent)
        os.close(fd)
        os.chmod(tmp, path.stat().st_mode & 0o777)  # as pytest left it
        tree.write(tmp, encoding="utf-8", xml_declaration=True)
        os.replace(tmp, path)
    return changed
