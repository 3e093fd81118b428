"""Conv torsos, the LSTM core and observation statistics: shapes, dtypes, and the recomputation
of a rollout from its initial state equalling the step-by-step forward of collection."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from a3c.core.gradients import compute_gradients
from a3c.core.networks import ActorCritic, NetworkSpec
from a3c.core.normalization import ObsNormalizer, merge_moments
from a3c.core.rollout import RolloutCollector
from a3c.envs.make import SerialEnvs, make_env
from a3c.errors import CheckpointError, ConfigError
from a3c.presets import build_config

IMAGES = (gym.spaces.Box(0, 255, (4, 84, 84), np.uint8), gym.spaces.Discrete(6))
VECTORS = (gym.spaces.Box(-1, 1, (3,), np.float32), gym.spaces.Discrete(2))


@pytest.mark.parametrize("torso, hidden", [("a3c-conv", 256), ("nature-conv", 512)])
def test_conv_torsos_take_bytes_and_scale_them(torso, hidden):
    torch.manual_seed(0)
    net = ActorCritic(NetworkSpec.from_spaces(*IMAGES, torso=torso))
    assert net.spec.obs_shape == (4, 84, 84) and net.torso.out_dim == hidden
    frames = torch.randint(0, 256, (5, 4, 84, 84), dtype=torch.uint8)
    logits, value, _ = net(frames)
    assert logits.shape == (5, 6) and value.shape == (5,)
    as_floats, _, _ = net(frames.float() / 255.0)  # bytes are scaled to [0, 1] inside the torso
    torch.testing.assert_close(logits, as_floats)
    with torch.no_grad():
        actions, _, _ = net.act(frames[:1])
    assert actions.shape == (1,) and actions.dtype == torch.int64


def test_a3c_conv_is_the_papers():
    net = ActorCritic(NetworkSpec.from_spaces(*IMAGES, torso="a3c-conv"))
    convs = [(c.out_channels, c.kernel_size, c.stride) for c in net.torso.convs]
    assert convs == [(16, (8, 8), (4, 4)), (32, (4, 4), (2, 2))]
    assert net.torso.hidden.in_features == 32 * 9 * 9 and net.torso.hidden.out_features == 256


def test_auto_torso_and_clear_errors_for_mismatches():
    assert NetworkSpec.from_spaces(*IMAGES).torso == "a3c-conv"
    assert NetworkSpec.from_spaces(*VECTORS).torso == "mlp"
    flattened = ActorCritic(NetworkSpec.from_spaces(*IMAGES, torso="mlp", hidden_sizes=(8,)))
    assert flattened.torso.mlp.layers[0].in_features == 4 * 84 * 84  # images through the MLP, flattened
    tiny = (gym.spaces.Box(0, 255, (12, 12, 3), np.uint8), gym.spaces.Discrete(2))
    assert NetworkSpec.from_spaces(*tiny).torso == "mlp"  # auto: too small for the conv torso
    with pytest.raises(ConfigError, match="too small for the a3c-conv torso, which takes at least 20x20"):
        NetworkSpec.from_spaces(*tiny, torso="a3c-conv")
    with pytest.raises(ConfigError, match="choose torso mlp or auto"):
        NetworkSpec.from_spaces(*VECTORS, torso="nature-conv")
    with pytest.raises(ConfigError, match="shared_torso"):
        NetworkSpec.from_spaces(*VECTORS, core="lstm", shared_torso=False)


def test_spec_round_trip_and_format_1_specs_still_load():
    spec = NetworkSpec.from_spaces(*IMAGES, core="lstm", core_size=32)
    assert NetworkSpec.from_dict(spec.to_dict()) == spec
    old = {"obs_dim": 4, "action_kind": "discrete", "action_dim": 2, "hidden_sizes": [64, 64],
           "activation": "tanh", "shared_torso": False}  # a checkpoint of format version 1
    assert NetworkSpec.from_dict(old) == NetworkSpec(4, "discrete", 2, (64, 64), "tanh", False)
    with pytest.raises(CheckpointError):
        NetworkSpec.from_dict({**old, "core": "gru", "unknown": 1})


@pytest.mark.parametrize("spaces", [VECTORS, IMAGES])
def test_sequence_recompute_equals_step_by_step_forward(spaces):
    torch.manual_seed(0)
    net = ActorCritic(NetworkSpec.from_spaces(*spaces, core="lstm", core_size=16))
    T, N = 7, 3
    shape = spaces[0].shape
    if spaces[0].dtype == np.uint8:
        obs = torch.randint(0, 256, (T, N, *shape), dtype=torch.uint8)
    else:
        obs = torch.randn(T, N, *shape)
    actions = torch.randint(0, spaces[1].n, (T, N))
    resets = torch.zeros(T, N, dtype=torch.bool)
    resets[3, 0] = resets[5, 2] = True  # episodes that end mid-rollout
    h0 = (torch.randn(N, 16), torch.randn(N, 16))
    logp, entropy, values = net.evaluate_actions(obs, actions, h0, resets)
    assert logp.shape == entropy.shape == values.shape == (T * N,)
    state, step_logp, step_values = h0, [], []
    with torch.no_grad():
        for t in range(T):
            keep = (~resets[t]).float().unsqueeze(-1)
            state = (state[0] * keep, state[1] * keep)
            logits, value, state = net(obs[t], state)
            step_logp.append(torch.log_softmax(logits, -1).gather(-1, actions[t, :, None]).squeeze(-1))
            step_values.append(value)
    torch.testing.assert_close(logp.detach(), torch.cat(step_logp))
    torch.testing.assert_close(values.detach(), torch.cat(step_values))


def memory_collector(n_steps: int, vector: bool):
    if vector:
        envs = gym.vector.SyncVectorEnv([lambda: make_env("a3c/CueMemory-v0", length=3)] * 2,
                                        autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    else:
        envs = SerialEnvs([make_env("a3c/CueMemory-v0", length=3)])
    return RolloutCollector(envs, n_steps, seed=0)


@pytest.mark.parametrize("vector", [False, True])
def test_collector_carries_the_state_and_the_learner_recomputes_its_values(vector):
    torch.manual_seed(0)
    collector = memory_collector(7, vector)  # episodes of 5 steps: they straddle rollouts
    space = collector.envs.single_observation_space, collector.envs.single_action_space
    net = ActorCritic(NetworkSpec.from_spaces(*space, core="lstm", core_size=8, hidden_sizes=(8,)))
    config = build_config("a3c/CueMemory-v0", algo="a2c", core="lstm", shared_torso=True)
    first = collector.collect(net)
    start_of_second = collector.state[0].clone()
    assert first.initial_state is not None and not first.initial_state[0].any()  # zeros at the start
    values_of_first = first.values.copy()
    second = collector.collect(net)
    torch.testing.assert_close(second.initial_state[0], start_of_second)  # carried, not reset
    assert second.initial_state[0].abs().sum() > 0
    # The recomputation with autograd gives the values the collection saw.
    resets = np.zeros_like(second.terminated)
    resets[1:] = second.terminated[:-1] | second.truncated[:-1]
    _, _, values = net.evaluate_actions(torch.from_numpy(second.obs), torch.from_numpy(second.actions),
                                         second.initial_state, torch.from_numpy(resets))
    np.testing.assert_allclose(values.detach().numpy(), second.values.flatten(), rtol=1e-5, atol=1e-6)
    stats = compute_gradients(net, second, config)
    assert np.isfinite(stats.grad_norm) and stats.grad_norm > 0
    assert values_of_first.shape == second.values.shape


def test_normalizer_merges_batches_like_one_big_batch():
    norm = ObsNormalizer(3)
    norm.count.fill_(0.0)
    rng = np.random.default_rng(0)
    batches = [rng.normal(5.0, 3.0, (n, 3)).astype(np.float32) for n in (7, 20, 1, 50)]
    for b in batches:
        norm.update(torch.from_numpy(b))
    every = np.concatenate(batches)
    np.testing.assert_allclose(norm.mean.numpy(), every.mean(0), rtol=1e-5)
    np.testing.assert_allclose(norm.var.numpy(), every.var(0), rtol=1e-4)
    assert float(norm.count) == len(every)
    out = norm(torch.from_numpy(every))
    np.testing.assert_allclose(out.mean(0).numpy(), 0.0, atol=1e-4)


def test_merge_moments_by_hand():
    # {1, 3} has mean 2, variance 1; {5} mean 5, variance 0; all three: mean 3, variance 8/3.
    count, mean, var = merge_moments((2.0, torch.tensor([2.0]), torch.tensor([1.0])),
                                     (1.0, torch.tensor([5.0]), torch.tensor([0.0])))
    assert count == 3.0
    torch.testing.assert_close(mean, torch.tensor([3.0]))
    torch.testing.assert_close(var, torch.tensor([8.0 / 3.0]))
    empty = (0.0, torch.zeros(1), torch.zeros(1))
    assert merge_moments(empty, empty) is empty


def test_recent_moments_are_those_of_the_batches_since_the_last_take():
    norm = ObsNormalizer(2)
    norm.update(torch.full((3, 2), 100.0))  # before anyone asked: not kept
    assert norm.recent is None
    first = norm.take_recent()
    assert first[0] == 0.0
    a, b = torch.tensor([[1.0, 2.0], [3.0, 4.0]]), torch.tensor([[5.0, 6.0]])
    norm.update(a)
    norm.update(b)
    count, mean, var = norm.take_recent()
    every = torch.cat([a, b])
    assert count == 3.0
    torch.testing.assert_close(mean, every.mean(0))
    torch.testing.assert_close(var, every.var(0, unbiased=False))
    assert norm.take_recent()[0] == 0.0  # taken: the next call starts from nothing
    assert float(norm.count) == pytest.approx(6.0 + 1e-4)  # the running statistics saw all of it


def test_shared_statistics_are_one_copy():
    spec = NetworkSpec.from_spaces(*VECTORS, obs_norm=True)
    global_net, local = ActorCritic(spec), ActorCritic(spec)
    global_net.share_memory()
    local.share_statistics(global_net)
    local.normalizer.update(torch.full((4, 3), 2.0))
    torch.testing.assert_close(global_net.normalizer.mean, torch.full((3,), 2.0), rtol=1e-4, atol=0)
    assert "normalizer.mean" in global_net.state_dict()  # saved with the weights


def test_memory_env_rewards_recalling_the_cue():
    env = make_env("a3c/CueMemory-v0", length=2)
    obs, _ = env.reset(seed=3)
    cue = int(np.argmax(obs[:2]))
    assert obs[:2].sum() == 1 and obs[2] == 0
    for _ in range(2):
        obs, reward, terminated, _, _ = env.step(0)
        assert not obs[:2].any() and reward == 0 and not terminated
    obs, reward, terminated, _, _ = env.step(0)
    assert obs[2] == 1 and not terminated
    _, reward, terminated, _, info = env.step(cue)
    assert reward == 1.0 and terminated and info["episode"]["l"] == 4


def test_recurrent_predict_carries_state_and_survives_save_load(tmp_path):
    from a3c import A2C, load

    model = A2C("a3c/CueMemory-v0", core="lstm", core_size=8, hidden_sizes=(8,), shared_torso=True,
                n_envs=2, verbose=0)
    cue = np.array([1, 0, 0], dtype=np.float32)
    blank = np.zeros(3, dtype=np.float32)
    _, state = model.predict(cue, deterministic=True)
    assert isinstance(state, tuple) and state[0].shape == (1, 8)
    _, state2 = model.predict(blank, state, deterministic=True)
    assert not torch.equal(state2[0], state[0])
    # episode_start zeroes the state: the same as starting without one
    _, fresh = model.predict(blank, deterministic=True)
    _, restarted = model.predict(blank, state2, episode_start=[True], deterministic=True)
    torch.testing.assert_close(restarted[0], fresh[0])
    model.save(tmp_path / "m.safetensors")
    loaded = load(tmp_path / "m.safetensors", verbose=0)
    assert loaded.policy.recurrent
    torch.testing.assert_close(loaded.predict(cue, deterministic=True)[1][0], state[0])
