"""The real `a3c` command in a subprocess: clear one-line errors, and a short real training run."""

import csv
import json

import pytest

from a3c import A3C
from a3c.run.checkpoint import load_checkpoint


def assert_usage_error(result, *words):
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("a3c: error:"), lines[0]
    assert "Traceback" not in result.stderr + result.stdout
    for word in words:
        assert word in lines[0]


@pytest.mark.parametrize("args, words", [
    (["train", "NoSuchEnv-v0"], ["NoSuchEnv-v0"]),
    (["train", "Taxi-v3"], ["Taxi-v3", "Taxi-v4"]),  # Gymnasium's out-of-date warning not repeated
    (["train", "tests.toy_envs:ToyTextObs-v0"], ["observation space Text(", "supported"]),
    (["train", "tests.toy_envs:ToyGraphObs-v0"], ["observation space Graph(", "supported"]),
    (["train", "tests.toy_envs:ToyDictAction-v0"], ["action space Dict(", "supported"]),
    (["train", "CartPole-v1", "--workers", "-1"], ["workers"]),
    (["train", "CartPole-v1", "--total-steps", "0"], ["total_steps"]),
    (["train", "CartPole-v1", "--lr", "abc"], ["--lr", "abc"]),
    (["train", "CartPole-v1", "--hidden-sizes", "64,x"], ["hidden"]),
    (["train", "CartPole-v1", "--no-such-option", "1"], ["--no-such-option"]),
    (["train", "CartPole-v1", "--preset", "nope"], ["nope"]),
    (["eval"], ["checkpoint"]),
])
def test_bad_training_input_is_one_line_and_exit_status_2(a3c_cli, args, words):
    assert_usage_error(a3c_cli(*args), *words)


def test_eval_of_a_missing_checkpoint(a3c_cli, tmp_path):
    missing = tmp_path / "missing.safetensors"
    assert_usage_error(a3c_cli("eval", missing), str(missing))
    assert_usage_error(a3c_cli("eval", tmp_path), str(tmp_path))  # a run directory without a model


def test_eval_of_a_foreign_file(a3c_cli, tmp_path):
    foreign = tmp_path / "notes.safetensors"
    foreign.write_text("these are not weights\n" * 10)
    assert_usage_error(a3c_cli("eval", foreign), str(foreign))


def test_short_training_run_then_eval(a3c_cli, tmp_path):
    run = tmp_path / "run"
    result = a3c_cli("train", "CartPole-v1", "--workers", "2", "--total-steps", "20000",
                     "--run-dir", run, "--quiet")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert (run / "model.safetensors").is_file()
    ckpt = load_checkpoint(run / "model.safetensors")
    assert ckpt.counters["steps"] >= 20000 and ckpt.counters["updates"] > 0

    with open(run / "episodes.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["wall_time", "global_step", "worker", "episode_return", "episode_length"]
    assert {row[2] for row in rows[1:]} == {"0", "1"}  # both workers finished episodes
    for row in rows[1:]:
        assert float(row[3]) == int(row[4]) > 0  # CartPole: return = length
    assert sum(int(row[4]) for row in rows[1:]) <= ckpt.counters["steps"]
    for name in ("updates.csv", "evaluations.csv"):
        with open(run / name, newline="") as f:
            assert len(list(csv.reader(f))) >= 2, name  # a header and at least one row
    assert any(p.name.startswith("events.out.tfevents") for p in (run / "tb").rglob("*"))

    result = a3c_cli("eval", run / "model.safetensors", "--episodes", "3", "--json")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, result.stdout
    summary = json.loads(lines[0])
    assert summary["episodes"] == 3 and summary["std_return"] >= 0
    # what the command reports is what the checkpoint scores, and more than an untrained network
    assert summary["mean_return"] == A3C.load(run, verbose=0).evaluate(episodes=3, seed=0).mean_return
    untrained = A3C("CartPole-v1", seed=0, verbose=0).evaluate(episodes=3, seed=0).mean_return
    assert summary["mean_return"] >= 2 * untrained + 50, (summary, untrained)

    # a run directory stands for its model
    again = a3c_cli("eval", run, "--episodes", "3", "--json")
    assert again.returncode == 0 and json.loads(again.stdout) == summary
