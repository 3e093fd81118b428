"""The Atari pipeline end to end on real ale-py games: preprocessing, clipped rewards and life loss
for the learner only, whole-game scores in the logs, both id styles, A2C and A3C runs."""

from __future__ import annotations

import csv

import numpy as np
import pytest

pytest.importorskip("ale_py")
pytest.importorskip("cv2")

from a3c import A2C, A3C, load  # noqa: E402
from a3c.envs.make import make_env, make_training_envs  # noqa: E402
from a3c.presets import build_config  # noqa: E402
from a3c.run.checkpoint import load_checkpoint  # noqa: E402


@pytest.mark.parametrize("env_id", ["ALE/Pong-v5", "PongNoFrameskip-v4"])
def test_both_id_styles_give_stacked_84x84_bytes(env_id):
    env = make_env(env_id, seed=0, training=True)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (4, 84, 84) and obs.dtype == np.uint8
    assert env.observation_space.shape == (4, 84, 84)
    assert env.unwrapped._frameskip == 1  # AtariPreprocessing skips, with the max of two frames
    for _ in range(50):
        obs, *_ = env.step(env.action_space.sample())
    assert obs.dtype == np.uint8 and obs.max() > 0
    env.close()


@pytest.mark.parametrize("vec_env", ["ale", "sync"])
def test_learner_sees_clipped_rewards_and_lives_the_log_sees_whole_games(vec_env):
    """SpaceInvaders: invaders score 5 to 30 points, and a game has 3 lives. Both pipelines."""
    config = build_config("ALE/SpaceInvaders-v5", n_envs=1, vec_env=vec_env)
    envs = make_training_envs(config, seed=0)
    envs.reset(seed=0)
    rng = np.random.default_rng(0)
    clipped_sum, life_ends, steps, game = 0.0, 0, 0, None
    for _ in range(5000):
        _, reward, terminated, truncated, info = envs.step(rng.integers(envs.single_action_space.n, size=1))
        steps += 1
        assert -1.0 <= reward[0] <= 1.0
        clipped_sum += float(reward[0])
        if "episode" in info.get("final_info", {}):  # statistics below the learner's view: a whole game
            game = info["final_info"]["episode"]
            break
        if terminated[0]:
            life_ends += 1  # a lost life: the game goes on, nothing is pressed for the agent
    envs.close()
    assert game is not None, "no game ended in 5000 steps"
    assert life_ends == 2  # the learner saw two of the three lives end before the game did
    assert float(game["r"][0]) > clipped_sum > 0  # the real score, unclipped
    assert int(game["l"][0]) == steps  # every step the learner took, and no other

    real = make_env("ALE/SpaceInvaders-v5", seed=0)  # evaluation: the real game
    real.reset(seed=0)
    rewards = set()
    for _ in range(300):
        _, reward, terminated, truncated, _ = real.step(int(rng.integers(real.action_space.n)))
        rewards.add(float(reward))
        assert not truncated
    assert max(rewards) >= 5.0
    real.close()


def _check_run(run_dir, model, steps):
    with open(run_dir / "episodes.csv") as f:
        games = list(csv.DictReader(f))
    for g in games:  # Pong scores are whole games: -21..21 over hundreds of steps
        assert -21 <= float(g["episode_return"]) <= 21 and int(g["episode_length"]) > 100
    result = model.last_result
    assert result.steps >= steps
    # Every step counted once: the step counter, the games logged and those still running, the checkpoint.
    assert sum(int(g["episode_length"]) for g in games) + result.unfinished_steps == result.steps
    assert load_checkpoint(run_dir / "model.safetensors").counters["steps"] == result.steps
    loaded = load(run_dir / "model.safetensors", verbose=0)
    assert loaded.policy.spec.obs_shape == (4, 84, 84) and loaded.policy.spec.torso == "a3c-conv"
    obs = make_env(model.config.env_id).reset(seed=0)[0]
    action, _ = loaded.predict(obs, deterministic=True)
    assert 0 <= action < 6


def test_a2c_runs_the_pipeline(tmp_path):
    model = A2C("PongNoFrameskip-v4", n_envs=2, n_steps=20, seed=0, verbose=0, eval_interval=0,
                final_eval_episodes=0, checkpoint_interval=0)
    assert model.config.preset == "atari-a2c" and model.config.vec_env == "ale"
    model.learn(total_steps=2_000, run_dir=tmp_path)
    _check_run(tmp_path, model, 2_000)


def test_a3c_lstm_runs_the_pipeline(tmp_path):
    model = A3C("ALE/Pong-v5", core="lstm", workers=2, seed=0, verbose=0, eval_interval=0,
                final_eval_episodes=0, checkpoint_interval=0)
    assert model.config.preset == "atari-lstm" and model.policy.recurrent
    model.learn(total_steps=2_000, run_dir=tmp_path)
    _check_run(tmp_path, model, 2_000)
