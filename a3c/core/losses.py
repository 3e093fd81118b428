"""The A3C actor-critic loss (Mnih et al. 2016, Algorithm S3), as a pure function of tensors."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor


@dataclass
class LossTerms:
    total: Tensor
    policy: Tensor
    value: Tensor
    entropy: Tensor


def actor_critic_loss(
    logprobs: Tensor,
    entropy: Tensor,
    values: Tensor,
    returns: Tensor,
    advantages: Tensor,
    value_coef: float,
    entropy_coef: float,
) -> LossTerms:
    """-log pi(a|s) * A - c_e * H(pi) + c_v * (R - V)^2, averaged over the batch.

    The paper sums over t; the mean only rescales the learning rate and keeps it independent of T.
    Advantages are detached: the policy term must not push gradients into the critic.
    """
    policy_loss = -(logprobs * advantages.detach()).mean()
    value_loss = (returns - values).pow(2).mean()
    mean_entropy = entropy.mean()
    total = policy_loss - entropy_coef * mean_entropy + value_coef * value_loss
    return LossTerms(total=total, policy=policy_loss, value=value_loss, entropy=mean_entropy)
