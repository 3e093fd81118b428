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


class DictActionEnv(_VectorObsEnv):
    action_space = spaces.Dict({"move": spaces.Discrete(2), "force": spaces.Box(-1.0, 1.0, (1,))})


class UnboundedBoxActionEnv(_VectorObsEnv):
    action_space = spaces.Box(-np.inf, np.inf, (2,), dtype=np.float32)


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


# --- one identity task per observation kind and per action kind ----------------------------------
#
# Each step shows a target drawn at random (from the env's own seeded RNG); the reward says how well
# the action named it, and the next step shows a new one. Episodes are 20 steps (their registration's
# time limit), so a perfect policy scores 20 and a random one a fraction of it.


class _CueEnv(gym.Env):
    """A target in range(n) each step, shown by `_obs`; reward 1 for action == target."""

    n = 4
    action_space = spaces.Discrete(4)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.target = int(self.np_random.integers(self.n))
        return self._obs(), {}

    def reward(self, action):
        return float(int(action) == self.target)

    def step(self, action):
        reward = self.reward(action)
        self.target = int(self.np_random.integers(self.n))
        return self._obs(), reward, False, False, {}


class DiscreteObsEnv(_CueEnv):
    """Discrete observations counted from 3 (start=3), as FrozenLake's and Taxi's but offset."""

    observation_space = spaces.Discrete(4, start=3)

    def _obs(self):
        return self.target + 3


