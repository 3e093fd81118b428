"""Greedy or stochastic evaluation of a network over whole episodes."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from a3c import spaces
from a3c.config import Config
from a3c.core.networks import ActorCritic, one_torch_thread
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

# The envs an evaluation plays at once, at most: the presets' evaluations are of 10 episodes, and a
# batch of 10 costs a small network little more than one observation does.
EVAL_BATCH = 10


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
    net: ActorCritic, env: gym.Env | Sequence[gym.Env], episodes: int, deterministic: bool = True,
    seed: int = 0,
) -> EvalResult:
    """Run whole episodes and report the env's own (unshaped) returns, in the order of their seeds.

    Episode k starts from env.reset(seed=seed + k). Given several envs (copies of one env), they
    play that many episodes at once and the network acts on all their observations in one batch:
    which env plays an episode changes its cost, not the episode (up to the floating-point rounding
    of a batched forward pass). Stochastic evaluation with state-dependent exploration plays one
    episode at a time, as each draws its own noise and keeps it to its end.

    An env without a time limit has its episodes cut at EPISODE_STEP_LIMIT steps. The network runs
    on one intra-op thread: at these batch sizes more threads only wait on each other, and on a busy
    machine they wait long.
    """
    envs = [env] if isinstance(env, gym.Env) else list(env)
    if not deterministic and net.spec.use_sde:
        envs = envs[:1]
    if episodes <= 0:
        return EvalResult([], [])
    with one_torch_thread():
        return _episodes(net, envs[:episodes], episodes, deterministic, seed)


def _episodes(net: ActorCritic, envs: list[gym.Env], episodes: int, deterministic: bool,
              seed: int) -> EvalResult:
    returns, lengths = [0.0] * episodes, [0] * episodes
    limit = None if has_time_limit(envs[0]) else EPISODE_STEP_LIMIT
    to_env = spaces.single_action_converter(envs[0].action_space)
    playing: list[int | None] = [None] * len(envs)  # the episode each env plays, None once done
    obs: list[Any] = [None] * len(envs)
    started = 0

    def begin(i: int) -> None:
        nonlocal started
        obs[i], _ = envs[i].reset(seed=seed + started)
        playing[i] = started
        started += 1
        if not deterministic:
            net.resample_noise(len(envs))  # one env here (see evaluate): fresh noise per episode

    state = net.initial_state(len(envs))
    for i in range(len(envs)):
        begin(i)
    while any(k is not None for k in playing):
        obs_t, _ = net.observation_batch(stack_observations(obs))
        actions, _, state = net.act(obs_t, state, deterministic)
        actions = actions.cpu().numpy()
        ended = np.zeros(len(envs), dtype=bool)
        for i, k in enumerate(playing):
            if k is None:
                continue  # its env idles, its row of the batch is ignored, until all are done
            obs[i], reward, terminated, truncated, _ = envs[i].step(to_env(actions[i]))
            returns[k] += float(reward)
            lengths[k] += 1
            if terminated or truncated or lengths[k] == limit:
                ended[i] = True
                playing[i] = None
                if started < episodes:
                    begin(i)
        if ended.any():
            state = net.reset_state(state, ended)
    return EvalResult(returns, lengths)


def stack_observations(items: list[Any]) -> Any:
    """Observations of several envs as one batch, as a vector env gives them: an array [B, ...],
    or a dict (Dict spaces) or tuple (Tuple spaces) of them."""
    first = items[0]
    if isinstance(first, dict):
        return {key: stack_observations([o[key] for o in items]) for key in first}
    if isinstance(first, tuple):
        return tuple(stack_observations([o[j] for o in items]) for j in range(len(first)))
    return np.stack([np.asarray(o) for o in items])


def make_eval_envs(config: Config, episodes: int, envs: list[gym.Env] | None = None) -> list[gym.Env]:
    """Copies of the real env enough to play `episodes` at once, up to EVAL_BATCH (at least one);
    given envs, those are kept and as many more made as are missing."""
    envs = [] if envs is None else envs
    while len(envs) < max(1, min(episodes, EVAL_BATCH)):
        envs.append(make_config_env(config))
    return envs


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
