"""compute_gradients: the gradient in one flat buffer, clipped as torch's clip_grad_norm_ clips it."""

import pytest
import torch

from a3c.core.gradients import compute_gradients, gradient_buffer
from a3c.core.networks import ActorCritic, NetworkSpec
from a3c.core.rollout import RolloutCollector
from a3c.envs.make import make_training_envs
from a3c.presets import build_config


def learner(max_grad_norm: float, seed: int = 0):
    config = build_config("CartPole-v1", workers=1, n_envs=3, n_steps=6, max_grad_norm=max_grad_norm)
    envs = make_training_envs(config, seed=0)
    torch.manual_seed(seed)
    net = ActorCritic(NetworkSpec.from_spaces(envs.single_observation_space, envs.single_action_space,
                                              shared_torso=False, obs_norm=True))
    return config, net, RolloutCollector(envs, config.n_steps, seed=0)


@pytest.mark.parametrize("max_grad_norm", [0.05, 1e6])  # clipped; a bound the norm never reaches
def test_the_gradient_is_clipped_as_clip_grad_norm_clips_it(max_grad_norm):
    config, net, collector = learner(max_grad_norm)
    rollout = collector.collect(net)
    unclipped_config, reference, _ = learner(0.0)
    reference.load_state_dict(net.state_dict())
    stats = compute_gradients(net, rollout, config)
    compute_gradients(reference, rollout, unclipped_config)
    norm = torch.nn.utils.clip_grad_norm_(reference.params, max_grad_norm)
    assert stats.grad_norm == pytest.approx(norm.item(), rel=1e-5)
    for ours, theirs in zip(net.params, reference.params, strict=True):
        torch.testing.assert_close(ours.grad, theirs.grad, rtol=1e-5, atol=1e-8)
    clipped = torch.linalg.vector_norm(gradient_buffer(net)).item()
    assert clipped == pytest.approx(min(norm.item(), max_grad_norm), rel=1e-4)


def test_every_gradient_is_a_view_of_one_buffer_that_lasts_from_update_to_update():
    config, net, collector = learner(0.5)
    compute_gradients(net, collector.collect(net), config)
    flat = gradient_buffer(net)
    grads = [p.grad for p in net.params]
    assert sum(g.numel() for g in grads) == flat.numel()
    compute_gradients(net, collector.collect(net), config)
    assert gradient_buffer(net) is flat
    assert all(p.grad is g for p, g in zip(net.params, grads, strict=True))  # what Hogwild aliases
    torch.testing.assert_close(torch.cat([g.flatten() for g in grads]), flat)


def test_gradients_set_aside_are_given_a_buffer_again():
    config, net, collector = learner(0.5)
    rollout = collector.collect(net)
    first = compute_gradients(net, rollout, config)
    expected = gradient_buffer(net).clone()
    for p in net.params:
        p.grad = None  # as a copy of the network, or torch's zero_grad(set_to_none=True), leaves them
    again = compute_gradients(net, rollout, config)
    assert again.grad_norm == first.grad_norm
    torch.testing.assert_close(gradient_buffer(net), expected)
    assert all(p.grad is not None for p in net.params)
