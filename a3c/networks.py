"""Actor-critic networks: a torso shared by a policy head and a value head (or one torso each)."""

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
from a3c.errors import CheckpointError, ConfigError

_ACTIVATIONS = {"tanh": torch.tanh, "relu": torch.relu}
_LOG_2PI = math.log(2 * math.pi)


# Convolutional torsos as (filters, kernel, stride) per layer, then the hidden layer's width.
CONV_LAYERS = {
    # Mnih et al. 2016 (A3C), after Mnih et al. 2013: 16 8x8/4, 32 4x4/2, 256 hidden.
    "a3c-conv": (((16, 8, 4), (32, 4, 2)), 256),
    # Mnih et al. 2015 (Nature DQN): 32 8x8/4, 64 4x4/2, 64 3x3/1, 512 hidden.
    "nature-conv": (((32, 8, 4), (64, 4, 2), (64, 3, 1)), 512),
}


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


class MLP(nn.Module):
    """Fully connected torso; called layer by layer because nn.Sequential's overhead shows at batch 1."""

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


Moments = tuple[float, Tensor, Tensor]  # count, mean and (population) variance of observations


def merge_moments(a: Moments, b: Moments) -> Moments:
    """The moments of two sets of observations together, from each set's (Chan et al.'s parallel
    algorithm); either count may be 0."""
    count_a, mean_a, var_a = a
    count_b, mean_b, var_b = b
    total = count_a + count_b
    if total == 0:
        return a
    delta = mean_b - mean_a
    m2 = var_a * count_a + var_b * count_b + delta.square() * (count_a * count_b / total)
    return total, mean_a + delta * (count_b / total), m2 / total


class ObsNormalizer(nn.Module):
    """Running mean and variance of observations (buffers: saved with the weights, shareable).

    A3C workers update the one copy in shared memory without a lock, as they do the weights. A Ray
    worker cannot share memory with the parameter server: it keeps the moments of what it observed
    since it last sent them (`take_recent`), and the server merges them into the global statistics.
    """

    clip = 10.0

    def __init__(self, dim: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("var", torch.ones(dim))
        self.register_buffer("count", torch.tensor(1e-4, dtype=torch.float64))
        self.recent: Moments | None = None  # kept once take_recent is first called

    def forward(self, x: Tensor) -> Tensor:
        return ((x - self.mean) * torch.rsqrt(self.var + 1e-8)).clamp_(-self.clip, self.clip)

    @torch.no_grad()
    def update(self, batch: Tensor) -> None:
        """Merge a batch's moments into the running ones, in place (and into `recent`, if kept)."""
        batch = batch.reshape(-1, self.mean.shape[0]).to(self.mean.dtype)
        moments = (float(batch.shape[0]), batch.mean(0), batch.var(0, unbiased=False))
        self.merge(moments)
        if self.recent is not None:
            self.recent = merge_moments(self.recent, moments)

    @torch.no_grad()
    def merge(self, moments: Moments) -> None:
        self.assign(merge_moments((float(self.count), self.mean, self.var), moments))

    @torch.no_grad()
    def assign(self, moments: Moments) -> None:
        """Take these statistics as the running ones (in place: a shared copy stays shared)."""
        count, mean, var = moments
        self.mean.copy_(mean)
        self.var.copy_(var)
        self.count.fill_(count)

    def take_recent(self) -> Moments:
        """The moments of the batches merged since the last call; the first call starts keeping them."""
        recent = self.recent
        self.recent = (0.0, torch.zeros_like(self.mean), torch.zeros_like(self.var))
        return recent if recent is not None else self.recent


class CategoricalHead(nn.Module):
    """Discrete actions: logits, sampled without building a torch.distributions object."""

    def __init__(self, in_dim: int, n: int):
        super().__init__()
        self.linear = nn.Linear(in_dim, n)
        nn.init.orthogonal_(self.linear.weight, 0.01)
        nn.init.zeros_(self.linear.bias)

    def forward(self, h: Tensor) -> Tensor:
        return F.linear(h, self.linear.weight, self.linear.bias)

    @staticmethod
    def sample(logits: Tensor, deterministic: bool) -> Tensor:
        if deterministic:
            return logits.argmax(-1)
        # Gumbel-max: an exact categorical sample at a third of torch.multinomial's cost at batch 1.
        return (logits - torch.empty_like(logits).exponential_().log()).argmax(-1)

    @staticmethod
    def log_prob_entropy(logits: Tensor, actions: Tensor) -> tuple[Tensor, Tensor]:
        logp_all = torch.log_softmax(logits, -1)
        logp = logp_all.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)
        entropy = -(logp_all.exp() * logp_all).sum(-1)
        return logp, entropy


def _gaussian_log_prob_entropy(mean: Tensor, variance: Tensor, actions: Tensor) -> tuple[Tensor, Tensor]:
    logp = -0.5 * ((actions - mean) ** 2 / variance + variance.log() + _LOG_2PI)
    entropy = 0.5 * (variance.log() + _LOG_2PI + 1.0)
    return logp.sum(-1), entropy.sum(-1)


