"""The packed NumPy network: the network's values, the heads' sampling rules and autograd's gradients,
where it applies."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from a3c.api import NETWORK_OPTIONS
from a3c.core.acting import NetworkActing, acting_for
from a3c.core.gradients import compute_gradients
from a3c.core.losses import actor_critic_loss
from a3c.core.networks import ActorCritic, NetworkSpec
from a3c.core.packed import LARGEST_PRODUCT, PackedMLP, packed_mlp
from a3c.core.rollout import RolloutCollector
from a3c.envs.make import SerialEnvs, make_env, make_training_envs
from a3c.presets import build_config

VECTOR = gym.spaces.Box(-5, 5, (6,), np.float32)
ACTIONS = {"discrete": gym.spaces.Discrete(3), "box": gym.spaces.Box(-2, 2, (2,), np.float32)}

LAYOUTS = [  # what a spec can ask of the layers around the heads
    dict(shared_torso=False),
    dict(shared_torso=True),
    dict(shared_torso=False, hidden_sizes=()),
    dict(shared_torso=True, policy_sizes=(8,), value_sizes=(5,)),
    dict(shared_torso=False, policy_sizes=(7, 3), value_sizes=(4, 9), head_activation="relu"),
    dict(shared_torso=False, activation="relu", obs_norm=False),
    dict(shared_torso=True, hidden_sizes=(), policy_sizes=(8,), value_sizes=(8,), head_activation="relu"),
]


def network(action: str, seed: int = 0, **options) -> ActorCritic:
    torch.manual_seed(seed)
    options = {"obs_norm": True, "hidden_sizes": (16, 12), **options}
    net = ActorCritic(NetworkSpec.from_spaces(VECTOR, ACTIONS[action], **options))
    if net.normalizer is not None:  # statistics that move the observations a good way
        net.normalizer.update(torch.randn(50, 6) * 3 + 1)
    return net


def observations(batch: int = 4, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-5, 5, (batch, 6)).astype(np.float32)


@pytest.mark.parametrize("options", LAYOUTS)
@pytest.mark.parametrize("action", ["discrete", "box", "sde"])
def test_packed_values_and_samples_are_the_networks(action, options):
    net = network("box" if action == "sde" else action, use_sde=action == "sde", **options)
    packed = packed_mlp(net, batch=4)
    assert isinstance(packed, PackedMLP)
    packed.start(steps=3)
    obs = observations()
    with torch.no_grad():
        params, values, _ = net(torch.from_numpy(obs))
    for t in range(3):
        actions, v, _ = packed.act(obs, None, None)
        np.testing.assert_allclose(v, values.numpy(), rtol=1e-5, atol=1e-5)
        if action == "discrete":  # Gumbel-max with the noise drawn for step t
            np.testing.assert_array_equal(actions, np.argmax(params.numpy() + packed.noise[t], -1))
            assert actions.dtype == np.int64
        elif action == "box":
            mean, variance = (p.numpy() for p in params)
            expected = mean + np.sqrt(variance) * packed.noise[t]
            np.testing.assert_allclose(actions, expected, rtol=1e-5, atol=1e-5)
        else:  # gSDE: the mean plus the latent times each env's noise matrix of this rollout
            mean, latent = params
            expected = mean + torch.bmm(latent.unsqueeze(1), net.policy.noise).squeeze(1)
            np.testing.assert_allclose(actions, expected.numpy(), rtol=1e-5, atol=1e-5)
        if action != "discrete":
            assert actions.dtype == np.float32 and actions.shape == (4, 2)
    np.testing.assert_allclose(packed.value(obs, None), values.numpy(), rtol=1e-5, atol=1e-5)


def test_the_noise_is_torchs_drawn_once_per_rollout():
    net = network("discrete")
    packed = packed_mlp(net, batch=4)
    torch.manual_seed(7)
    packed.start(steps=5)
    torch.manual_seed(7)
    np.testing.assert_array_equal(packed.noise, -torch.empty(5, 4, 3).exponential_().log())
    assert packed.noise.shape == (5, 4, 3)


def test_start_takes_the_weights_and_statistics_as_they_are_then():
    net = network("discrete")
    packed = packed_mlp(net, batch=4)
    obs = observations()
    packed.start(steps=1)
    before = packed.value(obs, None).copy()
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.1)
    net.normalizer.update(torch.randn(50, 6) * 2)
    np.testing.assert_array_equal(packed.value(obs, None), before)  # held for the rollout
    packed.start(steps=1)
    with torch.no_grad():
        expected = net.value(torch.from_numpy(obs)).numpy()
    np.testing.assert_allclose(packed.value(obs, None), expected, rtol=1e-5, atol=1e-5)
    assert not np.allclose(expected, before)


@pytest.mark.parametrize("action, options, why", [
    ("discrete", dict(core="lstm"), "a recurrent core"),
    ("discrete", dict(activation="gelu"), "an activation computed through torch"),
    ("discrete", dict(shared_torso=True, policy_sizes=(8,)), "a policy side deeper than the value side"),
    ("discrete", dict(shared_torso=False, policy_sizes=(8,), value_sizes=(8,), head_activation="gelu"),
     "heads' layers with an activation computed through torch"),
])
def test_networks_it_does_not_compute_act_through_torch(action, options, why):
    assert isinstance(acting_for(network(action, **options), 4), NetworkActing), why


def test_multi_discrete_actions_and_image_observations_act_through_torch():
    torch.manual_seed(0)
    multi = ActorCritic(NetworkSpec.from_spaces(VECTOR, gym.spaces.MultiDiscrete([2, 3])))
    image = ActorCritic(NetworkSpec.from_spaces(gym.spaces.Box(0, 255, (36, 36, 1), np.uint8),
                                                gym.spaces.Discrete(2), torso="nature-conv"))
    assert isinstance(acting_for(multi, 4), NetworkActing)
    assert isinstance(acting_for(image, 4), NetworkActing)


def test_layers_too_large_for_one_blas_thread_act_through_torch():
    net = network("discrete", hidden_sizes=(64, 64), shared_torso=False)
    largest = 128 * 128  # the second packed layer: both sides' 64-wide layers, block-diagonal
    fits = LARGEST_PRODUCT // largest
    assert isinstance(acting_for(net, fits), PackedMLP)
    assert isinstance(acting_for(net, fits + 1), NetworkActing)


def test_a_rollout_acted_packed_is_the_network_s_rollout():
    """A collector's rollout: the values recorded are V(s) of the observations recorded, the
    bootstrap V(s_T) of the observation after the last step, and every action one the env took."""
    torch.manual_seed(0)
    envs = SerialEnvs([make_env("CartPole-v1") for _ in range(3)])
    net = ActorCritic(NetworkSpec.from_spaces(envs.single_observation_space, envs.single_action_space,
                                              shared_torso=False, obs_norm=True))
    collector = RolloutCollector(envs, 6, seed=0)
    assert isinstance(collector._acting(net), PackedMLP)
    rollout = collector.collect(net)
    with torch.no_grad():
        values = net.value(torch.from_numpy(rollout.obs.reshape(-1, 4))).reshape(6, 3).numpy()
        bootstrap = net.value(torch.from_numpy(collector.obs)).numpy()
    np.testing.assert_allclose(rollout.values, values, rtol=1e-5, atol=1e-5)
    ended = rollout.terminated[-1] | rollout.truncated[-1]
    np.testing.assert_allclose(rollout.next_values[-1][~ended], bootstrap[~ended], rtol=1e-5, atol=1e-5)
    assert set(np.unique(rollout.actions)) <= {0, 1}
    envs.close()


@pytest.mark.parametrize("options", LAYOUTS)
@pytest.mark.parametrize("action", ["discrete", "box", "sde"])
def test_packed_gradients_are_autograds(action, options):
    net = network("box" if action == "sde" else action, use_sde=action == "sde", **options)
    T, N = 5, 4
    rng = np.random.default_rng(3)
    obs = rng.uniform(-5, 5, (T, N, 6)).astype(np.float32)
    actions = (rng.integers(0, 3, (T, N)) if action == "discrete"
               else rng.normal(size=(T, N, 2)).astype(np.float32))
    returns, advantages = rng.normal(size=(2, T, N)).astype(np.float32)
    packed = packed_mlp(net, N)
    packed.start(T)
    grad = np.zeros(sum(p.numel() for p in net.params), dtype=np.float32)
    total, policy, value, entropy = packed.gradients(obs, actions, returns, advantages, 0.5, 0.03, grad)
    logp, ent, values = net.evaluate_actions(torch.from_numpy(obs), torch.from_numpy(actions), None,
                                             torch.zeros(T, N, dtype=torch.bool))
    loss = actor_critic_loss(logp, ent, values, torch.from_numpy(returns).flatten(),
                             torch.from_numpy(advantages).flatten(), 0.5, 0.03)
    expected = torch.cat([g.flatten() for g in torch.autograd.grad(loss.total, net.params)]).numpy()
    np.testing.assert_allclose(grad, expected, rtol=1e-4, atol=1e-6)
    assert np.abs(expected).max() > 1e-3  # a gradient worth comparing
    expected_losses = (loss.total, loss.policy, loss.value, loss.entropy)
    for ours, theirs in zip((total, policy, value, entropy), expected_losses, strict=True):
        assert ours == pytest.approx(theirs.item(), rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("action", ["discrete", "sde"])
def test_an_update_from_a_packed_rollout_is_the_one_autograd_computes(action):
    """compute_gradients through the packed network and through autograd: the clipped gradient and
    the statistics the same either way."""
    env_id = "CartPole-v1" if action == "discrete" else "Pendulum-v1"
    config = build_config(env_id, workers=1, n_envs=3, n_steps=6, entropy_coef=0.02, max_grad_norm=0.3)
    envs = make_training_envs(config, seed=0)
    torch.manual_seed(0)
    net = ActorCritic(NetworkSpec.from_spaces(envs.single_observation_space, envs.single_action_space,
                                              **{name: getattr(config, name) for name in NETWORK_OPTIONS}))
    collector = RolloutCollector(envs, config.n_steps, seed=0)
    for _ in range(3):
        rollout = collector.collect(net)
        collector.update_statistics(net, config.gamma)
    assert isinstance(rollout.packed, PackedMLP)
    packed_stats = compute_gradients(net, rollout, config)
    packed_grads = [p.grad.clone() for p in net.params]
    rollout.packed = None
    stats = compute_gradients(net, rollout, config)
    for ours, theirs in zip(packed_grads, (p.grad for p in net.params), strict=True):
        torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-6)
    for name in ("total_loss", "policy_loss", "value_loss", "entropy", "grad_norm"):
        assert getattr(packed_stats, name) == pytest.approx(getattr(stats, name), rel=1e-5, abs=1e-6), name
    envs.close()
