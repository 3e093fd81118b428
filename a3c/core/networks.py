"""Actor-critic networks: torso -> core -> policy head + value head, one call shape for all of them.

Every network answers ``act(obs, state) -> actions, values, state`` and, for the loss,
``evaluate_actions(obs, actions, state, resets)`` over a [T, N] rollout. The core between torso and
heads is where feed-forward and recurrent networks differ, and nowhere else: a feed-forward core
passes features through with the state None; the LSTM core (the A3C paper's LSTM agent) carries
(h, c) from step to step.
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from a3c.config import CORES, TORSOS
from a3c.core.heads import CategoricalHead, GaussianHead, StateDependentNoiseHead
from a3c.core.normalization import ObsNormalizer
from a3c.errors import CheckpointError, ConfigError

_ACTIVATIONS = {"tanh": torch.tanh, "relu": torch.relu}

# Convolutional torsos as (filters, kernel, stride) per layer, then the hidden layer's width.
CONV_LAYERS = {
    # Mnih et al. 2016 (A3C), after Mnih et al. 2013: 16 8x8/4, 32 4x4/2, 256 hidden.
    "a3c-conv": (((16, 8, 4), (32, 4, 2)), 256),
    # Mnih et al. 2015 (Nature DQN): 32 8x8/4, 64 4x4/2, 64 3x3/1, 512 hidden.
    "nature-conv": (((32, 8, 4), (64, 4, 2), (64, 3, 1)), 512),
}

State = tuple[Tensor, Tensor] | None  # the LSTM core's (h, c), each [N, core_size]; None: no memory


@dataclass(frozen=True)
class NetworkSpec:
    """What it takes to rebuild a network without its environment: saved in every checkpoint."""

    obs_dim: int  # flat size of an observation
    action_kind: str  # "discrete" | "box"
    action_dim: int  # number of actions, or the Box's dimension
    hidden_sizes: tuple[int, ...] = (64, 64)
    activation: str = "tanh"
    shared_torso: bool = True
    obs_shape: tuple[int, ...] = ()  # [C, H, W] of image observations; () for flat vectors
    torso: str = "mlp"  # "mlp" | "a3c-conv" | "nature-conv"
    core: str = "none"  # "none" | "lstm"
    core_size: int = 256
    obs_norm: bool = False  # running mean/std normalisation of (vector) observations
    use_sde: bool = False  # Box actions: state-dependent exploration (StateDependentNoiseHead)
    log_std_init: float = -2.0  # use_sde: the initial log sigma of its noise weights

    @classmethod
    def from_spaces(cls, obs_space: gym.Space, act_space: gym.Space, torso: str = "auto",
                    **options: Any) -> NetworkSpec:
        """The spec for these spaces; torso 'auto' is the MLP for vectors, the A3C conv for images."""
        if isinstance(act_space, gym.spaces.Discrete):
            kind, dim = "discrete", int(act_space.n)
        else:
            kind, dim = "box", int(act_space.shape[0])
        shape = tuple(int(n) for n in obs_space.shape)
        image = len(shape) == 3
        if torso == "auto":
            torso = "a3c-conv" if image else "mlp"
        if torso not in TORSOS:
            raise ConfigError(f"unknown torso {torso!r}; choose from {', '.join(TORSOS)}")
        if image and torso == "mlp":
            raise ConfigError(
                f"observations are images of shape {shape}, which the MLP torso does not take; "
                "choose torso a3c-conv, nature-conv or auto")
        if not image and torso != "mlp":
            raise ConfigError(
                f"torso {torso} takes image stacks [C, H, W], but observations have shape {shape}; "
                "choose torso mlp or auto")
        if image and options.get("obs_norm"):
            raise ConfigError("obs_norm normalises vector observations; images are scaled from "
                              "bytes by the conv torso: turn obs_norm off")
        core = options.get("core", "none")
        if core not in CORES:
            raise ConfigError(f"unknown core {core!r}; choose from {', '.join(CORES)}")
        if options.get("use_sde") and kind != "box":
            raise ConfigError(f"use_sde explores continuous (Box) actions; this env's are {act_space}")
        if core != "none" and not options.get("shared_torso", True):
            raise ConfigError("an LSTM core sits between one shared torso and the heads: "
                              "use shared_torso true with core lstm")
        return cls(obs_dim=int(np.prod(shape)), action_kind=kind, action_dim=dim,
                   obs_shape=shape if image else (), torso=torso, **options)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["hidden_sizes"] = list(self.hidden_sizes)
        d["obs_shape"] = list(self.obs_shape)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NetworkSpec:
        """Also reads the specs of format-1 checkpoints, which had only the MLP fields."""
        try:
            return cls(**{**data, "hidden_sizes": tuple(data["hidden_sizes"]),
                          "obs_shape": tuple(data.get("obs_shape", ()))})
        except (TypeError, KeyError) as exc:
            raise CheckpointError(f"network description is malformed: {exc}") from None


# --- torsos -------------------------------------------------------------------------------------

class MLP(nn.Module):
    """Fully connected torso, called layer by layer: nn.Sequential's dispatch shows at batch 1."""

    def __init__(self, in_dim: int, hidden_sizes: tuple[int, ...], activation: str):
        super().__init__()
        sizes = (in_dim, *hidden_sizes)
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=False))
        self.activation = _ACTIVATIONS[activation]
        for layer in self.layers:
            nn.init.orthogonal_(layer.weight, math.sqrt(2))
            nn.init.zeros_(layer.bias)
        # Parameters are updated in place (pull, load_state_dict), so these references stay valid.
        self._weights = [(layer.weight, layer.bias) for layer in self.layers]

    def forward(self, x: Tensor) -> Tensor:
        for weight, bias in self._weights:
            x = self.activation(F.linear(x, weight, bias))
        return x


