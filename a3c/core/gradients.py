"""From a Rollout to gradients on a network: the part of an update every driver shares."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from a3c.config import Config
from a3c.core.acting import as_tensors
from a3c.core.losses import actor_critic_loss
from a3c.core.messages import UpdateStats
from a3c.core.networks import ActorCritic
from a3c.core.optim import entropy_coef_at
from a3c.core.returns import returns_and_advantages
from a3c.core.rollout import Rollout


def compute_gradients(net: ActorCritic, rollout: Rollout, config: Config,
                      steps: Callable[[], int] = lambda: 0) -> UpdateStats:
    """Fill net's .grad with the gradient of the A3C loss on this rollout, clipped by norm.

    steps: the run's env steps before this update, read only for a scheduled entropy weight.
    """
    rewards = net.scaled_rewards(rollout.rewards)  # divided by the return's std with reward_norm
    rewards = rewards if config.reward_scale == 1.0 else rewards * config.reward_scale
    returns, advantages = returns_and_advantages(
        rewards, rollout.values, rollout.next_values,
        rollout.terminated, rollout.truncated, config.gamma, config.gae_lambda,
    )
    if config.normalize_advantage:
        advantages = normalized(advantages)
    entropy_coef = entropy_coef_at(config, steps)
    flat = gradient_buffer(net)
    flat.zero_()  # in place: the Hogwild backend's global .grad tensors alias these
    packed = rollout.packed
    if packed is not None:  # the packed network's own chain rule (a3c.core.packed)
        losses = packed.gradients(rollout.obs, rollout.actions, returns, advantages, config.value_coef,
                                  entropy_coef, flat.numpy())
    else:
        losses = _autograd_gradients(net, rollout, returns, advantages, config.value_coef, entropy_coef)
    grad_norm = clip_by_norm(flat, config.max_grad_norm)
    total, policy, value, entropy = losses
    return UpdateStats(policy_loss=policy, value_loss=value, entropy=entropy, grad_norm=grad_norm.item(),
                       total_loss=total)


def _autograd_gradients(net: ActorCritic, rollout: Rollout, returns: np.ndarray, advantages: np.ndarray,
                        value_coef: float, entropy_coef: float) -> tuple[float, float, float, float]:
    """The loss's gradient through autograd, accumulated into net's .grad; (total, policy, value,
    entropy).

    One batched forward over all T*N steps, on the network's device (A2C may run it on a GPU; the
    rollout is always in CPU memory); a conv torso's is replayed from the rollout's acting passes,
    which ran under the same weights.
    """
    device = net.device
    logprobs, entropy, values = net.evaluate_actions(
        as_tensors(rollout.obs, device), torch.from_numpy(rollout.actions).to(device),
        rollout.initial_state, torch.from_numpy(rollout.resets()).to(device), rollout.trace)
    loss = actor_critic_loss(
        logprobs, entropy, values,
        torch.from_numpy(returns).flatten().to(device), torch.from_numpy(advantages).flatten().to(device),
        value_coef, entropy_coef,
    )
    loss.total.backward()
    return loss.total.item(), loss.policy.item(), loss.value.item(), loss.entropy.item()


def gradient_buffer(net: ActorCritic) -> torch.Tensor:
    """One flat buffer of which every parameter's .grad is a view, in net.params order (made on the
    first call, and again if the views were lost, as in a copy of the network): the gradient is
    zeroed, measured and clipped in one operation each, where a small network's dozen tensors would
    each cost torch's fixed overhead per operation (benchmarks/results/update-cost.md). Backward
    accumulates into the views in place."""
    params = net.params
    flat = getattr(net, "_gradient_buffer", None)
    first = params[0].grad
    if flat is None or first is None or first.data_ptr() != flat.data_ptr():
        flat = torch.zeros(net.param_slices[-1].stop, device=net.device)
        for p, place in zip(params, net.param_slices, strict=True):
            p.grad = flat[place].view_as(p)
        net._gradient_buffer = flat
    return flat


def clip_by_norm(flat: torch.Tensor, max_norm: float) -> torch.Tensor:
    """The gradient's norm, before the gradient (the flat buffer) is scaled in place to at most
    max_norm, as torch.nn.utils.clip_grad_norm_ scales it; max_norm 0 leaves it as it is."""
    norm = torch.linalg.vector_norm(flat)
    if max_norm > 0:
        flat.mul_((max_norm / (norm + 1e-6)).clamp_(max=1.0))
    return norm


def normalized(advantages: np.ndarray) -> np.ndarray:
    """Advantages scaled to mean 0 and standard deviation 1 (unchanged but centred for one value)."""
    centred = advantages - advantages.mean()
    if advantages.size < 2:
        return centred
    return centred / (advantages.std() + 1e-8)
