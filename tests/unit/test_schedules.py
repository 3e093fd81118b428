"""Learning-rate and entropy schedules, and advantage normalisation, against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from a3c.config import Config
from a3c.core.gradients import normalized
from a3c.core.optim import entropy_coef_at, linear, lr_at


def test_linear_goes_from_start_to_end_and_stays_there():
    assert linear(1.0, 0.0, 0, 100) == 1.0
    assert linear(1.0, 0.0, 25, 100) == 0.75
    assert linear(0.01, 0.001, 50, 100) == pytest.approx(0.0055)
    assert linear(1.0, 0.0, 250, 100) == 0.0


def test_the_entropy_weight_follows_its_schedule_and_reads_the_steps_only_then():
    constant = Config(env_id="x", entropy_coef=0.02, total_steps=1000).validated()
    assert entropy_coef_at(constant, lambda: pytest.fail("read the steps")) == 0.02
    scheduled = constant.replace(entropy_schedule="linear", entropy_coef_final=0.004).validated()
    assert entropy_coef_at(scheduled, lambda: 0) == 0.02
    assert entropy_coef_at(scheduled, lambda: 500) == pytest.approx(0.012)
    assert entropy_coef_at(scheduled, lambda: 2000) == pytest.approx(0.004)
    assert lr_at(scheduled.replace(lr=1e-3, lr_schedule="linear"), 250) == pytest.approx(7.5e-4)


def test_advantages_are_normalised_to_mean_0_and_std_1():
    advantages = np.array([[1.0, 3.0], [5.0, 7.0]], dtype=np.float32)  # mean 4, std sqrt(5)
    expected = (advantages - 4.0) / np.sqrt(5.0)
    np.testing.assert_allclose(normalized(advantages), expected, rtol=1e-6)
    np.testing.assert_array_equal(normalized(np.array([2.5], dtype=np.float32)), [0.0])
