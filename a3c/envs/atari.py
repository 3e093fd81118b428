"""Atari 2600 games through ale-py, preprocessed as in the A3C and DQN papers.

Two pipelines give the same game. For learning, ale-py's C++ AtariVectorEnv steps a learner's
games as one batch (envs/atari_batch.py). Evaluation, rendering and video play one game through
Gymnasium's wrappers, built here:
    ALE env with frameskip=1 -> one FIRE frame at reset where the game has FIRE -> AtariPreprocessing
    (up to 30 no-op frames at reset, 4 frames per action with a max over the last two, 84x84
    grayscale) -> a stack of the last 4 frames, zeros before the first, uint8 [4, 84, 84].
This is the order ale-py's vector env does the same things in, so that with the no-ops off the two
pipelines give the same frames, rewards and ends (tests/integration/test_atari_pipelines.py).

For learning only, two wrappers go on top of the episode statistics (see envs.make_env): the loss
of a life ends the learner's episode without resetting the game, and rewards are clipped to [-1, 1].

FIRE is pressed for the agent only as part of a game's reset, like the no-ops: those frames are in
no step count. After a lost life nothing is pressed for it: in games that wait for FIRE the agent
presses it itself, as it must in evaluation, so every step of a game is a step the learner takes,
counts and learns from.
"""

from __future__ import annotations

import re
from typing import Any

import gymnasium as gym
import numpy as np

from a3c.errors import EnvError

INSTALL_HINT = 'pip install "a3c[atari]" (ale-py, which ships the game ROMs)'
FRAME_SKIP = 4
FRAME_STACK = 4
SCREEN_SIZE = 84
NOOP_MAX = 30

# Gymnasium's classic Atari ids: Pong-v4, PongNoFrameskip-v4, PongDeterministic-v4 (and -v0).
_V4_STYLE = re.compile(r"[A-Z][A-Za-z]*(NoFrameskip|Deterministic)-v[04]")
_registered = False


def looks_like_atari(name: str) -> bool:
    """An id that only ale-py can provide, judged from its form alone (ale-py may not be installed)."""
    return name.startswith("ALE/") or _V4_STYLE.fullmatch(name) is not None


def register() -> None:
    """Register ale-py's ids with Gymnasium; EnvError saying what to install when it is missing."""
    global _registered
    if _registered:
        return
    try:
        import ale_py
    except ImportError:
        raise EnvError(f"Atari games need ale-py, which is not installed: {INSTALL_HINT}") from None
    gym.register_envs(ale_py)
    _registered = True


def is_atari(spec: gym.envs.registration.EnvSpec) -> bool:
    entry = spec.entry_point if isinstance(spec.entry_point, str) else ""
    return entry.startswith("ale_py")


def make_game(name: str, render_mode: str | None = None, noop_max: int = NOOP_MAX,
              **kwargs: Any) -> gym.Env:
    """The real game, preprocessed: uint8 observations of shape [4, 84, 84].

    The ALE env is made with frameskip=1 so that AtariPreprocessing does the skipping (with the max
    over the last two frames). ALE/...-v5 ids keep their sticky actions (repeat_action_probability
    0.25, Machado et al. 2018); NoFrameskip-v4 ids have none, as in the A3C paper. Either can be
    overridden through kwargs. noop_max=0 starts every game at the same frame (the tests compare
    the two pipelines frame for frame that way).
    """
    _one_thread_opencv()
    kwargs = {"frameskip": 1, **kwargs}
    if render_mode is not None:
        kwargs["render_mode"] = render_mode
    env = gym.make(name, **kwargs)
    if needs_fire(env):
        env = FireOnReset(env)
    env = gym.wrappers.AtariPreprocessing(
        env, noop_max=noop_max, frame_skip=FRAME_SKIP, screen_size=SCREEN_SIZE,
        terminal_on_life_loss=False, grayscale_obs=True, scale_obs=False,
    )
    return gym.wrappers.FrameStackObservation(env, FRAME_STACK, padding_type="zero")


def needs_fire(env: gym.Env) -> bool:
    """Games with a FIRE action get it pressed at reset (Breakout waits for it): ale-py's rule."""
    return "FIRE" in env.unwrapped.get_action_meanings()


def learning_wrappers(env: gym.Env) -> gym.Env:
    """What the learner sees on top of the real game: life loss as an episode end, clipped rewards."""
    env = LifeLossEndsEpisode(env)
    return gym.wrappers.ClipReward(env, -1.0, 1.0)


class FireOnReset(gym.Wrapper):
    """One frame of FIRE right after the game resets, before the no-ops, as ale-py's vector env does.

    It sits below AtariPreprocessing, so the press is part of the reset: no agent step, no count.
    """

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.fire = env.unwrapped.get_action_meanings().index("FIRE")

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict]:
        self.env.reset(**kwargs)
        obs, _, terminated, truncated, info = self.env.step(self.fire)
        if terminated or truncated:
            return self.env.reset(**kwargs)
        return obs, info


class LifeLossEndsEpisode(gym.Wrapper):
    """The loss of a life is `terminated` for the learner, but the game goes on.

    A reset after a lost life does not reset the game: it returns the current observation and
    presses nothing, so the agent's next action is the game's next step (FIRE, where the game waits
    for it, is the agent's to press). Only a reset after the real end of the game resets it, so the
    episode statistics below this wrapper count whole games, and each of their steps once.
    """

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.ale = env.unwrapped.ale
        self.lives = 0
        self.game_over = True
        self.last: tuple[np.ndarray, dict] | None = None

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.game_over = terminated or truncated
        lives = self.ale.lives()
        if 0 < lives < self.lives:
            terminated = True
        self.lives = lives
        self.last = (obs, info)
        return obs, reward, terminated, truncated, info

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict]:
        if self.game_over or self.last is None:
            obs, info = self.env.reset(**kwargs)
        else:
            obs, info = self.last
        self.game_over = False
        self.lives = self.ale.lives()
        return obs, info


def _one_thread_opencv() -> None:
    """AtariPreprocessing resizes with OpenCV, whose thread pool would fight the workers for cores."""
    try:
        import cv2
    except ImportError:
        return  # AtariPreprocessing says what to install
    cv2.setNumThreads(1)