class ConvTorso(nn.Module):
    """Convolutions over a stack of frames, then one hidden layer; bytes are scaled to [0, 1] here.

    Observations stay uint8 in rollouts (a quarter of the memory of float32) until this forward.
    """

    def __init__(self, obs_shape: tuple[int, ...], kind: str):
        super().__init__()
        layers, hidden = CONV_LAYERS[kind]
        channels, height, width = obs_shape
        convs = []
        for filters, kernel, stride in layers:
            convs.append(nn.Conv2d(channels, filters, kernel, stride))
            channels = filters
            height, width = (height - kernel) // stride + 1, (width - kernel) // stride + 1
        if height <= 0 or width <= 0:
            raise ConfigError(f"images of shape {obs_shape} are too small for the {kind} torso")
        self.convs = nn.ModuleList(convs)
        self.hidden = nn.Linear(channels * height * width, hidden)
        self.out_dim = hidden
        for layer in (*self.convs, self.hidden):
            nn.init.orthogonal_(layer.weight, math.sqrt(2))
            nn.init.zeros_(layer.bias)
        self._convs = [(c.weight, c.bias, c.stride) for c in self.convs]
        self._hidden = (self.hidden.weight, self.hidden.bias)

    def forward(self, x: Tensor) -> Tensor:
        x = x.float() * (1.0 / 255.0) if x.dtype == torch.uint8 else x
        for weight, bias, stride in self._convs:
            x = torch.relu(F.conv2d(x, weight, bias, stride))
        return torch.relu(F.linear(x.flatten(1), *self._hidden))


def make_torso(spec: NetworkSpec) -> nn.Module:
    if spec.torso == "mlp":
        return MLP(spec.obs_dim, spec.hidden_sizes, spec.activation)
    return ConvTorso(spec.obs_shape, spec.torso)


