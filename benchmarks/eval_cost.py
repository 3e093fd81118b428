"""Wall time of one greedy evaluation (as the trainer runs it) with its episodes played one by one and
with EVAL_BATCH envs at once, in turn, on the same checkpoint.

    a3c train CartPole-v1 --seed 0 --total-steps 500000 --target-return none --run-dir /tmp/cp0
    python benchmarks/eval_cost.py /tmp/cp0/model.safetensors --episodes 10 --repeats 5
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from common import invocation, machine, median, report

from a3c.run.checkpoint import load_checkpoint
from a3c.run.evaluation import EVAL_BATCH, evaluate, make_eval_envs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    ckpt = load_checkpoint(args.checkpoint)
    net = ckpt.build_network()
    envs = make_eval_envs(ckpt.config, EVAL_BATCH)
    times: dict[int, list[float]] = {1: [], EVAL_BATCH: []}
    results = {}
    for _ in range(args.repeats):
        for n in times:  # alternating, so a change in the machine's speed falls on both
            start = time.perf_counter()
            results[n] = evaluate(net, envs[:n], args.episodes, deterministic=True, seed=10_000)
            times[n].append(time.perf_counter() - start)
    one, many = median(times[1]), median(times[EVAL_BATCH])
    steps = sum(results[1].lengths)
    lines = [f"One greedy evaluation of {args.episodes} episodes of {ckpt.config.env_id} ({steps:,} steps, "
             f"mean return {results[1].mean_return:.1f}; {EVAL_BATCH} envs: "
             f"{results[EVAL_BATCH].mean_return:.1f}), median of {args.repeats}",
             f"command: `{invocation()}`", f"machine: {machine()}", "",
             "| envs | seconds | us per step |", "|---:|---:|---:|",
             f"| 1 | {one:.3f} | {one / steps * 1e6:.1f} |",
             f"| {EVAL_BATCH} | {many:.3f} | {many / steps * 1e6:.1f} |", "",
             f"{EVAL_BATCH} envs at once / one by one: **{many / one:.2f}x**"]
    report(lines, args.out)


if __name__ == "__main__":
    main()
