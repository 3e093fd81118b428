"""Actor-critic networks: torso -> core -> policy head + value head, one call shape for all of them.

Every network answers ``act(obs, state) -> actions, values, state`` and, for the loss,
``evaluate_actions(obs, actions, state, resets)`` over a [T, N] rollout. The core between torso and
heads is where feed-forward and recurrent networks differ, and nowhere else: a feed-forward core
passes features through with the state None; the LSTM core (the A3C paper's LSTM agent) carries
(h, c) from step to step. Observations are a tensor, or a dict of tensors by part for Dict and
Tuple spaces (a3c.spaces); the torso (a3c.core.torsos) makes one feature vector of either.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from a3c.config import ACTIVATIONS, CORES, TORSOS
from a3c.core.heads import (
    BernoulliHead,
    CategoricalHead,
    GaussianHead,
    MultiCategoricalHead,
    StateDependentNoiseHead,
)
from a3c.core.normalization import ObsNormalizer, ReturnNormalizer
from a3c.core.torsos import (
    CONV_LAYERS,
    MLP,
    PRECISIONS,
    ConvTorso,
    Normalize,
    Observation,
    PartsTorso,
    Trace,
    UserTorso,
    box_values,
    conv_takes,
    smallest_image,
)
from a3c.errors import A3CWarning, CheckpointError, ConfigError
from a3c.references import is_reference, resolve
from a3c.spaces import ACTION_KINDS, ObsPart, action_spec, observation_parts, split_observation

State = tuple[Tensor, Tensor] | None  # the LSTM core's (h, c), each [N, core_size]; None: no memory


@dataclass(frozen=True)
class NetworkSpec:
    """What it takes to rebuild a network without its environment: saved in every checkpoint.

    The fields up to log_std_init are those of checkpoint formats 1 and 2, whose specs describe
    one Box observation by obs_dim and obs_shape; obs_parts then holds that one part.
    """

    obs_dim: int  # numbers in one observation, all parts together
    action_kind: str  # "discrete" | "box" | "multi_discrete" | "multi_binary"
    action_dim: int  # number of actions (discrete), else numbers in one action
    hidden_sizes: tuple[int, ...] = (64, 64)
    activation: str = "tanh"
    shared_torso: bool = True
    obs_shape: tuple[int, ...] = ()  # the shape of an observation that is one image; () otherwise
    torso: str = "mlp"  # "mlp" | "a3c-conv" | "nature-conv" | a user's class as "module:Class"
    core: str = "none"  # "none" | "lstm"
    core_size: int = 256
    obs_norm: bool = False  # running mean/std normalisation of the Box (vector) parts
    use_sde: bool = False  # Box actions: state-dependent exploration (StateDependentNoiseHead)
    log_std_init: float = -2.0  # use_sde: the initial log sigma of its noise weights
    obs_parts: tuple[ObsPart, ...] = ()  # the observation's parts (a3c.spaces); () = from obs_dim/shape
    action_nvec: tuple[int, ...] = ()  # multi_discrete: values of each component
    conv_hidden: int = 0  # conv torsos' hidden width; 0: the published one (256 or 512)
    conv_activation: str = "relu"
    policy_sizes: tuple[int, ...] = ()  # layers between the core and the policy head
    value_sizes: tuple[int, ...] = ()  # layers between the core (or value torso) and the value head
    head_activation: str = "tanh"
    torso_kwargs: dict[str, Any] = field(default_factory=dict, hash=False)  # a user's torso's
    reward_norm: bool = False  # rewards scaled by the running std of the discounted return
    conv_precision: str = "float32"  # what conv torsos compute in: float32 | bfloat16

    def __post_init__(self) -> None:
        """Fill obs_parts for a spec of formats 1 and 2, and check what a network is built from."""
        if not self.obs_parts:
            part = (ObsPart("", "image", tuple(self.obs_shape), "uint8") if self.obs_shape
                    else ObsPart("", "box", (self.obs_dim,), "float32"))
            object.__setattr__(self, "obs_parts", (part,))
        for part in self.obs_parts:
            part.validate()
        if not isinstance(self.obs_dim, int) or self.obs_dim != sum(p.size for p in self.obs_parts):
            raise ValueError(f"obs_dim {self.obs_dim!r} is not the size of the observation's parts")
        if self.action_kind not in ACTION_KINDS:
            raise ValueError(f"unknown action kind {self.action_kind!r}")
        if self.action_kind == "multi_discrete" and len(self.action_nvec) != self.action_dim:
            raise ValueError("multi_discrete actions need a number of values for each component")
        if not (self.torso in TORSOS or is_reference(self.torso)) or self.torso == "auto":
            raise ValueError(f"unknown torso {self.torso!r}")
        for name in ("activation", "conv_activation", "head_activation"):
            if getattr(self, name) not in ACTIVATIONS:
                raise ValueError(f"unknown {name} {getattr(self, name)!r}")
        if self.conv_precision not in PRECISIONS:
            raise ValueError(f"unknown conv_precision {self.conv_precision!r}")

    @property
    def user_torso(self) -> bool:
        """The torso is a user's class, named by reference."""
        return is_reference(self.torso)

    @classmethod
    def from_spaces(cls, obs_space: gym.Space, act_space: gym.Space, torso: str = "auto",
                    explain_obs_norm: bool = True, **options: Any) -> NetworkSpec:
        """The spec for these spaces (EnvError for spaces the networks do not take).

        torso 'auto': the A3C conv torso for the images it takes, everything else through the MLP.
        obs_norm normalises the Box parts of an observation only: with explain_obs_norm, a warning
        names the parts it skips, and says so when there are none (left out where a preset, not
        the caller, asked for obs_norm: there is nothing the caller should change).
        """
        parts = observation_parts(obs_space)
        action = action_spec(act_space)
        images = [p for p in parts if p.kind == "image"]
        if torso == "auto":
            torso = "a3c-conv" if any(conv_takes(p, "a3c-conv") for p in images) else "mlp"
        elif torso in CONV_LAYERS:
            if not images:
                raise ConfigError(
                    f"torso {torso} takes images ([C, H, W] or [H, W, C]), but the observation space "
                    f"{obs_space} has none; choose torso mlp or auto")
            small = [p for p in images if not conv_takes(p, torso)]
            if small:
                n = smallest_image(torso)
                raise ConfigError(
                    f"images of shape {small[0].shape} are too small for the {torso} torso, which takes "
                    f"at least {n}x{n} pixels; choose torso mlp (or auto) to flatten them")
        elif not (torso in TORSOS or is_reference(torso)):
            raise ConfigError(f"unknown torso {torso!r}; choose from {', '.join(TORSOS)}, or name your "
                              "own nn.Module class as module:Class")
        if options.get("torso_kwargs") and not is_reference(torso):
            raise ConfigError(f"torso_kwargs are the arguments of your own torso class; the built-in "
                              f"torso {torso} takes hidden_sizes, activation, conv_hidden instead")
        core = options.get("core", "none")
        if core not in CORES:
            raise ConfigError(f"unknown core {core!r}; choose from {', '.join(CORES)}")
        if options.get("use_sde") and action.kind != "box":
            raise ConfigError(f"use_sde explores continuous (Box) actions; this env's are {act_space}")
        if core != "none" and not options.get("shared_torso", True):
            raise ConfigError("an LSTM core sits between one shared torso and the heads: "
                              "use shared_torso true with core lstm")
        if options.get("obs_norm"):
            options["obs_norm"] = _obs_norm_applies(parts, obs_space, explain_obs_norm)
        single_image = len(parts) == 1 and parts[0].kind == "image"
        return cls(obs_dim=sum(p.size for p in parts), action_kind=action.kind, action_dim=action.dim,
                   action_nvec=action.nvec, obs_shape=parts[0].shape if single_image else (),
                   torso=torso, obs_parts=parts, **options)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for name in ("hidden_sizes", "obs_shape", "action_nvec", "policy_sizes", "value_sizes"):
            d[name] = list(d[name])
        d["obs_parts"] = [p.to_dict() for p in self.obs_parts]
        d["torso_kwargs"] = dict(self.torso_kwargs)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NetworkSpec:
        """Also reads the specs of format-1 and 2 checkpoints, which had neither parts nor heads."""
        try:
            values = dict(data)
            for name in ("hidden_sizes", "obs_shape", "action_nvec", "policy_sizes", "value_sizes"):
                if name in values:
                    values[name] = tuple(values[name])
            values["obs_parts"] = tuple(ObsPart.from_dict(p) for p in values.get("obs_parts", ()))
            if not isinstance(values.get("torso_kwargs", {}), dict):
                raise TypeError("torso_kwargs must be an object")
            return cls(**values)
        except (TypeError, KeyError, ValueError) as exc:
            raise CheckpointError(f"network description is malformed: {exc}") from None


