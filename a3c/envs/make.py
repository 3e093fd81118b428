"""Environment construction, and the batch of envs stepped in this process that one rollout collector
serves for A3C and A2C."""

from __future__ import annotations

import functools
import importlib
import traceback
import warnings
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.envs.registration import EnvSpec
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space, concatenate, create_empty_array

from a3c.config import Config, usable_cores
from a3c.envs import atari, memory_task  # noqa: F401  (memory_task registers a3c/CueMemory-v0)
from a3c.envs.atari_batch import AtariBatch
from a3c.errors import EnvError, EnvFactoryError
from a3c.references import is_reference, resolve
from a3c.spaces import check_spaces


def split_env_id(env_id: str) -> tuple[str | None, str]:
    """'module:rest' -> ('module', 'rest'); a plain Gymnasium id -> (None, id)."""
    if ":" not in env_id:
        return None, env_id
    module, _, rest = env_id.partition(":")
    return module, rest


def modules_named(env_id: str, wrappers: tuple[str, ...] = ()) -> list[str]:
    """The modules making this env would import: the id's module and each wrapper's."""
    named = [split_env_id(env_id)[0], *(split_env_id(w)[0] for w in wrappers)]
    return [m for m in named if m]


def _import_prefix(env_id: str) -> tuple[str, Callable[..., gym.Env] | None]:
    """Import the module of a 'module:...' id; return the Gymnasium id to make, or the function
    that builds the env when the id names one ('module:function')."""
    module, name = split_env_id(env_id)
    if module is None:
        return name, None
    try:
        imported = importlib.import_module(module)
    except ImportError as exc:
        raise EnvError(f"cannot import module {module!r} for env {env_id!r}: {exc}") from None
    if is_reference(env_id):  # an attribute path, not an id like EnvName-v0 or ns/EnvName-v0
        factory: Any = imported
        try:
            for part in name.split("."):
                factory = getattr(factory, part)
        except AttributeError:
            return name, None  # not an attribute: an id the module registered, e.g. 'MyEnv'
        if callable(factory):
            return name, factory
        raise EnvError(f"env {env_id!r}: {module}.{name} is not a function or an Env class")
    return name, None


def make_env(env_id: str, seed: int | None = None, *, training: bool = False,
             render_mode: str | None = None, wrappers: tuple[str, ...] = (), **kwargs: Any) -> gym.Env:
    """Make one environment with episode statistics recorded before any of our reward shaping.

    env_id is a Gymnasium id, 'module:EnvName-v0' (the module registers it on import) or
    'module:function' (a function, or an Env class, that builds one env from kwargs). wrappers
    ('module:Class' references, innermost first) wrap the env the user described: the episode
    statistics are those of the wrapped env. training=True adds what only the learner sees, above
    the statistics: for Atari, the loss of a life as an episode end and rewards clipped to [-1, 1].
    Evaluation uses training=False: the real game, scored whole.

    Every module named here is imported: code a checkpoint names must be allowed before it gets
    here (a3c.api's trust_code).
    """
    name, factory = _import_prefix(env_id)
    # Warnings are held until the env is made: for an id Gymnasium refuses (Taxi-v3), its warning
    # that the id is out of date would only repeat the error's message.
    with warnings.catch_warnings(record=True) as held:
        spec = None if factory is not None else _find_spec(name, env_id)
        env = _make(env_id, name, factory, spec, render_mode, kwargs)
    for w in held:
        warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    for wrapper in wrappers:
        env = _wrap(env, wrapper)
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


def _make(env_id: str, name: str, factory: Callable[..., gym.Env] | None, spec: EnvSpec | None,
          render_mode: str | None, kwargs: dict[str, Any]) -> gym.Env:
    """The user's env itself, before any wrapper; what goes wrong is an EnvError naming env_id."""
    try:
        if factory is not None:
            env = _call_factory(env_id, factory, render_mode, kwargs)
        elif spec is not None and atari.is_atari(spec):
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
    except TypeError as exc:
        if not kwargs:
            raise  # not about our arguments: the env's own error
        named = ", ".join(map(repr, kwargs))
        raise EnvError(f"env {env_id!r} does not take these arguments ({named}): {exc}") from None
    return env


def _call_factory(env_id: str, factory: Callable[..., gym.Env], render_mode: str | None,
                  kwargs: dict[str, Any]) -> gym.Env:
    if render_mode is not None:
        kwargs = {**kwargs, "render_mode": render_mode}
    return _user_env(f"env function {env_id!r}", factory, **kwargs)


def _wrap(env: gym.Env, reference: str) -> gym.Env:
    wrapper = resolve(reference, "env wrapper", True, EnvError)
    return _user_env(f"env wrapper {reference!r}", wrapper, env)


def _user_env(what: str, build: Callable[..., Any], *args: Any, **kwargs: Any) -> gym.Env:
    """build(*args, **kwargs), a user's env function or wrapper: what it raises as an EnvFactoryError
    with its traceback (shown once, not once per worker), and anything but an env refused."""
    try:
        env = build(*args, **kwargs)
    except Exception as exc:
        raise EnvFactoryError(f"the {what} raised {type(exc).__name__}: {exc}",
                              traceback.format_exc()) from None
    if not isinstance(env, gym.Env):
        raise EnvError(f"{what} returned {type(env).__name__}, not a gymnasium.Env")
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
    if "box2d" in entry:
        return f'env {env_id!r} needs Box2D, which is not installed: pip install "a3c[box2d]"'
    return f"env {env_id!r} needs a package that is not installed: {exc}"


def reward_threshold(env_id: str) -> float | None:
    """The env's registered 'solved' return, if it has one (an env function has none)."""
    name, factory = _import_prefix(env_id)
    if factory is not None:
        return None
    try:
        return gym.spec(name).reward_threshold
    except gym.error.Error:
        return None


