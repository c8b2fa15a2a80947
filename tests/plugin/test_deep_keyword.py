"""A -k expression nested thousands deep is a usage error, never a RecursionError."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pytest_kvmha.audit.selection import KeywordTooDeep, check_depth, evaluate, unneeded_hosts
from pytest_kvmha.config.inventory import load_inventory
from pytest_kvmha.model import discover_checks

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

EXAMPLES = Path(__file__).parents[2] / "examples"
DEEP = "(" * 3000 + "VIRT" + ")" * 3000
NOTS = "not " * 3000 + "VIRT"


@pytest.mark.parametrize("expression", [DEEP, NOTS])
def test_deep_expression_is_refused_by_the_parser(expression: str) -> None:
    with pytest.raises(KeywordTooDeep, match="nested deeper than 100"):
        check_depth(expression)
    with pytest.raises(KeywordTooDeep):
        evaluate(expression, lambda w: True)
    inv = load_inventory(EXAMPLES / "clusters.toml")
    with pytest.raises(KeywordTooDeep):
        unneeded_hosts(discover_checks(), inv, keyword=expression)


def test_ordinary_nesting_still_reads() -> None:
    check_depth("not (VIRT and (kvm-a or not (kvm-b)))")
    assert evaluate("((not (a)))", lambda w: False) is True


@pytest.mark.parametrize("expression", [DEEP, NOTS])
def test_deep_keyword_is_a_usage_error(pytester: pytest.Pytester, expression: str) -> None:
    shutil.copytree(EXAMPLES / "bundles", pytester.path / "bundles")
    shutil.copy(EXAMPLES / "clusters.toml", pytester.path / "clusters.toml")
    result = pytester.runpytest("--kvmha-inventory=clusters.toml", "-k", expression)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: -k: expression nested deeper than 100 levels"])
    assert "RecursionError" not in result.stdout.str() + result.stderr.str()
