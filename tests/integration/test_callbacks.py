"""Callbacks run in the supervising process at its decision points, and can stop a run cleanly."""

from __future__ import annotations

import multiprocessing

import pytest

import tests.toy_envs  # noqa: F401
from a3c import (
    A2C,
    A3C,
    Callback,
    CheckpointCallback,
    EvalCallback,
    StopTrainingOnNoModelImprovement,
    StopTrainingOnRewardThreshold,
    load,
)
from a3c.errors import ConfigError
from a3c.run.checkpoint import load_checkpoint

IDENTITY = "tests.toy_envs:ToyIdentity-v0"  # 20 steps, reward 1 for naming the observed target
QUIET = dict(verbose=0, eval_interval=0, final_eval_episodes=0, checkpoint_interval=0, log_interval=0.05)


class Recorder(Callback):
    """Writes down what it was told, and stops the run after `stop_after` batches of reports."""

    def __init__(self, stop_after: int | None = None):
        super().__init__()
        self.stop_after = stop_after
        self.events: list[str] = []
        self.steps_seen: list[int] = []

    def on_training_start(self):
        self.events.append("start")

    def on_reports(self, reports):
        self.n_calls += 1
        self.steps_seen.append(self.num_timesteps)
        return self.stop_after is None or self.n_calls < self.stop_after

    def on_evaluation(self, result):
        self.events.append("evaluation")

    def on_checkpoint(self, path):
        self.events.append(f"checkpoint {path.name}")

    def on_training_end(self):
        self.events.append("end")


def test_a_callback_that_returns_false_stops_a3c_cleanly_with_a_checkpoint(tmp_path):
    recorder = Recorder(stop_after=3)
    model = A3C(IDENTITY, workers=2, seed=0, total_steps=10**7, target_return=None, **QUIET)
    model.learn(callback=recorder, run_dir=tmp_path / "run")
    result = model.last_result
    assert result.stop_reason == "callback" and result.steps < 10**7
    assert recorder.events == ["start", "end"] and recorder.n_calls == 3
    assert recorder.steps_seen == sorted(recorder.steps_seen) and recorder.model is model
    assert load_checkpoint(result.checkpoint).counters["steps"] == result.steps
    assert not [p for p in multiprocessing.active_children() if p.name.startswith("a3c-worker-")]
    assert "a callback stopped the run" in (tmp_path / "run" / "events.csv").read_text()


def test_eval_callback_keeps_the_best_model_and_its_child_stops_at_the_threshold(tmp_path):
    stop = StopTrainingOnRewardThreshold(reward_threshold=15)
    evaluator = EvalCallback(eval_freq=1000, n_eval_episodes=3, callback_on_new_best=stop)
    model = A2C(IDENTITY, seed=0, n_envs=8, total_steps=200_000, target_return=None, **QUIET)
    model.learn(callback=[evaluator], run_dir=tmp_path / "run")
    assert model.last_result.stop_reason == "callback" and model.last_result.steps < 200_000
    assert evaluator.best_mean_reward >= 15
    best = load(tmp_path / "run" / "best_model.safetensors", verbose=0, trust_code=True)
    seed = 20_000 + evaluator.evaluations[-1][0]  # the seeds of the evaluation that was best
    assert best.evaluate(episodes=3, seed=seed).mean_return >= 15
    untrained = A2C(IDENTITY, seed=0, n_envs=8, **QUIET)
    assert untrained.evaluate(episodes=3, seed=seed).mean_return < 15  # so it was learned


def test_checkpoint_callback_saves_every_save_freq_steps(tmp_path):
    # A2C reports after every update when log_interval is shorter than one: as many batches of
    # reports as updates, however fast the machine, so each multiple of 500 is passed at one.
    saver = CheckpointCallback(save_freq=500, name_prefix="toy")
    model = A2C(IDENTITY, seed=0, n_envs=4, **{**QUIET, "log_interval": 1e-9})
    model.learn(2000, callback=saver, run_dir=tmp_path / "run")
    names = sorted(p.name for p in (tmp_path / "run" / "checkpoints").glob("toy_*_steps.safetensors"))
    assert len(names) == len(saver.saved) >= 3
    steps = [load_checkpoint(p).counters["steps"] for p in saver.saved]
    # one save per multiple of 500 passed, at the first batch of reports after it
    assert [s // 500 for s in steps] == sorted(set(s // 500 for s in steps)) and steps[0] >= 500


def test_no_improvement_stops_after_so_many_evaluations_and_hooks_hear_the_periodic_ones(tmp_path):
    # Two evaluation episodes with seeds 10_000 + steps and + 1: one even, one odd, a mean of 0.5
    # every time on ToyEvenSeed, whatever the network: the first is the best, then none is better.
    recorder = Recorder()
    stopper = StopTrainingOnNoModelImprovement(max_no_improvement_evals=2)
    model = A2C("tests.toy_envs:ToyEvenSeed-v0", seed=0, total_steps=100_000, target_return=None,
                **{**QUIET, "eval_interval": 100, "eval_episodes": 2, "checkpoint_interval": 150})
    model.learn(callback=[recorder, stopper], run_dir=tmp_path / "run")
    assert model.last_result.stop_reason == "callback"
    assert stopper.evals == 3 and recorder.events.count("evaluation") == 3
    assert any(e.startswith("checkpoint step_") for e in recorder.events)


def test_a_callback_must_be_a_callback():
    with pytest.raises(ConfigError, match="Callback"):
        A2C("CartPole-v1", **QUIET).learn(100, callback=print)
