"""The records that cross between learners, drivers and the supervisor. NumPy only: every layer
imports these, and none should pay for torch or Gymnasium to do so."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Episode:
    """A finished episode as the env's RecordEpisodeStatistics saw it (unshaped rewards)."""

    env_index: int
    episode_return: float
    length: int


@dataclass
class UpdateStats:
    """The loss terms and gradient norm of one update, for the logs."""

    policy_loss: float
    value_loss: float
    entropy: float
    grad_norm: float
    total_loss: float = 0.0

    @property
    def finite(self) -> bool:
        """False if the loss or the gradient holds a NaN or inf: such an update must not be applied."""
        return math.isfinite(self.total_loss) and math.isfinite(self.grad_norm)


@dataclass
class LearnerReport:
    """What one actor-learner tells the supervisor between flushes: finished episodes and updates."""

    rank: int
    episodes: list[tuple[float, int, float, int]] = field(default_factory=list)  # time, step, R, len
    updates: int = 0
    sums: np.ndarray = field(default_factory=lambda: np.zeros(4))  # policy, value, entropy, grad
    staleness_sum: int = 0
    staleness_max: int = 0
    wall_time: float = 0.0  # seconds since the run started, at the flush
    global_step: int = 0
    skipped: int = 0  # updates not applied: their loss or gradient was not finite
    unfinished_steps: int = 0  # in a learner's last report: steps of the episodes still running

    def add_update(self, stats: UpdateStats, staleness: int) -> None:
        self.updates += 1
        self.sums += (stats.policy_loss, stats.value_loss, stats.entropy, stats.grad_norm)
        self.staleness_sum += staleness
        self.staleness_max = max(self.staleness_max, staleness)
