"""A learner's whole state beyond its network: what an exact continuation of a run needs.

Exact continuation (bit-identical parameters to a run that was never stopped) needs every source of
randomness and every piece of env state: torch's CPU generator, and for each env its NumPy
bit-generator state, its physical state, its TimeLimit step count, its episode statistics and the
observation the learner acts on next. We can read all of that for Gymnasium's classic-control envs
(CartPole, Acrobot, MountainCar, Pendulum) stepped in this process, with the wrappers make_env adds
and nothing else. That is A2C on the CPU with vec_env sync (or one env). Everything else resumes
from the checkpoint's network, optimizer, counters and observation statistics with freshly seeded
envs: A3C (its workers' envs live in processes that are gone; Hogwild is not deterministic anyway),
Atari and MuJoCo envs (emulator and simulator state we do not capture), async vector envs, GPUs.

Env state travels as JSON and tensors inside the safetensors checkpoint: nothing here is pickled,
and everything read back is checked before it is used.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium.wrappers import (
    DtypeObservation,
    OrderEnforcing,
    PassiveEnvChecker,
    RecordEpisodeStatistics,
    TimeLimit,
)

from a3c.envs.make import SerialEnvs
from a3c.errors import CheckpointError

FORMAT_VERSION = 1
CLASSIC_CONTROL = "gymnasium.envs.classic_control."
PHYSICS = ("state", "steps_beyond_terminated", "last_u")  # what classic-control envs carry between steps
_KNOWN_WRAPPERS = (TimeLimit, OrderEnforcing, PassiveEnvChecker, RecordEpisodeStatistics, DtypeObservation)
_BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")
TENSOR_PREFIX = "resume/"


@dataclass
class LearnerState:
    """A learner's RNG, envs, next observations, network state and (reward_norm) running returns,
    as a checkpoint captured them."""

    envs: list[dict[str, Any]]  # one per env
    torch_rng: torch.Tensor
    obs: np.ndarray
    core_state: tuple[torch.Tensor, torch.Tensor] | None = None
    running_returns: np.ndarray | None = None

    @classmethod
    def read(cls, meta: dict[str, Any] | None, tensors: dict[str, torch.Tensor]) -> LearnerState | None:
        """The state in a checkpoint's (validated) resume section, or None where it holds none."""
        if meta is None or meta.get("envs") is None:
            return None
        h, c = tensors.get(TENSOR_PREFIX + "core_h"), tensors.get(TENSOR_PREFIX + "core_c")
        returns = tensors.get(TENSOR_PREFIX + "running_returns")
        return cls(envs=meta["envs"], torch_rng=tensors[TENSOR_PREFIX + "torch_rng"],
                   obs=tensors[TENSOR_PREFIX + "obs"].numpy(),
                   core_state=(h, c) if h is not None and c is not None else None,
                   running_returns=None if returns is None else returns.numpy().copy())


# --- capture ------------------------------------------------------------------------------------

def sub_envs(envs: Any) -> list[gym.Env] | None:
    """The envs a learner steps in this process, or None where they live elsewhere (async)."""
    return list(envs.envs) if isinstance(envs, SerialEnvs) else None


def _wrappers(env: gym.Env) -> list[gym.Env] | None:
    """The wrapper chain down to the base env, or None if a wrapper may hold state we do not know."""
    chain = []
    while isinstance(env, gym.Wrapper):
        if not isinstance(env, _KNOWN_WRAPPERS):
            return None
        chain.append(env)
        env = env.env
    return chain


def _find(chain: list[gym.Env], kind: type) -> Any:
    return next((w for w in chain if isinstance(w, kind)), None)


