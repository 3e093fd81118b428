"""A3C, A2C and Stable-Baselines3's A2C on one env: same machine, same step budget, several seeds.

    python benchmarks/compare.py CartPole-v1 --seeds 0 1 2 --steps 200000 \\
        --out benchmarks/results/compare-CartPole-v1

Every run is a fresh process and runs alone, for the whole step budget (no early stop, no periodic
evaluation), then a greedy evaluation of 20 episodes with the same episode seeds for every
algorithm. From each run's episode log: env steps per second over the whole run (start-up of
workers or subprocesses included, interpreter start-up not), the wall time and env steps until the
training return (mean of the last 20 episodes) first reaches the target, the final evaluation
return, the gradient staleness (A3C only; 0 for synchronous updates), and the peak memory of the
run's process tree (PSS, so pages shared between processes count once).

Stable-Baselines3 is the outside reference: `pip install -e ".[bench]"`. It gets the same number of
envs as our A2C (and A3C's workers share that many out), its rl-baselines3-zoo CartPole values
(8 envs, ent_coef 0; its own defaults otherwise), the CPU, and one torch thread as our A2C uses.
Writes OUT.md (table), OUT.png (curves, median and min-max band over seeds) and OUT.json (every
run's numbers).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from common import sb3_greedy_returns, write_evaluation

from a3c.config import usable_cores
from a3c.envs.make import reward_threshold
from a3c.run.metrics import EPISODE_COLUMNS, UPDATE_COLUMNS
from a3c.run.plotting import read_episodes, smooth

ALGOS = ("a3c", "a2c", "sb3-a2c")
LABELS = {"a3c": "A3C (this project)", "a2c": "A2C (this project)", "sb3-a2c": "Stable-Baselines3 A2C"}
FINAL_EVAL_EPISODES = 20
WINDOW = 20  # episodes in the training return


@dataclass
class RunResult:
    algo: str
    seed: int
    steps: int
    train_seconds: float
    steps_per_second: float
    seconds_to_target: float | None
    steps_to_target: int | None
    final_eval: float
    staleness_mean: float
    staleness_max: int
    peak_memory_mib: float


# --- measuring a run -------------------------------------------------------------------------------

def _pss_bytes(pid: int) -> int:
    """PSS of a process and all its descendants (0 for those gone meanwhile)."""
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        try:
            for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1]) * 1024
                    break
            for task in Path(f"/proc/{p}/task").iterdir():
                stack.extend(int(c) for c in (task / "children").read_text().split())
        except (OSError, ValueError):
            continue
    return total


def _run_measured(cmd: list[str], log: Path) -> float:
    """Run cmd to its end, sampling its process tree's memory; return the peak in MiB."""
    peak = 0
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.wait(0.2):
                peak = max(peak, _pss_bytes(proc.pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        code = proc.wait()
        done.set()
        sampler.join()
    if code != 0:
        raise RuntimeError(f"{shlex.join(cmd)} failed (status {code}); see {log}:\n"
                           + log.read_text()[-2000:])
    return peak / 2**20


def _read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _analyse(algo: str, seed: int, run_dir: Path, target: float | None, peak_mib: float) -> RunResult:
    updates = _read_rows(run_dir / "updates.csv")
    steps = max(int(u["global_step"]) for u in updates)
    seconds = max(float(u["wall_time"]) for u in updates)
    n_updates = sum(int(u["updates"]) for u in updates)
    staleness = sum(float(u["staleness_mean"]) * int(u["updates"]) for u in updates) / max(n_updates, 1)
    reached = None
    if target is not None:
        returns: list[float] = []
        for row in _read_rows(run_dir / "episodes.csv"):
            returns.append(float(row["episode_return"]))
            if len(returns) >= WINDOW and sum(returns[-WINDOW:]) / WINDOW >= target:
                reached = (float(row["wall_time"]), int(row["global_step"]))
                break
    final = float(_read_rows(run_dir / "evaluations.csv")[-1]["mean_return"])
    return RunResult(
        algo=algo, seed=seed, steps=steps, train_seconds=seconds, steps_per_second=steps / seconds,
        seconds_to_target=reached[0] if reached else None, steps_to_target=reached[1] if reached else None,
        final_eval=final, staleness_mean=staleness,
        staleness_max=max(int(u["staleness_max"]) for u in updates), peak_memory_mib=peak_mib,
    )


def run_one(algo: str, env_id: str, seed: int, steps: int, n_envs: int, workers: int,
            run_dir: Path, target: float | None) -> RunResult:
    if algo == "sb3-a2c":
        cmd = [sys.executable, __file__, "--sb3-run", env_id, str(seed), str(steps), str(n_envs),
               str(run_dir)]
    else:
        cmd = [sys.executable, "-m", "a3c.cli", "train", env_id, "--algo", algo, "--quiet",
               "--run-dir", str(run_dir), "--seed", str(seed), "--total-steps", str(steps),
               "--eval-interval", "0", "--checkpoint-interval", "0", "--target-return", "none",
               "--final-eval-episodes", str(FINAL_EVAL_EPISODES)]
        # The same envs in all: A3C's workers share them out (CartPole's preset: 2 x 4).
        cmd += (["--workers", str(workers), "--n-envs", str(max(1, n_envs // workers))] if algo == "a3c"
                else ["--n-envs", str(n_envs)])
    shutil.rmtree(run_dir, ignore_errors=True)  # our logs append: start from nothing
    run_dir.mkdir(parents=True)
    peak = _run_measured(cmd, run_dir.parent / f"{run_dir.name}.log")
    return _analyse(algo, seed, run_dir, target, peak)


# --- Stable-Baselines3, logging into the same files as our runs ----------------------------------

def sb3_run(env_id: str, seed: int, steps: int, n_envs: int, run_dir: Path) -> None:
    import torch
    from stable_baselines3 import A2C
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env

    torch.set_num_threads(1)  # as our A2C does: one intra-op thread is faster on this small batch
    run_dir.mkdir(parents=True, exist_ok=True)
    episodes = open(run_dir / "episodes.csv", "w", newline="")
    episode_log = csv.writer(episodes)
    episode_log.writerow(EPISODE_COLUMNS)

    class LogEpisodes(BaseCallback):
        def _on_training_start(self) -> None:
            self.start = time.time()

        def _on_step(self) -> bool:
            for i, info in enumerate(self.locals["infos"]):
                if "episode" in info:
                    episode_log.writerow([f"{time.time() - self.start:.3f}", self.num_timesteps, i,
                                          info["episode"]["r"], info["episode"]["l"]])
            return True

    # Values: rl-baselines3-zoo hyperparams/a2c.yml, CartPole-v1 (n_envs 8, ent_coef 0); SB3 defaults
    # otherwise (n_steps 5, lr 7e-4, RMSprop, separate 64-64 tanh networks).
    model = A2C("MlpPolicy", make_vec_env(env_id, n_envs=n_envs, seed=seed), ent_coef=0.0, seed=seed,
                device="cpu", verbose=0)
    callback = LogEpisodes()
    start = time.time()
    model.learn(total_timesteps=steps, callback=callback)
    seconds = time.time() - start
    episodes.close()
    updates = model.num_timesteps // (n_envs * model.n_steps)
    with open(run_dir / "updates.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(UPDATE_COLUMNS)
        w.writerow([f"{seconds:.3f}", model.num_timesteps, 0, updates, "", "", "", "", 0.0, 0])
    write_evaluation(run_dir, time.time() - start, model.num_timesteps,
                     sb3_greedy_returns(model, env_id, FINAL_EVAL_EPISODES))


# --- reporting ------------------------------------------------------------------------------------

def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def table(results: list[RunResult], algos: list[str], target: float | None) -> str:
    head = (f"| algorithm | seeds | env steps/s | wall time to {target:g} (s) | env steps to {target:g} "
            "| final greedy eval | staleness mean / max | peak memory (MiB) |")
    lines = [head, "|" + "---|" * 8]
    for algo in algos:
        rs = [r for r in results if r.algo == algo]
        if not rs:
            continue
        hit = [r for r in rs if r.seconds_to_target is not None]
        finals = [r.final_eval for r in rs]
        lines.append(
            f"| {LABELS[algo]} | {len(rs)} | {_fmt(_median([r.steps_per_second for r in rs]), ',.0f')} "
            f"| {_fmt(_median([r.seconds_to_target for r in hit]), '.1f')} ({len(hit)}/{len(rs)} reached) "
            f"| {_fmt(_median([r.steps_to_target for r in hit]), ',.0f')} "
            f"| {statistics.median(finals):.1f} [{min(finals):.0f}-{max(finals):.0f}] "
            f"| {statistics.mean(r.staleness_mean for r in rs):.2f} / {max(r.staleness_max for r in rs)} "
            f"| {_fmt(_median([r.peak_memory_mib for r in rs]), ',.0f')} |")
    return "\n".join(lines)


def plot(run_dirs: dict[str, list[Path]], out: Path, title: str, target: float | None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import EngFormatter

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True, layout="constrained")
    for i, (algo, dirs) in enumerate(run_dirs.items()):
        curves = [read_episodes(d) for d in dirs]
        for ax, attr in zip(axes, ("steps", "wall_time"), strict=True):
            end = max(getattr(c, attr)[-1] for c in curves)
            grid = np.linspace(0.0, end, 300)
            ys = np.array([np.interp(grid, getattr(c, attr), smooth(c.returns, WINDOW),
                                     left=np.nan, right=np.nan) for c in curves])
            with warnings.catch_warnings():  # all-NaN columns before a run's first episode are expected
                warnings.simplefilter("ignore", RuntimeWarning)
                mid, lo, hi = np.nanmedian(ys, 0), np.nanmin(ys, 0), np.nanmax(ys, 0)
            ax.plot(grid, mid, color=f"C{i}", linewidth=1.8,
                    label=f"{LABELS[algo]} (median of {len(curves)} seeds, band min-max)")
            ax.fill_between(grid, lo, hi, color=f"C{i}", alpha=0.2, linewidth=0)
    for ax in axes:
        if target is not None:
            ax.axhline(target, color="grey", linestyle="--", linewidth=1)
        ax.grid(alpha=0.3)
    axes[0].set_xlabel("env steps")
    axes[0].xaxis.set_major_formatter(EngFormatter())
    axes[1].set_xlabel("wall time (s)")
    axes[0].set_ylabel(f"training return (mean of last {WINDOW} episodes)")
    axes[0].legend(loc="lower right", fontsize="small")
    fig.suptitle(title)
    fig.savefig(out, dpi=120)
    plt.close(fig)


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "unknown CPU")
    import torch

    python = sys.version.split()[0]
    return f"{usable_cores()} usable cores ({cpu}), Python {python}, torch {torch.__version__}"


def code_version() -> str:
    """The commit of the a3c package that ran (runs inherit this interpreter's import path)."""
    import a3c

    try:
        return subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True, text=True,
                              check=True, cwd=Path(a3c.__file__).parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--sb3-run":
        env_id, seed, steps, n_envs, run_dir = sys.argv[2:7]
        sb3_run(env_id, int(seed), int(steps), int(n_envs), Path(run_dir))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("env_id")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=200_000, help="env step budget of every run")
    parser.add_argument("--algos", nargs="+", choices=ALGOS, default=list(ALGOS))
    parser.add_argument("--n-envs", type=int, default=8, help="envs of both A2Cs (default: 8)")
    parser.add_argument("--workers", type=int, default=usable_cores(), help="A3C worker processes")
    parser.add_argument("--target", type=float, default=None,
                        help="training return to time (default: the env's reward threshold)")
    parser.add_argument("--out", type=Path, required=True, help="path prefix of OUT.md/.png/.json")
    parser.add_argument("--keep-runs", type=Path, default=None, help="keep run directories here")
    args = parser.parse_args()
    target = args.target if args.target is not None else reward_threshold(args.env_id)
    command = "python " + shlex.join(["benchmarks/compare.py", *sys.argv[1:]])
    results: list[RunResult] = []
    run_dirs: dict[str, list[Path]] = {a: [] for a in args.algos}
    with tempfile.TemporaryDirectory() as tmp:
        base = args.keep_runs or Path(tmp)
        started, load_before = time.time(), os.getloadavg()[0]
        for seed in args.seeds:  # seeds outermost, so slow drift of the machine hits every algorithm
            for algo in args.algos:
                run_dir = base / f"{algo}-seed{seed}"
                r = run_one(algo, args.env_id, seed, args.steps, args.n_envs, args.workers, run_dir, target)
                results.append(r)
                run_dirs[algo].append(run_dir)
                print(f"{algo} seed {seed}: {r.steps_per_second:,.0f} steps/s, "
                      f"to {target:g}: {_fmt(r.seconds_to_target, '.1f')} s, final eval {r.final_eval:.1f}, "
                      f"peak {r.peak_memory_mib:,.0f} MiB", file=sys.stderr, flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        png = args.out.with_suffix(".png")
        plot(run_dirs, png, f"{args.env_id}: {args.steps:,} env steps per run", target)
        total, load_after = time.time() - started, os.getloadavg()[0]
    md = "\n".join([
        f"# {args.env_id}: A3C, A2C and Stable-Baselines3 A2C",
        "",
        f"- command: `{command}`",
        f"- machine: {machine()}; code: commit {code_version()}",
        f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; benchmark wall time {total:.0f} s; "
        f"1-minute load average {load_before:.1f} at the start, {load_after:.1f} at the end "
        "(other work on the machine slows every run)",
        f"- budget: {args.steps:,} env steps per run; seeds {', '.join(map(str, args.seeds))}; "
        f"A3C {args.workers} workers x {max(1, args.n_envs // args.workers)} envs; "
        f"both A2Cs {args.n_envs} envs",
        f"- medians over seeds; the time to {target:g} counts from the run's start, over the seeds "
        f"that reached it; final eval: {FINAL_EVAL_EPISODES} greedy episodes after the budget "
        "(median [min-max] over seeds)",
        "",
        table(results, args.algos, target),
        "",
        f"![learning curves]({png.name})",
        "",
    ])
    args.out.with_suffix(".md").write_text(md)
    record = {"command": command, "machine": machine(), "code": code_version(),
              "results": [asdict(r) for r in results]}
    args.out.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")
    print(md)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