_NOT_NORMALISED = {"image": "an image, its bytes scaled instead", "discrete": "Discrete, one-hot",
                   "multi_discrete": "MultiDiscrete, one-hot", "multi_binary": "MultiBinary, 0 or 1 already"}


def _obs_norm_applies(parts: tuple[ObsPart, ...], space: gym.Space, explain: bool) -> bool:
    """obs_norm over these parts: True if any is a Box vector; a warning (if explain) names the
    parts it skips."""
    has_box = any(p.kind == "box" for p in parts)
    skipped = [p for p in parts if p.kind != "box"]
    if skipped and explain:
        if len(parts) == 1:
            message = (f"obs_norm is off: it normalises Box vector observations, and {space} is "
                       f"{_NOT_NORMALISED[parts[0].kind]}")
        else:
            named = ", ".join(f"{p.key} ({_NOT_NORMALISED[p.kind]})" for p in skipped)
            boxes = ", ".join(p.key for p in parts if p.kind == "box")
            message = (f"obs_norm normalises the Box parts {boxes} only; not {named}" if has_box else
                       f"obs_norm is off: it normalises Box vector observations, and no part of the "
                       f"observation is one: {named}")
        warnings.warn(message, A3CWarning, stacklevel=3)
    return has_box


# --- torsos -------------------------------------------------------------------------------------

