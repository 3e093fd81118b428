"""CPU time of one optimizer step on a preset's network: the shared optimizers against torch's paths.

    python benchmarks/optimizer_step.py --env CartPole-v1 --rounds 7 --steps 2000

One torch thread, as a worker has; the optimizers take turns round by round, so that the machine's
load falls on each alike. Reports the median over rounds of the CPU us per step.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import gymnasium as gym
import torch
from common import machine, median, report

from a3c.api import NETWORK_OPTIONS
from a3c.core.networks import ActorCritic, NetworkSpec
from a3c.core.optim import SharedAdam
from a3c.presets import build_config

CANDIDATES = {
    "SharedAdam (this library's, shared state)": lambda params: SharedAdam(params),
    "torch Adam, fused": lambda params: torch.optim.Adam(params, fused=True),
    "torch Adam, foreach": lambda params: torch.optim.Adam(params, foreach=True),
    "torch Adam, per tensor": lambda params: torch.optim.Adam(params, foreach=False),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = build_config(args.env)
    env = gym.make(args.env)
    spec = NetworkSpec.from_spaces(env.observation_space, env.action_space,
                                   **{name: getattr(config, name) for name in NETWORK_OPTIONS})
    runs = {}
    for name, make in CANDIDATES.items():
        net = ActorCritic(spec)
        for p in net.parameters():
            p.grad = torch.randn_like(p)
        runs[name] = make(net.parameters())
        for _ in range(50):
            runs[name].step()
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.rounds):
        for name, optimizer in runs.items():
            start = time.process_time()
            for _ in range(args.steps):
                optimizer.step()
            times[name].append((time.process_time() - start) / args.steps * 1e6)
    sizes = [p.numel() for group in runs[next(iter(runs))].param_groups for p in group["params"]]
    lines = [f"Optimizer step, CPU us, {args.env}'s preset network ({sum(sizes):,} parameters in "
             f"{len(sizes)} tensors), median of {args.rounds} rounds x {args.steps} steps",
             f"machine: {machine()}", "", "| optimizer | CPU us per step | rounds |", "|---|---:|---|"]
    for name, values in times.items():
        lines.append(f"| {name} | {median(values):.1f} | {', '.join(f'{v:.0f}' for v in values)} |")
    report(lines, args.out)


if __name__ == "__main__":
    main()
