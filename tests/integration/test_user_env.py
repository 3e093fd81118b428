"""The user's own env through the front door: kwargs, wrappers, a function that builds it, an instance;
the checkpoint records how it was made, and load() makes it again (or takes the caller's)."""

from __future__ import annotations

import csv

import gymnasium as gym
import numpy as np
import pytest

import tests.toy_envs as toy
from a3c import A2C, A3C, evaluate_policy, load
from a3c.errors import ConfigError, UntrustedCodeError
from a3c.run.checkpoint import load_checkpoint

FAST = dict(verbose=0, eval_interval=0, final_eval_episodes=0, checkpoint_interval=0, log_interval=0.2)


def episode_returns(run_dir) -> list[float]:
    with open(run_dir / "episodes.csv", newline="") as f:
        return [float(r["episode_return"]) for r in csv.DictReader(f)]


def test_env_kwargs_reach_every_worker_and_the_checkpoint(tmp_path):
    # IdentityEnv(n=6) has 6 actions: a worker that made the default n=4 would not fit the network.
    model = A3C("tests.toy_envs:ToyIdentity-v0", workers=2, seed=0, env_kwargs={"n": 6}, **FAST)
    assert model.action_space.n == 6
    model.learn(total_steps=4000, run_dir=tmp_path / "run")
    assert model.last_result.steps >= 4000 and model.last_result.worker_restarts == 0
    assert load_checkpoint(tmp_path / "run" / "model.safetensors").config.env_kwargs == {"n": 6}
    again = load(tmp_path / "run", verbose=0, trust_code=True)  # the id names tests.toy_envs
    assert again.action_space.n == 6


def test_wrappers_given_as_classes_wrap_each_env_and_are_recorded_by_name(tmp_path):
    model = A2C("tests.toy_envs:ToyIdentity-v0", wrappers=[toy.ScaleReward], n_envs=2, seed=0, **FAST)
    assert model.config.env_wrappers == ("tests.toy_envs:ScaleReward",)
    model.learn(total_steps=400, run_dir=tmp_path / "run")
    returns = episode_returns(tmp_path / "run")
    assert returns and all(r % 10 == 0 for r in returns) and max(returns) >= 10  # rewards of 10
    with pytest.raises(UntrustedCodeError, match="tests.toy_envs"):
        load(tmp_path / "run", verbose=0)
    assert load(tmp_path / "run", verbose=0, trust_code=True).config.env_wrappers == model.config.env_wrappers


def test_a_function_that_builds_the_env_is_named_and_called_in_each_worker(tmp_path):
    model = A3C(toy.make_identity, workers=2, seed=0, env_kwargs={"n": 3}, **FAST)
    assert model.config.env_id == "tests.toy_envs:make_identity"
    assert model.config.target_return is None  # an env function registers no threshold
    model.learn(total_steps=3000, run_dir=tmp_path / "run")
    assert model.last_result.worker_restarts == 0 and episode_returns(tmp_path / "run")


def test_an_env_instance_is_taken_by_its_registration():
    env = gym.make("CartPole-v1", max_episode_steps=77)
    model = A2C(env, **FAST)
    assert model.config.env_id == "CartPole-v1" and model.config.env_kwargs == {"max_episode_steps": 77}
    assert model.evaluate(episodes=1).lengths[0] <= 77
    env.close()


def test_an_env_instance_without_a_registration_or_an_unnamable_function_is_a_clear_error():
    with pytest.raises(ConfigError, match="no registration"):
        A2C(toy.IdentityEnv(), **FAST)
    with pytest.raises(ConfigError, match="top level of a module"):
        A2C(lambda: toy.IdentityEnv(), **FAST)


def test_load_with_env_replaces_the_recorded_env_and_needs_no_trust(tmp_path):
    model = A2C("tests.toy_envs:ToyIdentity-v0", wrappers=["tests.toy_envs:ScaleReward"], seed=0, **FAST)
    model.save(tmp_path / "m.safetensors")
    loaded = A2C.load(tmp_path / "m.safetensors", env=toy.make_identity, device="cpu", verbose=0)
    assert loaded.config.env_id == "tests.toy_envs:make_identity" and loaded.config.env_wrappers == ()
    mean, std = evaluate_policy(loaded, toy.make_identity(), n_eval_episodes=3)
    assert 0 <= mean <= 20 and std >= 0
    returns, lengths = evaluate_policy(loaded, "tests.toy_envs:ToyIdentity-v0", n_eval_episodes=2,
                                       return_episode_rewards=True)
    assert lengths == [20, 20] and len(returns) == 2


def test_predict_gives_numpy_arrays_for_one_observation_and_for_a_batch():
    model = A2C("CartPole-v1", **FAST)
    obs, _ = gym.make("CartPole-v1").reset(seed=0)
    action, state = model.predict(obs, deterministic=True)
    assert isinstance(action, np.ndarray) and action.shape == () and state is None
    actions, _ = model.predict(np.stack([obs, obs]), deterministic=True)
    assert isinstance(actions, np.ndarray) and actions.shape == (2,)
    pendulum = A2C("Pendulum-v1", **FAST)
    action, _ = pendulum.predict(np.zeros(3, dtype=np.float32), deterministic=True)
    assert isinstance(action, np.ndarray) and action.shape == (1,) and action.dtype == np.float32


def test_learn_takes_total_timesteps_as_stable_baselines3_does(tmp_path):
    model = A2C("CartPole-v1", seed=0, **FAST).learn(total_timesteps=800, run_dir=tmp_path / "run")
    assert model.last_result.steps >= 800 and model.num_steps == model.last_result.steps
    with pytest.raises(ConfigError, match="same option"):
        model.learn(total_steps=100, total_timesteps=200)


def test_the_command_line_takes_env_kwargs_and_an_env_function(a3c_cli, tmp_path):
    result = a3c_cli("train", "tests.toy_envs:make_identity", "--env-kwargs", '{"n": 5}', "--algo", "a2c",
                     "--total-steps", "600", "--final-eval-episodes", "2", "--quiet",
                     "--run-dir", tmp_path / "run")
    assert result.returncode == 0, result.stderr
    ckpt = load_checkpoint(tmp_path / "run" / "model.safetensors")
    assert ckpt.config.env_id == "tests.toy_envs:make_identity" and ckpt.config.env_kwargs == {"n": 5}
    assert ckpt.spec.action_dim == 5
    bad = a3c_cli("train", "CartPole-v1", "--env-kwargs", "[1, 2]", "--quiet")
    assert bad.returncode == 2 and "JSON object" in bad.stderr


def test_an_env_function_that_raises_shows_its_traceback_once(a3c_cli, tmp_path):
    result = a3c_cli("train", "tests.toy_envs:broken_factory", "--workers", "2", "--quiet",
                     "--run-dir", tmp_path / "run")
    assert result.returncode == 2
    assert result.stderr.count("a3c: error: the env function 'tests.toy_envs:broken_factory' raised "
                               "RuntimeError: toy env factory broke on purpose") == 1
    assert result.stderr.count("Traceback") == 1
    assert 'raise RuntimeError("toy env factory broke on purpose")' in result.stderr  # the user's line
