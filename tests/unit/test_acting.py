"""The packed NumPy acting pass: the network's values and the heads' sampling rules, where it applies."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from a3c.core.acting import SINGLE_THREADED_PRODUCT, NetworkActing, PackedActing, acting_for, packed_acting
from a3c.core.networks import ActorCritic, NetworkSpec
from a3c.core.rollout import RolloutCollector
from a3c.envs.make import SerialEnvs, make_env

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
    packed = packed_acting(net, batch=4)
    assert isinstance(packed, PackedActing)
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
    packed = packed_acting(net, batch=4)
    torch.manual_seed(7)
    packed.start(steps=5)
    torch.manual_seed(7)
    np.testing.assert_array_equal(packed.noise, -torch.empty(5, 4, 3).exponential_().log())
    assert packed.noise.shape == (5, 4, 3)


def test_start_takes_the_weights_and_statistics_as_they_are_then():
    net = network("discrete")
    packed = packed_acting(net, batch=4)
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
    fits = SINGLE_THREADED_PRODUCT // largest
    assert isinstance(acting_for(net, fits), PackedActing)
    assert isinstance(acting_for(net, fits + 1), NetworkActing)


def test_a_rollout_acted_packed_is_the_network_s_rollout():
    """A collector's rollout: the values recorded are V(s) of the observations recorded, the
    bootstrap V(s_T) of the observation after the last step, and every action one the env took."""
    torch.manual_seed(0)
    envs = SerialEnvs([make_env("CartPole-v1") for _ in range(3)])
    net = ActorCritic(NetworkSpec.from_spaces(envs.single_observation_space, envs.single_action_space,
                                              shared_torso=False, obs_norm=True))
    collector = RolloutCollector(envs, 6, seed=0)
    assert isinstance(collector._acting(net), PackedActing)
    rollout = collector.collect(net)
    with torch.no_grad():
        values = net.value(torch.from_numpy(rollout.obs.reshape(-1, 4))).reshape(6, 3).numpy()
        bootstrap = net.value(torch.from_numpy(collector.obs)).numpy()
    np.testing.assert_allclose(rollout.values, values, rtol=1e-5, atol=1e-5)
    ended = rollout.terminated[-1] | rollout.truncated[-1]
    np.testing.assert_allclose(rollout.next_values[-1][~ended], bootstrap[~ended], rtol=1e-5, atol=1e-5)
    assert set(np.unique(rollout.actions)) <= {0, 1}
    envs.close()
