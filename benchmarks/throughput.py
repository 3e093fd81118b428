"""Agent steps per second of A3C learning; with --references, beside the env alone and SB3's A2C.

    python benchmarks/throughput.py --workers 1 2 --repeats 3 --seconds 15
    python benchmarks/throughput.py --env PongNoFrameskip-v4 --workers 2 \\
        --references --repeats 3 --seconds 25 --out benchmarks/results/throughput-PongNoFrameskip-v4.md

Without --references: the rate of `a3c train` for each number of workers, from the update log
between 2 s after the start and the end, so process start-up is not counted; evaluation is off so
only the workers run.

With --references (Atari ids; one number of workers W): each repeat measures, one after another on
the same cores, (1) the env alone: W processes at once, each stepping the preset's n_envs games in
ale-py's AtariVectorEnv (AtariBatch, one emulator thread each, as a worker has) with random actions;
(2) A3C learning, `a3c train` with W workers and the preset's layout, from 10 s after its start to
3 s before its end; (3) Stable-Baselines3 A2C with its Atari defaults (CnnPolicy, make_atari_env,
4 stacked frames, W x n_envs envs, torch's default threads), after a 10 s warm-up. Reported: the
medians over repeats in wall time, the CPU time an agent step costs (every process and thread of
the run), and the two ratios the issue sets goals for.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from common import commit, invocation, machine, median, report, run_train, steady_rate


def workers_sweep(args: argparse.Namespace) -> list[str]:
    rows = []
    for workers in args.workers:
        rates = []
        for repeat in range(args.repeats):
            with tempfile.TemporaryDirectory() as tmp:
                run_dir = Path(tmp) / "run"
                run_train(args.env, run_dir, "--workers", str(workers), "--seed", str(repeat),
                          "--max-seconds", str(args.seconds), "--total-steps", str(10**9),
                          "--target-return", "none", "--eval-interval", "0",
                          "--final-eval-episodes", "0", "--checkpoint-interval", "0", *args.extra)
                rates.append(steady_rate(run_dir))
        rows.append((workers, median(rates), rates))
    lines = [
        f"A3C throughput on {args.env}, {args.seconds:g} s runs, median of {args.repeats}"
        + (f", options: {' '.join(args.extra)}" if args.extra else ""),
        f"machine: {machine()}", "",
        "| workers | env steps/s (median) | runs |", "|---:|---:|---|",
    ]
    lines += [f"| {w} | {m:,.0f} | {', '.join(f'{r:,.0f}' for r in rs)} |" for w, m, rs in rows]
    return lines


def with_references(args: argparse.Namespace) -> list[str]:
    from atari_profile import env_rate_parallel, learning_rate, sb3_rate

    from a3c.presets import build_config

    if len(args.workers) != 1:
        raise SystemExit("--references measures one number of workers")
    workers = args.workers[0]
    n_envs = build_config(args.env, workers=workers).n_envs
    cores = len(os.sched_getaffinity(0))
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load_before = os.getloadavg()[0]
    labels = {
        "env": f"env only: {workers} processes x {n_envs} games (AtariBatch), random actions",
        "a3c": f"A3C learning: {workers} workers x {n_envs} envs, the preset's options"
               + (f" and {' '.join(args.extra)}" if args.extra else ""),
        "sb3": f"Stable-Baselines3 A2C: CnnPolicy, {workers * n_envs} envs, its Atari defaults, "
               f"{cores} torch threads",
    }
    runs: dict[str, list[tuple[float, float]]] = {key: [] for key in labels}
    for repeat in range(args.repeats):  # the three in turn, so that a change of load hits each
        runs["env"].append(env_rate_parallel("ale", n_envs, args.env_seconds, workers, env_id=args.env))
        runs["a3c"].append(learning_rate(args.seconds, "--workers", str(workers), *args.extra,
                                         env_id=args.env))
        runs["sb3"].append(sb3_rate(args.seconds, threads=cores, n_envs=workers * n_envs, env_id=args.env))
        print(repeat, {k: v[-1] for k, v in runs.items()}, flush=True)
    rate = {k: median([r for r, _ in v]) for k, v in runs.items()}
    cpu = {k: median([c for _, c in v]) for k, v in runs.items()}
    command = invocation()
    if args.out:  # the figures, for benchmarks/readme_table.py
        args.out.with_suffix(".json").write_text(json.dumps(
            {"command": command, "date": started, "commit": commit(), "machine": machine(),
             "a3c": rate["a3c"], "env_only": rate["env"], "sb3": rate["sb3"]}, indent=2) + "\n")
    return [
        f"# Throughput on {args.env}: A3C learning beside the env alone and Stable-Baselines3 A2C",
        "",
        f"Command: `{command}`",
        "",
        f"Date: {started}; commit {commit()}; machine: {machine()}; load average {load_before:.1f} "
        f"before. {args.note}",
        "",
        f"Medians of {args.repeats} repeats, the three measured in turn in each. One agent step is one "
        "env step of one game (4 emulator frames).",
        "",
        "| ratio (wall time, this run) | value | goal |",
        "|---|---:|---:|",
        f"| A3C learning / env only | {rate['a3c'] / rate['env']:.2f}x | 0.6x |",
        f"| A3C / Stable-Baselines3 A2C | {rate['a3c'] / rate['sb3']:.2f}x | 4x |",
        "",
        "| run | agent steps/s (median) | repeats | CPU us per agent step | cores it kept busy |",
        "|---|---:|---|---:|---:|",
        *[f"| {labels[k]} | {rate[k]:,.0f} | {', '.join(f'{r:,.0f}' for r, _ in runs[k])} | "
          f"{cpu[k] * 1e6:,.0f} | {rate[k] * cpu[k]:.2f} |" for k in labels],
        "",
        "CPU per agent step: user + system time of every process and thread of the run (ale-py's "
        "emulator threads, the workers, the trainer) per agent step; cores it kept busy: CPU seconds "
        "per wall second. With both cores busy in every run, the wall-time ratios are also the "
        "ratios of what an agent step costs.",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=15.0, help="each learning run")
    parser.add_argument("--references", action="store_true",
                        help="also the env alone and Stable-Baselines3 A2C, in turns (Atari ids)")
    parser.add_argument("--env-seconds", type=float, default=10.0, help="with --references: the env alone")
    parser.add_argument("--note", default="", help="with --references: what else ran, for the report")
    parser.add_argument("--out", type=Path, default=None, help="also write the table here")
    parser.add_argument("extra", nargs="*", help="more `a3c train` options, after --")
    args = parser.parse_args()
    report(with_references(args) if args.references else workers_sweep(args), args.out)


if __name__ == "__main__":
    main()
