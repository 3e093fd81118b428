"""Env steps per second of A3C on CartPole-v1 with 1..N workers (medians over repeats).

    python benchmarks/throughput.py --workers 1 2 --repeats 3 --seconds 15

The rate is measured from the update log between 2 s after the start and the end, so process
start-up is not counted; evaluation is off so only the workers run.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from common import machine, median, report, run_train, steady_rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--out", type=Path, default=None, help="also write the table here")
    parser.add_argument("extra", nargs="*", help="more `a3c train` options, after --")
    args = parser.parse_args()
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
    report(lines, args.out)


if __name__ == "__main__":
    main()
