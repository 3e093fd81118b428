"""Regenerate the README's "How fast" table at HEAD: every figure from one invocation.

    python benchmarks/readme_table.py        # about 25 minutes on 2 cores

Runs the benchmarks behind each row one after the other, each writing its own report under
benchmarks/results/ (compare-CartPole-v1, throughput-PongNoFrameskip-v4, ray_scaling), then writes
the table between the README's `how-fast` markers with the date, the commit and the machine. Each row
leads with a ratio measured within one benchmark run (against Stable-Baselines3 A2C, the env alone, or
the local backend), because these machines differ by more than 2x from day to day; the absolute
rates beside it are that day's.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from common import commit, machine

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
START, END = "<!-- how-fast:start -->", "<!-- how-fast:end -->"

Row = tuple[str, str, str, str]  # measure, ratio, that day's figures, command


def run(script: str, *args: str) -> str:
    """Run one benchmark script from the repository's root; its command line as the README shows it."""
    subprocess.run([sys.executable, f"benchmarks/{script}", *args], cwd=ROOT, check=True)
    return f"`python benchmarks/{script} {' '.join(args)}`"


def cartpole() -> list[Row]:
    command = run("compare.py", "CartPole-v1", "--seeds", "0", "1", "2", "--steps", "200000",
                  "--out", "benchmarks/results/compare-CartPole-v1")
    results = json.loads((RESULTS / "compare-CartPole-v1.json").read_text())["results"]

    def med(algo: str, key: str) -> float:  # over the seeds that have the figure, as compare.py's table
        values = [r[key] for r in results if r["algo"] == algo and r[key] is not None]
        return statistics.median(values) if values else float("nan")

    reached = {a: sum(r["algo"] == a and r["seconds_to_target"] is not None for r in results)
               for a in ("a3c", "a2c", "sb3-a2c")}
    seeds = len({r["seed"] for r in results})

    rate = {a: med(a, "steps_per_second") for a in ("a3c", "a2c", "sb3-a2c")}
    solve = {a: med(a, "seconds_to_target") for a in ("a3c", "a2c", "sb3-a2c")}
    return [
        ("CartPole-v1, wall time to a training return of 475 (from the run's start), A3C / SB3 A2C",
         f"**{solve['a3c'] / solve['sb3-a2c']:.2f}x**",
         ", ".join(f"{name} {solve[a]:.1f} s ({reached[a]}/{seeds} seeds reached it)"
                   for a, name in (("a3c", "A3C"), ("a2c", "A2C"), ("sb3-a2c", "SB3 A2C"))), command),
        ("CartPole-v1, env steps/s over a 200k-step run, A3C 2 workers x 4 envs / SB3 A2C 8 envs",
         f"**{rate['a3c'] / rate['sb3-a2c']:.1f}x**",
         f"A3C {rate['a3c']:,.0f}, A2C {rate['a2c']:,.0f}, SB3 A2C {rate['sb3-a2c']:,.0f}", "same"),
    ]


def pong() -> list[Row]:
    command = run("throughput.py", "--env", "PongNoFrameskip-v4", "--workers", "2", "--references",
                  "--repeats", "3", "--seconds", "25",
                  "--out", "benchmarks/results/throughput-PongNoFrameskip-v4.md")
    record = json.loads((RESULTS / "throughput-PongNoFrameskip-v4.json").read_text())
    a3c, env, sb3 = record["a3c"], record["env_only"], record["sb3"]
    return [
        ("PongNoFrameskip-v4, agent steps/s, A3C learning (2 workers x 8 envs) / the env alone "
         "(random actions, same layout and cores)", f"**{a3c / env:.2f}x**",
         f"A3C {a3c:,.0f}, env alone {env:,.0f}", command),
        ("same run, A3C / SB3 A2C (CnnPolicy, 16 envs)", f"**{a3c / sb3:.1f}x**",
         f"A3C {a3c:,.0f}, SB3 A2C {sb3:,.0f}", "same"),
    ]


def ray() -> list[Row]:
    command = run("ray_scaling.py", "--workers", "2", "--repeats", "2", "--seconds", "25",
                  "--measure", "10", "--server-seconds", "6", "--out", "benchmarks/results/ray_scaling.md")
    record = json.loads((RESULTS / "ray_scaling.json").read_text())
    rates, firsts = record["env_steps_per_s"], record["first_update_s"]
    local, remote = rates["local x2, 1 per push"], rates["ray x2, 8 per push"]
    start = record["ray_start_s"]["total"]
    return [
        ("CartPole-v1, env steps/s, Ray backend 2 workers / local backend 2 workers",
         f"**{remote / local:.2f}x**", f"Ray {remote:,.0f}, local {local:,.0f}", command),
        ("same run, seconds from the command to the first update, Ray / local",
         f"**{firsts['ray x2, 8 per push'] / firsts['local x2, 1 per push']:.1f}x**",
         f"Ray {firsts['ray x2, 8 per push']:.1f} s (Ray's own start-up, import to the first actor "
         f"importing torch: {start:.1f} s), local {firsts['local x2, 1 per push']:.1f} s", "same"),
    ]


SECTIONS: dict[str, Callable[[], list[Row]]] = {"cartpole": cartpole, "pong": pong, "ray": ray}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md")
    args = parser.parse_args()
    readme = args.readme.read_text()
    if START not in readme or END not in readme:
        raise SystemExit(f"{args.readme} has no {START} ... {END} section to fill")
    code = commit()  # before the benchmarks rewrite their reports, which would mark the tree changed
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    rows = [f"| {m} | {r} | {f} | {c} |" for section in SECTIONS.values() for m, r, f, c in section()]
    stamp = (f"Generated by `python benchmarks/readme_table.py` on "
             f"{time.strftime('%Y-%m-%d', time.gmtime())}, commit {code}, {machine()}.")
    table = "\n".join([
        "", stamp, "",
        "| measure | ratio in one run | that day's figures | command |",
        "|---|---:|---|---|",
        *rows, "",
    ])
    args.readme.write_text(head + START + table + END + tail)
    print(table)


if __name__ == "__main__":
    main()
