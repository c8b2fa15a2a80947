"""The namespace lab, shared by every live test of a session (starting it costs seconds)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_kvmha.testing import Lab, missing_requirements, slot_index, slot_prefix
from pytest_kvmha.testing.requirements import require


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    # Skips on a developer's machine without them; fails under CI=true (require).
    require(missing_requirements(), "the namespace lab")
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
