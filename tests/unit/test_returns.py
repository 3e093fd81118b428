"""n-step returns and GAE against numbers worked out by hand (gamma = 0.5 keeps the arithmetic exact)."""

import numpy as np
import pytest

from a3c.core.returns import gae_advantages, n_step_returns, returns_and_advantages

F, T = False, True


def arr(*xs, dtype=np.float32):
    return np.array(xs, dtype=dtype)


def flags(*xs):
    return np.array(xs, dtype=bool)


def test_bootstraps_from_next_value_when_the_rollout_ends_mid_episode():
    rewards = arr(1, 2, 3)
    next_values = arr(10, 20, 30)  # only next_values[-1] = V(s_T) matters: no episode ends
    returns = n_step_returns(rewards, next_values, flags(F, F, F), flags(F, F, F), gamma=0.5)
    # R_2 = 3 + 0.5 * 30  = 18
    # R_1 = 2 + 0.5 * 18  = 11
    # R_0 = 1 + 0.5 * 11  = 6.5
    np.testing.assert_array_equal(returns, arr(6.5, 11, 18))
    assert returns.shape == (3,) and returns.dtype == np.float32


def test_terminal_state_is_worth_zero():
    rewards = arr(1, 2, 3)
    next_values = arr(10, 20, 30)  # next_values[2] = 30 must be ignored: s_3 is terminal
    returns = n_step_returns(rewards, next_values, flags(F, F, T), flags(F, F, F), gamma=0.5)
    # R_2 = 3 + 0           = 3
    # R_1 = 2 + 0.5 * 3     = 3.5
    # R_0 = 1 + 0.5 * 3.5   = 2.75
    np.testing.assert_array_equal(returns, arr(2.75, 3.5, 3))


def test_episode_ending_mid_rollout_then_a_new_episode():
    rewards = arr(1, 2, 3, 4)
    next_values = arr(7, 99, 5, 8)  # 99 follows a terminal step: ignored
    returns = n_step_returns(rewards, next_values, flags(F, T, F, F), flags(F, F, F, F), gamma=0.5)
    # new episode (t = 2, 3) bootstraps from V(s_4) = 8:
    #   R_3 = 4 + 0.5 * 8 = 8;  R_2 = 3 + 0.5 * 8 = 7
    # old episode (t = 0, 1) ends in a terminal state, nothing leaks across the boundary:
    #   R_1 = 2 + 0 = 2;        R_0 = 1 + 0.5 * 2 = 2
    np.testing.assert_array_equal(returns, arr(2, 2, 7, 8))


def test_time_limit_truncation_mid_rollout_bootstraps_from_the_final_observation():
    rewards = arr(1, 2, 3, 4)
    next_values = arr(7, 6, 5, 8)  # next_values[1] = 6 is V(final obs) of the truncated episode
    returns = n_step_returns(rewards, next_values, flags(F, F, F, F), flags(F, T, F, F), gamma=0.5)
    # R_3 = 4 + 0.5 * 8 = 8;  R_2 = 3 + 0.5 * 8 = 7       (new episode)
    # R_1 = 2 + 0.5 * 6 = 5;  R_0 = 1 + 0.5 * 5 = 3.5     (truncated one: bootstrap, not 0, not R_2)
    np.testing.assert_array_equal(returns, arr(3.5, 5, 7, 8))


def test_truncation_at_the_last_step_bootstraps_and_termination_wins_over_truncation():
    rewards = arr(1, 2)
    next_values = arr(3, 4)
    truncated = n_step_returns(rewards, next_values, flags(F, F), flags(F, T), gamma=0.5)
    # R_1 = 2 + 0.5 * 4 = 4;  R_0 = 1 + 0.5 * 4 = 3
    np.testing.assert_array_equal(truncated, arr(3, 4))
    both = n_step_returns(rewards, next_values, flags(F, T), flags(F, T), gamma=0.5)
    # terminated and truncated on the same step: the state is terminal, R_1 = 2, R_0 = 1 + 1 = 2
    np.testing.assert_array_equal(both, arr(2, 2))


