#!/usr/bin/env python3
"""Regenerate docs/report-html.png: the demo audit (examples/, recorded bundles, with the
demo's waiver) as HTML,
rendered by Debian's chromium (headless) and captured whole. Needs chromium and
chromium-driver (scripts/setup-system) and the dev extra (selenium).

    .venv/bin/python scripts/report-screenshot.py [OUT.png]
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pytest_kvmha.testing.processes import PYTEST  # noqa: E402
from tests.browser import chromium, full_page_screenshot, missing  # noqa: E402


def main() -> int:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "report-html.png"
    reason = missing()
    if reason:
        print(f"report-screenshot: {reason}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="kvmha-shot-") as tmp:
        html = Path(tmp) / "report.html"
        # a copy of examples/, named relatively: the page shows replay://examples/bundles/...
        shutil.copytree(ROOT / "examples", Path(tmp) / "examples")
        # exit status 1 is expected: the demo's dmz-fw cluster is broken on purpose
        subprocess.run(
            [
                *PYTEST,
                "--kvmha-inventory=examples/clusters.toml",
                "--kvmha-waivers=examples/waivers.toml",
                f"--kvmha-report-html={html}",
            ],
            cwd=tmp,
            check=False,
            stdout=subprocess.DEVNULL,
        )
        if not html.is_file():
            print("report-screenshot: the audit wrote no HTML report", file=sys.stderr)
            return 1
        with chromium() as driver:
            driver.get(html.as_uri())
            full_page_screenshot(driver, out)
    print(f"report-screenshot: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