class MultiDiscreteObsEnv(_CueEnv):
    """The target in two digits, [target // 2, target % 2]."""

    observation_space = spaces.MultiDiscrete([2, 2])

    def _obs(self):
        return np.array([self.target // 2, self.target % 2], dtype=np.int64)


class MultiBinaryObsEnv(_CueEnv):
    observation_space = spaces.MultiBinary(4)

    def _obs(self):
        bits = np.zeros(4, dtype=np.int8)
        bits[self.target] = 1
        return bits


def _quadrants(target: int, size: int = 20) -> np.ndarray:
    """A [size, size] frame of bytes, bright in the target's quadrant, with a little noise."""
    frame = np.zeros((size, size), dtype=np.uint8)
    half = size // 2
    row, col = divmod(target, 2)
    frame[row * half:(row + 1) * half, col * half:(col + 1) * half] = 200
    return frame


class ImageObsIdentityEnv(_CueEnv):
    """The target as the bright quadrant of a 20x20 RGB frame given channel-last [H, W, C], as
    CarRacing's frames are (channels_last=False: [C, H, W], as Atari stacks)."""

    def __init__(self, channels_last: bool = True):
        self.channels_last = channels_last
        shape = (20, 20, 3) if channels_last else (3, 20, 20)
        self.observation_space = spaces.Box(0, 255, shape, dtype=np.uint8)

    def _obs(self):
        frame = np.repeat(_quadrants(self.target)[None], 3, axis=0)
        return np.ascontiguousarray(frame.transpose(1, 2, 0)) if self.channels_last else frame


class DictObsEnv(_CueEnv):
    """The target split over two parts: 'cue' (Discrete) gives target // 2 and which half of 'frame'
    (an image, channel-last) is bright gives target % 2; 'noise' (a Box vector) tells nothing."""

    observation_space = spaces.Dict({
        "cue": spaces.Discrete(2),
        "frame": spaces.Box(0, 255, (20, 20, 1), dtype=np.uint8),
        "noise": spaces.Box(-1.0, 1.0, (2,), dtype=np.float32),
    })

    def _obs(self):
        frame = np.zeros((20, 20, 1), dtype=np.uint8)
        side = self.target % 2
        frame[:, side * 10:(side + 1) * 10] = 200
        noise = self.np_random.uniform(-1, 1, 2).astype(np.float32)
        return {"cue": self.target // 2, "frame": frame, "noise": noise}


class DictObsMultiDiscreteActionEnv(DictObsEnv):
    """DictObsEnv's observations, its target named in two components: [target // 2, target % 2]."""

    action_space = spaces.MultiDiscrete([2, 2])

    def reward(self, action):
        action = np.asarray(action)
        return 0.5 * float(action[0] == self.target // 2) + 0.5 * float(action[1] == self.target % 2)


class TupleObsEnv(_CueEnv):
    """The target as two Discrete digits in a Tuple, as Blackjack's observations are."""

    observation_space = spaces.Tuple((spaces.Discrete(2), spaces.Discrete(2)))

    def _obs(self):
        return (self.target // 2, self.target % 2)


class BoxActionEnv(gym.Env):
    """Observe x in [-1, 1]^2; reward -(a - x)^2 summed: the greedy action should be x itself."""

    observation_space = spaces.Box(-1.0, 1.0, (2,), dtype=np.float32)
    action_space = spaces.Box(-1.0, 1.0, (2,), dtype=np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.x = self.np_random.uniform(-1, 1, 2).astype(np.float32)
        return self.x.copy(), {}

    def step(self, action):
        reward = -float(np.sum((np.asarray(action) - self.x) ** 2))
        self.x = self.np_random.uniform(-1, 1, 2).astype(np.float32)
        return self.x.copy(), reward, False, False, {}


class MultiDiscreteActionIdentityEnv(_CueEnv):
    """Two targets, of 3 and 2 values, shown one-hot side by side; 0.5 for each named right."""

    observation_space = spaces.Box(0.0, 1.0, (5,), dtype=np.float32)
    action_space = spaces.MultiDiscrete([3, 2])
    n = 6

    def _obs(self):
        obs = np.zeros(5, dtype=np.float32)
        obs[self.target // 2] = 1.0
        obs[3 + self.target % 2] = 1.0
        return obs

    def reward(self, action):
        action = np.asarray(action)
        assert action.shape == (2,) and action.dtype == np.int64, action
        return 0.5 * float(action[0] == self.target // 2) + 0.5 * float(action[1] == self.target % 2)


class MultiBinaryActionEnv(_CueEnv):
    """Four bits shown as floats; the action should copy them: reward the fraction copied right."""

    observation_space = spaces.Box(0.0, 1.0, (4,), dtype=np.float32)
    action_space = spaces.MultiBinary(4)
    n = 16

    def _bits(self):
        return np.array([(self.target >> i) & 1 for i in range(4)])

    def _obs(self):
        return self._bits().astype(np.float32)

    def reward(self, action):
        action = np.asarray(action)
        assert action.shape == (4,) and action.dtype == np.int8, action
        return float(np.mean(action == self._bits()))


class _UnsupportedObsEnv(gym.Env):
    action_space = spaces.Discrete(2)


class TextObsEnv(_UnsupportedObsEnv):
    observation_space = spaces.Text(5)


class GraphObsEnv(_UnsupportedObsEnv):
    observation_space = spaces.Graph(spaces.Box(0.0, 1.0, (2,)), spaces.Discrete(2))


class SequenceObsEnv(_UnsupportedObsEnv):
    observation_space = spaces.Sequence(spaces.Discrete(2))


class DictWithTextObsEnv(_UnsupportedObsEnv):
    observation_space = spaces.Dict({"position": spaces.Box(0.0, 1.0, (2,)), "name": spaces.Text(5)})


_ENVS = {
    "ToyIdentity-v0": (IdentityEnv, dict(max_episode_steps=20, reward_threshold=20.0)),
    "ToyDictAction-v0": (DictActionEnv, dict(max_episode_steps=10)),
    "ToyUnboundedBox-v0": (UnboundedBoxActionEnv, dict(max_episode_steps=10)),
    "ToyFailing-v0": (FailingEnv, dict(max_episode_steps=1000)),
    "ToySeedEcho-v0": (SeedEchoEnv, dict(kwargs=dict(fail_at=25))),
    "ToyNaNReward-v0": (NaNRewardEnv, dict(max_episode_steps=20, kwargs=dict(p=0.05))),
    "ToyAlwaysNaN-v0": (NaNRewardEnv, dict(max_episode_steps=20, kwargs=dict(p=1.0))),
    "ToyStuck-v0": (StuckEnv, dict(max_episode_steps=50, kwargs=dict(stuck_after=30))),
    "ToyPickZero-v0": (PickZeroEnv, dict(reward_threshold=1.0)),
    "ToyEpisodesThenFail-v0": (EpisodesThenFailEnv, dict()),
    "ToyEvenSeed-v0": (EvenSeedEnv, dict(reward_threshold=1.0)),
    "ToyDiscreteObs-v0": (DiscreteObsEnv, dict(max_episode_steps=20, reward_threshold=20.0)),
    "ToyMultiDiscreteObs-v0": (MultiDiscreteObsEnv, dict(max_episode_steps=20, reward_threshold=20.0)),
    "ToyMultiBinaryObs-v0": (MultiBinaryObsEnv, dict(max_episode_steps=20, reward_threshold=20.0)),
    "ToyImageObsLast-v0": (ImageObsIdentityEnv, dict(max_episode_steps=20, reward_threshold=20.0)),
    "ToyImageObsFirst-v0": (ImageObsIdentityEnv, dict(max_episode_steps=20, reward_threshold=20.0,
                                                      kwargs=dict(channels_last=False))),
    "ToyDictObs-v0": (DictObsEnv, dict(max_episode_steps=20, reward_threshold=20.0)),
    "ToyTupleObs-v0": (TupleObsEnv, dict(max_episode_steps=20, reward_threshold=20.0)),
    "ToyDictObsMultiDiscreteAction-v0": (DictObsMultiDiscreteActionEnv,
                                         dict(max_episode_steps=20, reward_threshold=20.0)),
    "ToyBoxAction-v0": (BoxActionEnv, dict(max_episode_steps=20)),
    "ToyMultiDiscreteAction-v0": (MultiDiscreteActionIdentityEnv, dict(max_episode_steps=20,
                                                                       reward_threshold=20.0)),
    "ToyMultiBinaryAction-v0": (MultiBinaryActionEnv, dict(max_episode_steps=20, reward_threshold=20.0)),
    "ToyTextObs-v0": (TextObsEnv, dict(max_episode_steps=10)),
    "ToyGraphObs-v0": (GraphObsEnv, dict(max_episode_steps=10)),
    "ToySequenceObs-v0": (SequenceObsEnv, dict(max_episode_steps=10)),
    "ToyDictWithTextObs-v0": (DictWithTextObsEnv, dict(max_episode_steps=10)),
    # FrozenLake 4x4 without the slip: learnable in a few thousand steps, where the slippery lake is not
    "ToyFrozenLakeNonSlippery-v0": ("gymnasium.envs.toy_text.frozen_lake:FrozenLakeEnv",
                                    dict(max_episode_steps=100, reward_threshold=1.0,
                                         kwargs=dict(map_name="4x4", is_slippery=False))),
}

for _id, (_cls, _kwargs) in _ENVS.items():
    if _id not in gym.registry:
        gym.register(_id, entry_point=_cls, **_kwargs)
