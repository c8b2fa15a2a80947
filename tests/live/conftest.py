"""The namespace lab, shared by every live test of a session (starting it costs seconds)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_kvmha.testing import Lab, missing_requirements, slot_index, slot_prefix


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    if os.geteuid() != 0:
        pytest.skip("the namespace lab needs root")
    missing = missing_requirements()
    if missing:
        pytest.skip("the namespace lab needs: " + ", ".join(missing))
    lab = Lab(
        Path(tmp_path_factory.mktemp("lab")),
        hosts=2,
        prefix=slot_prefix("kvmha"),
        first_host=slot_index(1),
    )
    lab.start()
    try:
        yield lab
    finally:
        leaks = lab.stop()
    assert not leaks, f"the lab leaked: {leaks}"
