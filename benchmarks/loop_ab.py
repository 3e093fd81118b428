"""An A3C worker's loop, this checkout against another commit's, in one process, interleaved.

    git archive REV a3c | tar -x -C /tmp/before && mv /tmp/before/a3c /tmp/before/a3c_base
    grep -rl 'a3c' /tmp/before/a3c_base | xargs sed -i -E 's/(from|import) a3c(\\.| )/\\1 a3c_base\\2/g'
    PYTHONPATH=/tmp/before:. python benchmarks/loop_ab.py --env CartPole-v1 --blocks 16 --updates 200
    PYTHONPATH=/tmp/before:. python benchmarks/loop_ab.py --env PongNoFrameskip-v4 \\
        --torsos a3c-conv nature-conv
    PYTHONPATH=/tmp/before:. python benchmarks/loop_ab.py --env PongNoFrameskip-v4 --torsos a3c-conv \\
        --conv-precision bfloat16   # REV=HEAD

Each side is a worker as drivers/hogwild.py builds one (the global network in shared memory, its
shared optimizer, a local network, the env's preset: its envs per worker, T and network; for Atari
8 games in ale-py's AtariVectorEnv, T=5; one torch thread) running ActorLearner.update. Both start
from the same weights; the two take turns in blocks of `updates` updates, so whatever else the
machine does falls on both alike. CPU time is this process's (the worker's thread and, for Atari,
ale-py's), per agent step.
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import commit, machine, report  # noqa: E402

from a3c.drivers.base import OneComputeThread  # noqa: E402
from a3c.drivers.processes import keep_freed_memory  # noqa: E402


def worker(package: str, env_id: str, weights: dict[str, torch.Tensor] | None, **options: Any) -> Any:
    """An ActorLearner of `package` (a3c or a3c_base) on the env's preset and options, and its envs."""
    def module(name: str) -> ModuleType:
        return importlib.import_module(f"{package}.{name}")

    model = module("api").A3C(env_id, workers=1, seed=0, verbose=0, **options)
    if weights is not None:
        model.policy.load_state_dict(weights)
    config = model.config
    hogwild = module("drivers.hogwild")
    backend = hogwild.HogwildBackend(0, config, model.policy, model.optimizer, hogwild.SharedCounters(1),
                                     torch.zeros(1, dtype=torch.bool))
    net = type(model.policy)(model.policy.spec)
    envs = module("envs.make").make_training_envs(config, seed=0)
    collector = module("core.rollout").RolloutCollector(envs, config.n_steps, seed=0)
    learner = module("drivers.actor_learner").ActorLearner(0, config, net, collector, backend, time.time())
    return model, learner, config.n_envs * config.n_steps


def block(learner: Any, updates: int, steps: int) -> tuple[float, float]:
    """(wall, CPU) seconds per agent step of `updates` updates."""
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(updates):
        learner.update()
    return (time.perf_counter() - wall) / (updates * steps), (time.process_time() - cpu) / (updates * steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("--torsos", nargs="+", default=[None],
                        help="each a run of its own with this torso (default: the preset's)")
    parser.add_argument("--blocks", type=int, default=16, help="blocks per side")
    parser.add_argument("--updates", type=int, default=10, help="updates per block")
    parser.add_argument("--warmup", type=int, default=10, help="updates per side before measuring")
    parser.add_argument("--conv-precision", default=None,
                        help="this checkout's side only: its conv_precision (the other side's default)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    OneComputeThread()  # as a worker runs
    keep_freed_memory()  # as every learning process does
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    rows = []
    for torso in args.torsos:
        options = {} if args.conv_precision is None else {"conv_precision": args.conv_precision}
        chosen = {} if torso is None else {"torso": torso}
        new, new_learner, steps = worker("a3c", args.env, None, **chosen, **options)
        _, old_learner, _ = worker("a3c_base", args.env, new.policy.state_dict(), **chosen)
        learners = {"before": old_learner, "after": new_learner}
        times: dict[str, list[tuple[float, float]]] = {"before": [], "after": []}
        for side in learners.values():
            block(side, args.warmup, steps)
        for i in range(args.blocks):
            for side in (("before", "after") if i % 2 == 0 else ("after", "before")):
                times[side].append(block(learners[side], args.updates, steps))
        for learner in learners.values():
            learner.collector.envs.close()
        med = {side: (statistics.median(w for w, _ in t), statistics.median(c for _, c in t))
               for side, t in times.items()}
        paired = statistics.median(b[1] / a[1] for a, b in zip(times["after"], times["before"], strict=True))
        rows.append(f"| {torso or new.config.torso} | {med['before'][1] * 1e6:,.0f} | "
                    f"{med['after'][1] * 1e6:,.0f} | "
                    f"{paired:.2f}x | {med['before'][0] * 1e6:,.0f} | {med['after'][0] * 1e6:,.0f} | "
                    f"{med['before'][0] / med['after'][0]:.2f}x |")
        print(rows[-1], flush=True)
    base = importlib.import_module("a3c_base").__file__
    lines = [
        f"Worker loop on {args.env}, before ({base}) / after (this checkout, {commit()}"
        f"{'' if args.conv_precision is None else ', conv_precision ' + args.conv_precision}), "
        f"{args.blocks} blocks of {args.updates} updates per side, interleaved; {started}",
        f"machine: {machine()}", "",
        "| torso | CPU us per agent step, before | after | speed-up (median of paired blocks) | "
        "wall us, before | after | wall speed-up |",
        "|---|---:|---:|---:|---:|---:|---:|",
        *rows,
    ]
    report(lines, args.out)


if __name__ == "__main__":
    main()
