"""reward_norm: rewards divided by the running spread of the discounted return, by hand, and its
statistics shared by the workers, sent to the Ray parameter server and kept in checkpoints."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from a3c.config import Config
from a3c.core.networks import ActorCritic, NetworkSpec
from a3c.core.normalization import ReturnNormalizer, running_returns

REWARDS = np.array([[1.0, 2.0], [2.0, 0.0], [4.0, 1.0]], dtype=np.float32)
DONES = np.array([[False, True], [False, False], [True, False]])
# gamma 0.5 from running returns [1, 0]: env 0 1.5, 2.75, 5.375 (then ends); env 1 2 (ends), 0, 1
RETURNS = np.array([[1.5, 2.0], [2.75, 0.0], [5.375, 1.0]])


def test_running_returns_discount_each_envs_rewards_and_restart_after_an_episode_ends():
    np.testing.assert_allclose(running_returns(np.array([1.0, 0.0]), REWARDS, DONES, 0.5), RETURNS)


def test_observe_merges_the_returns_moments_and_carries_each_envs_return_on():
    norm = ReturnNormalizer()
    norm.count.fill_(0.0)  # no prior, so that the moments are the returns' own
    carried = norm.observe(np.array([1.0, 0.0]), REWARDS, DONES, 0.5)
    np.testing.assert_allclose(carried, [0.0, 1.0])  # env 0's episode ended at the last step
    assert float(norm.count) == 6
    assert float(norm.mean) == pytest.approx(RETURNS.mean())
    assert float(norm.var) == pytest.approx(RETURNS.var(), rel=1e-6)
    np.testing.assert_allclose(norm.observe(carried, np.array([[np.nan, 1.0]]), DONES[:1], 0.5), [0, 0])
    assert float(norm.count) == 6  # a rollout with NaN is left out


def test_scale_divides_by_the_returns_std_without_centring_and_clips_at_10():
    norm = ReturnNormalizer()
    norm.var.fill_(4.0)
    norm.mean.fill_(3.0)
    np.testing.assert_allclose(norm.scale(np.array([[2.0, -1.0, 30.0]])), [[1.0, -0.5, 10.0]], rtol=1e-6)


def _spec(**options):
    return NetworkSpec.from_spaces(gym.spaces.Box(-1, 1, (3,), np.float32), gym.spaces.Discrete(2),
                                   hidden_sizes=(8,), **options)


def test_workers_update_one_shared_copy_of_the_return_statistics():
    global_net = ActorCritic(_spec(reward_norm=True))
    global_net.share_memory()
    workers = [global_net.replica() for _ in range(2)]
    for w in workers:
        w.share_statistics(global_net)
    count = float(global_net.return_normalizer.count)
    workers[0].return_normalizer.observe(np.zeros(2), REWARDS, DONES, 0.5)
    workers[1].return_normalizer.observe(np.zeros(2), 2 * REWARDS, DONES, 0.5)
    assert float(global_net.return_normalizer.count) == pytest.approx(count + 12)
    assert global_net.return_normalizer.var.is_shared()
    assert "return_normalizer.var" in global_net.state_dict()  # saved with the weights


def test_reward_norm_is_a_config_option_that_reaches_the_network_and_its_checkpoint(tmp_path):
    from a3c import A2C, load

    model = A2C("CartPole-v1", verbose=0, seed=0, reward_norm=True, hidden_sizes=(8,), n_envs=2,
                n_steps=5, eval_interval=0, final_eval_episodes=1, checkpoint_interval=0)
    assert model.policy.spec.reward_norm and Config().reward_norm is False
    model.learn(total_steps=500, run_dir=tmp_path)
    stats = model.policy.return_normalizer
    assert float(stats.count) == pytest.approx(500, abs=1)
    assert float(stats.var) > 1.0  # CartPole's returns of 1 per step, discounted, spread out
    loaded = load(tmp_path / "model.safetensors", verbose=0)
    torch.testing.assert_close(loaded.policy.return_normalizer.var, stats.var)
    torch.testing.assert_close(loaded.policy.return_normalizer.count, stats.count)
