"""From a Rollout to gradients on a network: the part of an update every driver shares."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from a3c.config import Config
from a3c.losses import actor_critic_loss
from a3c.networks import ActorCritic
from a3c.returns import returns_and_advantages
from a3c.rollout import Rollout


@dataclass
class UpdateStats:
    policy_loss: float
    value_loss: float
    entropy: float
    grad_norm: float
    total_loss: float = 0.0

    @property
    def finite(self) -> bool:
        """False if the loss or the gradient holds a NaN or inf: such an update must not be applied."""
        return math.isfinite(self.total_loss) and math.isfinite(self.grad_norm)


def compute_gradients(net: ActorCritic, rollout: Rollout, config: Config) -> UpdateStats:
    """Fill net's .grad with the gradient of the seed's loss on this rollout, clipped by norm."""
    rewards = rollout.rewards if config.reward_scale == 1.0 else rollout.rewards * config.reward_scale
    returns, advantages = returns_and_advantages(
        rewards, rollout.values, rollout.next_values,
        rollout.terminated, rollout.truncated, config.gamma, config.gae_lambda,
    )
    # One batched forward with autograd over all T*N steps (exact for feed-forward networks; a
    # recurrent one reruns the sequence from the rollout's initial state), on the network's device
    # (A2C may run it on a GPU; the rollout is always in CPU memory).
    device = net.value_head.weight.device
    if net.recurrent:
        resets = np.zeros_like(rollout.terminated)
        resets[1:] = rollout.terminated[:-1] | rollout.truncated[:-1]
        logprobs, entropy, values = net.evaluate_sequence(
            torch.from_numpy(rollout.obs).to(device), torch.from_numpy(rollout.actions).to(device),
            rollout.initial_state, torch.from_numpy(resets).to(device))
    else:
        obs = torch.from_numpy(rollout.obs).flatten(0, 1).to(device)
        actions = torch.from_numpy(rollout.actions).flatten(0, 1).to(device)
        logprobs, entropy, values = net.evaluate_actions(obs, actions)
    loss = actor_critic_loss(
        logprobs, entropy, values,
        torch.from_numpy(returns).flatten().to(device), torch.from_numpy(advantages).flatten().to(device),
        config.value_coef, config.entropy_coef,
    )
    params = net.params
    # Zero in place: the Hogwild backend's global .grad tensors alias these.
    grads = [p.grad for p in params if p.grad is not None]
    if grads:
        torch._foreach_zero_(grads)
    loss.total.backward()
    if config.max_grad_norm > 0:
        grad_norm = torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm, foreach=True)
    else:
        grad_norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params]))
    return UpdateStats(
        policy_loss=loss.policy.item(),
        value_loss=loss.value.item(),
        entropy=loss.entropy.item(),
        grad_norm=grad_norm.item(),
        total_loss=loss.total.item(),
    )
