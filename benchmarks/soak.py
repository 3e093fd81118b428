"""Soak: more A3C workers than cores, for a long time. Do the step counter, the episode log and the
checkpoints agree, and does memory stay flat?

    python benchmarks/soak.py --workers 8 --seconds 180 --out benchmarks/results/soak.md
    python benchmarks/soak.py --env BreakoutNoFrameskip-v4 --workers 2 --seconds 120 \
        --eval-interval 0 --checkpoint-interval 20000 --out benchmarks/results/soak-atari.md

An Atari id runs its preset (8 envs per worker through ale-py's vector env): a game with lives and
FIRE checks that the lost lives and the FIRE presses count in the step counter as in the games'
lengths. --eval-interval 0 leaves the periodic evaluations out: an untrained greedy Breakout agent
that never presses FIRE plays until the game is truncated, 27,000 steps.

Checks (each reported, and the exit status is 1 if one fails):
- the run's step counter equals the final checkpoint's, and its update counter the sum of the
  updates logged in updates.csv;
- the lengths of the episodes in episodes.csv plus the steps of the episodes still running when
  the workers stopped add up to the step counter exactly (a graceful stop loses no report);
- every periodic checkpoint kept loads, is at most as far as the final one, and only the last
  keep_checkpoints are kept;
- memory: the proportional set size (PSS, /proc/PID/smaps_rollup) of the trainer and of all
  workers, sampled through the run, grows between the end of the warm-up and the end of the run
  by less than the tolerance.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import sys
import tempfile
import threading
import time
from multiprocessing import active_children
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import commit, invocation, machine  # noqa: E402

from a3c import A3C  # noqa: E402
from a3c.run.checkpoint import load_checkpoint  # noqa: E402


def memory_kib(pid: int) -> tuple[int, int]:
    """(RSS, PSS) in KiB, from smaps_rollup; (0, 0) if the process is gone."""
    rss = pss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Rss:"):
                    rss = int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


class MemorySampler(threading.Thread):
    """Every `interval` seconds: the trainer's and the workers' (summed) RSS and PSS."""

    def __init__(self, interval: float):
        super().__init__(daemon=True)
        self.interval = interval
        self.samples: list[dict[str, float]] = []
        self.stop = threading.Event()
        self.start_time = time.monotonic()

    def run(self) -> None:
        while not self.stop.wait(self.interval):
            workers = [p.pid for p in active_children() if p.name.startswith("a3c-worker-")]
            if not workers:
                continue
            trainer = memory_kib(os.getpid())
            per_worker = [memory_kib(pid) for pid in workers]
            self.samples.append({
                "t": time.monotonic() - self.start_time, "workers": len(workers),
                "trainer_rss": trainer[0], "trainer_pss": trainer[1],
                "workers_rss": sum(m[0] for m in per_worker), "workers_pss": sum(m[1] for m in per_worker),
            })


def window_median(samples: list[dict[str, float]], key: str, start: float, end: float) -> float:
    values = [s[key] for s in samples if start <= s["t"] <= end]
    return statistics.median(values) if values else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=180.0)
    parser.add_argument("--checkpoint-interval", type=int, default=50_000)
    parser.add_argument("--eval-interval", type=int, default=100_000)
    parser.add_argument("--sample", type=float, default=2.0, help="seconds between memory samples")
    parser.add_argument("--warmup", type=float, default=0.25,
                        help="fraction of the run before the memory baseline (default: 0.25)")
    parser.add_argument("--tolerance-mib", type=float, default=16.0,
                        help="allowed PSS growth per process group beyond 5%% (default: 16 MiB)")
    parser.add_argument("--run-dir", default=None)
    parser.add_argument("--out", default=None, help="write a Markdown report here")
    args = parser.parse_args()

    run_dir = Path(args.run_dir or tempfile.mkdtemp(prefix="a3c-soak-")) / "run"
    load_before = os.getloadavg()
    model = A3C(args.env, workers=args.workers, seed=0, verbose=0, target_return=None,
                eval_interval=args.eval_interval, eval_episodes=3, final_eval_episodes=0,
                checkpoint_interval=args.checkpoint_interval)
    sampler = MemorySampler(args.sample)
    sampler.start()
    model.learn(total_steps=10**12, max_seconds=args.seconds, run_dir=run_dir)
    sampler.stop.set()
    sampler.join()
    load_after = os.getloadavg()
    r = model.last_result
    assert r is not None

    checks: list[tuple[str, bool, str]] = []
    final = load_checkpoint(run_dir / "model.safetensors")
    checks.append(("step counter = final checkpoint's", r.steps == final.counters["steps"],
                   f"{r.steps:,} and {final.counters['steps']:,}"))
    with open(run_dir / "updates.csv", newline="") as f:
        logged_updates = sum(int(row["updates"]) for row in csv.DictReader(f))
    checks.append(("update counter = checkpoint's = updates logged",
                   r.updates == final.counters["updates"] == logged_updates,
                   f"{r.updates:,}, {final.counters['updates']:,}, {logged_updates:,}"))
    with open(run_dir / "episodes.csv", newline="") as f:
        episodes = list(csv.DictReader(f))
    lengths = sum(int(e["episode_length"]) for e in episodes)
    checks.append(("episode lengths logged + unfinished episodes' steps = step counter",
                   lengths + r.unfinished_steps == r.steps,
                   f"{lengths:,} + {r.unfinished_steps:,} = {lengths + r.unfinished_steps:,} "
                   f"(counter {r.steps:,}; {len(episodes):,} episodes)"))
    periodic = sorted((run_dir / "checkpoints").glob("step_*.safetensors"))
    steps_kept = [load_checkpoint(p).counters["steps"] for p in periodic]
    checks.append(("periodic checkpoints: the last 3, each loads, none past the final",
                   0 < len(periodic) <= 3 and all(s <= r.steps for s in steps_kept),
                   ", ".join(f"{s:,}" for s in steps_kept)))
    checks.append(("no worker restarts, no skipped updates, stopped by max_seconds",
                   r.worker_restarts == 0 and r.skipped_updates == 0 and r.stop_reason == "max_seconds",
                   f"restarts {r.worker_restarts}, skipped {r.skipped_updates}, stop {r.stop_reason}"))

    samples = sampler.samples
    end = samples[-1]["t"] if samples else 0.0
    base_window = (args.warmup * end, args.warmup * end + 0.1 * end)
    last_window = (0.9 * end, end)
    memory_rows = []
    for group in ("trainer", "workers"):
        for kind in ("pss", "rss"):
            key = f"{group}_{kind}"
            first = window_median(samples, key, *base_window) / 1024
            last = window_median(samples, key, *last_window) / 1024
            memory_rows.append((group, kind.upper(), first, last, last - first))
            if kind == "pss":
                allowed = 0.05 * first + args.tolerance_mib
                checks.append((f"{group} PSS growth after warm-up < 5% + {args.tolerance_mib:g} MiB",
                               last - first < allowed,
                               f"{first:.1f} -> {last:.1f} MiB ({last - first:+.1f}, allowed {allowed:.1f})"))

    command = invocation()
    lines = [
        "# Soak: many A3C workers for a long time",
        "",
        f"Command: `{command}`",
        "",
        f"Date: {time.strftime('%Y-%m-%d')}; commit {commit()}",
        "",
        f"Machine: {machine()}; load average {load_before[0]:.1f} before, {load_after[0]:.1f} after "
        "(the machine is shared)",
        "",
        f"Run: {args.env}, {args.workers} workers on {len(os.sched_getaffinity(0))} cores, "
        f"{r.elapsed:.0f} s, {r.steps:,} env steps ({r.steps / r.elapsed:,.0f}/s), {r.updates:,} updates, "
        + (f"periodic evaluations every {args.eval_interval:,} steps, " if args.eval_interval
           else "no periodic evaluation, ") + "checkpoints every "
        f"{args.checkpoint_interval:,}; {len(samples)} memory samples every {args.sample:g} s.",
        "",
        "| check | result | values |",
        "|---|---|---|",
        *[f"| {name} | {'ok' if ok else '**FAILED**'} | {detail} |" for name, ok, detail in checks],
        "",
        f"Memory (MiB, medians of the samples in [{base_window[0]:.0f}, {base_window[1]:.0f}] s and "
        f"[{last_window[0]:.0f}, {last_window[1]:.0f}] s; workers summed; PSS splits the shared "
        "network and pages among the processes that map them):",
        "",
        "| processes | measure | after warm-up | at the end | growth |",
        "|---|---|---|---|---|",
        *[f"| {g} | {k} | {a:.1f} | {b:.1f} | {d:+.1f} |" for g, k, a, b, d in memory_rows],
        "",
    ]
    report = "\n".join(lines)
    print(report)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(report)
    return 0 if all(ok for _, ok, _ in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
