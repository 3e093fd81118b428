"""CPU time per env step of one A3C worker's loop on CartPole-v1, by envs per worker.

    python benchmarks/cpu_cost.py --updates 2000

Measured with process CPU time in one process (pull, roll out, gradients, push through the shared
optimizer: the worker loop without the process around it), so other load on the machine changes
it little: a shared machine cannot give honest wall-clock rates, this can. A worker on a free core
runs at about 1 / (CPU time per step) env steps per second.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from common import machine, median, report

from a3c.api import NETWORK_OPTIONS
from a3c.core.gradients import compute_gradients
from a3c.core.networks import ActorCritic, NetworkSpec
from a3c.core.optim import make_optimizer
from a3c.core.rollout import RolloutCollector
from a3c.drivers.hogwild import HogwildBackend, SharedCounters
from a3c.envs.make import make_training_envs
from a3c.presets import build_config


def cpu_seconds_per_step(env_id: str, n_envs: int, updates: int, n_steps: int | None = None) -> float:
    overrides = {} if n_steps is None else {"n_steps": n_steps}
    config = build_config(env_id, workers=1, n_envs=n_envs, **overrides)
    envs = make_training_envs(config, seed=0)
    spec = NetworkSpec.from_spaces(envs.single_observation_space, envs.single_action_space,
                                   **{name: getattr(config, name) for name in NETWORK_OPTIONS})
    global_net = ActorCritic(spec)
    global_net.share_memory()
    optimizer = make_optimizer(config, global_net.parameters(), shared=True)
    stop_flag = torch.zeros(1, dtype=torch.int64).share_memory_()
    backend = HogwildBackend(0, config, global_net, optimizer, SharedCounters(1), stop_flag)
    net = ActorCritic(spec)
    net.share_statistics(global_net)  # as a worker does: one copy of obs_norm's statistics
    collector = RolloutCollector(envs, config.n_steps, seed=0)

    def update() -> int:
        version = backend.pull(net)
        rollout = collector.collect(net)
        compute_gradients(net, rollout, config)
        collector.update_statistics(net, config.gamma)  # obs_norm's, where the preset keeps it
        backend.push(net, version, rollout.num_steps)
        return rollout.num_steps

    for _ in range(50):
        update()
    start, steps = time.process_time(), 0
    for _ in range(updates):
        steps += update()
    return (time.process_time() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("--n-envs", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--n-steps", type=int, nargs="+", default=[None],
                        help="rollout lengths T to measure (default: the preset's)")
    parser.add_argument("--updates", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    lines = [f"A3C worker loop, CPU time per env step on {args.env} (default preset), "
             f"median of {args.repeats} x {args.updates} updates", f"machine: {machine()}", "",
             "| envs per worker | T | CPU us per env step | steps/s per free core |", "|---:|---:|---:|---:|"]
    for n_steps in args.n_steps:
        for n_envs in args.n_envs:
            cost = median([cpu_seconds_per_step(args.env, n_envs, args.updates, n_steps)
                           for _ in range(args.repeats)])
            t = "preset" if n_steps is None else n_steps
            lines.append(f"| {n_envs} | {t} | {cost * 1e6:.1f} | {1 / cost:,.0f} |")
    report(lines, args.out)


if __name__ == "__main__":
    main()
