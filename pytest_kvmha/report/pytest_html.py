"""check, severity, host and cluster columns in pytest-html's results table (pytest-html 4).

Loaded by the plugin only when pytest-html is present (its hook specifications exist only
then), so pytest-kvmha works without it. The values come from each report's user properties,
which the audit items set (see junit.junit_properties); other tests get empty cells so the
table stays aligned. pytest-html puts cells in the page as HTML: every value is escaped here,
host data is hostile."""

from __future__ import annotations

from html import escape
from typing import Any

COLUMNS = ("check", "severity", "host", "cluster")


def pytest_html_results_table_header(cells: list[str]) -> None:
    # after the test id (result, test, duration, links): "sortable" lets the page sort on them
    cells[2:2] = [f'<th class="sortable" data-column-type="{name}">{name}</th>' for name in COLUMNS]


def pytest_html_results_table_row(report: Any, cells: list[str]) -> None:
    props = dict(getattr(report, "user_properties", ()) or ())
    if not {"check", "nodeid", "gating"} <= props.keys():  # not an audit item: blank cells
        props = {}
    cells[2:2] = [
        f'<td class="col-{name}">{escape(str(props.get(name) or ""))}</td>' for name in COLUMNS
    ]
