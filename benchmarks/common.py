"""Shared by the benchmark scripts: run the real `a3c` command and read what its run directory holds."""

from __future__ import annotations

import csv
import json
import os
import platform
import shlex
import signal
import statistics
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

import torch

FINAL_EVAL_SEED = 1_000_000  # the seed of the trainer's own final evaluation's first episode


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0))
    load = os.getloadavg()[0]  # other work on the machine: rates measured beside it are lower
    return (f"{cores} cores ({cpu}), Python {platform.python_version()}, torch {torch.__version__}, "
            f"load average {load:.1f} at the end of the run")


def invocation() -> str:
    """This script's command line as it can be pasted back into a shell (options with spaces quoted)."""
    script = Path(sys.argv[0]).resolve().relative_to(Path(__file__).resolve().parent.parent)
    return shlex.join(["python", str(script), *sys.argv[1:]])


def commit() -> str:
    """The checkout's commit, with '+changes' when its tracked files differ from it."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "diff", "--quiet", "HEAD"], cwd=root).returncode != 0
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+changes" if dirty else "")


def run_train(env_id: str, run_dir: Path, *options: str,
              stop_when: Callable[[Path], bool] | None = None) -> float:
    """Run `a3c train` until it ends, or until stop_when(run_dir) holds and a Ctrl-C (SIGINT) has
    stopped it; return the epoch time at which the command was launched."""
    launched = time.time()
    cmd = [sys.executable, "-m", "a3c.cli", "train", env_id, "--quiet", "--run-dir", str(run_dir),
           *options]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    interrupted = False
    while proc.poll() is None:
        time.sleep(0.5)
        if stop_when is not None and (run_dir / "episodes.csv").exists() and stop_when(run_dir):
            proc.send_signal(signal.SIGINT)
            interrupted = True
            break
    _, stderr = proc.communicate()
    if proc.returncode != 0 and not (interrupted and proc.returncode == 130):  # 130: saved, stopped
        raise RuntimeError(f"{' '.join(cmd)} failed with exit status {proc.returncode}:\n{stderr}")
    return launched


def start_time(run_dir: Path) -> float:
    return json.loads((run_dir / "run.json").read_text())["start_time"]


def read_csv(path: Path) -> list[dict[str, float]]:
    with open(path, newline="") as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def time_to_return(run_dir: Path, threshold: float, window: int = 20) -> tuple[float, int] | None:
    """(seconds since the run started, global step) when the mean of the last `window` episodes
    first reached `threshold`; None if it never did."""
    recent: deque[float] = deque(maxlen=window)
    for row in read_csv(run_dir / "episodes.csv"):
        recent.append(row["episode_return"])
        if len(recent) == window and sum(recent) / window >= threshold:
            return row["wall_time"], int(row["global_step"])
    return None


def steady_rate(run_dir: Path, warmup: float = 2.0) -> float:
    """Env steps per second between the first update report after `warmup` seconds and the last."""
    rows = [r for r in read_csv(run_dir / "updates.csv") if r["wall_time"] >= warmup]
    if len(rows) < 2:
        raise RuntimeError(f"{run_dir}: too few update reports to measure a rate")
    first, last = rows[0], rows[-1]
    return (last["global_step"] - first["global_step"]) / (last["wall_time"] - first["wall_time"])


def median(values: list[float]) -> float:
    return statistics.median(values)


def sb3_greedy_returns(model, env_id: str, episodes: int, env_kwargs: dict | None = None,
                       obs_transform: Callable | None = None) -> list[float]:
    """A Stable-Baselines3 model's greedy returns over whole episodes of the raw env, seeded as the
    trainer's own final evaluation is (1_000_000 + k), so that both sides meet the same episodes."""
    import gymnasium as gym

    env = gym.make(env_id, **(env_kwargs or {}))
    discrete = isinstance(env.action_space, gym.spaces.Discrete)
    returns = []
    for k in range(episodes):
        obs, _ = env.reset(seed=FINAL_EVAL_SEED + k)
        total, done = 0.0, False
        while not done:
            action, _ = model.predict(obs_transform(obs) if obs_transform else obs, deterministic=True)
            obs, reward, terminated, truncated, _ = env.step(int(action) if discrete else action)
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    env.close()
    return returns


def write_evaluation(run_dir: Path, seconds: float, steps: int, returns: list[float]) -> None:
    """One row of evaluations.csv, in the trainer's columns, so reports read both sides alike."""
    with open(run_dir / "evaluations.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["wall_time", "global_step", "mean_return", "std_return", "episodes"])
        w.writerow([f"{seconds:.3f}", steps, statistics.fmean(returns), statistics.pstdev(returns),
                    len(returns)])


def report(lines: list[str], out: Path | None) -> None:
    """Print a result table and, if asked, keep it in a file."""
    text = "\n".join(lines)
    print(text)
    if out:
        out.write_text(text + "\n")
