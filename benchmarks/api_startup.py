"""From a fresh interpreter to A3C's first update, through the Python API (a script, as users of
Stable-Baselines3 write one) or the command, for this checkout and optionally another tree of the
package.

Each repeat launches `python -c SCRIPT`: import a3c, build A3C(ENV) with the preset, learn a few
thousand steps (no evaluations, no checkpoints); with --cli, `python -m a3c.cli train ENV` with the
same options. Reported per tree, medians over repeats taken in
turn: seconds from the launch to the first update (the first row of updates.csv) and to the end of
the process. Usage:

    python benchmarks/api_startup.py --repeats 7 --out benchmarks/results/api_startup.md
    python benchmarks/api_startup.py --before /tmp/before   # /tmp/before/a3c: the package to compare
    python benchmarks/api_startup.py --cli --before /tmp/before
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import commit, invocation, machine, median, read_csv, report, start_time

SCRIPT = """
if __name__ == "__main__":
    from a3c import A3C
    A3C({env!r}, workers=2, total_steps={steps}, verbose=0, eval_interval=0, checkpoint_interval=0,
        final_eval_episodes=0, target_return=None, log_interval=0.05).learn(run_dir={run_dir!r})
"""


def one_run(tree: str | None, env_id: str, steps: int, run_dir: Path, cli: bool) -> tuple[float, float]:
    """(seconds to the first update, seconds to the process's end), from the launch."""
    env = dict(os.environ)
    if tree is not None:  # its a3c first on the path, for this process and its forkserver
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [tree, env.get("PYTHONPATH")]))
    if cli:
        command = ["-m", "a3c.cli", "train", env_id, "--workers", "2", "--total-steps", str(steps),
                   "--eval-interval", "0", "--checkpoint-interval", "0", "--final-eval-episodes", "0",
                   "--target-return", "none", "--log-interval", "0.05", "--quiet", "--run-dir", str(run_dir)]
    else:
        command = ["-c", SCRIPT.format(env=env_id, steps=steps, run_dir=str(run_dir))]
    launched = time.time()
    subprocess.run([sys.executable, *command], check=True, env=env, cwd=run_dir.parent,
                   stdout=subprocess.DEVNULL)
    ended = time.time() - launched
    first = read_csv(run_dir / "updates.csv")[0]["wall_time"] + start_time(run_dir) - launched
    return first, ended


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("--steps", type=int, default=4_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cli", action="store_true", help="the command instead of the Python API")
    parser.add_argument("--before", help="a directory holding another a3c package, measured in turn")
    parser.add_argument("--note", default="", help="what else ran on the machine")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    trees = {"this checkout": None} | ({f"before ({args.before})": args.before} if args.before else {})
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in trees}
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            for i, (name, tree) in enumerate(trees.items()):
                run_dir = Path(tmp) / f"run-{repeat}-{i}"
                results[name].append(one_run(tree, args.env, args.steps, run_dir, args.cli))
    way = "the command" if args.cli else "the Python API"
    lines = [
        f"# From a fresh interpreter to A3C's first update through {way} ({args.env})", "",
        f"Command: `{invocation()}`", "",
        f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; commit {commit()}; machine: "
        f"{machine()}. {args.note}".rstrip(), "",
        "Each repeat: a fresh interpreter that "
        + (f"runs `a3c train {args.env} --workers 2`" if args.cli else
           f"imports a3c and builds `A3C({args.env!r}, workers=2)`")
        + f" with its preset and learns {args.steps:,} steps (no evaluations or checkpoints); the "
        "trees in turn in each repeat. Seconds from the launch; medians, every repeat in brackets.", "",
        "| tree | to the first update | to the process's end |", "|---|---:|---:|",
    ]
    for name, runs in results.items():
        firsts, ends = [r[0] for r in runs], [r[1] for r in runs]
        lines.append(f"| {name} | {median(firsts):.2f} ({', '.join(f'{x:.2f}' for x in firsts)}) | "
                     f"{median(ends):.2f} ({', '.join(f'{x:.2f}' for x in ends)}) |")
    if args.before:
        (a, b) = [median([r[0] for r in runs]) for runs in results.values()]
        lines += ["", f"First update: this checkout takes {a / b:.2f}x the time of the tree before."]
    report(lines, args.out)


if __name__ == "__main__":
    main()
