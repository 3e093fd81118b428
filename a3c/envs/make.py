"""Environment construction, and the single-env adapter that lets one rollout collector serve A3C and A2C."""

from __future__ import annotations

import functools
import importlib
import warnings
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.envs.registration import EnvSpec
from gymnasium.vector import AutoresetMode

from a3c.config import Config, usable_cores
from a3c.envs import atari, memory_task  # noqa: F401  (memory_task registers a3c/CueMemory-v0)
from a3c.envs.atari_batch import AtariBatch
from a3c.errors import EnvError

MIN_IMAGE_SIZE = 20  # the smallest frame the A3C paper's conv torso takes


def _import_prefix(env_id: str) -> str:
    """Handle Gymnasium's 'module:EnvName-v0' form with a clear error when the module is missing."""
    if ":" not in env_id:
        return env_id
    module, _, name = env_id.partition(":")
    try:
        importlib.import_module(module)
    except ImportError as exc:
        raise EnvError(f"cannot import module {module!r} for env {env_id!r}: {exc}") from None
    return name


def make_env(env_id: str, seed: int | None = None, *, training: bool = False,
             render_mode: str | None = None, **kwargs: Any) -> gym.Env:
    """Make one environment with episode statistics recorded before any reward shaping.

    training=True adds what only the learner sees, above the statistics: for Atari, the loss of a
    life as an episode end and rewards clipped to [-1, 1]. Evaluation uses training=False: the real
    game, scored whole.
    """
    name = _import_prefix(env_id)
    spec = _find_spec(name, env_id)
    try:
        if spec is not None and atari.is_atari(spec):
            env = atari.make_game(name, render_mode=render_mode, **kwargs)
        else:
            if render_mode is not None:
                kwargs["render_mode"] = render_mode
            env = gym.make(name, **kwargs)
    except gym.error.DependencyNotInstalled as exc:
        raise EnvError(_missing_package(env_id, spec, exc)) from None
    except gym.error.Error as exc:
        raise EnvError(f"unknown or unusable env id {env_id!r}: {exc}") from None
    except (ModuleNotFoundError, ImportError) as exc:
        raise EnvError(_missing_package(env_id, spec, exc)) from None
    check_spaces(env.observation_space, env.action_space, env_id)
    space = env.observation_space
    if len(space.shape) == 1 and space.dtype != np.float32:
        with warnings.catch_warnings():  # bounds lose precision in float32: fine for observations
            warnings.simplefilter("ignore", UserWarning)
            env = gym.wrappers.DtypeObservation(env, np.float32)  # MuJoCo gives float64; nets take float32
    env = gym.wrappers.RecordEpisodeStatistics(env)
    if training and spec is not None and atari.is_atari(spec):
        env = atari.learning_wrappers(env)
    if seed is not None:
        env.action_space.seed(seed)
    return env


def _find_spec(name: str, env_id: str) -> EnvSpec | None:
    """The id's registration, registering ale-py's games first where the id is an Atari one."""
    try:
        return gym.spec(name)
    except gym.error.Error:
        pass
    if atari.looks_like_atari(name):
        atari.register()  # EnvError with what to install when ale-py is missing
        try:
            return gym.spec(name)
        except gym.error.Error as exc:
            raise EnvError(f"unknown Atari id {env_id!r}: {exc}") from None
    return None  # gym.make will say what is wrong with it


def _missing_package(env_id: str, spec: EnvSpec | None, exc: Exception) -> str:
    entry = spec.entry_point if spec is not None and isinstance(spec.entry_point, str) else ""
    if "mujoco" in entry:
        return f'env {env_id!r} needs MuJoCo, which is not installed: pip install "a3c[mujoco]"'
    return f"env {env_id!r} needs a package that is not installed: {exc}"


