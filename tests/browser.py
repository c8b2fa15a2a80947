"""Debian's chromium, driven headless through its chromedriver (selenium), for the HTML report.

CI installs both (scripts/setup-system); on a machine without them the browser tests skip and
say what to install."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM = ("chromium", "chromium-browser")
CHROMEDRIVER = "/usr/bin/chromedriver"


def require() -> None:
    """Skip (on a developer's machine) or fail (under CI, which installs the browser) when the
    browser cannot run here."""
    import pytest

    reason = missing()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the browser tests: {reason}")
        pytest.skip(reason)


def missing() -> str | None:
    """Why the browser cannot run here, or None."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[dev]')"
    if not any(shutil.which(b) for b in CHROMIUM):
        return "chromium is not installed (apt-get install chromium chromium-driver)"
    if not (shutil.which("chromedriver") or os.access(CHROMEDRIVER, os.X_OK)):
        return "chromedriver is not installed (apt-get install chromium-driver)"
    return None


@contextmanager
def chromium(width: int = 1280, height: int = 900) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    binary = next(shutil.which(b) for b in CHROMIUM if shutil.which(b))
    options.binary_location = binary
    for arg in (
        "--headless=new",
        "--no-sandbox",  # root in a container has no user namespaces for the sandbox
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        f"--window-size={width},{height}",
    ):
        options.add_argument(arg)
    driver_path = shutil.which("chromedriver") or CHROMEDRIVER
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def full_page_screenshot(driver: Any, path: Path, width: int = 1280) -> Path:
    """The whole page, not just the window: grow the window to the document's height first."""
    height = int(driver.execute_script("return document.documentElement.scrollHeight"))
    driver.set_window_size(width, min(max(height, 400), 16000))
    path.parent.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(path))
    return path


def artifacts_dir(default: Path) -> Path:
    """Where tests leave screenshots: $KVMHA_ARTIFACTS if set (CI keeps it), else ``default``."""
    env = os.environ.get("KVMHA_ARTIFACTS")
    path = Path(env) if env else default
    path.mkdir(parents=True, exist_ok=True)
    return path
