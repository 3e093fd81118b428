"""RolloutCollector on real CartPole: bootstraps where time limits cut episodes, zero where they end."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from a3c.core.networks import ActorCritic, NetworkSpec
from a3c.core.returns import returns_and_advantages
from a3c.core.rollout import RolloutCollector
from a3c.envs.make import SerialEnvs, make_env

T = 20


class Recorder(gym.Wrapper):
    """Keeps every observation step() returned, before any autoreset replaces it."""

    def __init__(self, env):
        super().__init__(env)
        self.step_obs: list[np.ndarray] = []
        self.ends: list[tuple[bool, bool]] = []

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.step_obs.append(np.array(obs, copy=True))
        self.ends.append((bool(terminated), bool(truncated)))
        return obs, reward, terminated, truncated, info


def cartpole(limit: int) -> Recorder:
    return Recorder(make_env("CartPole-v1", max_episode_steps=limit))


def network(seed: int = 0) -> ActorCritic:
    env = gym.make("CartPole-v1")
    torch.manual_seed(seed)
    net = ActorCritic(NetworkSpec.from_spaces(env.observation_space, env.action_space, hidden_sizes=(32,)))
    with torch.no_grad():  # a value head that tells states apart clearly
        net.value_head.weight.mul_(10)
    return net


def value_of(net: ActorCritic, obs: np.ndarray) -> float:
    with torch.no_grad():
        return net.value(torch.as_tensor(obs, dtype=torch.float32)[None]).item()


def check_next_values(net, collector, rollout, recorders, first_step):
    """next_values[t, i] is V(s_{t+1}): the next row inside an episode, V(final obs) after a time limit."""
    truncations = 0
    for i, rec in enumerate(recorders):
        for t in range(T):
            terminated, truncated = rec.ends[first_step + t]
            assert (rollout.terminated[t, i], rollout.truncated[t, i]) == (terminated, truncated)
            if terminated:
                continue  # ignored by the returns: see test_terminal_rows_are_ignored_by_the_returns
            if truncated:
                truncations += 1
                final = rec.step_obs[first_step + t]
                assert rollout.next_values[t, i] == pytest.approx(value_of(net, final), rel=1e-5, abs=1e-6)
                if t + 1 < T:  # the next row is a new episode whose value must not be used
                    assert rollout.values[t + 1, i] != pytest.approx(value_of(net, final), abs=1e-3)
                    assert not np.array_equal(rollout.obs[t + 1, i], final)
            elif t + 1 < T:
                assert rollout.next_values[t, i] == rollout.values[t + 1, i]
            else:
                assert rollout.next_values[t, i] == pytest.approx(value_of(net, collector.obs[i]), rel=1e-5)
    return truncations


def test_time_limit_truncations_inside_a_rollout_bootstrap_from_the_final_observation():
    rec = cartpole(limit=7)
    collector = RolloutCollector(SerialEnvs([rec]), T, seed=0)
    net = network()
    truncations = 0
    for k in range(2):  # twice: buffers are reused between rollouts
        rollout = collector.collect(net)
        assert rollout.obs.shape == (T, 1, 4) and rollout.rewards.shape == (T, 1)
        truncations += check_next_values(net, collector, rollout, [rec], first_step=k * T)
        for e in rollout.episodes:
            assert (e.env_index, e.length, e.episode_return) == (0, 7, 7.0)
        assert len(rollout.episodes) == int((rollout.terminated | rollout.truncated).sum())
    assert truncations >= 4  # 40 steps with a limit of 7


def test_batched_envs_give_T_by_N_rollouts_with_the_same_bootstraps():
    recorders = [cartpole(limit) for limit in (5, 7, 9)]
    envs = SyncVectorEnv([lambda r=r: r for r in recorders], autoreset_mode=AutoresetMode.SAME_STEP)
    collector = RolloutCollector(envs, T, seed=0)
    net = network(1)
    rollout = collector.collect(net)
    assert rollout.values.shape == rollout.next_values.shape == (T, 3)
    assert check_next_values(net, collector, rollout, recorders, first_step=0) >= 6
    lengths = sorted((e.env_index, e.length) for e in rollout.episodes)
    assert lengths == sorted([(0, 5)] * 4 + [(1, 7)] * 2 + [(2, 9)] * 2)


def test_terminal_rows_are_ignored_by_the_returns_and_episodes_have_their_length():
    rec = cartpole(limit=200)
    collector = RolloutCollector(SerialEnvs([rec]), 30, seed=0)
    net = network()
    with torch.no_grad():  # always push left: the pole falls within a dozen steps
        net.policy.linear.weight.zero_()
        net.policy.linear.bias.copy_(torch.tensor([30.0, -30.0]))
    r = collector.collect(net)
    ends = np.flatnonzero(r.terminated[:, 0])
    assert len(ends) >= 2 and not r.truncated.any()

    returns, advantages = returns_and_advantages(
        r.rewards, r.values, r.next_values, r.terminated, r.truncated, gamma=0.99)
    poisoned = r.next_values.copy()
    poisoned[r.terminated] = 1e6
    returns2, advantages2 = returns_and_advantages(
        r.rewards, r.values, poisoned, r.terminated, r.truncated, gamma=0.99)
    np.testing.assert_array_equal(returns2, returns)
    np.testing.assert_array_equal(advantages2, advantages)
    # ...and the return at a terminal step is its reward alone
    np.testing.assert_array_equal(returns[r.terminated], r.rewards[r.terminated])

    lengths = np.diff(np.concatenate([[-1], ends]))  # the first episode started at t = 0
    assert [e.length for e in r.episodes] == lengths.tolist()
    assert [e.episode_return for e in r.episodes] == lengths.astype(float).tolist()


def test_acting_and_learning_see_the_same_observation_statistics():
    # With obs_norm, the values the rollout recorded (behind the advantages) must be the values the
    # loss differentiates: the statistics change only after the gradient, by update_statistics.
    envs = SerialEnvs([make_env("Pendulum-v1")])
    net = ActorCritic(NetworkSpec.from_spaces(envs.single_observation_space, envs.single_action_space,
                                              obs_norm=True))
    collector = RolloutCollector(envs, 16, seed=0)
    for _ in range(3):
        rollout = collector.collect(net)
        _, _, values = net.evaluate_actions(
            torch.from_numpy(rollout.obs), torch.from_numpy(rollout.actions), rollout.initial_state,
            torch.from_numpy(rollout.resets()))
        np.testing.assert_allclose(values.detach().numpy(), rollout.values.flatten(), rtol=1e-5, atol=1e-6)
        count = float(net.normalizer.count)
        collector.update_statistics(net, 0.99)
        assert float(net.normalizer.count) == count + 16  # and then the statistics move on


@pytest.mark.parametrize("every, fresh_rollouts", [(0, [True, True, True]), (12, [True, False, True])])
def test_sde_noise_is_drawn_every_sde_sample_freq_steps_across_rollouts(every, fresh_rollouts):
    # 5-step rollouts: with sde_sample_freq 12 the draws fall at steps 0 and 12, so the second
    # rollout (steps 5-9) keeps the first one's noise and the third (steps 10-14) has a new one;
    # with 0, every rollout draws its own.
    envs = SerialEnvs([make_env("Pendulum-v1")])
    net = ActorCritic(NetworkSpec.from_spaces(envs.single_observation_space, envs.single_action_space,
                                              use_sde=True))
    collector = RolloutCollector(envs, 5, seed=0, sde_sample_freq=every)
    seen = []
    for fresh in fresh_rollouts:
        collector.collect(net)
        noise = net.policy.noise.clone()
        assert (not seen or not torch.equal(noise, seen[-1])) == fresh
        seen.append(noise)