class GaussianHead(nn.Module):
    """Continuous actions: a mean, and a variance through softplus as in the A3C paper."""

    min_variance = 1e-4

    def __init__(self, in_dim: int, dim: int):
        super().__init__()
        self.mean = nn.Linear(in_dim, dim)
        self.variance = nn.Linear(in_dim, dim)
        nn.init.orthogonal_(self.mean.weight, 0.01)
        nn.init.zeros_(self.mean.bias)
        nn.init.orthogonal_(self.variance.weight, 0.01)
        nn.init.zeros_(self.variance.bias)

    def forward(self, h: Tensor) -> tuple[Tensor, Tensor]:
        mean = F.linear(h, self.mean.weight, self.mean.bias)
        variance = F.softplus(F.linear(h, self.variance.weight, self.variance.bias))
        return mean, variance + self.min_variance

    @staticmethod
    def sample(params: tuple[Tensor, Tensor], deterministic: bool) -> Tensor:
        mean, variance = params
        if deterministic:
            return mean
        return mean + variance.sqrt() * torch.randn_like(mean)

    @staticmethod
    def log_prob_entropy(params: tuple[Tensor, Tensor], actions: Tensor) -> tuple[Tensor, Tensor]:
        return _gaussian_log_prob_entropy(*params, actions)


class StateDependentNoiseHead(nn.Module):
    """Continuous actions with generalized state-dependent exploration (gSDE, Raffin et al. 2022).

    The noise is latent(s) @ W, with one W ~ N(0, sigma^2) per env drawn at the start of each
    rollout (resample): within a rollout a state gets the same push every time it is visited, so
    exploration is smooth in time. Independent noise at every step averages out over a swing, and
    a pendulum has to be pumped consistently to get up. The action's distribution given the state
    is still Gaussian, with variance latent(s)^2 @ sigma^2; the latent is detached there, so only
    sigma and the mean learn from the log-probability.
    """

    min_variance = 1e-6

    def __init__(self, in_dim: int, dim: int, log_std_init: float):
        super().__init__()
        self.mean = nn.Linear(in_dim, dim)
        nn.init.orthogonal_(self.mean.weight, 0.01)
        nn.init.zeros_(self.mean.bias)
        self.log_std = nn.Parameter(torch.full((in_dim, dim), float(log_std_init)))
        self.noise: Tensor | None = None  # [N, in_dim, dim]: this rollout's W for each of N envs

    def resample(self, batch: int) -> None:
        std = self.log_std.detach().exp()
        self.noise = std * torch.randn(batch, *std.shape, device=std.device)

    def forward(self, h: Tensor) -> tuple[Tensor, Tensor]:
        """The mean and the latent; the variance is computed only where the loss needs it."""
        return F.linear(h, self.mean.weight, self.mean.bias), h.detach()

    def variance(self, latent: Tensor) -> Tensor:
        return latent.pow(2) @ (2 * self.log_std).exp() + self.min_variance

    def sample(self, params: tuple[Tensor, Tensor], deterministic: bool) -> Tensor:
        mean, latent = params
        if deterministic:
            return mean
        if self.noise is None or self.noise.shape[0] != len(latent):
            self.resample(len(latent))
        return mean + torch.bmm(latent.unsqueeze(1), self.noise).squeeze(1)

    def log_prob_entropy(self, params: tuple[Tensor, Tensor], actions: Tensor) -> tuple[Tensor, Tensor]:
        mean, latent = params
        return _gaussian_log_prob_entropy(mean, self.variance(latent), actions)


State = tuple[Tensor, Tensor]  # the LSTM core's (h, c), each [N, core_size]


def make_torso(spec: NetworkSpec) -> nn.Module:
    if spec.torso == "mlp":
        return MLP(spec.obs_dim, spec.hidden_sizes, spec.activation)
    return ConvTorso(spec.obs_shape, spec.torso)


def torso_width(spec: NetworkSpec) -> int:
    return spec.hidden_sizes[-1] if spec.torso == "mlp" else CONV_LAYERS[spec.torso][1]


def _normalized(norm: Any, features: Any, x: Tensor) -> Tensor:
    return features(norm(x))  # a module-level function: workers receive the network by pickle