def torso_width(spec: NetworkSpec) -> int:
    return spec.hidden_sizes[-1] if spec.torso == "mlp" else CONV_LAYERS[spec.torso][1]


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
    """

    recurrent = True

    def __init__(self, in_dim: int, size: int):
        super().__init__(in_dim, size)
        nn.init.zeros_(self.bias_ih)
        nn.init.zeros_(self.bias_hh)

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

def _normalized(norm: Any, features: Any, x: Tensor) -> Tensor:
    return features(norm(x))  # a module-level function: workers receive the network by pickle


class ActorCritic(nn.Module):
    """pi(a|s; theta) and V(s; phi) over shared features (or separate torsos).

    torso (MLP | conv) -> core (feed-forward | LSTM) -> policy head (Categorical | Gaussian | gSDE)
    + value head. The built-in torsos and heads are called through plain references to their
    weights, not nn.Module dispatch: at batch 1 (an A3C worker with one env) dispatch would cost
    more than the arithmetic.
    """

    def __init__(self, spec: NetworkSpec):
        super().__init__()
        self.spec = spec
        self.normalizer = ObsNormalizer(spec.obs_dim) if spec.obs_norm else None
        self.torso = make_torso(spec)
        shared = spec.shared_torso
        self.value_torso = None if shared else make_torso(spec)
        width = torso_width(spec)
        if spec.core == "lstm":
            self.core: FeedForwardCore | LSTMCore = LSTMCore(width, spec.core_size)
            width = spec.core_size
        else:
            self.core = FeedForwardCore()
        if spec.action_kind == "discrete":
            self.policy: nn.Module = CategoricalHead(width, spec.action_dim)
        elif spec.use_sde:
            self.policy = StateDependentNoiseHead(width, spec.action_dim, spec.log_std_init)
        else:
            self.policy = GaussianHead(width, spec.action_dim)
        self.value_head = nn.Linear(width, 1)
        nn.init.orthogonal_(self.value_head.weight, 1.0)
        nn.init.zeros_(self.value_head.bias)
        self._policy_features = self.torso.forward
        self._value_features = None if shared else self.value_torso.forward
        if self.normalizer is not None:
            norm = self.normalizer.forward
            self._policy_features = functools.partial(_normalized, norm, self._policy_features)
            if self._value_features is not None:
                self._value_features = functools.partial(_normalized, norm, self._value_features)
        self._core_step = self.core.step
        self._policy_params = self.policy.forward
        self._value_wb = (self.value_head.weight, self.value_head.bias)

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

    def new_rollout(self, batch: int) -> None:
        """A rollout over batch envs begins: state-dependent exploration draws its noise anew."""
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

    def forward(self, obs: Tensor, state: State = None) -> tuple[Any, Tensor, State]:
        """Distribution parameters, V(s) and the next state for a batch of observations."""
        h, state = self._core_step(self._policy_features(obs), state)
        hv = h if self._value_features is None else self._value_features(obs)
        return self._policy_params(h), F.linear(hv, *self._value_wb).squeeze(-1), state

    def act(self, obs: Tensor, state: State = None, deterministic: bool = False
            ) -> tuple[Tensor, Tensor, State]:
        """Sample actions (unclipped for Box spaces), V(s) and the next state; call under no_grad."""
        params, value, state = self.forward(obs, state)
        return self.policy.sample(params, deterministic), value, state

    def value(self, obs: Tensor, state: State = None) -> Tensor:
        return self.forward(obs, state)[1]

    def evaluate_actions(self, obs: Tensor, actions: Tensor, state: State, resets: Tensor
                         ) -> tuple[Tensor, Tensor, Tensor]:
        """log pi(a|s), H(pi(.|s)) and V(s) over a [T, N, ...] rollout, with autograd, for the loss.

        state is the one the rollout started from and resets[t] (bool [T, N]) marks where an
        episode ended at step t-1; a recurrent core reruns the T steps from them, a feed-forward
        one needs neither. The torso runs once over all T*N observations. Results are flat [T*N],
        time-major.
        """
        T, N = resets.shape
        flat_obs = obs.flatten(0, 1)
        features = self._policy_features(flat_obs)
        h = self.core.sequence(features.view(T, N, -1), state, resets)
        hv = h if self._value_features is None else self._value_features(flat_obs)
        logp, entropy = self.policy.log_prob_entropy(self._policy_params(h), actions.flatten(0, 1))
        return logp, entropy, F.linear(hv, *self._value_wb).squeeze(-1)

    def share_statistics(self, other: ActorCritic) -> None:
        """Use other's observation statistics (in shared memory) instead of our own copy."""
        if self.normalizer is not None and other.normalizer is not None:
            for name in ("mean", "var", "count"):
                setattr(self.normalizer, name, getattr(other.normalizer, name))
