"""The spaces the networks take, decided in one place: what is supported, how an observation splits
into parts, and how a network's actions become the env's.

Environments (`a3c.envs`) check their spaces here and networks (`a3c.core`) are built from the
parts described here, so the two never disagree on what is supported. An observation is one part
(a Box, Discrete, MultiDiscrete or MultiBinary space) or several (a Dict or Tuple of those, nested
or not), each named by its path: '' for a whole observation, 'position' or '0' for a part,
'sensors/camera' inside nested spaces. Batches of parts travel as a dict of arrays keyed by path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from a3c.errors import EnvError

SUPPORTED_OBSERVATIONS = ("Box (vectors of any shape, images [C, H, W] or [H, W, C]), Discrete, "
                          "MultiDiscrete, MultiBinary, and Dict or Tuple of these")
SUPPORTED_ACTIONS = "Discrete, Box (finite bounds), MultiDiscrete, MultiBinary"
PART_KINDS = ("box", "image", "discrete", "multi_discrete", "multi_binary")
ACTION_KINDS = ("discrete", "box", "multi_discrete", "multi_binary")
_SHOWN = 160  # characters of a space's repr in an error message


@dataclass(frozen=True)
class ObsPart:
    """One part of an observation, as the env gives it: enough to encode it without the env.

    kind: 'box' (any Box but images, flattened), 'image' (a rank-3 Box), 'discrete',
    'multi_discrete' or 'multi_binary'. nvec holds the number of values of each component (one
    for Discrete) and start their smallest values; channels_last marks an image given [H, W, C].
    """

    key: str
    kind: str
    shape: tuple[int, ...]
    dtype: str
    nvec: tuple[int, ...] = ()
    start: tuple[int, ...] = ()
    channels_last: bool = False

    @property
    def size(self) -> int:
        """Numbers in one observation of this part, as the env gives it."""
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def width(self) -> int:
        """Inputs this part gives a fully connected layer: one-hot parts one per value."""
        if self.kind in ("discrete", "multi_discrete"):
            return int(sum(self.nvec))
        return self.size

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for name in ("shape", "nvec", "start"):
            d[name] = list(d[name])
        return d

    @classmethod
    def from_dict(cls, data: Any) -> ObsPart:
        """A part read from a checkpoint; ValueError or TypeError where it is malformed."""
        if not isinstance(data, dict):
            raise TypeError(f"an observation part must be an object, got {data!r}")
        part = cls(key=data["key"], kind=data["kind"], shape=_ints(data["shape"]), dtype=data["dtype"],
                   nvec=_ints(data.get("nvec", ())), start=_ints(data.get("start", ())),
                   channels_last=data.get("channels_last", False))
        part.validate()
        return part

    def validate(self) -> None:
        if not isinstance(self.key, str) or self.kind not in PART_KINDS:
            raise ValueError(f"observation part {self.key!r}: unknown kind {self.kind!r}")
        if any(n <= 0 for n in self.shape) or self.size > 2**31:
            raise ValueError(f"observation part {self.key!r}: shape {self.shape} is not a shape")
        try:
            np.dtype(self.dtype)
        except TypeError:
            raise ValueError(f"observation part {self.key!r}: {self.dtype!r} is not a dtype") from None
        one_hot = self.kind in ("discrete", "multi_discrete")
        if one_hot and (not self.nvec or len(self.nvec) != len(self.start) or min(self.nvec) <= 0
                        or sum(self.nvec) > 2**24):
            raise ValueError(f"observation part {self.key!r}: needs a positive count per component")
        if self.kind == "image" and len(self.shape) != 3:
            raise ValueError(f"observation part {self.key!r}: an image has 3 dimensions")
        if not isinstance(self.channels_last, bool):
            raise ValueError(f"observation part {self.key!r}: channels_last must be true or false")


def _ints(values: Any) -> tuple[int, ...]:
    if not isinstance(values, list | tuple) or not all(
            isinstance(v, int | np.integer) and not isinstance(v, bool) for v in values):
        raise TypeError(f"expected a list of integers, got {values!r}")
    return tuple(int(v) for v in values)


def is_channels_last(shape: tuple[int, ...]) -> bool:
    """An image [H, W, C] rather than [C, H, W]: its smallest dimension is the last (ties: first)."""
    return int(np.argmin(shape)) == 2 and shape[2] < shape[0]


def _shown(space: gym.Space) -> str:
    text = " ".join(str(space).split())
    return text if len(text) <= _SHOWN else text[:_SHOWN - 3] + "..."


def observation_parts(space: gym.Space, env_id: str = "env") -> tuple[ObsPart, ...]:
    """The parts of an observation space, in a fixed order; EnvError for a space we do not take."""
    parts: list[ObsPart] = []
    _collect(space, "", parts, space, env_id)
    return tuple(parts)


def _collect(space: gym.Space, key: str, parts: list[ObsPart], whole: gym.Space, env_id: str) -> None:
    if isinstance(space, gym.spaces.Dict | gym.spaces.Tuple):
        if not space.spaces:
            raise EnvError(f"{env_id}: observation space {_shown(whole)} is empty; supported: "
                           f"{SUPPORTED_OBSERVATIONS}")
        items = (space.spaces.items() if isinstance(space, gym.spaces.Dict)
                 else ((str(i), s) for i, s in enumerate(space.spaces)))
        for name, sub in items:
            if not isinstance(name, str) or not name or "/" in name:
                raise EnvError(f"{env_id}: observation space {_shown(whole)} has a part named "
                               f"{name!r}; parts need names that are non-empty strings without '/'")
            _collect(sub, f"{key}/{name}" if key else name, parts, whole, env_id)
        return
    part = _part(space, key)
    if part is None:
        where = f"observation space {_shown(whole)}"
        if key:
            where += f": part {key!r} is {_shown(space)}, which"
        raise EnvError(f"{env_id}: {where} is not supported; supported observation spaces: "
                       f"{SUPPORTED_OBSERVATIONS}")
    parts.append(part)


def _part(space: gym.Space, key: str) -> ObsPart | None:
    if isinstance(space, gym.spaces.Box):
        shape = tuple(int(n) for n in space.shape)
        if 0 in shape or not np.issubdtype(space.dtype, np.number):
            return None
        if len(shape) == 3:
            return ObsPart(key, "image", shape, str(space.dtype), channels_last=is_channels_last(shape))
        return ObsPart(key, "box", shape, str(space.dtype))
    if isinstance(space, gym.spaces.Discrete):
        return ObsPart(key, "discrete", (), str(space.dtype), (int(space.n),), (int(space.start),))
    if isinstance(space, gym.spaces.MultiDiscrete):
        return ObsPart(key, "multi_discrete", tuple(space.shape), str(space.dtype),
                       tuple(int(n) for n in space.nvec.ravel()),
                       tuple(int(s) for s in space.start.ravel()))
    if isinstance(space, gym.spaces.MultiBinary):
        return ObsPart(key, "multi_binary", tuple(int(n) for n in space.shape), str(space.dtype))
    return None


Observation = np.ndarray | dict[str, np.ndarray]  # one part's array, or each part's by path


def split_observation(obs: Any, parts: tuple[ObsPart, ...]) -> Observation:
    """An observation (or a vector env's batch of them) as the networks take it: the array of a
    one-part space, else a dict of each part's array by path. A dict already keyed by path passes."""
    if len(parts) == 1 and parts[0].key == "":
        return np.asarray(obs)
    out = {}
    for part in parts:
        if isinstance(obs, dict) and part.key in obs:
            out[part.key] = np.asarray(obs[part.key])
            continue
        value = obs
        for name in part.key.split("/"):
            value = value[name] if isinstance(value, dict) else value[int(name)]
        out[part.key] = np.asarray(value)
    return out


def batch_of_one(obs: Observation) -> Observation:
    if isinstance(obs, dict):
        return {k: v[None] for k, v in obs.items()}
    return obs[None]


# --- actions --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ActionSpec:
    """What a policy head needs to know of an action space.

    kind: 'discrete' (dim actions), 'box' (dim numbers), 'multi_discrete' (nvec values for each of
    dim components, chosen independently) or 'multi_binary' (dim bits, each its own Bernoulli).
    """

    kind: str
    dim: int
    nvec: tuple[int, ...] = ()


def action_spec(space: gym.Space, env_id: str = "env") -> ActionSpec:
    """EnvError for an action space we do not take."""
    if isinstance(space, gym.spaces.Discrete):
        return ActionSpec("discrete", int(space.n))
    if isinstance(space, gym.spaces.Box) and np.issubdtype(space.dtype, np.floating):
        if not (np.all(np.isfinite(space.low)) and np.all(np.isfinite(space.high))):
            raise EnvError(f"{env_id}: continuous actions need finite bounds, got {_shown(space)}")
        return ActionSpec("box", int(np.prod(space.shape)))
    if isinstance(space, gym.spaces.MultiDiscrete):
        nvec = tuple(int(n) for n in space.nvec.ravel())
        return ActionSpec("multi_discrete", len(nvec), nvec)
    if isinstance(space, gym.spaces.MultiBinary):
        return ActionSpec("multi_binary", int(np.prod(space.shape)))
    raise EnvError(f"{env_id}: action space {_shown(space)} is not supported; supported action spaces: "
                   f"{SUPPORTED_ACTIONS}")


def check_spaces(obs_space: gym.Space, act_space: gym.Space, env_id: str = "env") -> None:
    """Raise EnvError, in one line naming the space and what is supported, unless the networks take
    both spaces."""
    observation_parts(obs_space, env_id)
    action_spec(act_space, env_id)


def action_converter(space: gym.Space) -> Callable[[np.ndarray], np.ndarray] | None:
    """From a batch of a network's actions [N, ...] to the batch the env's vector form takes; None
    where they are the same (Discrete actions counted from 0)."""
    if isinstance(space, gym.spaces.Discrete):
        start = int(space.start)
        return None if start == 0 else (lambda actions: actions + start)
    shape = tuple(space.shape)
    dtype = space.dtype
    if isinstance(space, gym.spaces.Box):
        low, high = space.low.ravel(), space.high.ravel()
        if len(shape) == 1 and dtype == np.float32:
            return lambda actions: np.clip(actions, low, high)

        def box(actions: np.ndarray) -> np.ndarray:
            clipped = np.clip(actions, low, high)
            return clipped.reshape(len(actions), *shape).astype(dtype, copy=False)
        return box
    if isinstance(space, gym.spaces.MultiDiscrete):
        start = space.start.ravel()
        return lambda actions: (actions + start).reshape(len(actions), *shape).astype(dtype, copy=False)
    if isinstance(space, gym.spaces.MultiBinary):
        return lambda actions: actions.reshape(len(actions), *shape).astype(dtype)
    raise EnvError(f"action space {_shown(space)} is not supported; supported action spaces: "
                   f"{SUPPORTED_ACTIONS}")


def single_action_converter(space: gym.Space) -> Callable[[np.ndarray], int | np.ndarray]:
    """From one network action to the env's: an int for Discrete, else an array of the space's
    dtype and shape; made once for an env, called every step."""
    if isinstance(space, gym.spaces.Discrete):
        start = int(space.start)
        return lambda action: int(action) + start
    convert = action_converter(space)
    assert convert is not None
    return lambda action: convert(np.asarray(action)[None])[0]


def to_env_action(action: np.ndarray, space: gym.Space) -> int | np.ndarray:
    """One network action as the env takes it: an int for Discrete, else an array of its dtype."""
    return single_action_converter(space)(action)
