"""Checkpoints written before the package was reorganised still load and score exactly as they did."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import a3c

DATA = Path(__file__).resolve().parent.parent / "data" / "d632ed2"
EXPECTED = json.loads((DATA / "expected.json").read_text())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_checkpoint_from_commit_d632ed2_loads_and_scores_what_it_scored_then(name):
    expected = EXPECTED[name]
    model = a3c.load(DATA / f"{name}.safetensors", verbose=0)
    assert model.config.env_id == expected["env_id"]
    assert model.config.algo == expected["algo"]
    assert model.num_steps == expected["steps"]
    result = model.evaluate(episodes=5, seed=0)
    assert result.lengths == expected["lengths"]
    assert result.returns == pytest.approx(expected["returns"], rel=1e-6)