def _fast_vector(spec: NetworkSpec) -> bool:
    """One float32 vector: the MLP on it directly, as in every checkpoint of formats 1 and 2."""
    parts = spec.obs_parts
    return len(parts) == 1 and parts[0].kind == "box" and len(parts[0].shape) == 1 \
        and parts[0].dtype == "float32"


def make_torso(spec: NetworkSpec, normalize: Normalize | None, trust_code: bool) -> nn.Module:
    """The torso the spec describes; a user's class is imported only if trust_code (a3c.references)."""
    parts = spec.obs_parts
    if spec.user_torso:
        cls = resolve(spec.torso, "the network's torso", trust_code, ConfigError)
        return UserTorso(cls, dict(spec.torso_kwargs), parts, spec.torso, normalize)
    if len(parts) == 1 and conv_takes(parts[0], spec.torso):
        return ConvTorso(parts[0].shape, spec.torso, spec.conv_hidden, spec.conv_activation,
                         parts[0].channels_last, spec.conv_precision)
    if _fast_vector(spec):
        return MLP(parts[0].size, spec.hidden_sizes, spec.activation)
    return PartsTorso(parts, spec.torso, spec.hidden_sizes, spec.activation, spec.conv_hidden,
                      spec.conv_activation, normalize, spec.conv_precision)


# --- cores ----------------------------------------------------------------------------------------

