"""A memory task that a feed-forward agent cannot solve and an LSTM agent can: ``a3c/CueMemory-v0``.

At the first step the agent sees a cue, left or right. Then comes a corridor of `length` steps
whose observations carry no information, then a last step marked as such, where the action is
judged: +1 if it names the cue, -1 otherwise. Actions before the last step do nothing. Without a
memory the best policy earns 0 on average; with one, 1.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

ENV_ID = "a3c/CueMemory-v0"


class CueMemoryEnv(gym.Env):
    """Observation [cue_left, cue_right, last_step] (float32); actions 0 (left), 1 (right)."""

    metadata = {"render_modes": []}

    def __init__(self, length: int = 8):
        if length < 0:
            raise ValueError(f"length must be >= 0, got {length}")
        self.length = length
        self.observation_space = gym.spaces.Box(0.0, 1.0, (3,), np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self.cue = 0
        self.t = 0

    def _obs(self) -> np.ndarray:
        obs = np.zeros(3, dtype=np.float32)
        if self.t == 0:
            obs[self.cue] = 1.0
        if self.t == self.length + 1:
            obs[2] = 1.0
        return obs

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.cue = int(self.np_random.integers(2))
        self.t = 0
        return self._obs(), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        if self.t == self.length + 1:  # the last step: judge the answer
            return self._obs(), (1.0 if int(action) == self.cue else -1.0), True, False, {}
        self.t += 1
        return self._obs(), 0.0, False, False, {}


if ENV_ID not in gym.registry:
    gym.register(ENV_ID, entry_point="a3c.envs.memory_task:CueMemoryEnv", reward_threshold=0.9)
