"""Greedy or stochastic evaluation of a network over whole episodes."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

from a3c import spaces
from a3c.config import Config
from a3c.core.networks import ActorCritic
from a3c.envs import atari
from a3c.envs.make import make_config_env
from a3c.errors import ConfigError, EnvError


@dataclass
class EvalResult:
    returns: list[float]
    lengths: list[int]

    @property
    def mean_return(self) -> float:
        return float(np.mean(self.returns))

    @property
    def std_return(self) -> float:
        return float(np.std(self.returns))

    def to_dict(self) -> dict[str, float | int]:
        return {"mean_return": self.mean_return, "std_return": self.std_return,
                "episodes": len(self.returns)}


# An evaluation episode of an env without a time limit of its own ends after this many steps: a
# greedy policy can walk into a wall forever (CliffWalking), and an evaluation must end. It is
# Atari's conventional limit, 108,000 frames (30 minutes of play) at a frame skip of 4.
EPISODE_STEP_LIMIT = 27_000


def to_env_action(action: torch.Tensor, space: gym.Space) -> np.ndarray | int:
    """A network action as the env takes it: an int for Discrete, else an array of the space's
    dtype and shape (a Box's clipped to its bounds)."""
    return spaces.to_env_action(action.cpu().numpy(), space)


def has_time_limit(env: gym.Env) -> bool:
    while isinstance(env, gym.Wrapper):
        if isinstance(env, gym.wrappers.TimeLimit):
            return True
        env = env.env
    return False


@torch.no_grad()
def evaluate(
    net: ActorCritic, env: gym.Env, episodes: int, deterministic: bool = True, seed: int = 0
) -> EvalResult:
    """Run whole episodes and report the env's own (unshaped) returns.

    An env without a time limit has its episodes cut at EPISODE_STEP_LIMIT steps. The network acts
    on one observation at a time, on one intra-op thread: at batch 1 more threads only wait on each
    other, and on a busy machine they wait long.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _episodes(net, env, episodes, deterministic, seed)
    finally:
        torch.set_num_threads(threads)


def _episodes(net: ActorCritic, env: gym.Env, episodes: int, deterministic: bool, seed: int) -> EvalResult:
    returns, lengths = [], []
    limit = None if has_time_limit(env) else EPISODE_STEP_LIMIT
    to_env = spaces.single_action_converter(env.action_space)
    for k in range(episodes):
        obs, _ = env.reset(seed=seed + k)
        total, length, done = 0.0, 0, False
        state = net.initial_state(1)
        if not deterministic:
            net.resample_noise(1)  # state-dependent exploration: fresh noise for each episode
        while not done:
            obs_t, _ = net.observation_batch(obs)
            action, _, state = net.act(obs_t, state, deterministic)
            obs, reward, terminated, truncated, _ = env.step(to_env(action[0].cpu().numpy()))
            total += float(reward)
            length += 1
            done = terminated or truncated or length == limit
        returns.append(total)
        lengths.append(length)
    return EvalResult(returns, lengths)


def make_eval_env(config: Config, video_dir: str | os.PathLike | None = None,
                  render: bool = False) -> gym.Env:
    """The real env (no learning wrappers), recording every episode to video_dir or shown on screen."""
    if video_dir is not None and render:
        raise ConfigError("choose one of --video and --render")
    if render:
        if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            raise ConfigError("--render needs a screen, and none is attached here (DISPLAY is not set); "
                              "record the episodes with --video DIR instead")
        return _with_render_mode(config, "human")
    if video_dir is None:
        return make_config_env(config)
    env = _with_render_mode(config, "rgb_array")
    skip = atari.FRAME_SKIP if hasattr(env.unwrapped, "ale") else 1  # Atari: 1 frame in 4 reaches us
    fps = env.metadata.get("render_fps") or 30
    try:
        return gym.wrappers.RecordVideo(env, str(Path(video_dir)), episode_trigger=lambda _: True,
                                        name_prefix="eval", fps=max(1, round(fps / max(skip, 1))))
    except gym.error.DependencyNotInstalled as exc:
        env.close()
        raise ConfigError(f'--video needs moviepy: pip install "a3c[video]" ({exc})') from None


def _with_render_mode(config: Config, mode: str) -> gym.Env:
    env_id = config.env_id
    try:
        env = make_config_env(config, render_mode=mode)
    except EnvError as exc:
        raise ConfigError(f"{env_id} cannot render ({mode}): {exc}") from None
    if mode not in env.metadata.get("render_modes", []):
        env.close()
        raise ConfigError(f"{env_id} has no render mode {mode!r}: it cannot be watched or recorded")
    return env