class FeedForwardCore:
    """No memory: features pass through, and the state is always None."""

    recurrent = False

    def initial_state(self, batch: int, device: torch.device) -> State:
        return None

    def step(self, features: Tensor, state: State) -> tuple[Tensor, State]:
        return features, None

    def sequence(self, features: Tensor, state: State, resets: Tensor) -> Tensor:
        return features.flatten(0, 1)

    def reset(self, state: State, ended: np.ndarray) -> State:
        return None

    def select(self, state: State, index: int) -> State:
        return None


class LSTMCore(nn.LSTMCell):
    """The A3C paper's LSTM agent: an LSTM cell between the torso and the heads.

    A subclass of nn.LSTMCell, so that its parameters keep the names ``core.weight_ih`` and so on.
    The forget gate's bias starts at 1 (Gers et al. 2000; Jozefowicz et al. 2015; TensorFlow's
    LSTM cells' forget_bias): the cell keeps what it holds until it learns to let it go, so a
    memory the reward depends on survives long enough for the gradient to find it.
    """

    recurrent = True

    def __init__(self, in_dim: int, size: int):
        super().__init__(in_dim, size)
        with torch.no_grad():
            self.bias_ih.zero_()
            self.bias_hh.zero_()
            self.bias_ih[size:2 * size] = 1.0  # the gates are stacked i, f, g, o: f is the second

    def initial_state(self, batch: int, device: torch.device) -> State:
        """The state at the start of an episode: zeros."""
        zeros = torch.zeros(batch, self.hidden_size, device=device)
        return zeros, zeros.clone()

    def step(self, features: Tensor, state: State) -> tuple[Tensor, State]:
        h, c = self.forward(features, state)
        return h, (h, c)

    def sequence(self, features: Tensor, state: State, resets: Tensor) -> Tensor:
        """h over [T, N] features from the state before step 0, flattened [T*N], time-major.

        resets[t] (bool [T, N]) zeroes the state before step t: an episode ended at step t-1.
        """
        assert state is not None
        keep = (~resets).unsqueeze(-1).to(features.dtype)
        h, c = state
        outputs = []
        for t in range(len(features)):
            h, c = self.forward(features[t], (h * keep[t], c * keep[t]))
            outputs.append(h)
        return torch.cat(outputs)

    def reset(self, state: State, ended: np.ndarray) -> State:
        """The state with the rows of envs whose episode ended zeroed, for their next episode."""
        assert state is not None
        keep = torch.from_numpy(~ended).to(state[0].device).unsqueeze(-1).to(state[0].dtype)
        return state[0] * keep, state[1] * keep

    def select(self, state: State, index: int) -> State:
        assert state is not None
        return state[0][index:index + 1], state[1][index:index + 1]


def clone_state(state: State) -> State:
    return None if state is None else (state[0].clone(), state[1].clone())


# --- the network ----------------------------------------------------------------------------------

def _chained(first: Any, second: Any, x: Tensor) -> Any:
    return second(first(x))


def _time_flat(obs: Observation) -> Observation:
    """[T, N, ...] to [T*N, ...], for each part of a structured observation."""
    if isinstance(obs, dict):
        return {k: v.flatten(0, 1) for k, v in obs.items()}
    return obs.flatten(0, 1)


