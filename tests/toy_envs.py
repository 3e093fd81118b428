"""Tiny real Gymnasium envs for the tests, registered on import.

Reach them as 'tests.toy_envs:Toy...-v0' so that make_env imports this module, also inside spawned
worker processes (spawn hands the parent's sys.path, which pytest gave the repository root).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces


class IdentityEnv(gym.Env):
    """Observe a one-hot target, get reward 1 for naming it: learnable in a few thousand steps."""

    def __init__(self, n: int = 4):
        self.n = n
        self.observation_space = spaces.Box(0.0, 1.0, (n,), dtype=np.float32)
        self.action_space = spaces.Discrete(n)
        self.target = 0

    def _obs(self) -> np.ndarray:
        obs = np.zeros(self.n, dtype=np.float32)
        obs[self.target] = 1.0
        return obs

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.target = int(self.np_random.integers(self.n))
        return self._obs(), {}

    def step(self, action):
        reward = 1.0 if int(action) == self.target else 0.0
        self.target = int(self.np_random.integers(self.n))
        return self._obs(), reward, False, False, {}


class _VectorObsEnv(gym.Env):
    """A Box observation with whatever action space a subclass sets; steps do nothing."""

    observation_space = spaces.Box(-1.0, 1.0, (3,), dtype=np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(3, dtype=np.float32), {}

    def step(self, action):
        return np.zeros(3, dtype=np.float32), 0.0, False, False, {}


class MultiDiscreteActionEnv(_VectorObsEnv):
    action_space = spaces.MultiDiscrete([2, 3])


class DictActionEnv(_VectorObsEnv):
    action_space = spaces.Dict({"move": spaces.Discrete(2), "force": spaces.Box(-1.0, 1.0, (1,))})


class UnboundedBoxActionEnv(_VectorObsEnv):
    action_space = spaces.Box(-np.inf, np.inf, (2,), dtype=np.float32)


class ImageObsEnv(gym.Env):
    observation_space = spaces.Box(0, 255, (4, 4, 3), dtype=np.uint8)
    action_space = spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros((4, 4, 3), dtype=np.uint8), {}

    def step(self, action):
        return np.zeros((4, 4, 3), dtype=np.uint8), 0.0, False, False, {}


class FailingEnv(_VectorObsEnv):
    """Constructs and resets fine (so the trainer's own envs work), then raises on step `fail_at`."""

    action_space = spaces.Discrete(2)
    message = "toy env broke on purpose"

    def __init__(self, fail_at: int = 50):
        self.fail_at = fail_at
        self.steps = 0

    def step(self, action):
        self.steps += 1
        if self.steps >= self.fail_at:
            raise RuntimeError(f"{self.message} at step {self.steps}")
        return super().step(action)


class EpisodesThenFailEnv(_VectorObsEnv):
    """Episodes of 5 steps with reward 1 per step; the 23rd step raises: 4 whole episodes, then a
    failure, in every process that makes it."""

    action_space = spaces.Discrete(2)

    def __init__(self):
        self.steps = 0
        self.t = 0

    def reset(self, *, seed=None, options=None):
        self.t = 0
        return super().reset(seed=seed, options=options)

    def step(self, action):
        self.steps += 1
        self.t += 1
        if self.steps == 23:
            raise RuntimeError("toy env failed after its episodes on purpose")
        return np.zeros(3, dtype=np.float32), 1.0, self.t == 5, False, {}


class SeedEchoEnv(FailingEnv):
    """Every step is an episode whose reward is the seed of the env's first reset, so the episode log
    shows the seeds each learner drew; it raises at step `fail_at`, as FailingEnv does, so that the
    learner is restarted and draws again."""

    first_seed: int | None = None

    def reset(self, *, seed=None, options=None):
        if seed is not None and self.first_seed is None:
            self.first_seed = seed
        return super().reset(seed=seed, options=options)

    def step(self, action):
        obs, *_ = super().step(action)
        return obs, float(self.first_seed), True, False, {}


class NaNRewardEnv(IdentityEnv):
    """The identity env whose reward is NaN with probability `p` (from its own seeded RNG)."""

    def __init__(self, p: float = 0.1):
        super().__init__()
        self.p = p

    def step(self, action):
        obs, reward, terminated, truncated, info = super().step(action)
        if self.p >= 1.0 or self.np_random.random() < self.p:
            reward = float("nan")
        return obs, reward, terminated, truncated, info


class StuckEnv(_VectorObsEnv):
    """Steps normally `stuck_after` times, then one step never returns (for an hour).

    Reset with an even seed, it blocks inside C code that holds the GIL (no Python thread of the
    process runs meanwhile); with an odd seed, in time.sleep, which releases it. A3C worker w's env
    is seeded seed + w, so with seed 0 worker 0 blocks the first way and worker 1 the second.
    """

    action_space = spaces.Discrete(2)

    def __init__(self, stuck_after: int = 200):
        self.stuck_after = stuck_after
        self.steps = 0
        self.hold_gil = True

    def reset(self, *, seed=None, options=None):
        if seed is not None:
            self.hold_gil = seed % 2 == 0
        return super().reset(seed=seed, options=options)

    def step(self, action):
        self.steps += 1
        if self.steps == self.stuck_after:
            if self.hold_gil:
                import ctypes

                ctypes.PyDLL(None).sleep(3600)  # a PyDLL call keeps the GIL: C code stuck for good
            else:
                import time

                time.sleep(3600)
        return super().step(action)


class PickZeroEnv(_VectorObsEnv):
    """One step per episode: reward 1 for action 0, else 0. A network with zero features acts on its
    policy head's bias alone, so a test can set the greedy policy's score to exactly 0 or 1."""

    action_space = spaces.Discrete(2)

    def step(self, action):
        return np.zeros(3, dtype=np.float32), float(int(action) == 0), True, False, {}


class EvenSeedEnv(_VectorObsEnv):
    """One step per episode, whatever the action: reward 1 if the episode was reset with an even
    seed, else 0. Evaluations over chosen seeds then score what a test wants them to."""

    action_space = spaces.Discrete(2)
    even = False

    def reset(self, *, seed=None, options=None):
        self.even = seed is not None and seed % 2 == 0
        return super().reset(seed=seed, options=options)

    def step(self, action):
        return np.zeros(3, dtype=np.float32), float(self.even), True, False, {}


def make_identity(n: int = 4, max_episode_steps: int = 20) -> gym.Env:
    """An env function, as a user would pass it: A3C(make_identity) or 'tests.toy_envs:make_identity'."""
    return gym.wrappers.TimeLimit(IdentityEnv(n), max_episode_steps)


def broken_factory() -> gym.Env:
    raise RuntimeError("toy env factory broke on purpose")


class ScaleReward(gym.RewardWrapper):
    """A user's wrapper: rewards times 10."""

    def reward(self, reward):
        return 10.0 * reward


_ENVS = {
    "ToyIdentity-v0": (IdentityEnv, dict(max_episode_steps=20, reward_threshold=20.0)),
    "ToyMultiDiscrete-v0": (MultiDiscreteActionEnv, dict(max_episode_steps=10)),
    "ToyDictAction-v0": (DictActionEnv, dict(max_episode_steps=10)),
    "ToyUnboundedBox-v0": (UnboundedBoxActionEnv, dict(max_episode_steps=10)),
    "ToyImageObs-v0": (ImageObsEnv, dict(max_episode_steps=10)),
    "ToyFailing-v0": (FailingEnv, dict(max_episode_steps=1000)),
    "ToySeedEcho-v0": (SeedEchoEnv, dict(kwargs=dict(fail_at=25))),
    "ToyNaNReward-v0": (NaNRewardEnv, dict(max_episode_steps=20, kwargs=dict(p=0.05))),
    "ToyAlwaysNaN-v0": (NaNRewardEnv, dict(max_episode_steps=20, kwargs=dict(p=1.0))),
    "ToyStuck-v0": (StuckEnv, dict(max_episode_steps=50, kwargs=dict(stuck_after=30))),
    "ToyPickZero-v0": (PickZeroEnv, dict(reward_threshold=1.0)),
    "ToyEpisodesThenFail-v0": (EpisodesThenFailEnv, dict()),
    "ToyEvenSeed-v0": (EvenSeedEnv, dict(reward_threshold=1.0)),
}

for _id, (_cls, _kwargs) in _ENVS.items():
    if _id not in gym.registry:
        gym.register(_id, entry_point=_cls, **_kwargs)
