"""``kvmha checks``: the catalogue, one check's page, and the committed docs/checks pages equal
what the catalogue generates (a changed check without regenerated pages fails here)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from pytest_kvmha.cli import main
from pytest_kvmha.cli.checkdoc import check_page, pages, reads, stale_pages, write_pages
from pytest_kvmha.model import discover_checks

ROOT = Path(__file__).parents[2]
DOCS = ROOT / "docs" / "checks"
CATALOGUE = discover_checks(group=None)
BY_ID = {c.id: c for c in CATALOGUE}


def test_the_list_names_every_check(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["checks"]) == 0
    out = capsys.readouterr().out
    assert [line.split()[0] for line in out.splitlines()] == [c.id for c in CATALOGUE]
    assert main(["checks", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["checks"]) == len(CATALOGUE)


def test_one_check_prints_its_page(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["checks", "KVMHA-HB-001"]) == 0
    out = capsys.readouterr().out
    c = BY_ID["KVMHA-HB-001"]
    assert out == check_page(c)
    assert out.startswith(f"# KVMHA-HB-001: {c.title}\n")
    for part in (
        "**Severity:** critical",
        "`cluster-host`",
        "## Why",
        "promiscuous mode",  # the rationale
        "## What it reads",
        "kernel links",
        "## Remediation",
        "ip link set dev UPLINK promisc on",
        "## Sources",
        "FortiGate-VM KVM Administration Guide",
        "'kvmha/edge-fw/KVMHA-HB-001[kvm-a]'",  # the example finding's node id
    ):
        assert part in out, part
    assert main(["checks", "kvmha-hb-001"]) == 0  # ids are case-insensitive
    assert capsys.readouterr().out == out


def test_an_unknown_id_is_a_usage_error_with_the_near_ids(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["checks", "KVMHA-HB-009"]) == pytest.ExitCode.USAGE_ERROR
    assert "did you mean KVMHA-HB-001, KVMHA-HB-002" in capsys.readouterr().err


def test_what_a_check_reads_comes_from_its_code() -> None:
    assert any("ofproto/trace" in r for r in reads(BY_ID["KVMHA-TRACE-001"]))
    assert any("installed packages" in r for r in reads(BY_ID["KVMHA-PKG-001"]))
    assert not any("packages" in r for r in reads(BY_ID["KVMHA-HB-001"]))


def test_markdown_in_check_text_is_escaped() -> None:
    c = replace(
        BY_ID["KVMHA-HB-001"],
        title="a <b>bold</b> *claim* | pipe",
        rationale="<script>x</script> and `code`",
        remediation="run ```this```",
    )
    page = check_page(c)
    assert "<b>" not in page and "<script>" not in page
    assert "&lt;b&gt;bold&lt;/b&gt; \\*claim\\*" in page
    assert "````text\nrun ```this```\n````" in page  # the fence outgrows the text's
    index = pages([c])["index.md"]
    assert "\\| pipe" in index  # a pipe does not split the table row


def test_the_committed_pages_are_what_the_catalogue_generates() -> None:
    stale = stale_pages(CATALOGUE, DOCS)
    assert not stale, f"regenerate with: kvmha checks --write-docs docs/checks ({stale})"
    for c in CATALOGUE:  # one page per check, the text `kvmha checks ID` prints
        assert (DOCS / f"{c.id}.md").read_text(encoding="utf-8") == check_page(c)


def test_write_docs_and_check_docs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "checks"
    assert main(["checks", "--write-docs", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(pages(CATALOGUE))
    assert main(["checks", "--check-docs", str(out)]) == 0
    page = out / "KVMHA-HB-001.md"
    page.write_text(page.read_text() + "edited\n")
    (out / "KVMHA-GONE-001.md").write_text("a check that was removed\n")
    capsys.readouterr()
    assert main(["checks", "--check-docs", str(out)]) == 1
    err = capsys.readouterr().err
    assert "KVMHA-HB-001.md" in err and "KVMHA-GONE-001.md" in err
    assert sorted(write_pages(CATALOGUE, out)) == ["KVMHA-GONE-001.md", "KVMHA-HB-001.md"]
    assert stale_pages(CATALOGUE, out) == []
