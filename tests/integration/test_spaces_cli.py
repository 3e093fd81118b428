"""Gymnasium's toy-text envs and CarRacing train from the command line: each run ends with a
checkpoint and an evaluation, and FrozenLake without its slip is learned."""

from __future__ import annotations

import csv

import pytest

import a3c
from a3c import A2C
from a3c.envs.make import make_env
from a3c.run.checkpoint import load_checkpoint


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def trains(a3c_cli, tmp_path, env_id, *options, steps=2000):
    run = tmp_path / "run"
    result = a3c_cli("train", env_id, "--total-steps", str(steps), "--eval-interval", "0",
                     "--final-eval-episodes", "1", "--checkpoint-interval", "0", "--run-dir", run, "--quiet",
                     *options)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert load_checkpoint(run / "model.safetensors").counters["steps"] >= steps
    assert "final evaluation (greedy, 1 episodes)" in result.stdout
    (final,) = rows(run / "evaluations.csv")
    assert int(final["episodes"]) == 1
    return run, result


@pytest.mark.parametrize("env_id, options", [
    ("FrozenLake-v1", ["--algo", "a2c"]),  # Discrete(16) observations
    ("Taxi-v4", ["--algo", "a2c"]),  # Discrete(500) observations
    # no time limit: a greedy policy that walks into the wall forever is cut by the evaluation's own
    ("CliffWalking-v1", ["--algo", "a2c"]),
    ("Blackjack-v1", ["--workers", "2"]),  # A3C, the default algo: a Tuple of three Discrete parts
])
def test_toy_text_envs_train_from_the_command_line(a3c_cli, tmp_path, env_id, options):
    run, _ = trains(a3c_cli, tmp_path, env_id, *options)
    model = a3c.load(run, verbose=0)  # and the checkpoint acts again, on the env's own observations
    obs, _ = make_env(env_id).reset(seed=0)
    action, _ = model.predict(obs, deterministic=True)
    assert model.action_space.contains(action)


def test_car_racing_trains_from_the_command_line_on_its_channel_last_frames(a3c_cli, tmp_path):
    # 96x96x3 bytes, Box actions: the box2d preset, the A3C conv torso; the preset's
    # obs_norm has no vector to normalise and is skipped without a warning, as the caller did not ask.
    # The env steps about 100 times a second: its episodes are cut to 100 steps (Gymnasium's own
    # max_episode_steps), or the final evaluation's one episode would be 1,000 of them.
    run, result = trains(a3c_cli, tmp_path, "CarRacing-v3", "--algo", "a2c", "--n-envs", "2",
                         "--env-kwargs", '{"max_episode_steps": 100}', steps=200)
    assert "a3c: warning:" not in result.stderr, result.stderr
    spec = load_checkpoint(run / "model.safetensors").spec
    assert spec.torso == "a3c-conv" and spec.obs_parts[0].channels_last and not spec.obs_norm


@pytest.mark.slow
def test_frozen_lake_without_its_slip_is_learned_from_the_command_line(a3c_cli, tmp_path):
    env_id = "tests.toy_envs:ToyFrozenLakeNonSlippery-v0"
    untrained = A2C(env_id, seed=0, verbose=0).evaluate(episodes=1).mean_return
    assert untrained == 0.0  # the greedy policy of the untrained network never reaches the goal
    run = tmp_path / "run"
    result = a3c_cli("train", env_id, "--algo", "a2c", "--seed", "0", "--total-steps", "30000",
                     "--eval-interval", "2000", "--eval-episodes", "1", "--final-eval-episodes", "1",
                     "--run-dir", run, "--quiet")
    assert result.returncode == 0, result.stderr
    assert "stopped: target_return" in result.stdout  # the registered threshold, 1.0: every episode
    assert rows(run / "evaluations.csv")[-1]["mean_return"] == "1.0"
