"""The report excerpts of docs/reports.md are real output: the Markdown excerpt is what the demo audit
(examples/clusters.toml with examples/waivers.toml) writes, line by line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
EXAMPLES = ROOT / "examples"


def docs_markdown_excerpt() -> list[str]:
    text = (ROOT / "docs" / "reports.md").read_text(encoding="utf-8")
    section = text.split("## The Markdown report", 1)[1]
    return section.split("```markdown\n", 1)[1].split("\n```", 1)[0].splitlines()


def test_docs_markdown_excerpt_is_the_demo_output(pytester: pytest.Pytester) -> None:
    shutil.copytree(EXAMPLES / "bundles", pytester.path / "examples" / "bundles")
    for name in ("clusters.toml", "waivers.toml"):
        shutil.copy(EXAMPLES / name, pytester.path / "examples" / name)
    result = pytester.runpytest(
        "--kvmha-inventory=examples/clusters.toml",
        "--kvmha-waivers=examples/waivers.toml",
        "--kvmha-report-md=r.md",
    )
    assert result.ret == 1  # as docs/reports.md says
    written = (pytester.path / "r.md").read_text(encoding="utf-8").splitlines()
    excerpt = docs_markdown_excerpt()
    assert len(excerpt) > 20
    missing = [line for line in excerpt if line not in written]
    assert not missing, missing
    # and in the same order
    positions = [written.index(line) for line in excerpt if line]
    assert positions == sorted(positions)