def _to_json(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return {"dtype": str(value.dtype), "shape": list(value.shape), "values": value.ravel().tolist()}
    if isinstance(value, tuple):
        return {"dtype": "float64", "shape": [len(value)], "values": [float(v) for v in value]}
    if isinstance(value, np.generic):
        return value.item()
    return value


def capture_env(env: gym.Env) -> dict[str, Any] | None:
    """One env's whole state as JSON-able data, or None if we cannot vouch for all of it."""
    base = env.unwrapped
    chain = _wrappers(env)
    if chain is None or not type(base).__module__.startswith(CLASSIC_CONTROL):
        return None
    physics = {}
    for name in PHYSICS:
        if hasattr(base, name):
            value = _to_json(getattr(base, name))
            if not (value is None or isinstance(value, int | float | dict)):
                return None
            physics[name] = value
    limit, stats = _find(chain, TimeLimit), _find(chain, RecordEpisodeStatistics)
    return {
        "np_random": base.np_random.bit_generator.state,
        "elapsed_steps": None if limit is None else limit._elapsed_steps,
        "episode": None if stats is None else
        [float(stats.episode_returns), int(stats.episode_lengths), int(stats.episode_count)],
        "physics": physics,
    }


def capture(envs: Any, obs: np.ndarray, core_state: Any = None, running_returns: np.ndarray | None = None
            ) -> tuple[dict, dict[str, torch.Tensor]]:
    """A learner's state for a checkpoint: (JSON metadata, tensors); envs only if all of it is read."""
    inner = sub_envs(envs)
    states = None if inner is None else [capture_env(e) for e in inner]
    if states is None or any(s is None for s in states):
        return {"version": FORMAT_VERSION, "envs": None}, {}
    tensors = {TENSOR_PREFIX + "torch_rng": torch.get_rng_state().clone(),
               TENSOR_PREFIX + "obs": torch.from_numpy(np.ascontiguousarray(obs)).clone()}
    if core_state is not None:
        tensors[TENSOR_PREFIX + "core_h"] = core_state[0].detach().cpu().clone().contiguous()
        tensors[TENSOR_PREFIX + "core_c"] = core_state[1].detach().cpu().clone().contiguous()
    if running_returns is not None:
        tensors[TENSOR_PREFIX + "running_returns"] = torch.from_numpy(np.array(running_returns, np.float64))
    return {"version": FORMAT_VERSION, "envs": states}, tensors


# --- validation (on load) and restore ----------------------------------------------------------------

def validate(meta: Any, tensors: dict[str, torch.Tensor]) -> None:
    """Check the structure of a checkpoint's resume section; CheckpointError says what is wrong."""
    if not isinstance(meta, dict) or meta.get("version") != FORMAT_VERSION:
        raise CheckpointError("resume section: not an object of a known version")
    envs = meta.get("envs")
    if envs is None:
        return
    if not isinstance(envs, list) or not envs:
        raise CheckpointError("resume section: 'envs' must be a non-empty list or null")
    for i, env in enumerate(envs):
        _check_env_state(i, env)
    rng = tensors.get(TENSOR_PREFIX + "torch_rng")
    if rng is None or rng.dtype != torch.uint8 or rng.dim() != 1:
        raise CheckpointError("resume section: torch RNG state missing or malformed")
    obs = tensors.get(TENSOR_PREFIX + "obs")
    if obs is None or obs.dim() < 1 or obs.shape[0] != len(envs):
        raise CheckpointError("resume section: observations missing or not one per env")
    returns = tensors.get(TENSOR_PREFIX + "running_returns")
    if returns is not None and (returns.dtype != torch.float64 or returns.shape != (len(envs),)
                                or not torch.isfinite(returns).all()):
        raise CheckpointError("resume section: running returns malformed, or not one finite number per env")


def _check_env_state(i: int, env: Any) -> None:
    where = f"resume section, env {i}"
    if not isinstance(env, dict) or set(env) != {"np_random", "elapsed_steps", "episode", "physics"}:
        raise CheckpointError(f"{where}: unexpected fields")
    rng = env["np_random"]
    if not isinstance(rng, dict) or rng.get("bit_generator") not in _BIT_GENERATORS:
        raise CheckpointError(f"{where}: np_random is not a known bit generator's state")
    try:
        getattr(np.random, rng["bit_generator"])().state = rng  # NumPy checks every field
    except (TypeError, ValueError, KeyError, OverflowError) as exc:
        raise CheckpointError(f"{where}: np_random state is malformed: {exc}") from None
    steps = env["elapsed_steps"]
    if steps is not None and not _count(steps):
        raise CheckpointError(f"{where}: elapsed_steps must be a count")
    episode = env["episode"]
    if episode is not None and not (isinstance(episode, list) and len(episode) == 3
                                    and _number(episode[0]) and _count(episode[1]) and _count(episode[2])):
        raise CheckpointError(f"{where}: episode statistics malformed")
    physics = env["physics"]
    if not isinstance(physics, dict) or not set(physics) <= set(PHYSICS):
        raise CheckpointError(f"{where}: physics must be an object of {', '.join(PHYSICS)}")
    for name, value in physics.items():
        if isinstance(value, dict):
            _array(value, f"{where}: physics {name}")
        elif not (value is None or _number(value)):
            raise CheckpointError(f"{where}: physics {name} must be a number, an array or null")


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _array(value: dict, where: str) -> np.ndarray:
    try:
        if set(value) != {"dtype", "shape", "values"} or value["dtype"] not in ("float32", "float64"):
            raise ValueError("expected float32 or float64 values with a shape")
        if not all(_number(v) for v in value["values"]):
            raise ValueError("values must be numbers")
        return np.array(value["values"], dtype=value["dtype"]).reshape(value["shape"])
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{where}: {exc}") from None


def restore(envs: Any, saved: LearnerState, collector: Any, source: str = "checkpoint") -> None:
    """Put a learner's envs, observations and torch's generator back where the checkpoint saw them."""
    try:
        _restore(envs, saved, collector)
    except CheckpointError as exc:
        raise CheckpointError(f"{source}: {exc}") from None


def _restore(envs: Any, saved: LearnerState, collector: Any) -> None:
    inner = sub_envs(envs)
    if inner is None or len(inner) != len(saved.envs):
        raise CheckpointError(f"the checkpoint holds {len(saved.envs)} envs' state; this run has "
                              f"{envs.num_envs} (n_envs and vec_env must be as they were)")
    if saved.obs.shape != collector.obs.shape:
        raise CheckpointError(f"saved observations have shape {saved.obs.shape}, the envs give "
                              f"{collector.obs.shape}")
    for i, (env, state) in enumerate(zip(inner, saved.envs, strict=True)):
        _restore_env(i, env, state)
    collector.obs = saved.obs.astype(collector.obs.dtype, copy=True)
    if saved.core_state is not None:
        collector.state = saved.core_state
    if saved.running_returns is not None:
        collector.running_returns = saved.running_returns.copy()
    try:
        torch.set_rng_state(saved.torch_rng)
    except RuntimeError as exc:
        raise CheckpointError(f"saved torch RNG state does not fit this torch: {exc}") from None


def _restore_env(i: int, env: gym.Env, state: dict[str, Any]) -> None:
    chain = _wrappers(env)
    base = env.unwrapped
    if chain is None or not type(base).__module__.startswith(CLASSIC_CONTROL):
        raise CheckpointError(f"env {i}: the checkpoint holds its state, but {type(base).__name__} "
                              "is not an env whose state we restore")
    for name, value in state["physics"].items():
        current = getattr(base, name, None)
        if isinstance(value, dict):
            array = _array(value, f"env {i}: physics {name}")
            if not isinstance(current, np.ndarray | tuple) or np.shape(current) != array.shape:
                raise CheckpointError(f"env {i}: physics {name} of shape {array.shape} does not fit "
                                      f"{type(base).__name__}")
            setattr(base, name, array)
        else:
            setattr(base, name, value)
    base.np_random.bit_generator.state = state["np_random"]
    limit, stats = _find(chain, TimeLimit), _find(chain, RecordEpisodeStatistics)
    if (limit is None) != (state["elapsed_steps"] is None) or (stats is None) != (state["episode"] is None):
        raise CheckpointError(f"env {i}: its wrappers differ from those the checkpoint saw")
    if limit is not None:
        limit._elapsed_steps = state["elapsed_steps"]
    if stats is not None:
        stats.episode_returns, stats.episode_lengths, stats.episode_count = state["episode"]
        stats.episode_start_time = time.perf_counter()
