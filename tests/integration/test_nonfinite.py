"""NaN rewards: a non-finite loss or gradient is skipped and counted, never applied; if it keeps
happening, the run stops with a clear error."""

import csv
import multiprocessing

import pytest
import torch

from a3c import A2C, A3C, NonFiniteError
from a3c.cli import main
from a3c.run.checkpoint import load_checkpoint

FAST = dict(n_envs=4, n_steps=5, eval_interval=0, checkpoint_interval=0, final_eval_episodes=0,
            target_return=None, log_interval=0.05)


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_updates_with_nan_rewards_are_skipped_counted_and_the_run_goes_on(tmp_path):
    # About one reward in 20 is NaN: most rollouts of 20 steps hold one, some do not.
    model = A2C("tests.toy_envs:ToyNaNReward-v0", verbose=0, seed=0, **FAST)
    model.learn(total_steps=200 * 20, run_dir=tmp_path)
    r = model.last_result
    assert r.stop_reason == "total_steps" and r.steps == 4000
    assert r.skipped_updates > 20 and r.updates > 20
    assert r.updates + r.skipped_updates == 200
    log = rows(tmp_path / "updates.csv")
    assert sum(int(u["skipped"]) for u in log) == r.skipped_updates
    assert sum(int(u["updates"]) for u in log) == r.updates
    for name, p in model.policy.state_dict().items():
        assert torch.isfinite(p).all(), name
    for state in model.optimizer.state.values():
        assert all(torch.isfinite(v).all() for v in state.values())
    assert load_checkpoint(tmp_path).counters["updates"] == r.updates


def test_a3c_workers_that_only_see_nan_stop_the_run_and_nothing_was_applied(tmp_path):
    model = A3C("tests.toy_envs:ToyAlwaysNaN-v0", workers=2, seed=0, verbose=0, eval_interval=0,
                checkpoint_interval=0, final_eval_episodes=0, max_skipped_updates=5, log_interval=0.2)
    before = {k: v.clone() for k, v in model.policy.state_dict().items()}
    with pytest.raises(NonFiniteError) as info:
        model.learn(total_steps=10**6, max_seconds=60, run_dir=tmp_path)
    message = str(info.value)
    assert "skipped 5 updates in a row" in message and "not finite" in message
    assert "max_skipped_updates" in message and "\n" not in message
    for name, p in model.policy.state_dict().items():  # not one update reached the global network
        assert torch.equal(p, before[name]), name
    for state in model.optimizer.state.values():
        assert all(torch.count_nonzero(v) == 0 for v in state.values())
    ckpt = load_checkpoint(tmp_path)  # the final checkpoint is still written
    assert ckpt.counters["updates"] == 0 and ckpt.counters["steps"] >= 5 * model.config.n_steps
    assert not [p for p in multiprocessing.active_children() if p.name.startswith("a3c-worker-")]


def test_the_command_exits_1_with_one_clear_line(tmp_path, capsys):
    code = main(["train", "tests.toy_envs:ToyAlwaysNaN-v0", "--algo", "a2c", "--n-envs", "2",
                 "--max-skipped-updates", "3", "--eval-interval", "0", "--final-eval-episodes", "0",
                 "--run-dir", str(tmp_path), "--quiet"])
    assert code == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("a3c: error:")]
    assert len(errors) == 1 and "learner 0 skipped 3 updates in a row" in errors[0]
    assert (tmp_path / "model.safetensors").is_file()
