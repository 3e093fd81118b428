"""Ctrl-C, SIGTERM and SIGKILL to the real `a3c train`: a clean stop with a checkpoint, or none left behind.

Each run is the real command in its own process group; every process it starts carries a marker in
its environment, so /proc shows whether any of them survived (tests/processes.py).
"""

import csv
import json
import multiprocessing
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from a3c import A3C
from a3c.run.checkpoint import load_checkpoint
from tests.processes import Run, wait_for

START = 90  # seconds the command may take to start training on a loaded 2-core machine


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def data_rows(path) -> int:
    try:
        return len(rows(path))
    except OSError:
        return 0


def interrupted_a3c_run(tmp_path, send, name: str, status: int):
    """A3C on CartPole with two workers, sent a signal once training runs; checks the clean stop."""
    run_dir = tmp_path / "run"
    run = Run(tmp_path, "train", "CartPole-v1", "--workers", "2", "--total-steps", "100000000",
              "--eval-interval", "0", "--checkpoint-interval", "0", "--log-interval", "0.2",
              "--run-dir", run_dir)
    try:
        assert wait_for(lambda: data_rows(run_dir / "updates.csv") >= 4, START), run.stderr
        assert len(run.workers()) == 2
        sent = time.monotonic()
        send(run)
        code = run.wait(30)
        took = time.monotonic() - sent
        assert code == status, run.stderr
        assert took < 10, f"took {took:.1f} s to stop"
        assert wait_for(lambda: not run.processes(), 5), "a process of the run was left behind"
    finally:
        run.kill_all()
    checkpoint = run_dir / "model.safetensors"
    ckpt = load_checkpoint(checkpoint)
    assert ckpt.counters["steps"] > 0
    assert f"stopped by {name}" in run.stderr and str(checkpoint) in run.stderr
    assert f"a3c train --resume {run_dir}" in run.stderr
    assert "Traceback" not in run.stderr
    # the logs are complete: every update the workers made is in updates.csv, whole rows only
    updates = rows(run_dir / "updates.csv")
    assert sum(int(u["updates"]) for u in updates) == ckpt.counters["updates"]
    assert (run_dir / "episodes.csv").read_bytes().endswith(b"\n")
    assert sum(int(e["episode_length"]) for e in rows(run_dir / "episodes.csv")) <= ckpt.counters["steps"]
    [event] = rows(run_dir / "events.csv")
    assert event["event"] == ("interrupted" if name == "SIGINT" else "terminated")
    return run_dir, ckpt


def test_ctrl_c_stops_every_worker_saves_flushes_and_exits_130(tmp_path):
    # to the whole process group, workers included, as a terminal does
    interrupted_a3c_run(tmp_path, Run.ctrl_c, "SIGINT", 130)


def test_sigterm_stops_cleanly_with_143_and_the_run_resumes_where_it_stopped(tmp_path, a3c_cli):
    # to the trainer alone, as a scheduler or `kill` does
    run_dir, ckpt = interrupted_a3c_run(tmp_path, lambda run: run.signal(signal.SIGTERM), "SIGTERM", 143)
    episodes = (run_dir / "episodes.csv").read_text()
    result = a3c_cli("train", "--resume", run_dir, "--total-steps", "2000", "--final-eval-episodes", "0",
                     "--quiet")
    assert result.returncode == 0, result.stderr
    assert f"resuming {run_dir} at step {ckpt.counters['steps']:,}" in result.stderr
    resumed = load_checkpoint(run_dir / "model.safetensors")
    assert resumed.counters["steps"] >= ckpt.counters["steps"] + 2000
    assert resumed.counters["updates"] > ckpt.counters["updates"]
    assert (run_dir / "episodes.csv").read_text().startswith(episodes)  # appended
    assert [e["event"] for e in rows(run_dir / "events.csv")] == ["terminated", "resumed"]
    [resume] = json.loads((run_dir / "run.json").read_text())["resumes"]
    assert resume["envs"] == "reseeded"  # A3C: the workers' envs were in processes that are gone


def test_ctrl_c_during_the_final_evaluation_still_saves(tmp_path):
    run_dir = tmp_path / "run"
    run = Run(tmp_path, "train", "CartPole-v1", "--algo", "a2c", "--total-steps", "2000",
              "--eval-interval", "0", "--final-eval-episodes", "1000000", "--run-dir", run_dir)
    try:
        assert wait_for(lambda: "final evaluation" in run.stderr, START), run.stderr
        time.sleep(0.5)
        run.ctrl_c()
        assert run.wait(30) == 130, run.stderr
    finally:
        run.kill_all()
    ckpt = load_checkpoint(run_dir / "model.safetensors")
    assert ckpt.counters["steps"] == 2000
    assert rows(run_dir / "evaluations.csv") == []  # the final evaluation was cut short, not logged
    assert "stopped by SIGINT" in run.stderr and "Traceback" not in run.stderr


