"""Greedy or stochastic evaluation of a network over whole episodes."""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch

from a3c.networks import ActorCritic


@dataclass
class EvalResult:
    returns: list[float]
    lengths: list[int]

    @property
    def mean_return(self) -> float:
        return float(np.mean(self.returns))

    @property
    def std_return(self) -> float:
        return float(np.std(self.returns))

    def to_dict(self) -> dict[str, float | int]:
        return {"mean_return": self.mean_return, "std_return": self.std_return,
                "episodes": len(self.returns)}


def to_env_action(action: torch.Tensor, space: gym.Space) -> np.ndarray | int:
    """A network action as the env takes it: an int, or a float array clipped to the Box."""
    if isinstance(space, gym.spaces.Discrete):
        return int(action)
    return np.clip(action.cpu().numpy(), space.low, space.high)


@torch.no_grad()
def evaluate(
    net: ActorCritic, env: gym.Env, episodes: int, deterministic: bool = True, seed: int = 0
) -> EvalResult:
    """Run whole episodes and report the env's own (unshaped) returns."""
    returns, lengths = [], []
    device = net.value_head.weight.device
    for k in range(episodes):
        obs, _ = env.reset(seed=seed + k)
        total, length, done = 0.0, 0, False
        state = net.initial_state(1) if net.recurrent else None
        while not done:
            obs_t = torch.as_tensor(obs, device=device)[None]
            if state is None:
                action, _ = net.act(obs_t, deterministic)
            else:
                action, _, state = net.act_recurrent(obs_t, state, deterministic)
            obs, reward, terminated, truncated, _ = env.step(to_env_action(action[0], env.action_space))
            total += float(reward)
            length += 1
            done = terminated or truncated
        returns.append(total)
        lengths.append(length)
    return EvalResult(returns, lengths)