def check_spaces(obs_space: gym.Space, act_space: gym.Space, env_id: str = "env") -> None:
    """Raise EnvError unless the networks support these spaces."""
    if not isinstance(obs_space, gym.spaces.Box):
        raise EnvError(
            f"{env_id}: observation space {obs_space} is not supported; "
            "the networks take a Box observation (a vector, or a stack of images)"
        )
    if len(obs_space.shape) not in (1, 3):
        raise EnvError(
            f"{env_id}: observation shape {obs_space.shape} is not supported; "
            "the networks take flat vectors (MLP torso) or image stacks [C, H, W] (conv torsos)"
        )
    if len(obs_space.shape) == 3 and min(obs_space.shape[1:]) < MIN_IMAGE_SIZE:
        raise EnvError(
            f"{env_id}: observation shape {obs_space.shape} is not supported; images must be "
            f"channel-first [C, H, W] with H and W at least {MIN_IMAGE_SIZE} for the conv torsos"
        )
    if isinstance(act_space, gym.spaces.Discrete):
        return
    if isinstance(act_space, gym.spaces.Box) and len(act_space.shape) == 1:
        if not (np.all(np.isfinite(act_space.low)) and np.all(np.isfinite(act_space.high))):
            raise EnvError(f"{env_id}: continuous actions need finite bounds, got {act_space}")
        return
    raise EnvError(
        f"{env_id}: action space {act_space} is not supported; use Discrete or a 1-D Box"
    )


def reward_threshold(env_id: str) -> float | None:
    """The env's registered 'solved' return, if it has one."""
    try:
        return gym.spec(_import_prefix(env_id)).reward_threshold
    except gym.error.Error:
        return None


class SingleEnv:
    """One env behind the batched, same-step-autoreset interface of gymnasium's vector envs.

    A3C workers step one env; going through SyncVectorEnv would cost more than the env itself.
    """

    num_envs = 1

    def __init__(self, env: gym.Env):
        self.env = env
        self.single_observation_space = env.observation_space
        self.single_action_space = env.action_space

    def reset(self, seed: int | None = None) -> tuple[np.ndarray, dict]:
        obs, info = self.env.reset(seed=seed)
        return obs[None], info

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        obs, reward, terminated, truncated, info = self.env.step(actions[0])
        if terminated or truncated:
            final_obs = np.empty(1, dtype=object)
            final_obs[0] = obs
            info = {"final_obs": final_obs, "_final_obs": _TRUE,
                    "final_info": _batched(info), "_final_info": _TRUE}
            obs, _ = self.env.reset()
        else:
            info = {}
        return (
            obs[None],
            np.array([reward], dtype=np.float32),
            np.array([terminated]),
            np.array([truncated]),
            info,
        )

    def close(self) -> None:
        self.env.close()


_TRUE = np.array([True])


def _batched(info: dict) -> dict:
    """A single env's final info in the layout SyncVectorEnv gives it (arrays of one, with masks)."""
    out: dict[str, Any] = {}
    for key, value in info.items():
        out[key] = _batched(value) if isinstance(value, dict) else np.array([value])
        out["_" + key] = _TRUE
    return out


def make_training_envs(config: Config, seed: int) -> gym.vector.VectorEnv | SingleEnv | AtariBatch:
    """config.n_envs envs stepped as one batch, seeded seed, seed + 1, ...: an A2C learner's batch, or
    an A3C worker's. One env goes without the vector env's overhead; more share one batched forward.
    vec_env ale steps Atari games in ale-py's C++ threads: one thread per A3C worker (the workers
    take the cores), every usable core for A2C's one process."""
    if config.vec_env == "ale":
        spec = _find_spec(_import_prefix(config.env_id), config.env_id)
        if spec is None or not atari.is_atari(spec):
            raise EnvError(f"vec_env ale steps Atari games (ale-py's AtariVectorEnv); {config.env_id!r} "
                           "is not one: use vec_env sync")
        threads = 1 if config.algo == "a3c" else usable_cores()
        return AtariBatch(spec, config.n_envs, num_threads=min(threads, config.n_envs))
    if config.n_envs == 1:
        return SingleEnv(make_env(config.env_id, seed, training=True))
    fns = [functools.partial(make_env, config.env_id, seed + i, training=True)
           for i in range(config.n_envs)]
    kind = gym.vector.SyncVectorEnv if config.vec_env == "sync" else gym.vector.AsyncVectorEnv
    try:
        envs = kind(fns, autoreset_mode=AutoresetMode.SAME_STEP)
    except RuntimeError as exc:
        if "space" not in str(exc):
            raise
        # gymnasium checks that all sub-envs have the same spaces; its hint to use
        # observation_mode='different' does not apply here: a batch needs one shape.
        detail = " ".join(str(exc).split(" If this is intentional")[0].split())
        raise EnvError(
            f"{config.env_id}: the {config.n_envs} sub-environments of the vector env disagree "
            f"on their spaces, so they cannot be batched: {detail}"
        ) from None
    check_spaces(envs.single_observation_space, envs.single_action_space, config.env_id)
    return envs