class ActorCritic(nn.Module):
    """pi(a|s; theta) and V(s; phi) over shared features (or separate torsos).

    torso (MLP | conv) -> optional LSTM core -> policy head (Categorical | Gaussian) + value head.
    A network with a core is recurrent: it acts through act_recurrent with a state, and its loss
    recomputes a rollout's T steps from the state the rollout started with (evaluate_sequence).
    """

    def __init__(self, spec: NetworkSpec):
        super().__init__()
        self.spec = spec
        self.normalizer = ObsNormalizer(spec.obs_dim) if spec.obs_norm else None
        self.torso = make_torso(spec)
        shared = spec.shared_torso
        self.value_torso = None if shared else make_torso(spec)
        width = torso_width(spec)
        self.core = nn.LSTMCell(width, spec.core_size) if spec.core == "lstm" else None
        if self.core is not None:
            nn.init.zeros_(self.core.bias_ih)
            nn.init.zeros_(self.core.bias_hh)
            width = spec.core_size
        if spec.action_kind == "discrete":
            self.policy: nn.Module = CategoricalHead(width, spec.action_dim)
        elif spec.use_sde:
            self.policy = StateDependentNoiseHead(width, spec.action_dim, spec.log_std_init)
        else:
            self.policy = GaussianHead(width, spec.action_dim)
        self.value_head = nn.Linear(width, 1)
        nn.init.orthogonal_(self.value_head.weight, 1.0)
        nn.init.zeros_(self.value_head.bias)
        # Plain references for the batch-1 hot path: nn.Module attribute lookup costs ~0.3 us each.
        self._policy_features = self.torso.forward
        self._value_features = None if shared else self.value_torso.forward
        if self.normalizer is not None:
            norm = self.normalizer.forward
            self._policy_features = functools.partial(_normalized, norm, self._policy_features)
            if self._value_features is not None:
                self._value_features = functools.partial(_normalized, norm, self._value_features)
        self._policy_params = self.policy.forward
        self._value_wb = (self.value_head.weight, self.value_head.bias)

    @property
    def recurrent(self) -> bool:
        return self.core is not None

    def new_rollout(self, batch: int) -> None:
        """A rollout over batch envs begins: state-dependent exploration draws its noise anew."""
        if self.spec.use_sde:
            self.policy.resample(batch)

    @functools.cached_property
    def params(self) -> list[nn.Parameter]:
        """parameters() as a list, built once: enumerating the modules costs ~15 us per update."""
        return list(self.parameters())

    def forward(self, obs: Tensor) -> tuple[Any, Tensor]:
        """Distribution parameters and V(s) for a batch of observations (feed-forward networks)."""
        # Submodules' forward is called directly: module hooks are not used and cost ~2 us each.
        h = self._policy_features(obs)
        hv = h if self._value_features is None else self._value_features(obs)
        value = F.linear(hv, *self._value_wb).squeeze(-1)
        return self._policy_params(h), value

    def act(self, obs: Tensor, deterministic: bool = False) -> tuple[Tensor, Tensor]:
        """Sample actions (unclipped for Box spaces) and return V(s) too; call under no_grad."""
        params, value = self(obs)
        return self.policy.sample(params, deterministic), value

    def value(self, obs: Tensor) -> Tensor:
        return self(obs)[1]

    def evaluate_actions(self, obs: Tensor, actions: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """log pi(a|s), H(pi(.|s)) and V(s), with autograd, for the loss."""
        params, value = self(obs)
        logp, entropy = self.policy.log_prob_entropy(params, actions)
        return logp, entropy, value

    # --- recurrent networks ---

    def initial_state(self, batch: int) -> State:
        """The LSTM state at the start of an episode: zeros."""
        device = self.value_head.weight.device
        zeros = torch.zeros(batch, self.spec.core_size, device=device)
        return zeros, zeros.clone()

    def step(self, obs: Tensor, state: State) -> tuple[Any, Tensor, State]:
        """One time step: distribution parameters, V(s) and the next state."""
        h, c = self.core(self._policy_features(obs), state)
        return self._policy_params(h), F.linear(h, *self._value_wb).squeeze(-1), (h, c)

    def act_recurrent(self, obs: Tensor, state: State, deterministic: bool = False
                      ) -> tuple[Tensor, Tensor, State]:
        """Sample actions with V(s), and the state after this step; call under no_grad."""
        params, value, state = self.step(obs, state)
        return self.policy.sample(params, deterministic), value, state

    def evaluate_sequence(self, obs: Tensor, actions: Tensor, state: State, resets: Tensor
                          ) -> tuple[Tensor, Tensor, Tensor]:
        """log pi, H and V over a [T, N, ...] rollout, rerun from its initial state, with autograd.

        resets[t] (bool [T, N]) zeroes the state before step t: an episode ended at step t-1.
        The torso runs once over all T*N observations; only the core steps through time.
        Results are flattened [T*N], time-major, like evaluate_actions on flattened inputs.
        """
        T, N = resets.shape
        features = self._policy_features(obs.flatten(0, 1)).view(T, N, -1)
        keep = (~resets).unsqueeze(-1).to(features.dtype)
        h, c = state
        outputs = []
        for t in range(T):
            h, c = self.core(features[t], (h * keep[t], c * keep[t]))
            outputs.append(h)
        hs = torch.cat(outputs)
        params = self._policy_params(hs)
        logp, entropy = self.policy.log_prob_entropy(params, actions.flatten(0, 1))
        return logp, entropy, F.linear(hs, *self._value_wb).squeeze(-1)

    def share_statistics(self, other: ActorCritic) -> None:
        """Use other's observation statistics (in shared memory) instead of our own copy."""
        if self.normalizer is not None and other.normalizer is not None:
            for name in ("mean", "var", "count"):
                setattr(self.normalizer, name, getattr(other.normalizer, name))
