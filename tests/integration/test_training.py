"""Whole runs on real envs and real worker processes: stop conditions, continued learning, Box actions."""

import csv

import numpy as np
import torch

from a3c import A2C, A3C
from a3c.run.checkpoint import load_checkpoint


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_max_seconds_stops_the_run(tmp_path):
    model = A3C("CartPole-v1", workers=2, seed=0, verbose=0, eval_interval=0, final_eval_episodes=0)
    model.learn(total_steps=10**9, max_seconds=3, run_dir=tmp_path)
    r = model.last_result
    assert r.stop_reason == "max_seconds"
    assert 3 <= r.elapsed < 30
    assert 0 < r.steps < 10**9 and r.final_eval is None
    assert load_checkpoint(tmp_path / "model.safetensors").counters["steps"] == r.steps


def test_learn_again_continues_the_counters_and_the_logs(tmp_path):
    model = A3C("CartPole-v1", workers=1, seed=0, verbose=0, eval_interval=0, final_eval_episodes=2)
    model.learn(total_steps=3000, run_dir=tmp_path)
    first = model.num_steps
    assert first >= 3000 and model.last_result.stop_reason == "total_steps"
    episodes = len(rows(tmp_path / "episodes.csv"))
    model.learn(total_steps=3000, run_dir=tmp_path)
    assert model.num_steps >= first + 3000
    log = rows(tmp_path / "episodes.csv")
    assert len(log) > episodes  # appended, one header
    assert max(int(row["global_step"]) for row in log) > first
    evaluations = rows(tmp_path / "evaluations.csv")
    assert [int(row["episodes"]) for row in evaluations] == [2, 2]
    assert load_checkpoint(tmp_path / "model.safetensors").counters["steps"] == model.num_steps


def test_box_actions_train_save_and_load(tmp_path):
    model = A3C("Pendulum-v1", workers=1, seed=0, verbose=0, eval_interval=0, final_eval_episodes=1)
    before = [p.detach().clone() for p in model.policy.parameters()]
    model.learn(total_steps=1000, run_dir=tmp_path)
    assert any(not torch.equal(p, q) for p, q in zip(model.policy.parameters(), before, strict=True))
    loaded = A3C.load(tmp_path / "model.safetensors", verbose=0)
    # the checkpoint holds the network the final evaluation scored (its episodes start at seed 1e6)
    assert loaded.evaluate(episodes=1, seed=1_000_000).returns == model.last_result.final_eval.returns
    obs = np.random.default_rng(0).uniform(-1, 1, size=(16, 3)).astype(np.float32)
    actions, _ = loaded.predict(obs, deterministic=True)
    np.testing.assert_array_equal(actions, model.predict(obs, deterministic=True)[0])
    assert actions.shape == (16, 1) and np.all(np.abs(actions) <= 2.0)  # clipped to the Box
    assert -2.0 <= loaded.predict(obs[0])[0][0] <= 2.0


def test_state_dependent_exploration_samples_around_the_greedy_action():
    model = A2C("Pendulum-v1", seed=0, verbose=0)
    assert model.config.use_sde  # the continuous-control preset's
    obs = np.array([1.0, 0.0, 0.5], dtype=np.float32)
    greedy, _ = model.predict(obs, deterministic=True)
    samples = np.array([model.predict(obs)[0] for _ in range(200)])
    assert len(np.unique(samples)) > 150  # fresh noise on every call, not one fixed draw
    assert abs(np.median(samples) - greedy[0]) < 0.2 and samples.std() > 0.05


def test_the_model_kept_at_the_target_is_the_one_that_was_evaluated(tmp_path):
    # Workers go on updating the shared network while the trainer evaluates a snapshot of it. A target
    # below CartPole's maximum stops the run mid-learning, where any later update changes the returns:
    # replaying the evaluation that hit the target on the saved model must give its returns exactly.
    model = A3C("CartPole-v1", workers=2, seed=0, verbose=0, eval_interval=5000, eval_episodes=10,
                final_eval_episodes=0)
    model.learn(total_steps=300_000, target_return=150.0, run_dir=tmp_path)
    assert model.last_result.stop_reason == "target_return"
    hit = rows(tmp_path / "evaluations.csv")[-1]
    assert float(hit["mean_return"]) >= 150.0
    loaded = A3C.load(tmp_path / "model.safetensors", verbose=0)
    # the trainer seeds its periodic evaluations with 10_000 + the global step they were taken at
    replay = loaded.evaluate(int(hit["episodes"]), deterministic=True, seed=10_000 + int(hit["global_step"]))
    assert replay.mean_return == float(hit["mean_return"])
