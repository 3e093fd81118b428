"""Actor-critic networks: a torso shared by a policy head and a value head (or one torso each)."""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass
from typing import Any

import gymnasium as gym
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from a3c.errors import CheckpointError

_ACTIVATIONS = {"tanh": torch.tanh, "relu": torch.relu}
_LOG_2PI = math.log(2 * math.pi)


@dataclass(frozen=True)
class NetworkSpec:
    """What it takes to rebuild a network without its environment: saved in every checkpoint."""

    obs_dim: int
    action_kind: str  # "discrete" | "box"
    action_dim: int  # number of actions, or the Box's dimension
    hidden_sizes: tuple[int, ...] = (64, 64)
    activation: str = "tanh"
    shared_torso: bool = True

    @classmethod
    def from_spaces(cls, obs_space: gym.Space, act_space: gym.Space, **options: Any) -> NetworkSpec:
        if isinstance(act_space, gym.spaces.Discrete):
            kind, dim = "discrete", int(act_space.n)
        else:
            kind, dim = "box", int(act_space.shape[0])
        return cls(obs_dim=int(obs_space.shape[0]), action_kind=kind, action_dim=dim, **options)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["hidden_sizes"] = list(self.hidden_sizes)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NetworkSpec:
        try:
            return cls(**{**data, "hidden_sizes": tuple(data["hidden_sizes"])})
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
        mean, variance = params
        logp = -0.5 * ((actions - mean) ** 2 / variance + variance.log() + _LOG_2PI)
        entropy = 0.5 * (variance.log() + _LOG_2PI + 1.0)
        return logp.sum(-1), entropy.sum(-1)


class ActorCritic(nn.Module):
    """pi(a|s; theta) and V(s; phi) over shared features (or separate torsos)."""

    def __init__(self, spec: NetworkSpec):
        super().__init__()
        self.spec = spec
        self.torso = MLP(spec.obs_dim, spec.hidden_sizes, spec.activation)
        shared = spec.shared_torso
        self.value_torso = None if shared else MLP(spec.obs_dim, spec.hidden_sizes, spec.activation)
        width = spec.hidden_sizes[-1]
        head = CategoricalHead if spec.action_kind == "discrete" else GaussianHead
        self.policy = head(width, spec.action_dim)
        self.value_head = nn.Linear(width, 1)
        nn.init.orthogonal_(self.value_head.weight, 1.0)
        nn.init.zeros_(self.value_head.bias)
        # Plain references for the batch-1 hot path: nn.Module attribute lookup costs ~0.3 us each.
        self._policy_features = self.torso.forward
        self._value_features = None if shared else self.value_torso.forward
        self._policy_params = self.policy.forward
        self._value_wb = (self.value_head.weight, self.value_head.bias)

    @functools.cached_property
    def params(self) -> list[nn.Parameter]:
        """parameters() as a list, built once: enumerating the modules costs ~15 us per update."""
        return list(self.parameters())

    def forward(self, obs: Tensor) -> tuple[Any, Tensor]:
        """Distribution parameters and V(s) for a batch of observations."""
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
