"""Worker processes that die or raise: restarted from the global network, up to max_restarts; then
the run stops with WorkerError, quickly, and keeps its checkpoint."""

import csv
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
import torch

from a3c import A3C, WorkerError
from a3c.run.checkpoint import load_checkpoint

SAFETY_SECONDS = 90  # max_seconds for runs that should end by failing: a hang fails, it does not block


def worker_processes() -> list[multiprocessing.Process]:
    return [p for p in multiprocessing.active_children() if p.name.startswith("a3c-worker-")]


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


class Killer(threading.Thread):
    """Once training visibly runs (the shared weights moved), SIGKILL one worker and note the time."""

    def __init__(self, model: A3C, rank: int):
        super().__init__(daemon=True)
        self.model, self.rank = model, rank
        self.initial = [p.detach().clone() for p in model.policy.parameters()]
        self.killed_at: float | None = None
        self.pid: int | None = None

    def _training(self) -> bool:
        pairs = zip(self.model.policy.parameters(), self.initial, strict=True)
        return any(not torch.equal(p, q) for p, q in pairs)

    def run(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            victims = [p for p in worker_processes() if p.name == f"a3c-worker-{self.rank}"]
            if victims and self._training():
                self.pid = victims[0].pid
                os.kill(self.pid, signal.SIGKILL)
                self.killed_at, self.killed_wall = time.monotonic(), time.time()
                return
            time.sleep(0.05)


def test_a_killed_worker_is_restarted_and_training_reaches_its_target(tmp_path):
    # One worker: the target can only be reached by the worker started in place of the killed one,
    # from the global network as the killed one left it.
    model = A3C("tests.toy_envs:ToyIdentity-v0", workers=1, seed=0, verbose=0, eval_interval=1000,
                eval_episodes=5, final_eval_episodes=0, checkpoint_interval=0, log_interval=0.2,
                n_steps=5, lr=1e-3)
    killer = Killer(model, rank=0)
    killer.start()
    model.learn(total_steps=200_000, target_return=19.0, max_seconds=SAFETY_SECONDS, run_dir=tmp_path)
    killer.join(timeout=1)
    r = model.last_result
    assert killer.killed_at is not None, "training never started"
    assert r.stop_reason == "target_return" and r.worker_restarts == 1
    [restart] = [e for e in rows(tmp_path / "events.csv") if e["event"] == "worker_restarted"]
    assert f"worker 0 (pid {killer.pid}) died: killed by SIGKILL" in restart["detail"]
    assert "restart 1 of at most 3" in restart["detail"]
    start = json.loads((tmp_path / "run.json").read_text())["start_time"]
    assert start + float(restart["wall_time"]) - killer.killed_wall < 5, "noticed too late"
    # the new worker learned: updates after the restart, up to the evaluation that hit the target
    later = [u for u in rows(tmp_path / "updates.csv") if float(u["wall_time"]) > float(restart["wall_time"])]
    assert sum(int(u["updates"]) for u in later) > 0
    assert int(rows(tmp_path / "evaluations.csv")[-1]["global_step"]) > int(restart["global_step"])
    assert not worker_processes()


def test_a_killed_worker_without_restarts_stops_the_run_quickly_and_the_checkpoint_is_still_written(
        tmp_path):
    model = A3C("CartPole-v1", workers=2, seed=0, verbose=0, eval_interval=0, final_eval_episodes=0,
                checkpoint_interval=0, max_restarts=0)
    killer = Killer(model, rank=1)
    killer.start()
    with pytest.raises(WorkerError) as info:
        model.learn(total_steps=10**9, max_seconds=SAFETY_SECONDS, run_dir=tmp_path)
    raised_at = time.monotonic()
    killer.join(timeout=1)
    assert killer.killed_at is not None, "training never started"
    assert raised_at - killer.killed_at < 15, "the trainer took too long to notice"
    message = str(info.value)
    assert "worker 1" in message and "SIGKILL" in message and str(killer.pid) in message
    assert "no restarts left (max_restarts 0)" in message

    # what was learned until then is saved: the checkpoint holds the global network as it is now
    ckpt = load_checkpoint(tmp_path / "model.safetensors")
    assert ckpt.counters["steps"] > 0 and ckpt.counters["updates"] > 0
    for name, p in model.policy.state_dict().items():
        torch.testing.assert_close(ckpt.model_state[name], p, rtol=0, atol=0)
    assert not worker_processes(), "the surviving worker was left running"


def test_a_raising_worker_is_restarted_and_its_traceback_logged(tmp_path):
    # Every incarnation of a ToyFailing worker raises at its env's 50th step, after 40 steps of updates
    # (one env per worker, so that steps and the env's own count agree).
    model = A3C("tests.toy_envs:ToyFailing-v0", workers=1, n_envs=1, seed=0, verbose=0, eval_interval=0,
                final_eval_episodes=0, checkpoint_interval=0, log_interval=0.2, max_restarts=50)
    model.learn(total_steps=150, max_seconds=SAFETY_SECONDS, run_dir=tmp_path)
    r = model.last_result
    assert r.stop_reason == "total_steps" and r.steps >= 150
    restarts = [e for e in rows(tmp_path / "events.csv") if e["event"] == "worker_restarted"]
    assert len(restarts) == r.worker_restarts == 3  # 40 steps per incarnation
    for e in restarts:
        assert "failed" in e["detail"] and "RuntimeError: toy env broke on purpose" in e["detail"]
    assert not worker_processes()


def test_a_worker_that_keeps_failing_stops_the_run_with_its_traceback(tmp_path):
    model = A3C("tests.toy_envs:ToyFailing-v0", workers=1, seed=0, verbose=0, eval_interval=0,
                checkpoint_interval=0, log_interval=0.2, max_restarts=1)
    started = time.monotonic()
    with pytest.raises(WorkerError) as info:
        model.learn(total_steps=10**9, max_seconds=SAFETY_SECONDS, run_dir=tmp_path)
    assert time.monotonic() - started < 60
    message = str(info.value)
    # the worker's own traceback, never a bare "exit status 1" (it is read before the exit is judged)
    assert message.startswith("worker 0 failed") and "no restarts left (max_restarts 1)" in message
    assert "Traceback (most recent call last)" in message
    assert "RuntimeError: toy env broke on purpose at step 50" in message
    assert "toy_envs.py" in message  # where it happened, from the worker's own traceback
    assert "exit status" not in message
    assert (tmp_path / "model.safetensors").is_file()
    assert len([e for e in rows(tmp_path / "events.csv") if e["event"] == "worker_restarted"]) == 1
    assert not worker_processes()


def test_a_worker_failure_through_the_command_exits_1_with_the_traceback(a3c_cli, tmp_path):
    result = a3c_cli("train", "tests.toy_envs:ToyFailing-v0", "--workers", "1", "--total-steps",
                     "1000000", "--max-seconds", str(SAFETY_SECONDS), "--run-dir", tmp_path, "--quiet",
                     "--max-restarts", "0")
    assert result.returncode == 1
    assert "a3c: error: worker 0 failed" in result.stderr
    assert "RuntimeError: toy env broke on purpose" in result.stderr
    assert (tmp_path / "model.safetensors").is_file()


def test_a_worker_that_reports_and_dies_at_once_loses_neither_its_reports_nor_its_traceback(tmp_path):
    # Every incarnation of each of the 2 workers plays 4 whole episodes of 5 steps and raises on its
    # 23rd step. With log_interval far longer than an incarnation lives, its episodes reach the
    # trainer only in the report it sends as it dies, right before its traceback, in the moment
    # before its exit: all of them must be logged, and every traceback with them.
    restarts = 9
    model = A3C("tests.toy_envs:ToyEpisodesThenFail-v0", workers=2, n_envs=1, n_steps=1, seed=0,
                verbose=0, eval_interval=0, final_eval_episodes=0, checkpoint_interval=0,
                log_interval=3600, max_restarts=restarts)
    with pytest.raises(WorkerError, match="toy env failed after its episodes on purpose"):
        model.learn(total_steps=10**9, max_seconds=SAFETY_SECONDS, run_dir=tmp_path)
    events = rows(tmp_path / "events.csv")
    restarted = [e for e in events if e["event"] == "worker_restarted"]
    assert len(restarted) == restarts
    assert all("RuntimeError: toy env failed after its episodes on purpose" in e["detail"] for e in restarted)
    incarnations = restarts + 1  # the one that failed past the limit reported too
    episodes = rows(tmp_path / "episodes.csv")
    assert len(episodes) >= 4 * incarnations
    assert all(e["episode_return"] == "5.0" and e["episode_length"] == "5" for e in episodes)
    assert not worker_processes()


UNGUARDED = """
from a3c import A3C

A3C("CartPole-v1", workers=2, total_steps=2_000, max_restarts=0, verbose=0, max_seconds={safety}).learn(
    run_dir={run_dir!r})
"""


def test_a_script_that_trains_at_its_top_level_is_told_to_guard_it(tmp_path):
    """Each worker imports the main script again: unguarded, it dies before it begins, and the
    trainer's error names the fix instead of only an exit status."""
    script = tmp_path / "train.py"
    script.write_text(UNGUARDED.format(safety=SAFETY_SECONDS, run_dir=str(tmp_path / "run")))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path,
                          timeout=4 * SAFETY_SECONDS)
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()
    assert any("exited before it began (exit status 1)" in line for line in last), done.stderr[-2000:]
    assert 'put the training under `if __name__ == "__main__":`' in done.stderr
    guarded = script.read_text().replace('A3C("', 'if __name__ == "__main__":\n    A3C("').replace(
        "\n    run_dir", "\n        run_dir")
    script.write_text(guarded)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path,
                          timeout=4 * SAFETY_SECONDS)
    assert done.returncode == 0, done.stderr[-2000:]
