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

from a3c.config import Config
from a3c.envs import atari, memory_task  # noqa: F401  (memory_task registers a3c/CueMemory-v0)
from a3c.errors import EnvError
from a3c.spaces import check_spaces


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
    if isinstance(space, gym.spaces.Box) and len(space.shape) == 1 and space.dtype != np.float32:
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
        # A Box observation is an array: a view adds the batch axis; other spaces go through _batch.
        self._box = isinstance(env.observation_space, gym.spaces.Box)

    def reset(self, seed: int | None = None) -> tuple[Any, dict]:
        obs, info = self.env.reset(seed=seed)
        return obs[None] if self._box else _batch(obs), info

    def step(self, actions: np.ndarray) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict]:
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
            obs[None] if self._box else _batch(obs),
            np.array([reward], dtype=np.float32),
            np.array([terminated]),
            np.array([truncated]),
            info,
        )

    def close(self) -> None:
        self.env.close()


_TRUE = np.array([True])


def _batch(obs: Any) -> Any:
    """One observation as a vector env's batch of one: arrays [1, ...], in Dicts and Tuples as they
    nest (Discrete observations, plain ints, become int64 arrays)."""
    if isinstance(obs, dict):
        return {k: _batch(v) for k, v in obs.items()}
    if isinstance(obs, tuple):
        return tuple(_batch(v) for v in obs)
    return np.asarray(obs)[None]


def _batched(info: dict) -> dict:
    """A single env's final info in the layout SyncVectorEnv gives it (arrays of one, with masks)."""
    out: dict[str, Any] = {}
    for key, value in info.items():
        out[key] = _batched(value) if isinstance(value, dict) else np.array([value])
        out["_" + key] = _TRUE
    return out


def make_training_envs(config: Config, seed: int) -> gym.vector.VectorEnv | SingleEnv:
    """config.n_envs envs stepped as one batch, seeded seed, seed + 1, ...: an A2C learner's batch, or
    an A3C worker's. One env goes without the vector env's overhead; more share one batched forward."""
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
