"""Environment construction, the spaces we support, and the serial envs' vector-env layout."""

import numpy as np
import pytest
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from a3c.envs.make import SerialEnvs, make_env, reward_threshold
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


@pytest.mark.parametrize("n", [1, 3])
def test_serial_envs_match_sync_vector_env_with_same_step_autoreset(n):
    limit = 12
    serial = SerialEnvs([make_env("CartPole-v1", max_episode_steps=limit) for _ in range(n)])
    vector = SyncVectorEnv([lambda: make_env("CartPole-v1", max_episode_steps=limit)] * n,
                           autoreset_mode=AutoresetMode.SAME_STEP)
    obs_s, _ = serial.reset(seed=7)
    obs_v, _ = vector.reset(seed=7)
    np.testing.assert_array_equal(obs_s, obs_v)
    assert obs_s.shape == (n, 4) and obs_s.dtype == np.float32
    # pushing left falls over before the time limit (termination); alternating survives it
    # (truncation); env i starts alternating i steps later, so the envs end at different steps
    seen = {"terminated": 0, "truncated": 0}
    for step in range(90):
        actions = np.array([0 if step < 30 + i else step % 2 for i in range(n)])
        o_s, r_s, te_s, tr_s, info_s = serial.step(actions)
        o_v, r_v, te_v, tr_v, info_v = vector.step(actions)
        np.testing.assert_array_equal(o_s, o_v)  # after an end: the next episode's first obs
        np.testing.assert_array_equal(r_s, r_v)
        np.testing.assert_array_equal(te_s, te_v)
        np.testing.assert_array_equal(tr_s, tr_v)
        assert r_s.shape == te_s.shape == tr_s.shape == (n,)
        assert set(info_s) == set(info_v)
        if not (te_v | tr_v).any():
            continue
        seen["terminated"] += int(te_v.sum())
        seen["truncated"] += int(tr_v.sum())
        np.testing.assert_array_equal(info_s["_final_obs"], info_v["_final_obs"])
        for i in np.flatnonzero(info_v["_final_obs"]):
            np.testing.assert_array_equal(info_s["final_obs"][i], info_v["final_obs"][i])
        assert info_s["final_obs"].dtype == info_v["final_obs"].dtype == object
        final_s, final_v = info_s["final_info"], info_v["final_info"]
        assert set(final_s) == set(final_v)
        np.testing.assert_array_equal(final_s["_episode"], final_v["_episode"])
        assert set(final_s["episode"]) == set(final_v["episode"]) == {"r", "_r", "l", "_l", "t", "_t"}
        for key in ("r", "l", "_r", "_l"):
            np.testing.assert_array_equal(final_s["episode"][key], final_v["episode"][key])
    assert seen["terminated"] >= 2 * n and seen["truncated"] >= 2 * n
    assert serial.get_attr("episode_lengths") == vector.get_attr("episode_lengths")
    serial.close()
    vector.close()
