"""Actor-critic networks: shapes for every supported space, and distributions that match torch's."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch.distributions import Categorical, Normal

from a3c.core.heads import CategoricalHead, GaussianHead, StateDependentNoiseHead
from a3c.core.networks import ActorCritic, NetworkSpec
from a3c.errors import ConfigError

DISCRETE = (gym.spaces.Box(-1, 1, (4,), np.float32), gym.spaces.Discrete(3))
BOX = (gym.spaces.Box(-1, 1, (5,), np.float32), gym.spaces.Box(-2, 2, (2,), np.float32))


def evaluate_flat(net, obs, actions):
    """evaluate_actions on a batch of B observations, as one rollout step of B envs."""
    return net.evaluate_actions(obs[None], actions[None], None, torch.zeros(1, len(obs), dtype=torch.bool))


def make_net(spaces, shared=True, hidden=(16, 8), seed=0):
    torch.manual_seed(seed)
    return ActorCritic(NetworkSpec.from_spaces(*spaces, hidden_sizes=hidden, shared_torso=shared))


def test_spec_from_spaces():
    assert NetworkSpec.from_spaces(*DISCRETE) == NetworkSpec(4, "discrete", 3)
    spec = NetworkSpec.from_spaces(*BOX, hidden_sizes=(7,), activation="relu", shared_torso=False)
    assert spec == NetworkSpec(5, "box", 2, (7,), "relu", False)
    assert NetworkSpec.from_dict(spec.to_dict()) == spec


@pytest.mark.parametrize("shared", [True, False])
def test_discrete_shapes(shared):
    net = make_net(DISCRETE, shared)
    obs = torch.randn(6, 4)
    logits, value, _ = net(obs)
    assert logits.shape == (6, 3) and value.shape == (6,)
    with torch.no_grad():
        actions, v, _ = net.act(obs)
    assert actions.shape == (6,) and v.shape == (6,)
    assert actions.dtype == torch.int64 and ((actions >= 0) & (actions < 3)).all()
    logp, entropy, v2 = evaluate_flat(net, obs, actions)
    assert logp.shape == entropy.shape == v2.shape == (6,)


@pytest.mark.parametrize("shared", [True, False])
def test_gaussian_shapes(shared):
    net = make_net(BOX, shared)
    obs = torch.randn(6, 5)
    (mean, variance), value, _ = net(obs)
    assert mean.shape == variance.shape == (6, 2) and value.shape == (6,)
    assert (variance > 0).all()
    with torch.no_grad():
        actions, v, _ = net.act(obs)
    assert actions.shape == (6, 2) and actions.dtype == torch.float32 and v.shape == (6,)
    logp, entropy, v2 = evaluate_flat(net, obs, actions)
    assert logp.shape == entropy.shape == v2.shape == (6,)


def grad_reaches(loss, params):
    grads = torch.autograd.grad(loss, list(params), allow_unused=True, retain_graph=True)
    return any(g is not None and torch.count_nonzero(g) > 0 for g in grads)


def test_shared_torso_feeds_both_heads_separate_torsos_do_not():
    obs = torch.randn(5, 4)
    shared = make_net(DISCRETE, shared=True)
    assert shared.value_torso is None
    logits, value, _ = shared(obs)
    assert grad_reaches(value.sum(), shared.torso.parameters())
    assert grad_reaches(logits.sum(), shared.torso.parameters())

    separate = make_net(DISCRETE, shared=False)
    assert separate.value_torso is not None
    logits, value, _ = separate(obs)
    assert grad_reaches(value.sum(), separate.value_torso.parameters())
    assert not grad_reaches(value.sum(), separate.torso.parameters())
    assert not grad_reaches(logits.sum(), separate.value_torso.parameters())
    assert grad_reaches(logits.sum(), separate.torso.parameters())


def test_categorical_log_prob_and_entropy_match_torch():
    torch.manual_seed(1)
    logits = torch.randn(7, 4) * 3
    actions = torch.randint(0, 4, (7,))
    logp, entropy = CategoricalHead.log_prob_entropy(logits, actions)
    dist = Categorical(logits=logits)
    torch.testing.assert_close(logp, dist.log_prob(actions))
    torch.testing.assert_close(entropy, dist.entropy())


def test_gaussian_log_prob_and_entropy_match_torch_normal_with_that_variance():
    torch.manual_seed(2)
    mean = torch.randn(7, 3)
    variance = torch.rand(7, 3) * 4 + 0.01
    actions = torch.randn(7, 3) * 2
    logp, entropy = GaussianHead.log_prob_entropy((mean, variance), actions)
    dist = Normal(mean, variance.sqrt())  # Normal takes the standard deviation
    torch.testing.assert_close(logp, dist.log_prob(actions).sum(-1))
    torch.testing.assert_close(entropy, dist.entropy().sum(-1))


def test_deterministic_act_gives_the_mode():
    obs = torch.randn(9, 4)
    net = make_net(DISCRETE)
    with torch.no_grad():
        net.policy.linear.bias.copy_(torch.tensor([0.0, 0.3, -0.3]))  # break near-ties of the init
        actions, _, _ = net.act(obs, deterministic=True)
        logits, _, _ = net(obs)
    torch.testing.assert_close(actions, logits.argmax(-1))

    net = make_net(BOX)
    obs = torch.randn(9, 5)
    with torch.no_grad():
        actions, _, _ = net.act(obs, deterministic=True)
        (mean, _), _, _ = net(obs)
    torch.testing.assert_close(actions, mean)


def test_sampling_follows_the_distribution():
    torch.manual_seed(3)
    logits = torch.log(torch.tensor([[0.1, 0.2, 0.7]])).expand(20_000, 3)
    counts = torch.bincount(CategoricalHead.sample(logits, deterministic=False), minlength=3)
    np.testing.assert_allclose(counts.numpy() / 20_000, [0.1, 0.2, 0.7], atol=0.015)

    mean = torch.tensor([[1.0, -2.0]]).expand(20_000, 2)
    variance = torch.tensor([[0.25, 4.0]]).expand(20_000, 2)
    samples = GaussianHead.sample((mean, variance), deterministic=False)
    np.testing.assert_allclose(samples.mean(0).numpy(), [1.0, -2.0], atol=0.05)
    np.testing.assert_allclose(samples.var(0).numpy(), [0.25, 4.0], rtol=0.05)


def sde_net(seed=0, log_std_init=-1.0):
    torch.manual_seed(seed)
    spec = NetworkSpec.from_spaces(*BOX, hidden_sizes=(8,), shared_torso=False, use_sde=True,
                                   log_std_init=log_std_init)
    return ActorCritic(spec)


def test_sde_variance_is_the_squared_latent_times_sigma_squared_by_hand():
    head = StateDependentNoiseHead(2, 1, log_std_init=0.0)
    with torch.no_grad():
        head.log_std.copy_(torch.log(torch.tensor([[0.5], [2.0]])))  # sigma = 0.5 and 2
    latent = torch.tensor([[1.0, 0.5], [0.0, -1.0]])
    mean, _ = head(latent)
    variance = head.variance(latent)
    # 1 * 0.25 + 0.25 * 4 = 1.25; 0 * 0.25 + 1 * 4 = 4
    torch.testing.assert_close(variance, torch.tensor([[1.25], [4.0]]) + head.min_variance)
    actions = torch.tensor([[0.3], [-1.0]])
    logp, entropy = head.log_prob_entropy((mean, latent), actions)
    dist = Normal(mean, variance.sqrt())
    torch.testing.assert_close(logp, dist.log_prob(actions).sum(-1))
    torch.testing.assert_close(entropy, dist.entropy().sum(-1))


def test_sde_noise_is_a_function_of_the_state_until_the_next_rollout():
    net = sde_net()
    obs = torch.randn(4, 5)
    net.resample_noise(4)
    with torch.no_grad():
        first, _, _ = net.act(obs)
        again, _, _ = net.act(obs)
        (mean, _), _, _ = net(obs)
        greedy, _, _ = net.act(obs, deterministic=True)
        net.resample_noise(4)
        next_rollout, _, _ = net.act(obs)
    torch.testing.assert_close(first, again)  # the same state, the same push, within a rollout
    torch.testing.assert_close(greedy, mean)
    assert not torch.equal(first, mean) and not torch.equal(next_rollout, first)


def test_sde_actions_follow_the_gaussian_their_log_probability_assumes():
    net = sde_net(log_std_init=-0.5)
    obs = torch.randn(1, 5).expand(20_000, 5)  # one state, a fresh noise matrix per row
    net.resample_noise(20_000)
    with torch.no_grad():
        actions, _, _ = net.act(obs)
        (mean, latent), _, _ = net(obs[:1])
        variance = net.policy.variance(latent)
    np.testing.assert_allclose(actions.mean(0).numpy(), mean[0].numpy(), atol=0.02)
    np.testing.assert_allclose(actions.var(0).numpy(), variance[0].numpy(), rtol=0.05)


def test_sde_log_probability_trains_sigma_and_the_mean_not_the_latent_through_the_variance():
    net = sde_net()
    obs = torch.randn(6, 5)
    (mean, latent), _, _ = net(obs)
    variance = net.policy.variance(latent)
    assert grad_reaches(variance.sum(), [net.policy.log_std])
    assert not grad_reaches(variance.sum(), net.torso.parameters())
    assert grad_reaches(mean.sum(), net.torso.parameters())


def test_sde_needs_box_actions_and_round_trips_in_the_spec():
    with pytest.raises(ConfigError, match="use_sde"):
        NetworkSpec.from_spaces(*DISCRETE, use_sde=True)
    spec = NetworkSpec.from_spaces(*BOX, use_sde=True, log_std_init=-1.5)
    assert NetworkSpec.from_dict(spec.to_dict()) == spec
    older = {k: v for k, v in spec.to_dict().items() if k not in ("use_sde", "log_std_init")}
    assert NetworkSpec.from_dict(older).use_sde is False  # a checkpoint from before use_sde


@pytest.mark.parametrize("kind", ["a3c-conv", "nature-conv"])
@pytest.mark.parametrize("channels_last_images", [False, True])
def test_the_conv_torsos_learning_pass_in_channels_last_memory_gives_the_plain_convolutions_results(
        kind, channels_last_images):
    # With autograd the torso runs channels-last (faster weight gradients on the CPU); features and
    # gradients must be those of plain channel-first convolutions, and acting's must match too.
    from a3c.core.torsos import ConvTorso

    torch.manual_seed(0)
    shape = (84, 84, 4) if channels_last_images else (4, 84, 84)
    torso = ConvTorso(shape, kind, channels_last=channels_last_images)
    images = torch.randint(0, 256, (6, *shape), dtype=torch.uint8)

    def plain(x: torch.Tensor) -> torch.Tensor:
        h = x.permute(0, 3, 1, 2).contiguous() if channels_last_images else x
        h = h.float() / 255
        for conv in torso.convs:
            h = torch.relu(conv(h))
        return torch.relu(torso.hidden(h.flatten(1)))

    features, expected = torso(images), plain(images)
    with torch.no_grad():
        acting = torso(images)
    torch.testing.assert_close(features, expected, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(acting, expected, rtol=1e-4, atol=1e-5)
    weights = torch.randn_like(expected)
    grads = torch.autograd.grad((features * weights).sum(), list(torso.parameters()))
    expected_grads = torch.autograd.grad((expected * weights).sum(), list(torso.parameters()))
    for grad, want in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(grad, want, rtol=1e-4, atol=1e-5)


def _orthogonal_with_gain(weight: torch.Tensor, gain: float) -> bool:
    """W W^T = gain^2 I (rows orthogonal) for a wide matrix, W^T W = gain^2 I for a tall one."""
    w = weight.detach().flatten(1)
    gram = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w
    return torch.allclose(gram, gain**2 * torch.eye(len(gram)), atol=1e-5 * max(1.0, gain**2))


def test_initial_weights_are_orthogonal_with_baselines_gains_and_zero_biases():
    net = make_net(DISCRETE, shared=False, hidden=(16, 8))  # tall 16x4, wide 8x16, heads 3x8 and 1x8
    for torso in (net.torso, net.value_torso):
        for layer in torso.layers:
            assert _orthogonal_with_gain(layer.weight, 2**0.5)
            assert not layer.bias.any()
    assert _orthogonal_with_gain(net.policy.linear.weight, 0.01) and not net.policy.linear.bias.any()
    assert _orthogonal_with_gain(net.value_head.weight, 1.0) and not net.value_head.bias.any()
    gaussian = make_net(BOX, hidden=(6,)).policy
    assert _orthogonal_with_gain(gaussian.mean.weight, 0.01)
    assert _orthogonal_with_gain(gaussian.variance.weight, 0.01)


def test_torch_default_init_gives_every_layer_pytorchs_uniform_init_instead():
    net = make_net(DISCRETE, shared=False, hidden=(16, 8))
    net.torch_default_init()
    layers = [*net.torso.layers, *net.value_torso.layers, net.policy.linear, net.value_head]
    for layer in layers:
        bound = layer.weight.shape[1] ** -0.5  # kaiming_uniform(a=sqrt(5)): U(-1/sqrt(fan_in), ...)
        assert layer.weight.abs().max() <= bound and layer.bias.abs().max() <= bound
        assert layer.bias.any()
    assert not _orthogonal_with_gain(net.policy.linear.weight, 0.01)
    assert not _orthogonal_with_gain(net.torso.layers[1].weight, 2**0.5)
    obs = torch.randn(5, 4)
    assert net(obs)[0].shape == (5, 3)  # the forward's references to the weights still hold


def test_config_ortho_init_false_trains_from_pytorchs_default_init():
    from a3c.api import A3C

    on = A3C("CartPole-v1", workers=1, verbose=0, hidden_sizes=(16, 16)).policy
    off = A3C("CartPole-v1", workers=1, verbose=0, hidden_sizes=(16, 16), ortho_init=False).policy
    assert _orthogonal_with_gain(on.policy.linear.weight, 0.01)
    assert off.policy.linear.bias.any() and not _orthogonal_with_gain(off.policy.linear.weight, 0.01)


@pytest.mark.parametrize("options", [dict(hidden_sizes=(64, 64), shared_torso=False), dict(torso="a3c-conv")],
                         ids=["mlp", "conv"])
def test_a_seed_builds_the_same_network_whatever_torch_s_thread_count(options):
    """Orthogonal init's QR rounds differently on 1 and 2 threads; the network is built on one, so a
    seed gives the same bits in a process whatever threads its caller set, and leaves them set."""
    shape = (4, 84, 84) if "torso" in options else (8,)
    spec = NetworkSpec.from_spaces(gym.spaces.Box(0, 255, shape, np.uint8 if len(shape) == 3 else np.float32),
                                   gym.spaces.Discrete(4), **options)
    before = torch.get_num_threads()
    built = {}
    try:
        for threads in (1, 2, 3):
            torch.set_num_threads(threads)
            torch.manual_seed(7)
            built[threads] = ActorCritic(spec).state_dict()
            assert torch.get_num_threads() == threads
    finally:
        torch.set_num_threads(before)
    for threads in (2, 3):
        for key, value in built[1].items():
            assert torch.equal(built[threads][key], value), f"{key} differs on {threads} threads"
