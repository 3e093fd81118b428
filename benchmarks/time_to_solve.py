"""Wall time for A3C to reach a training return (mean of the last 20 episodes) on CartPole-v1.

    python benchmarks/time_to_solve.py --workers 2 --seeds 0 1 2 3 4

Time counts from the command's launch (process start-up, spawning workers and the periodic
evaluations included), with the default preset; the benchmark stops a run with Ctrl-C once its
training return has crossed the threshold.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from common import machine, median, report, run_train, start_time, time_to_return


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threshold", type=float, default=475.0)
    parser.add_argument("--max-seconds", type=float, default=90.0)
    parser.add_argument("--out", type=Path, default=None, help="also write the table here")
    parser.add_argument("extra", nargs="*", help="more `a3c train` options, after --")
    args = parser.parse_args()
    rows = []
    for seed in args.seeds:
        with tempfile.TemporaryDirectory() as tmp:
            run_dir = Path(tmp) / "run"
            launched = run_train(
                args.env, run_dir, "--workers", str(args.workers), "--seed", str(seed),
                "--max-seconds", str(args.max_seconds), "--target-return", "none",
                "--total-steps", str(10**9), *args.extra,
                stop_when=lambda d: time_to_return(d, args.threshold) is not None,
            )
            reached = time_to_return(run_dir, args.threshold)
            offset = start_time(run_dir) - launched
            if reached is None:
                rows.append((seed, None, None))
            else:
                rows.append((seed, reached[0] + offset, reached[1]))
    solved = [r[1] for r in rows if r[1] is not None]
    lines = [
        f"A3C time to a training return of {args.threshold:g} (mean of last 20 episodes) on "
        f"{args.env}, {args.workers} workers, from the command's launch",
        f"machine: {machine()}", "",
        "| seed | seconds | env steps |", "|---:|---:|---:|",
    ]
    for seed, seconds, steps in rows:
        lines.append(f"| {seed} | {'not reached' if seconds is None else f'{seconds:.1f}'} | "
                     f"{'-' if steps is None else f'{steps:,}'} |")
    lines.append("")
    lines.append(f"median: {median(solved):.1f} s over {len(solved)}/{len(rows)} seeds that reached it"
                 if solved else "no seed reached the threshold")
    report(lines, args.out)


if __name__ == "__main__":
    main()
