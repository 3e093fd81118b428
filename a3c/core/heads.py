"""Policy heads, one per kind of action: distribution parameters from features, sampling, and
log-probabilities and entropies for the loss, without building torch.distributions objects."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

_LOG_2PI = math.log(2 * math.pi)


class _LogitsHead(nn.Module):
    """One linear layer from the features to the logits of a discrete action space, initialised
    orthogonally with the small policy gain (0.01) so that the first policy is near uniform."""

    def __init__(self, in_dim: int, n_logits: int):
        super().__init__()
        self.linear = nn.Linear(in_dim, n_logits)
        nn.init.orthogonal_(self.linear.weight, 0.01)
        nn.init.zeros_(self.linear.bias)

    @property
    def linears(self) -> tuple[nn.Linear, ...]:
        """The layers that read the features, in the order of their outputs (a3c.core.packed)."""
        return (self.linear,)

    def forward(self, h: Tensor) -> Tensor:
        return F.linear(h, self.linear.weight, self.linear.bias)


class CategoricalHead(_LogitsHead):
    """Discrete actions: logits, sampled without building a torch.distributions object."""

    @staticmethod
    def sample(logits: Tensor, deterministic: bool) -> Tensor:
        if deterministic:
            return logits.argmax(-1)
        # Gumbel-max: an exact categorical sample, cheaper than torch.multinomial at batch 1.
        return (logits - torch.empty_like(logits).exponential_().log()).argmax(-1)

    @staticmethod
    def log_prob_entropy(logits: Tensor, actions: Tensor) -> tuple[Tensor, Tensor]:
        logp_all = torch.log_softmax(logits, -1)
        logp = logp_all.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)
        entropy = -(logp_all.exp() * logp_all).sum(-1)
        return logp, entropy


class MultiCategoricalHead(_LogitsHead):
    """MultiDiscrete actions: one categorical per component, chosen independently; one linear layer
    gives every component's logits. log pi(a|s) and the entropy are the sums over components."""

    def __init__(self, in_dim: int, nvec: tuple[int, ...]):
        sizes = [int(n) for n in nvec]
        super().__init__(in_dim, sum(sizes))
        self.nvec = sizes

    def sample(self, logits: Tensor, deterministic: bool) -> Tensor:
        """Actions [B, components] (int64)."""
        return torch.stack([CategoricalHead.sample(part, deterministic)
                            for part in logits.split(self.nvec, -1)], -1)

    def log_prob_entropy(self, logits: Tensor, actions: Tensor) -> tuple[Tensor, Tensor]:
        logp, entropy = 0, 0
        for i, part in enumerate(logits.split(self.nvec, -1)):
            part_logp, part_entropy = CategoricalHead.log_prob_entropy(part, actions[..., i])
            logp, entropy = logp + part_logp, entropy + part_entropy
        return logp, entropy


class BernoulliHead(_LogitsHead):
    """MultiBinary actions: one Bernoulli per bit, on a logit each; actions are 0.0 or 1.0."""

    @staticmethod
    def sample(logits: Tensor, deterministic: bool) -> Tensor:
        if deterministic:
            return (logits > 0).to(logits.dtype)
        return (torch.rand_like(logits) < torch.sigmoid(logits)).to(logits.dtype)

    @staticmethod
    def log_prob_entropy(logits: Tensor, actions: Tensor) -> tuple[Tensor, Tensor]:
        """log p(a) = a log sigmoid(l) + (1 - a) log sigmoid(-l); H = softplus(l) - l sigmoid(l)."""
        logp = actions * F.logsigmoid(logits) + (1.0 - actions) * F.logsigmoid(-logits)
        entropy = F.softplus(logits) - logits * torch.sigmoid(logits)
        return logp.sum(-1), entropy.sum(-1)


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

    @property
    def linears(self) -> tuple[nn.Linear, ...]:
        return (self.mean, self.variance)

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

    @property
    def linears(self) -> tuple[nn.Linear, ...]:
        return (self.mean,)

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


