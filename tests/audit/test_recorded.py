"""Every recorded lab scenario replays offline to exactly the findings the live audit gave."""

from __future__ import annotations

import pytest

from tests.scenarios import SCENARIOS

from ..bundlekit import BUNDLES, run, statuses


def test_every_scenario_is_recorded() -> None:
    assert sorted(p.name for p in BUNDLES.iterdir() if p.is_dir()) == sorted(SCENARIOS)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_recorded_scenario(name: str) -> None:
    result = run(BUNDLES / name)
    assert statuses(result) == dict(SCENARIOS[name].expected)


def test_recorded_bundles_are_one_round_trip_each() -> None:
    """One round trip for the batch, one more for the trace phase (issue 11) where it ran."""
    import json

    for meta in BUNDLES.glob("*/*/bundle.json"):
        doc = json.loads(meta.read_text())
        if doc["status"] == "ok":
            traced = "trace-dpif" in doc["sections"]
            assert doc["round_trips"] == 1 + traced, meta