def test_a_second_ctrl_c_exits_at_once_without_saving_and_ends_the_stuck_workers(tmp_path):
    # Both workers get stuck in an env step, one in C code that holds the GIL: a first Ctrl-C waits
    # for them (up to a timeout), a second one kills them and exits at once.
    run_dir = tmp_path / "run"
    run = Run(tmp_path, "train", "tests.toy_envs:ToyStuck-v0", "--workers", "2", "--seed", "0",
              "--total-steps", "100000000", "--eval-interval", "0", "--final-eval-episodes", "0",
              "--run-dir", run_dir)
    try:
        assert wait_for(lambda: len(run.workers()) == 2 and all(map(run.stuck, run.workers())),
                        START), run.stderr
        run.ctrl_c()
        time.sleep(1.0)
        assert run.process.poll() is None  # still waiting for the stuck workers
        sent = time.monotonic()
        run.ctrl_c()
        code = run.wait(10)
        assert code == 130 and time.monotonic() - sent < 3, run.stderr
        assert "SIGINT again: stopping now, without saving" in run.stderr
        assert wait_for(lambda: not run.processes(), 10), "a stuck worker outlived the trainer"
    finally:
        run.kill_all()
    assert not (run_dir / "model.safetensors").exists()  # at once means: without saving


def test_sigkill_of_the_trainer_leaves_no_process_behind(tmp_path):
    # One worker is stuck in C code holding the GIL (no thread of it can run), the other in a
    # sleep: neither can notice anything by itself; both must still die with the trainer.
    run = Run(tmp_path, "train", "tests.toy_envs:ToyStuck-v0", "--workers", "2", "--seed", "0",
              "--total-steps", "100000000", "--eval-interval", "0", "--final-eval-episodes", "0",
              "--run-dir", tmp_path / "run")
    try:
        assert wait_for(lambda: len(run.workers()) == 2 and all(map(run.stuck, run.workers())),
                        START), run.stderr
        assert len(run.processes()) >= 4  # trainer, forkserver or tracker, two workers
        killed = time.monotonic()
        run.signal(signal.SIGKILL)
        assert run.wait(10) == -signal.SIGKILL
        assert wait_for(lambda: not run.processes(), 10), "a process of the run survived its trainer"
        assert time.monotonic() - killed < 5
    finally:
        run.kill_all()


def workers_of_this_process() -> list[multiprocessing.Process]:
    return [p for p in multiprocessing.active_children() if p.name.startswith("a3c-worker-")]


def all_stuck() -> bool:
    workers = workers_of_this_process()
    return len(workers) == 2 and all(
        Path(f"/proc/{w.pid}/wchan").read_bytes() in (b"hrtimer_nanosleep", b"do_nanosleep") for w in workers)


class Signaller(threading.Thread):
    """Sends this process SIGINT `times` times, once `ready()` holds."""

    def __init__(self, ready, times: int, gap: float = 1.0):
        super().__init__(daemon=True)
        self.ready, self.times, self.gap = ready, times, gap

    def run(self) -> None:
        wait_for(self.ready, START)
        for _ in range(self.times):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(self.gap)


def test_in_a_python_session_ctrl_c_stops_learn_and_a_second_raises_keyboard_interrupt(tmp_path):
    # In a notebook or a script: the first Ctrl-C makes learn() return, saved; a second one raises
    # KeyboardInterrupt where the trainer is, with its workers killed, and the session goes on.
    handler = signal.getsignal(signal.SIGINT)
    model = A3C("CartPole-v1", workers=2, seed=0, verbose=0, eval_interval=0, final_eval_episodes=0,
                log_interval=0.2)
    Signaller(lambda: data_rows(tmp_path / "once" / "updates.csv") >= 2, times=1).start()
    model.learn(total_steps=10**9, max_seconds=START, run_dir=tmp_path / "once")
    r = model.last_result
    assert r.stop_reason == "interrupted" and r.signal == signal.SIGINT
    assert load_checkpoint(tmp_path / "once").counters["steps"] == r.steps > 0
    assert signal.getsignal(signal.SIGINT) is handler  # restored

    stuck = A3C("tests.toy_envs:ToyStuck-v0", workers=2, seed=0, verbose=0, eval_interval=0,
                final_eval_episodes=0)
    Signaller(all_stuck, times=2).start()
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        stuck.learn(total_steps=10**9, max_seconds=START, run_dir=tmp_path / "twice")
    assert time.monotonic() - started < START
    assert wait_for(lambda: not workers_of_this_process(), 5)
    assert not (tmp_path / "twice" / "model.safetensors").exists()
    assert signal.getsignal(signal.SIGINT) is handler


def test_a_ctrl_c_while_the_workers_are_being_stopped_still_saves(tmp_path):
    # The run ends by max_seconds with both workers stuck in an env step: stopping them waits (5 s,
    # then kills them). A Ctrl-C in that wait must not cut the stop short nor skip the checkpoint.
    model = A3C("tests.toy_envs:ToyStuck-v0", workers=2, seed=0, verbose=0, eval_interval=0,
                final_eval_episodes=0)  # the trainer's own ToyStuck env would block an evaluation
    called = time.monotonic()

    def during_the_stop() -> bool:  # the stop starts 2 s after training does, and lasts 5 s
        return all_stuck() and time.monotonic() - called > 5.0

    Signaller(during_the_stop, times=1).start()
    model.learn(total_steps=10**9, max_seconds=2, run_dir=tmp_path)
    r = model.last_result
    assert r.stop_reason == "max_seconds" and r.signal == signal.SIGINT
    assert load_checkpoint(tmp_path).counters["steps"] == r.steps
    assert not workers_of_this_process()
