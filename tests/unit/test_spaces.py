"""Every observation and action space the networks take: parts, encodings, heads and actions as the env
takes them, checked against values worked out by hand and against torch.distributions."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from torch.distributions import Bernoulli, Categorical

from a3c.config import ACTIVATIONS
from a3c.core.heads import BernoulliHead, MultiCategoricalHead
from a3c.core.networks import ActorCritic, NetworkSpec
from a3c.core.rollout import RolloutCollector
from a3c.core.torsos import ACTIVATIONS as ACTIVATION_FUNCTIONS
from a3c.core.torsos import OneHot, PartInputs
from a3c.envs.make import SerialEnvs, make_env
from a3c.errors import A3CWarning, CheckpointError, EnvError
from a3c.spaces import ObsPart, action_converter, is_channels_last, observation_parts, split_observation

DICT = spaces.Dict({
    "pos": spaces.Box(-1.0, 1.0, (3,), np.float32),
    "cam": spaces.Box(0, 255, (24, 24, 3), np.uint8),
    "mode": spaces.Discrete(3, start=1),
    "flags": spaces.MultiBinary(2),
    "inner": spaces.Tuple((spaces.MultiDiscrete([2, 4]), spaces.Box(0.0, 1.0, (2, 2), np.float64))),
})


def test_an_observation_splits_into_parts_named_by_their_path():
    parts = observation_parts(DICT)
    assert [(p.key, p.kind) for p in parts] == [
        ("cam", "image"), ("flags", "multi_binary"), ("inner/0", "multi_discrete"), ("inner/1", "box"),
        ("mode", "discrete"), ("pos", "box")]  # Gymnasium sorts a Dict's keys
    by_key = {p.key: p for p in parts}
    assert by_key["cam"].channels_last and by_key["cam"].width == 24 * 24 * 3
    assert by_key["mode"].nvec == (3,) and by_key["mode"].start == (1,) and by_key["mode"].width == 3
    assert by_key["inner/0"].nvec == (2, 4) and by_key["inner/0"].width == 6
    assert by_key["inner/1"].shape == (2, 2) and by_key["inner/1"].size == 4
    assert observation_parts(spaces.Discrete(5)) == (ObsPart("", "discrete", (), "int64", (5,), (0,)),)
    sample = DICT.sample()
    split = split_observation(sample, parts)
    assert list(split) == [p.key for p in parts]
    np.testing.assert_array_equal(split["inner/0"], sample["inner"][0])
    for part in parts:
        assert ObsPart.from_dict(part.to_dict()) == part


@pytest.mark.parametrize("shape, last", [((4, 84, 84), False), ((84, 84, 4), True), ((96, 96, 3), True),
                                          ((3, 64, 64), False), ((1, 28, 28), False), ((10, 10, 10), False)])
def test_channel_last_images_are_told_by_their_smallest_dimension(shape, last):
    assert is_channels_last(shape) is last


@pytest.mark.parametrize("space, words", [
    (spaces.Text(5), ["observation space Text(1, 5", "supported observation spaces", "Dict or Tuple"]),
    (spaces.Graph(spaces.Box(0, 1, (2,)), None), ["Graph("]),
    (spaces.Sequence(spaces.Discrete(2)), ["Sequence("]),
    (spaces.Dict({"a": spaces.Discrete(2), "b": spaces.Tuple((spaces.Text(3),))}), ["part 'b/0' is Text("]),
    (spaces.Dict({}), ["is empty"]),
])
def test_unsupported_observation_spaces_are_one_line_naming_the_space_and_what_is_supported(space, words):
    with pytest.raises(EnvError) as info:
        observation_parts(space, "MyEnv-v0")
    message = str(info.value)
    assert "\n" not in message and message.startswith("MyEnv-v0: ")
    for word in words:
        assert word in message


def test_one_hot_encodings_by_hand():
    discrete = OneHot(ObsPart("", "discrete", (), "int64", (3,), (1,)))
    torch.testing.assert_close(discrete(torch.tensor([1, 3, 2])),
                               torch.tensor([[1.0, 0, 0], [0, 0, 1], [0, 1, 0]]))
    multi = OneHot(ObsPart("", "multi_discrete", (2,), "int64", (2, 3), (0, 5)))
    torch.testing.assert_close(multi(torch.tensor([[1, 5], [0, 7]])),
                               torch.tensor([[0.0, 1, 1, 0, 0], [1, 0, 0, 0, 1]]))


def test_part_inputs_scale_images_transpose_channel_last_ones_and_normalise_only_box_parts():
    parts = observation_parts(DICT)
    sample = {k: torch.as_tensor(v)[None].repeat(2, *([1] * np.ndim(v)))
              for k, v in split_observation(DICT.sample(), parts).items()}
    doubled = PartInputs(parts, lambda x: 2 * x, flat=False)(sample)
    plain = PartInputs(parts, None, flat=False)(sample)
    torch.testing.assert_close(doubled["pos"], 2 * sample["pos"])
    torch.testing.assert_close(doubled["inner/1"], 2 * sample["inner/1"].float())  # float64 -> float32
    torch.testing.assert_close(doubled["cam"], sample["cam"].permute(0, 3, 1, 2).float() / 255)
    for key in ("cam", "flags", "inner/0", "mode"):
        torch.testing.assert_close(doubled[key], plain[key])
    flat = PartInputs(parts, None, flat=True)(sample)
    assert {k: tuple(v.shape) for k, v in flat.items()} == {
        "cam": (2, 24 * 24 * 3), "flags": (2, 2), "inner/0": (2, 6), "inner/1": (2, 4), "mode": (2, 3),
        "pos": (2, 3)}


def test_multi_categorical_log_prob_and_entropy_are_the_sums_of_torchs_per_component():
    torch.manual_seed(0)
    head = MultiCategoricalHead(4, (3, 2, 5))
    logits = torch.randn(6, 10) * 2
    actions = torch.stack([torch.randint(0, n, (6,)) for n in (3, 2, 5)], -1)
    logp, entropy = head.log_prob_entropy(logits, actions)
    parts = [Categorical(logits=part) for part in logits.split([3, 2, 5], -1)]
    torch.testing.assert_close(logp, sum(d.log_prob(actions[:, i]) for i, d in enumerate(parts)))
    torch.testing.assert_close(entropy, sum(d.entropy() for d in parts))
    greedy = head.sample(logits, deterministic=True)
    by_part = [part.argmax(-1) for part in logits.split([3, 2, 5], -1)]
    torch.testing.assert_close(greedy, torch.stack(by_part, -1))
    counts = torch.bincount(head.sample(torch.log(torch.tensor([[0.2, 0.3, 0.5, 0.5, 0.5, 1, 1, 1, 1, 1]]))
                                        .expand(20_000, 10), False)[:, 0], minlength=3)
    np.testing.assert_allclose(counts.numpy() / 20_000, [0.2, 0.3, 0.5], atol=0.015)


def test_bernoulli_log_prob_and_entropy_match_torch_and_by_hand():
    logits = torch.tensor([[0.0, 2.0, -1.0]])
    actions = torch.tensor([[1.0, 0.0, 0.0]])
    logp, entropy = BernoulliHead.log_prob_entropy(logits, actions)
    dist = Bernoulli(logits=logits)
    torch.testing.assert_close(logp, dist.log_prob(actions).sum(-1))
    torch.testing.assert_close(entropy, dist.entropy().sum(-1))
    p = torch.sigmoid(torch.tensor(2.0))  # by hand: log(1/2) + log(1 - p(2)) + log(1 - p(-1))
    by_hand = np.log(0.5) + torch.log(1 - p) + torch.log(torch.sigmoid(torch.tensor(1.0)))
    torch.testing.assert_close(logp, by_hand.reshape(1))
    assert BernoulliHead.sample(logits, True).tolist() == [[0.0, 1.0, 0.0]]  # p = 1/2 is not more than 1/2
    torch.manual_seed(1)
    draws = BernoulliHead.sample(torch.tensor([[np.log(0.25 / 0.75)]]).expand(20_000, 1), False)
    assert abs(draws.mean().item() - 0.25) < 0.015


@pytest.mark.parametrize("space, network, env", [
    (spaces.Discrete(3, start=-1), np.array([0, 2]), np.array([-1, 1])),
    (spaces.Box(-1.0, 1.0, (2,), np.float32), np.array([[2.0, -0.5], [0.0, -3.0]], np.float32),
     np.array([[1.0, -0.5], [0.0, -1.0]], np.float32)),
    (spaces.Box(0.0, 1.0, (1, 2), np.float64), np.array([[2.0, 0.5]], np.float32), np.array([[[1.0, 0.5]]])),
    (spaces.MultiDiscrete([[2, 3], [4, 5]], start=[[0, 1], [0, 0]]), np.array([[1, 2, 3, 4]]),
     np.array([[[1, 3], [3, 4]]])),
    (spaces.MultiBinary(3), np.array([[1.0, 0.0, 1.0]], np.float32), np.array([[1, 0, 1]], np.int8)),
])
def test_network_actions_become_the_envs_in_its_shape_and_dtype(space, network, env):
    convert = action_converter(space)
    out = network if convert is None else convert(network)
    np.testing.assert_array_equal(out, env)
    assert out.dtype == space.dtype and out.shape[1:] == space.shape
    for row in out:
        assert space.contains(row.item() if space.shape == () else row)


@pytest.mark.parametrize("act_space", [
    spaces.Discrete(3), spaces.Box(-1.0, 1.0, (2,), np.float32), spaces.MultiDiscrete([3, 2]),
    spaces.MultiBinary(4)])
@pytest.mark.parametrize("shared", [True, False])
def test_every_action_space_acts_and_evaluates_with_every_observation_space(act_space, shared):
    torch.manual_seed(0)
    net = ActorCritic(NetworkSpec.from_spaces(DICT, act_space, hidden_sizes=(8,), shared_torso=shared))
    obs = [DICT.sample() for _ in range(6)]
    batch = {k: np.stack([split_observation(o, net.spec.obs_parts)[k] for o in obs])
             for k in (p.key for p in net.spec.obs_parts)}
    tensors, single = net.observation_batch(batch)
    assert not single
    with torch.no_grad():
        actions, values, _ = net.act(tensors)
    assert values.shape == (6,)
    convert = action_converter(act_space)
    env_actions = actions.numpy() if convert is None else convert(actions.numpy())
    assert all(act_space.contains(a.item() if act_space.shape == () else a) for a in env_actions)
    T, N = 2, 3
    tn = {k: v.reshape(T, N, *v.shape[1:]) for k, v in tensors.items()}
    logp, entropy, v = net.evaluate_actions(tn, actions.reshape(T, N, *actions.shape[1:]), None,
                                            torch.zeros(T, N, dtype=torch.bool))
    assert logp.shape == entropy.shape == v.shape == (6,)
    assert torch.isfinite(logp).all() and (entropy > 0).all()
    (logp.sum() + v.sum()).backward()
    assert all(p.grad is not None for p in net.policy.parameters())


def test_a_channel_last_image_network_is_the_channel_first_one_on_transposed_frames():
    first = spaces.Box(0, 255, (3, 30, 40), np.uint8)
    last = spaces.Box(0, 255, (30, 40, 3), np.uint8)
    torch.manual_seed(0)
    net_first = ActorCritic(NetworkSpec.from_spaces(first, spaces.Discrete(4)))
    net_last = ActorCritic(NetworkSpec.from_spaces(last, spaces.Discrete(4)))
    net_last.load_state_dict(net_first.state_dict())  # the same weights: only the input's layout differs
    frames = torch.randint(0, 256, (5, 30, 40, 3), dtype=torch.uint8)
    logits_last, values_last, _ = net_last(frames)
    logits_first, values_first, _ = net_first(frames.permute(0, 3, 1, 2).contiguous())
    torch.testing.assert_close(logits_last, logits_first)
    torch.testing.assert_close(values_last, values_first)


def test_rollouts_of_dict_observations_hold_one_buffer_per_part():
    env = SerialEnvs([make_env("tests.toy_envs:ToyDictObs-v0")])
    collector = RolloutCollector(env, 7, seed=0)
    net = ActorCritic(NetworkSpec.from_spaces(env.single_observation_space, env.single_action_space,
                                              hidden_sizes=(8,)))
    rollout = collector.collect(net)
    assert {k: (v.shape, v.dtype) for k, v in rollout.obs.items()} == {
        "cue": ((7, 1), np.int64), "frame": ((7, 1, 20, 20, 1), np.uint8), "noise": ((7, 1, 2), np.float32)}
    # each step's frame shows the half that, with the cue, makes the target the reward names
    assert rollout.obs["frame"].max() == 200 and rollout.actions.dtype == np.int64


def test_obs_norm_normalises_box_parts_and_says_what_it_skips():
    with pytest.warns(A3CWarning, match="normalises the Box parts inner/1, pos only; not cam \\(an image"):
        spec = NetworkSpec.from_spaces(DICT, spaces.Discrete(2), obs_norm=True)
    net = ActorCritic(spec)
    assert spec.obs_norm and net.normalizer.mean.shape == (4 + 3,)
    batch = {p.key: np.stack([split_observation(DICT.sample(), spec.obs_parts)[p.key] for _ in range(5)])
             for p in spec.obs_parts}
    net.observe({k: v[None] for k, v in batch.items()})  # a rollout [1, 5, ...]
    expected = np.concatenate([batch["inner/1"].reshape(5, 4), batch["pos"]], 1)
    np.testing.assert_allclose(net.normalizer.mean.numpy(), expected.mean(0), rtol=1e-4, atol=1e-6)
    with pytest.warns(A3CWarning, match="obs_norm is off"):
        spec = NetworkSpec.from_spaces(spaces.Discrete(4), spaces.Discrete(2), obs_norm=True)
    assert not spec.obs_norm and ActorCritic(spec).normalizer is None


def test_specs_round_trip_and_a_malformed_part_is_a_checkpoint_error():
    spec = NetworkSpec.from_spaces(DICT, spaces.MultiDiscrete([3, 2]), policy_sizes=(16,), value_sizes=(8, 8),
                                   head_activation="relu", conv_hidden=32, conv_activation="elu")
    assert NetworkSpec.from_dict(spec.to_dict()) == spec
    data = spec.to_dict()
    data["obs_parts"][0]["kind"] = "hologram"
    with pytest.raises(CheckpointError, match="hologram"):
        NetworkSpec.from_dict(data)
    data = spec.to_dict()
    data["obs_dim"] += 1
    with pytest.raises(CheckpointError, match="obs_dim"):
        NetworkSpec.from_dict(data)


def test_head_layers_and_activations_are_options_per_part():
    spec = NetworkSpec.from_spaces(DICT, spaces.Discrete(2), hidden_sizes=(12,), activation="relu",
                                   policy_sizes=(16,), value_sizes=(8, 4), conv_hidden=32)
    net = ActorCritic(spec)
    assert net.torso.images[0].out_dim == 32 and net.torso.mlp.out_dim == 12
    assert [layer.out_features for layer in net.policy_hidden.layers] == [16]
    assert [layer.out_features for layer in net.value_hidden.layers] == [8, 4]
    assert net.policy.linear.in_features == 16 and net.value_head.in_features == 4
    assert set(ACTIVATIONS) == set(ACTIVATION_FUNCTIONS)


def test_serial_envs_batch_structured_observations_as_the_vector_env_does():
    serial = SerialEnvs([make_env("Blackjack-v1") for _ in range(2)])
    vector = gym.vector.SyncVectorEnv([lambda: make_env("Blackjack-v1")] * 2,
                                      autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    results = [serial.reset(seed=3)[0], vector.reset(seed=3)[0]]
    for _ in range(5):  # Blackjack's hands end within a few hits: the resets are batched too
        results += [serial.step(np.array([1, 0]))[0], vector.step(np.array([1, 0]))[0]]
    for obs_s, obs_v in zip(results[::2], results[1::2], strict=True):
        assert isinstance(obs_s, tuple) and len(obs_s) == 3
        for a, b in zip(obs_s, obs_v, strict=True):
            np.testing.assert_array_equal(a, b)
            assert a.dtype == b.dtype and a.shape == (2,)


def test_float_images_are_taken_as_they_are_and_bytes_are_scaled_in_either_channel_order():
    torch.manual_seed(0)
    as_bytes = ActorCritic(NetworkSpec.from_spaces(spaces.Box(0, 255, (36, 36, 1), np.uint8),
                                                   spaces.Discrete(2), torso="nature-conv"))
    as_floats = ActorCritic(NetworkSpec.from_spaces(spaces.Box(0.0, 1.0, (36, 36, 1), np.float32),
                                                    spaces.Discrete(2), torso="nature-conv"))
    as_floats.load_state_dict(as_bytes.state_dict())
    frames = torch.randint(0, 256, (3, 36, 36, 1), dtype=torch.uint8)
    torch.testing.assert_close(as_bytes(frames)[0], as_floats(frames.float() / 255)[0])