def test_batched_returns_have_shape_T_N_and_treat_columns_independently():
    # column 0: no ends; column 1: terminal at t=1; column 2: truncation at t=0
    rewards = np.array([[1, 1, 1], [2, 2, 2], [3, 3, 3]], dtype=np.float32)
    next_values = np.array([[0, 0, 6], [0, 50, 0], [4, 2, 2]], dtype=np.float32)
    terminated = np.array([[F, F, F], [F, T, F], [F, F, F]])
    truncated = np.array([[F, F, T], [F, F, F], [F, F, F]])
    returns = n_step_returns(rewards, next_values, terminated, truncated, gamma=0.5)
    assert returns.shape == (3, 3)
    # col 0: R_2 = 3 + 2 = 5;  R_1 = 2 + 2.5 = 4.5;  R_0 = 1 + 2.25 = 3.25
    # col 1: R_2 = 3 + 1 = 4 (new episode);  R_1 = 2 + 0 = 2 (terminal);  R_0 = 1 + 1 = 2
    # col 2: R_2 = 3 + 1 = 4;  R_1 = 2 + 2 = 4;  R_0 = 1 + 0.5 * 6 = 4 (bootstrap from V(final obs))
    expected = np.array([[3.25, 2, 4], [4.5, 2, 4], [5, 4, 4]], dtype=np.float32)
    np.testing.assert_array_equal(returns, expected)
    for i in range(3):
        column = n_step_returns(rewards[:, i], next_values[:, i], terminated[:, i], truncated[:, i], 0.5)
        np.testing.assert_array_equal(returns[:, i], column)


def test_gae_with_lambda_one_half_by_hand():
    rewards = arr(1, 2, 3)
    values = arr(0.5, 1, 1.5)
    next_values = arr(1, 1.5, 4)
    adv = gae_advantages(rewards, values, next_values, flags(F, F, F), flags(F, F, F), gamma=0.5, lam=0.5)
    # delta_t = r_t + gamma * V(s_{t+1}) - V(s_t):
    #   delta_0 = 1 + 0.5 * 1   - 0.5 = 1.0
    #   delta_1 = 2 + 0.5 * 1.5 - 1   = 1.75
    #   delta_2 = 3 + 0.5 * 4   - 1.5 = 3.5
    # A_t = delta_t + gamma * lam * A_{t+1}, gamma * lam = 0.25:
    #   A_2 = 3.5;  A_1 = 1.75 + 0.25 * 3.5 = 2.625;  A_0 = 1.0 + 0.25 * 2.625 = 1.65625
    np.testing.assert_array_equal(adv, arr(1.65625, 2.625, 3.5))
    returns, adv2 = returns_and_advantages(
        rewards, values, next_values, flags(F, F, F), flags(F, F, F), gamma=0.5, lam=0.5)
    np.testing.assert_array_equal(adv2, adv)
    np.testing.assert_array_equal(returns, arr(2.15625, 3.625, 5.0))  # A + V


def test_gae_stops_at_episode_ends():
    rewards = arr(1, 2, 3)
    values = arr(0.5, 1, 1.5)
    next_values = arr(9, 6, 4)  # 9 follows a terminal: ignored; 6 = V(final obs) of a truncation
    adv = gae_advantages(rewards, values, next_values, flags(T, F, F), flags(F, T, F), gamma=0.5, lam=0.5)
    # delta_0 = 1 + 0 - 0.5 = 0.5;  delta_1 = 2 + 0.5 * 6 - 1 = 4;  delta_2 = 3 + 0.5 * 4 - 1.5 = 3.5
    # every step ends its episode or the rollout, nothing is carried: A = delta
    np.testing.assert_array_equal(adv, arr(0.5, 4, 3.5))


@pytest.mark.parametrize("shape", [(12,), (12, 3)])
def test_gae_with_lambda_one_equals_n_step_returns_minus_values(shape):
    rng = np.random.default_rng(0)
    rewards = rng.normal(size=shape).astype(np.float32)
    values = rng.normal(size=shape).astype(np.float32)
    terminated = rng.random(shape) < 0.3
    truncated = rng.random(shape) < 0.3
    assert terminated.any() and truncated.any()
    # next_values[t] is V(s_{t+1}): the next row's value inside an episode, anything at its end
    next_values = np.concatenate([values[1:], rng.normal(size=(1, *shape[1:]))]).astype(np.float32)
    ends = terminated | truncated
    next_values[ends] = rng.normal(size=ends.sum())
    gae = gae_advantages(rewards, values, next_values, terminated, truncated, gamma=0.9, lam=1.0)
    returns = n_step_returns(rewards, next_values, terminated, truncated, gamma=0.9)
    assert gae.shape == shape
    np.testing.assert_allclose(gae, returns - values, rtol=0, atol=1e-5)
    ret, adv = returns_and_advantages(rewards, values, next_values, terminated, truncated, 0.9, 1.0)
    np.testing.assert_array_equal(ret, returns)
    np.testing.assert_array_equal(adv, returns - values)
