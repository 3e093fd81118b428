"""The conv torso's replay: learning from the acting passes' outputs gives what running it again gives."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from a3c.config import Config
from a3c.core.gradients import compute_gradients
from a3c.core.networks import ActorCritic, NetworkSpec
from a3c.core.rollout import RolloutCollector
from a3c.core.torsos import Trace
from a3c.envs.make import make_training_envs

T, N = 5, 3


def assert_same_up_to_rounding(actual: torch.Tensor, expected: torch.Tensor) -> None:
    """Equal but for float32 rounding: sums may be taken in another order at another batch size."""
    scale = expected.abs().max().item()
    assert (actual - expected).abs().max().item() <= 1e-4 * scale + 1e-7, (actual - expected).abs().max()


def _spec(shape: tuple[int, ...], **options) -> NetworkSpec:
    obs = gym.spaces.Box(0, 255, shape, np.uint8)
    return NetworkSpec.from_spaces(obs, gym.spaces.Discrete(6), **options)


def _losses_and_grads(net: ActorCritic, obs: torch.Tensor, actions: torch.Tensor, trace):
    net.zero_grad()
    state = net.initial_state(N)
    resets = torch.zeros(T, N, dtype=torch.bool)
    resets[3, 1] = True  # an episode ended there: the LSTM's state starts afresh
    logp, entropy, values = net.evaluate_actions(obs, actions, state, resets, trace)
    (logp.sum() + 0.1 * entropy.sum() + (values ** 2).sum()).backward()
    return [logp, entropy, values], [p.grad.clone() for p in net.params]


@pytest.mark.parametrize("options", [
    dict(torso="a3c-conv"),
    dict(torso="nature-conv"),
    dict(torso="a3c-conv", conv_activation="tanh"),
    dict(torso="a3c-conv", core="lstm", core_size=32),
    dict(torso="a3c-conv", conv_hidden=64, policy_sizes=(32,), value_sizes=(16,)),
], ids=["a3c-conv", "nature-conv", "tanh", "lstm", "head-layers"])
@pytest.mark.parametrize("shape", [(4, 84, 84), (84, 84, 4)], ids=["CHW", "HWC"])
def test_replayed_learning_pass_matches_running_the_torso_again(options, shape):
    torch.manual_seed(0)
    net = ActorCritic(_spec(shape, **options))
    assert net.replays_torso
    obs = torch.randint(0, 256, (T, N, *shape), dtype=torch.uint8)
    trace, state, actions = Trace(), net.initial_state(N), []
    with torch.no_grad():
        for t in range(T):  # the collector's acting passes, one batch of N per step
            action, _, state = net.act(obs[t], state, trace=trace)
            actions.append(action)
    actions = torch.stack(actions)
    assert len(trace) == T
    outputs, grads = _losses_and_grads(net, obs, actions, None)
    replayed, replayed_grads = _losses_and_grads(net, obs, actions, trace)
    for a, b in zip([*outputs, *grads], [*replayed, *replayed_grads], strict=True):
        assert_same_up_to_rounding(b, a)


def _acting(net: ActorCritic, obs: torch.Tensor) -> tuple[Trace, torch.Tensor]:
    trace, state, actions = Trace(), net.initial_state(N), []
    with torch.no_grad():
        for t in range(T):
            action, _, state = net.act(obs[t], state, trace=trace)
            actions.append(action)
    return trace, torch.stack(actions)


@pytest.mark.parametrize("options", [
    dict(torso="a3c-conv"), dict(torso="nature-conv"), dict(torso="a3c-conv", core="lstm", core_size=32),
], ids=["a3c-conv", "nature-conv", "lstm"])
@pytest.mark.parametrize("shape", [(4, 84, 84), (84, 84, 4)], ids=["CHW", "HWC"])
def test_a_bfloat16_torso_s_gradients_are_float32_ones_but_for_its_rounding(options, shape):
    """Each parameter's gradient points where float32's does and is as long (a wrong scale or cast
    on the way back to the float32 parameters would not be), and replayed or run again, bfloat16
    gives the same."""
    torch.manual_seed(0)
    exact = ActorCritic(_spec(shape, **options))
    low = ActorCritic(_spec(shape, conv_precision="bfloat16", **options))
    low.load_state_dict(exact.state_dict())
    obs = torch.randint(0, 256, (T, N, *shape), dtype=torch.uint8)
    trace, actions = _acting(low, obs)
    outputs, grads = _losses_and_grads(exact, obs, actions, None)
    replayed, replayed_grads = _losses_and_grads(low, obs, actions, trace if low.replays_torso else None)
    again, again_grads = _losses_and_grads(low, obs, actions, None)
    for g, expected in zip(replayed_grads, grads, strict=True):
        assert g.dtype == torch.float32
        assert torch.nn.functional.cosine_similarity(g.flatten(), expected.flatten(), dim=0) > 0.99
        assert g.norm() == pytest.approx(expected.norm().item(), rel=0.05)
    for a, b in zip(replayed, outputs, strict=True):
        assert (a - b).abs().max() <= 0.05 * b.abs().max()
    for a, b in zip([*replayed, *replayed_grads], [*again, *again_grads], strict=True):
        assert (a - b).abs().max() <= 0.05 * b.abs().max()


def test_a_bfloat16_torso_casts_its_weights_once_per_rollout_and_anew_for_the_next():
    torch.manual_seed(0)
    net = ActorCritic(_spec((4, 84, 84), conv_precision="bfloat16"))
    torso, obs = net.torso, torch.randint(0, 256, (N, 4, 84, 84), dtype=torch.uint8)
    trace = Trace()
    with torch.no_grad():
        torso(obs, trace)
        cast = trace.layers
        torso(obs, trace)
        assert trace.layers is cast and all(layer.weight.dtype == torch.bfloat16 for layer in cast)
        before = torso(obs)
        torch._foreach_copy_(list(torso.parameters()), [p * 0.5 for p in torso.parameters()])  # as a pull
        assert torch.equal(torso(obs, Trace()), torso(obs))  # the next rollout's cast: the new weights
        assert not torch.equal(torso(obs), before)
        assert torch.equal(torso(obs, trace), before)  # this rollout's own cast, for its replay


def test_only_a_shared_built_in_conv_torso_is_replayed():
    assert not ActorCritic(_spec((4, 84, 84), torso="a3c-conv", shared_torso=False)).replays_torso
    assert not ActorCritic(_spec((4, 84, 84), torso="mlp")).replays_torso
    box = NetworkSpec.from_spaces(gym.spaces.Box(-1, 1, (4,)), gym.spaces.Discrete(2))
    assert not ActorCritic(box).replays_torso


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_a_pong_update_from_the_rollouts_trace_has_the_gradient_of_one_without(precision):
    """A real rollout of 8 Pong games (ale-py), collected as a worker does; the update's gradient
    with the trace the collector kept equals the one that runs the torso again."""
    pytest.importorskip("ale_py")
    config = Config(env_id="PongNoFrameskip-v4", n_envs=8, n_steps=5, vec_env="ale", seed=3,
                    conv_precision=precision)
    envs = make_training_envs(config, seed=3)
    try:
        collector = RolloutCollector(envs, config.n_steps, seed=3)
        net = ActorCritic(NetworkSpec.from_spaces(envs.single_observation_space, envs.single_action_space,
                                                  conv_precision=precision))
        assert net.replays_torso
        for _ in range(4):
            rollout = collector.collect(net)
        assert rollout.trace is not None and len(rollout.trace) == config.n_steps
        replayed = compute_gradients(net, rollout, config)
        replayed_grads = [p.grad.clone() for p in net.params]
        rollout.trace = None
        again = compute_gradients(net, rollout, config)
    finally:
        envs.close()
    if precision == "float32":
        assert replayed.total_loss == pytest.approx(again.total_loss, rel=1e-5)
        for a, b in zip((p.grad for p in net.params), replayed_grads, strict=True):
            assert_same_up_to_rounding(b, a)
    else:  # the same arithmetic in another order, each sum rounded to bfloat16's 8 bits
        assert replayed.total_loss == pytest.approx(again.total_loss, rel=1e-2)
        for a, b in zip((p.grad for p in net.params), replayed_grads, strict=True):
            assert (a - b).abs().max() <= 0.05 * a.abs().max()
