"""n-step returns and advantages as in Mnih et al. 2016, Algorithm S3; GAE(lambda) as an option.

All arrays are time-major, shape [T] or [T, N]. ``next_values[t]`` is V(s_{t+1}) of the observation
that followed step t: the next state within an episode, the final observation where an episode
ended at t, and V(s_T) at t = T-1. Where ``terminated[t]`` it is ignored (a terminal state is
worth 0); where only ``truncated[t]`` (a time limit) it is the bootstrap, as the episode did not end
in a terminal state.
"""

from __future__ import annotations

import numpy as np


def n_step_returns(
    rewards: np.ndarray,
    next_values: np.ndarray,
    terminated: np.ndarray,
    truncated: np.ndarray,
    gamma: float,
) -> np.ndarray:
    """R_t = r_t + gamma * R_{t+1}, restarted from the bootstrap at every episode end and at t = T-1."""
    T = len(rewards)
    returns = np.empty(np.shape(rewards), dtype=np.float32)
    ends = np.logical_or(terminated, truncated)
    bootstrap = np.where(terminated, 0.0, next_values)
    R = bootstrap[T - 1]
    for t in reversed(range(T)):
        R = np.where(ends[t], bootstrap[t], R) if t < T - 1 else R
        R = rewards[t] + gamma * R
        returns[t] = R
    return returns


def gae_advantages(
    rewards: np.ndarray,
    values: np.ndarray,
    next_values: np.ndarray,
    terminated: np.ndarray,
    truncated: np.ndarray,
    gamma: float,
    lam: float,
) -> np.ndarray:
    """Generalised advantage estimation; lam = 1 gives R_t - V(s_t) with the n-step returns above."""
    T = len(rewards)
    advantages = np.empty(np.shape(rewards), dtype=np.float32)
    deltas = rewards + gamma * np.where(terminated, 0.0, next_values) - values
    carry = np.logical_not(np.logical_or(terminated, truncated))
    A = 0.0
    for t in reversed(range(T)):
        A = deltas[t] + (gamma * lam * carry[t] * A if t < T - 1 else 0.0)
        advantages[t] = A
    return advantages


def returns_and_advantages(
    rewards: np.ndarray,
    values: np.ndarray,
    next_values: np.ndarray,
    terminated: np.ndarray,
    truncated: np.ndarray,
    gamma: float,
    lam: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Value targets and advantages: the paper's n-step form at lam = 1, GAE otherwise."""
    if lam == 1.0:
        returns = n_step_returns(rewards, next_values, terminated, truncated, gamma)
        return returns, returns - values
    advantages = gae_advantages(rewards, values, next_values, terminated, truncated, gamma, lam)
    return advantages + values, advantages