def make_config_env(config: Config, seed: int | None = None, *, training: bool = False,
                    render_mode: str | None = None) -> gym.Env:
    """One env as config describes it: its id, kwargs and wrappers."""
    return make_env(config.env_id, seed, training=training, render_mode=render_mode,
                    wrappers=config.env_wrappers, **config.env_kwargs)


class SerialEnvs(gym.vector.VectorEnv):
    """Envs stepped one after another in this process, behind the batched, same-step-autoreset
    interface of gymnasium's vector envs, as the rollout collector reads it.

    At an episode's end info holds `final_obs` and `final_info` as SyncVectorEnv lays them out; the
    infos of other steps are left out, which the collector never reads. SyncVectorEnv's generality
    (every autoreset mode, every step's info merged key by key) costs more per batched step than
    four CartPole steps themselves; this costs a seventh of them
    (benchmarks/results/vector_env_step.md).
    """

    def __init__(self, envs: list[gym.Env], env_id: str = ""):
        super().__init__()
        self.envs = envs
        self.num_envs = len(envs)
        first = envs[0]
        self.metadata = dict(first.metadata)
        self.metadata["autoreset_mode"] = AutoresetMode.SAME_STEP
        self.single_observation_space = first.observation_space
        self.single_action_space = first.action_space
        for env in envs[1:]:
            if env.observation_space != first.observation_space or env.action_space != first.action_space:
                self.close_extras()
                raise EnvError(
                    f"{env_id or 'the env'}: the {len(envs)} sub-environments disagree on their spaces, "
                    f"so they cannot be batched: the first has {first.observation_space} and "
                    f"{first.action_space}, another {env.observation_space} and {env.action_space}")
        self.observation_space = batch_space(first.observation_space, self.num_envs)
        self.action_space = batch_space(first.action_space, self.num_envs)
        # Box observations batch as one array of the rows; other spaces through gymnasium's concatenate.
        self._box = isinstance(first.observation_space, gym.spaces.Box)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[Any, dict]:
        """Reset every env, env i with seed + i (as gymnasium's vector envs seed them)."""
        observations = [env.reset(seed=None if seed is None else seed + i, options=options)[0]
                        for i, env in enumerate(self.envs)]
        return self._batch(observations), {}

    def step(self, actions: np.ndarray) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict]:
        """Step env i with actions[i]; where an episode ends, reset the env and report the end."""
        observations, rewards, terminated, truncated = [], [], [], []
        info: dict[str, Any] = {}
        for i, (env, action) in enumerate(zip(self.envs, actions, strict=True)):
            obs, reward, term, trunc, env_info = env.step(action)
            if term or trunc:
                info = self._add_info(info, {"final_obs": obs, "final_info": env_info}, i)
                obs, _ = env.reset()
            observations.append(obs)
            rewards.append(reward)
            terminated.append(term)
            truncated.append(trunc)
        return (self._batch(observations), np.array(rewards, dtype=np.float64),
                np.array(terminated, dtype=bool), np.array(truncated, dtype=bool), info)

    def get_attr(self, name: str) -> tuple[Any, ...]:
        return tuple(env.get_wrapper_attr(name) for env in self.envs)

    def close_extras(self, **kwargs: Any) -> None:
        for env in self.envs:
            env.close()

    def _batch(self, observations: list[Any]) -> Any:
        if self._box:
            return np.array(observations, dtype=self.single_observation_space.dtype)
        out = create_empty_array(self.single_observation_space, self.num_envs)
        return concatenate(self.single_observation_space, observations, out)


def make_training_envs(config: Config, seed: int) -> gym.vector.VectorEnv | AtariBatch:
    """config.n_envs envs stepped as one batch, seeded seed, seed + 1, ...: an A2C learner's batch, or
    an A3C worker's, sharing one batched forward. vec_env sync (and any single env) steps them in this
    process, async in a subprocess each.
    vec_env ale steps Atari games in ale-py's C++ threads: one thread per A3C worker (the workers
    take the cores), every usable core for A2C's one process."""
    if config.vec_env == "ale":
        name, _ = _import_prefix(config.env_id)
        spec = _find_spec(name, config.env_id)
        if spec is None or not atari.is_atari(spec):
            raise EnvError(f"vec_env ale steps Atari games (ale-py's AtariVectorEnv); {config.env_id!r} "
                           "is not one: use vec_env sync")
        if config.env_wrappers:
            raise EnvError("vec_env ale steps the games in C++, where wrappers cannot reach: use vec_env "
                           "sync for an Atari game with env_wrappers")
        threads = 1 if config.algo == "a3c" else usable_cores()
        return AtariBatch(spec, config.n_envs, num_threads=min(threads, config.n_envs),
                          **config.env_kwargs)
    if config.n_envs == 1 or config.vec_env == "sync":
        return SerialEnvs([make_config_env(config, seed + i, training=True) for i in range(config.n_envs)],
                          config.env_id)
    fns = [functools.partial(make_config_env, config, seed + i, training=True)
           for i in range(config.n_envs)]
    try:
        envs = gym.vector.AsyncVectorEnv(fns, autoreset_mode=AutoresetMode.SAME_STEP)
    except RuntimeError as exc:
        if "space" not in str(exc):
            raise
        # gymnasium checks that all sub-envs have the same spaces; its hint to use
        # observation_mode='different' does not apply here: a batch needs one shape.
        detail = " ".join(str(exc).split(" If this is intentional")[0].split())
        raise EnvError(f"{config.env_id}: the {config.n_envs} sub-environments disagree on their spaces, "
                       f"so they cannot be batched: {detail}") from None
    check_spaces(envs.single_observation_space, envs.single_action_space, config.env_id)
    return envs
