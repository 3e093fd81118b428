"""Running mean and variance of observations, and of discounted returns for reward normalisation,
shared by every learner of a run."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

Moments = tuple[float, Tensor, Tensor]  # count, mean and (population) variance of observations


def moments_from_arrays(count: float, mean: np.ndarray, var: np.ndarray) -> Moments:
    """Moments sent as NumPy arrays, as tensors of their own: arrays Ray hands over may be read-only,
    which torch.from_numpy warns about."""
    return count, torch.tensor(mean), torch.tensor(var)


def merge_moments(a: Moments, b: Moments) -> Moments:
    """The moments of two sets of observations together, from each set's (Chan et al.'s parallel
    algorithm); either count may be 0. Means and variances may be tensors or NumPy arrays."""
    count_a, mean_a, var_a = a
    count_b, mean_b, var_b = b
    total = count_a + count_b
    if total == 0:
        return a
    delta = mean_b - mean_a
    m2 = var_a * count_a + var_b * count_b + delta * delta * (count_a * count_b / total)
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
        return ((x - self.mean) * self.scale()).clamp_(-self.clip, self.clip)

    def scale(self) -> Tensor:
        """What forward multiplies the centred observations by: 1 / the running standard deviation."""
        return torch.rsqrt(self.var + 1e-8)

    @torch.no_grad()
    def update(self, batch: np.ndarray | Tensor) -> None:
        """Merge a batch's moments into the running ones, in place (and into `recent`, if kept).

        In NumPy, in float64: once per rollout, a dozen operations on a few numbers each, where
        torch's fixed cost per operation would outweigh the arithmetic.
        """
        values = np.asarray(batch, dtype=np.float64).reshape(-1, self.mean.shape[0])
        moments = (float(len(values)), values.mean(0), values.var(0))
        count, mean, var = merge_moments((float(self.count), self.mean.cpu().numpy(), self.var.cpu().numpy()),
                                         moments)
        self.mean.copy_(torch.from_numpy(mean))
        self.var.copy_(torch.from_numpy(var))
        self.count.fill_(count)
        if self.recent is not None:
            self.recent = merge_moments(self.recent, (moments[0], torch.from_numpy(moments[1]).float(),
                                                      torch.from_numpy(moments[2]).float()))

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


def running_returns(start: np.ndarray, rewards: np.ndarray, dones: np.ndarray, gamma: float
                    ) -> np.ndarray:
    """ret_t = gamma * ret_{t-1} + r_t per env over [T, N] rewards, from `start` [N], the running
    return before step 0; after a step where an episode ended (dones[t]) the next starts from 0.

    What reward normalisation measures the spread of (OpenAI Baselines' and Stable-Baselines3's
    VecNormalize): the return discounted back from now, the one thing a reward's scale sets.
    """
    out = np.empty(rewards.shape, dtype=np.float64)
    ret = start.astype(np.float64)
    for t in range(len(rewards)):
        ret = ret * gamma + rewards[t]
        out[t] = ret
        ret = np.where(dones[t], 0.0, ret)
    return out


class ReturnNormalizer(ObsNormalizer):
    """Rewards divided by the running standard deviation of the discounted return (reward_norm).

    The moments are kept as the observation statistics are, and shared, saved and sent to the Ray
    parameter server the same way; each env's running return is its learner's (the rollout
    collector's), as the env is.
    """

    def __init__(self) -> None:
        super().__init__(1)

    def scale(self, rewards: np.ndarray) -> np.ndarray:
        """rewards / sqrt(var + 1e-8), clipped to [-clip, clip]; the mean is left in, as a reward's
        sign matters."""
        std = float(torch.sqrt(self.var[0] + 1e-8))
        return np.clip(rewards / std, -self.clip, self.clip).astype(np.float32)

    def observe(self, start: np.ndarray, rewards: np.ndarray, dones: np.ndarray, gamma: float
                ) -> np.ndarray:
        """Merge the running returns through a rollout's [T, N] rewards into the moments; return each
        env's running return after it. A rollout with NaN or inf rewards is left out, and the
        returns start again from 0."""
        returns = running_returns(start, rewards, dones, gamma)
        if not np.isfinite(returns).all():
            return np.zeros(rewards.shape[1:])
        self.update(returns.reshape(-1, 1))
        return np.where(dones[-1], 0.0, returns[-1])