@contextmanager
def one_torch_thread() -> Iterator[None]:
    """torch on one intra-op thread inside the block, the caller's count restored after it."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


class ActorCritic(nn.Module):
    """pi(a|s; theta) and V(s; phi) over shared features (or separate torsos).

    torso (MLP | conv | parts | the user's) -> core (feed-forward | LSTM) -> [hidden layers] ->
    policy head (Categorical | Gaussian | gSDE | multi-categorical | Bernoulli) + value head. The
    built-in torsos and heads are called through plain references to their weights, not nn.Module
    dispatch: at batch 1 (an A3C worker with one env) dispatch would cost more than the arithmetic.

    trust_code: a spec naming a user's torso class ('module:Class') imports its module only if
    True (a3c.references); give it where the caller trusts where the spec came from.
    """

    def __init__(self, spec: NetworkSpec, trust_code: bool = False):
        super().__init__()
        # Orthogonal init's QR rounds differently on several threads: one thread, so that a seed
        # builds the same network whatever thread count the caller has set.
        with one_torch_thread():
            self._build(spec, trust_code)

    def _build(self, spec: NetworkSpec, trust_code: bool) -> None:
        self.spec = spec
        box_size = sum(p.size for p in spec.obs_parts if p.kind == "box")
        self.normalizer = ObsNormalizer(box_size) if spec.obs_norm and box_size else None
        self.return_normalizer = ReturnNormalizer() if spec.reward_norm else None
        fast = _fast_vector(spec)
        normalize = None if self.normalizer is None or fast else self.normalizer.forward
        self.torso = make_torso(spec, normalize, trust_code)
        shared = spec.shared_torso
        self.value_torso = None if shared else make_torso(spec, normalize, trust_code)
        width = self.torso.out_dim
        if spec.core == "lstm":
            self.core: FeedForwardCore | LSTMCore = LSTMCore(width, spec.core_size)
            width = spec.core_size
        else:
            self.core = FeedForwardCore()
        value_width = width if shared else self.value_torso.out_dim
        act = spec.head_activation
        self.policy_hidden = MLP(width, spec.policy_sizes, act) if spec.policy_sizes else None
        self.value_hidden = MLP(value_width, spec.value_sizes, act) if spec.value_sizes else None
        width = self.policy_hidden.out_dim if self.policy_hidden is not None else width
        value_width = self.value_hidden.out_dim if self.value_hidden is not None else value_width
        kind = spec.action_kind
        if kind == "discrete":
            self.policy: nn.Module = CategoricalHead(width, spec.action_dim)
        elif kind == "multi_discrete":
            self.policy = MultiCategoricalHead(width, spec.action_nvec)
        elif kind == "multi_binary":
            self.policy = BernoulliHead(width, spec.action_dim)
        elif spec.use_sde:
            self.policy = StateDependentNoiseHead(width, spec.action_dim, spec.log_std_init)
        else:
            self.policy = GaussianHead(width, spec.action_dim)
        self.value_head = nn.Linear(value_width, 1)
        nn.init.orthogonal_(self.value_head.weight, 1.0)
        nn.init.zeros_(self.value_head.bias)
        # A user's torso goes through nn.Module.__call__ (its hooks, its forward); ours do not.
        features = self.torso.__call__ if spec.user_torso else self.torso.forward
        self._policy_features = features
        self._value_features = None if shared else (
            self.value_torso.__call__ if spec.user_torso else self.value_torso.forward)
        # One vector is normalised here, once for both torsos; the other torsos normalise their Box parts.
        self._normalize = self.normalizer.forward if self.normalizer is not None and fast else None
        self._core_step = self.core.step
        self._policy_params = self.policy.forward
        if self.policy_hidden is not None:
            self._policy_params = functools.partial(_chained, self.policy_hidden.forward, self.policy.forward)
        self._value_hidden = None if self.value_hidden is None else self.value_hidden.forward
        self._value_wb = (self.value_head.weight, self.value_head.bias)

    def replica(self) -> ActorCritic:
        """A network like this one with weights of its own, for a worker or an evaluator; a user's
        torso is imported without asking again, as this network was built under its caller's trust."""
        return ActorCritic(self.spec, trust_code=True)

    @property
    def recurrent(self) -> bool:
        return self.core.recurrent

    @property
    def device(self) -> torch.device:
        return self.value_head.weight.device

    @functools.cached_property
    def params(self) -> list[nn.Parameter]:
        """parameters() as a list, built once: the hot path would otherwise walk the modules."""
        return list(self.parameters())

    @functools.cached_property
    def param_slices(self) -> list[slice]:
        """Where each of params lies in one flat vector of them all, in order: the layout of the
        gradient buffer (a3c.core.gradients), which the packed network writes into, and of a Ray push."""
        slices, start = [], 0
        for p in self.params:
            slices.append(slice(start, start + p.numel()))
            start += p.numel()
        return slices

    def resample_noise(self, batch: int) -> None:
        """State-dependent exploration draws its noise anew for batch envs (a no-op otherwise)."""
        if self.spec.use_sde:
            self.policy.resample(batch)

    def initial_state(self, batch: int) -> State:
        """The state before an episode's first step (None for a feed-forward network)."""
        return self.core.initial_state(batch, self.device)

    def reset_state(self, state: State, ended: np.ndarray) -> State:
        """The state with the rows where an episode ended (bool [N]) set back to the initial state."""
        return self.core.reset(state, ended)

    def state_at(self, state: State, index: int) -> State:
        """The state of one env of the batch, as a batch of one."""
        return self.core.select(state, index)

    @property
    def replays_torso(self) -> bool:
        """Whether the learning pass can take the torso's features from the rollout's acting passes
        (act's trace, evaluate_actions') instead of running it again: a built-in conv torso shared
        by the policy and the value."""
        return isinstance(self.torso, ConvTorso) and self.value_torso is None

    def forward(self, obs: Observation, state: State = None, trace: Trace | None = None
                ) -> tuple[Any, Tensor, State]:
        """Distribution parameters, V(s) and the next state for a batch of observations; trace:
        see act."""
        x = obs if self._normalize is None else self._normalize(obs)
        features = self._policy_features(x) if trace is None else self.torso.forward(x, trace)
        h, state = self._core_step(features, state)
        hv = h if self._value_features is None else self._value_features(x)
        if self._value_hidden is not None:
            hv = self._value_hidden(hv)
        return self._policy_params(h), F.linear(hv, *self._value_wb).squeeze(-1), state

    def act(self, obs: Observation, state: State = None, deterministic: bool = False,
            trace: Trace | None = None) -> tuple[Tensor, Tensor, State]:
        """Sample actions (unclipped for Box spaces), V(s) and the next state; call under no_grad.

        Actions: int64 [B] (discrete), float32 [B, dim] (box), int64 [B, dim] (multi_discrete),
        float32 0/1 [B, dim] (multi_binary); a3c.spaces.action_converter makes them the env's.
        trace (only where replays_torso): a list the torso appends its layers' outputs to, one
        entry per call, which evaluate_actions learns from while the weights are unchanged.
        """
        params, value, state = self.forward(obs, state, trace)
        return self.policy.sample(params, deterministic), value, state

    def value(self, obs: Observation, state: State = None) -> Tensor:
        return self.forward(obs, state)[1]

    def evaluate_actions(self, obs: Observation, actions: Tensor, state: State, resets: Tensor,
                         trace: Trace | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """log pi(a|s), H(pi(.|s)) and V(s) over a [T, N, ...] rollout, with autograd, for the loss.

        state is the one the rollout started from and resets[t] (bool [T, N]) marks where an
        episode ended at step t-1; a recurrent core reruns the T steps from them, a feed-forward
        one needs neither. The torso runs once over all T*N observations, or, given the trace of
        the T acting passes (act), is replayed from it. Results are flat [T*N], time-major.
        """
        T, N = resets.shape
        x = _time_flat(obs)
        if self._normalize is not None:
            x = self._normalize(x)
        features = self._policy_features(x) if trace is None else self.torso.replay(x, trace)
        h = self.core.sequence(features.reshape(T, N, -1), state, resets)
        hv = h if self._value_features is None else self._value_features(x)
        if self._value_hidden is not None:
            hv = self._value_hidden(hv)
        logp, entropy = self.policy.log_prob_entropy(self._policy_params(h), actions.flatten(0, 1))
        return logp, entropy, F.linear(hv, *self._value_wb).squeeze(-1)

    def observation_batch(self, observation: Any) -> tuple[Observation, bool]:
        """One observation as the env gives it, or a batch of them as a vector env gives them (a
        dict of arrays [B, ...] for a Dict space, a tuple of them for a Tuple space), as this
        network's input on its device: (tensors, True if it was one observation)."""
        parts = self.spec.obs_parts
        if len(parts) == 1 and parts[0].key == "":  # the common case, kept short: evaluation's every step
            part = parts[0]
            array = np.asarray(observation, dtype=part.dtype)
            if array.shape == part.shape:
                return torch.as_tensor(array, device=self.device)[None], True
            if array.ndim > 0 and array.shape[1:] == part.shape:
                return torch.as_tensor(array, device=self.device), False
        try:
            values = split_observation(observation, parts)
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise ConfigError(f"the observation does not have the parts {[p.key for p in parts]} of "
                              f"this network's observation space: {type(exc).__name__}: {exc}") from None
        values = values if isinstance(values, dict) else {"": values}
        arrays, single = {}, None
        for part in parts:
            array = np.asarray(values[part.key], dtype=part.dtype)
            one = array.shape == part.shape
            if not one and (array.ndim == 0 or array.shape[1:] != part.shape):
                where = f" part {part.key!r}" if part.key else ""
                raise ConfigError(f"observation{where} shape {array.shape} does not match {part.shape} "
                                  f"(one observation) or [batch, {', '.join(map(str, part.shape))}]")
            if single is not None and one != single:
                raise ConfigError("some parts of the observation are one observation, others a batch")
            single = one
            arrays[part.key] = array[None] if one else array
        tensors = {k: torch.as_tensor(a, device=self.device) for k, a in arrays.items()}
        return (tensors[""] if "" in tensors else tensors), bool(single)

    def observe(self, obs: np.ndarray | dict[str, np.ndarray]) -> None:
        """Merge a rollout's observations [T, N, ...] into the obs_norm statistics, if kept; a batch
        holding NaN or inf is left out, as it would poison them for good."""
        if self.normalizer is None:
            return
        values = box_values(obs, self.spec.obs_parts)
        if np.isfinite(values).all():
            self.normalizer.update(values)

    def scaled_rewards(self, rewards: np.ndarray) -> np.ndarray:
        """The rewards the loss learns from: divided by the return's running std with reward_norm."""
        return rewards if self.return_normalizer is None else self.return_normalizer.scale(rewards)

    def normalizers(self) -> tuple[ObsNormalizer, ...]:
        """The running statistics this network keeps (obs_norm's, reward_norm's), in that order:
        what the Ray backend sends to the parameter server and back."""
        return tuple(n for n in (self.normalizer, self.return_normalizer) if n is not None)

    def torch_default_init(self) -> None:
        """Every built-in layer as PyTorch initialises it (ortho_init false, as Stable-Baselines3's
        ortho_init=False); a user's torso keeps its own. The constructors give the orthogonal init."""
        users = [t for t in (self.torso, self.value_torso) if isinstance(t, UserTorso)]
        user = {id(m) for t in users for m in t.modules()}
        with torch.no_grad():
            for module in self.modules():
                if isinstance(module, nn.Linear | nn.Conv2d | nn.LSTMCell) and id(module) not in user:
                    module.reset_parameters()

    def share_statistics(self, other: ActorCritic) -> None:
        """Use other's running statistics (in shared memory) instead of our own copy."""
        for mine, theirs in ((self.normalizer, other.normalizer),
                             (self.return_normalizer, other.return_normalizer)):
            if mine is not None and theirs is not None:
                for name in ("mean", "var", "count"):
                    setattr(mine, name, getattr(theirs, name))
