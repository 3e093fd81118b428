"""Environment construction, the spaces we support, and the single-env adapter's vector-env layout."""

import numpy as np
import pytest
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from a3c.envs.make import SingleEnv, make_env, reward_threshold
from a3c.errors import EnvError


@pytest.mark.parametrize("env_id", [
    "CartPole-v1", "gymnasium.envs.classic_control:CartPole-v1", "tests.toy_envs:ToyIdentity-v0",
    "Pendulum-v1",
])
def test_make_env_takes_plain_and_module_prefixed_ids(env_id):
    env = make_env(env_id, seed=0)
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    env.step(env.action_space.sample())
    env.close()


def test_make_env_records_episode_statistics_and_passes_options():
    env = make_env("CartPole-v1", max_episode_steps=3)
    env.reset(seed=0)
    for _ in range(2):
        assert not env.step(0)[3]
    *_, truncated, info = env.step(0)
    assert truncated and info["episode"]["l"] == 3 and info["episode"]["r"] == 3.0


@pytest.mark.parametrize("env_id, words", [
    ("NoSuchEnv-v0", ["NoSuchEnv-v0"]),
    ("CartPole-v99", ["CartPole-v99"]),
    ("no_such_module_xyz:Thing-v0", ["no_such_module_xyz"]),
    ("tests.toy_envs:ToyTextObs-v0", ["ToyTextObs-v0", "observation space Text(", "supported"]),
    ("tests.toy_envs:ToyGraphObs-v0", ["observation space Graph(", "supported"]),
    ("tests.toy_envs:ToySequenceObs-v0", ["observation space Sequence(", "supported"]),
    ("tests.toy_envs:ToyDictWithTextObs-v0", ["part 'name' is Text(", "Dict or Tuple of these"]),
    ("tests.toy_envs:ToyDictAction-v0", ["ToyDictAction-v0", "action space Dict(", "MultiBinary"]),
    ("tests.toy_envs:ToyUnboundedBox-v0", ["ToyUnboundedBox-v0", "finite bounds"]),
])
def test_unknown_ids_and_unsupported_spaces_are_env_errors(env_id, words):
    with pytest.raises(EnvError) as info:
        make_env(env_id)
    for word in words:
        assert word in str(info.value)


def test_reward_threshold():
    assert reward_threshold("CartPole-v1") == 475.0
    assert reward_threshold("tests.toy_envs:ToyIdentity-v0") == 20.0
    assert reward_threshold("Pendulum-v1") is None
    assert reward_threshold("NoSuchEnv-v0") is None


def _step_both(single, vector, actions):
    """Step both with the same actions; yield their results side by side."""
    for a in actions:
        yield single.step(np.array([a])), vector.step(np.array([a]))


def test_single_env_matches_sync_vector_env_with_same_step_autoreset():
    limit = 12
    single = SingleEnv(make_env("CartPole-v1", max_episode_steps=limit))
    vector = SyncVectorEnv([lambda: make_env("CartPole-v1", max_episode_steps=limit)],
                           autoreset_mode=AutoresetMode.SAME_STEP)
    obs_s, _ = single.reset(seed=7)
    obs_v, _ = vector.reset(seed=7)
    np.testing.assert_array_equal(obs_s, obs_v)
    assert obs_s.shape == (1, 4)
    # pushing left falls over before the time limit (termination); alternating survives it (truncation)
    actions = [0] * 30 + [0, 1] * 30
    seen = {"terminated": 0, "truncated": 0}
    for (o_s, r_s, te_s, tr_s, info_s), (o_v, r_v, te_v, tr_v, info_v) in _step_both(single, vector, actions):
        np.testing.assert_array_equal(o_s, o_v)  # after an end: both are the next episode's first obs
        np.testing.assert_array_equal(r_s, r_v)
        np.testing.assert_array_equal(te_s, te_v)
        np.testing.assert_array_equal(tr_s, tr_v)
        assert r_s.shape == te_s.shape == tr_s.shape == (1,)
        assert set(info_s) == set(info_v)
        if te_v[0] or tr_v[0]:
            seen["terminated" if te_v[0] else "truncated"] += 1
            np.testing.assert_array_equal(info_s["_final_obs"], info_v["_final_obs"])
            np.testing.assert_array_equal(info_s["final_obs"][0], info_v["final_obs"][0])
            assert info_s["final_obs"].dtype == info_v["final_obs"].dtype == object
            final_s, final_v = info_s["final_info"], info_v["final_info"]
            assert set(final_s) == set(final_v)
            np.testing.assert_array_equal(final_s["_episode"], final_v["_episode"])
            assert set(final_s["episode"]) == set(final_v["episode"]) == {"r", "_r", "l", "_l", "t", "_t"}
            for key in ("r", "l", "_r", "_l"):
                np.testing.assert_array_equal(final_s["episode"][key], final_v["episode"][key])
    assert seen["terminated"] >= 2 and seen["truncated"] >= 2
    single.close()
    vector.close()
