"""Evaluation over whole episodes: several envs playing at once give the episodes one env gives."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from a3c.core.networks import ActorCritic, NetworkSpec
from a3c.envs.make import make_env
from a3c.run.evaluation import EPISODE_STEP_LIMIT, evaluate, stack_observations


def _net(env: gym.Env, **options) -> ActorCritic:
    torch.manual_seed(0)
    return ActorCritic(NetworkSpec.from_spaces(env.observation_space, env.action_space, hidden_sizes=(16,),
                                               **options))


@pytest.mark.parametrize("env_id, options", [
    ("CartPole-v1", {}),                               # feed-forward, episodes of different lengths
    ("CartPole-v1", {"core": "lstm", "core_size": 8}),  # a state that starts afresh with each episode
    ("tests.toy_envs:ToyDictObs-v0", {}),              # a Dict observation, stacked part by part
])
def test_episodes_played_at_once_are_the_episodes_played_one_by_one(env_id, options):
    envs = [make_env(env_id) for _ in range(3)]
    net = _net(envs[0], **options)
    one_by_one = evaluate(net, envs[0], 7, deterministic=True, seed=5)
    at_once = evaluate(net, envs, 7, deterministic=True, seed=5)
    assert len(set(one_by_one.lengths)) > 1 or env_id != "CartPole-v1"  # slots are refilled unevenly
    assert at_once.lengths == one_by_one.lengths
    np.testing.assert_allclose(at_once.returns, one_by_one.returns)
    # episode k is the one reset with seed + k, whichever env plays it
    alone = evaluate(net, envs[1], 1, deterministic=True, seed=5 + 4)
    assert alone.lengths == [one_by_one.lengths[4]]
    for env in envs:
        env.close()


def test_more_envs_than_episodes_and_no_episodes():
    envs = [make_env("CartPole-v1") for _ in range(4)]
    net = _net(envs[0])
    assert len(evaluate(net, envs, 2).returns) == 2
    result = evaluate(net, envs, 0)
    assert result.returns == [] and result.lengths == []


def test_an_episode_without_a_time_limit_is_cut_in_every_env():
    envs = [make_env("CliffWalking-v1") for _ in range(2)]
    net = _net(envs[0])
    with torch.no_grad():  # a policy that never reaches the goal: always up, from the start's row
        net.policy.linear.weight.zero_()
        net.policy.linear.bias.copy_(torch.tensor([10.0, 0.0, 0.0, 0.0]))
    result = evaluate(net, envs, 2, deterministic=True)
    assert result.lengths == [EPISODE_STEP_LIMIT] * 2 and result.returns == [-EPISODE_STEP_LIMIT] * 2


def test_observations_stack_as_a_vector_env_gives_them():
    space = gym.spaces.Dict({"a": gym.spaces.Box(-1, 1, (2,)),
                             "b": gym.spaces.Tuple((gym.spaces.Discrete(3), gym.spaces.Box(0, 1, (1, 2))))})
    items = [space.sample() for _ in range(4)]
    batch = stack_observations(items)
    np.testing.assert_array_equal(batch["a"], np.stack([o["a"] for o in items]))
    assert batch["b"][0].shape == (4,) and batch["b"][1].shape == (4, 1, 2)
    assert batch["b"][0].tolist() == [o["b"][0] for o in items]
