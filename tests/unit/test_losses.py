"""The actor-critic loss against numbers worked out by hand, and where its gradients go."""

import pytest
import torch

from a3c.core.losses import actor_critic_loss


def test_loss_terms_by_hand():
    logprobs = torch.tensor([-1.0, -2.0])
    entropy = torch.tensor([0.5, 1.5])
    values = torch.tensor([1.0, 2.0])
    returns = torch.tensor([2.0, 1.0])
    advantages = torch.tensor([1.0, -1.0])
    loss = actor_critic_loss(logprobs, entropy, values, returns, advantages,
                             value_coef=0.5, entropy_coef=0.1)
    # policy  = -mean(logp * A) = -mean(-1 * 1, -2 * -1) = -mean(-1, 2) = -0.5
    # value   = mean((R - V)^2) = mean(1, 1) = 1
    # entropy = mean(0.5, 1.5) = 1
    # total   = policy - 0.1 * entropy + 0.5 * value = -0.5 - 0.1 + 0.5 = -0.1
    assert loss.policy.item() == pytest.approx(-0.5)
    assert loss.value.item() == pytest.approx(1.0)
    assert loss.entropy.item() == pytest.approx(1.0)
    assert loss.total.item() == pytest.approx(-0.1)


def test_gradients_by_hand():
    logprobs = torch.tensor([-1.0, -2.0], requires_grad=True)
    entropy = torch.tensor([0.5, 1.5], requires_grad=True)
    values = torch.tensor([1.0, 2.0], requires_grad=True)
    returns = torch.tensor([2.0, 1.0])
    loss = actor_critic_loss(logprobs, entropy, values, returns, returns - values,
                             value_coef=0.5, entropy_coef=0.1)
    loss.total.backward()
    # d total / d logp_i = -A_i / N            = [-0.5, 0.5]
    # d total / d H_i    = -c_e / N            = -0.05
    # d total / d V_i    = c_v * -2 (R_i - V_i) / N = 0.5 * -2 * [1, -1] / 2 = [-0.5, 0.5]
    #                      (nothing from the policy term: the advantage is detached)
    torch.testing.assert_close(logprobs.grad, torch.tensor([-0.5, 0.5]))
    torch.testing.assert_close(entropy.grad, torch.tensor([-0.05, -0.05]))
    torch.testing.assert_close(values.grad, torch.tensor([-0.5, 0.5]))


def test_policy_term_does_not_reach_the_values_through_the_advantage():
    values = torch.tensor([1.0, 2.0, -3.0], requires_grad=True)
    returns = torch.tensor([2.0, 1.0, 0.0])
    logprobs = torch.tensor([-1.0, -2.0, -0.5], requires_grad=True)
    loss = actor_critic_loss(logprobs, torch.zeros(3), values, returns, returns - values,
                             value_coef=0.5, entropy_coef=0.0)
    (v_grad,) = torch.autograd.grad(loss.policy, values, allow_unused=True)
    assert v_grad is None or torch.count_nonzero(v_grad) == 0
    # ...while the policy term does depend on the log-probabilities, so the check above means something
    (lp_grad,) = torch.autograd.grad(loss.policy, logprobs)
    assert torch.count_nonzero(lp_grad) == 3
