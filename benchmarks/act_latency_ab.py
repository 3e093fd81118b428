"""Batch-1 acting cost of this checkout's networks against another commit's, in one process, interleaved.

    git archive REV a3c | tar -x -C /tmp/before && mv /tmp/before/a3c /tmp/before/a3c_base
    grep -rl 'a3c' /tmp/before/a3c_base | xargs sed -i -E 's/(from|import) a3c(\\.| )/\\1 a3c_base\\2/g'
    PYTHONPATH=/tmp/before:. python benchmarks/act_latency_ab.py --blocks 40 --calls 1000

The other commit's package, renamed a3c_base, is imported beside this one. Both networks get the
same weights and the same observation, and the two take turns in blocks of `calls` calls, so that
whatever else the machine does falls on both alike; a separate process for each side (as in
act_latency.py) sees the machine's load change between runs. Process CPU time, one thread.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import a3c_base.core.networks as before
import gymnasium as gym
import numpy as np
import torch
from common import machine, report

from a3c.core import networks as after

VECTOR, ONE_OF_TWO = gym.spaces.Box(-4.8, 4.8, (4,), np.float32), gym.spaces.Discrete(2)
NETWORKS = {
    "mlp, separate torsos (CartPole-v1)": (VECTOR, ONE_OF_TWO, dict(shared_torso=False)),
    "mlp, shared torso (CartPole-v1)": (VECTOR, ONE_OF_TWO, dict(shared_torso=True)),
    "mlp, Gaussian head (Pendulum-v1)": (gym.spaces.Box(-8.0, 8.0, (3,), np.float32),
                                         gym.spaces.Box(-2.0, 2.0, (1,), np.float32),
                                         dict(shared_torso=False)),
    "mlp + LSTM 256 (a3c/CueMemory-v0)": (gym.spaces.Box(0.0, 1.0, (3,), np.float32), ONE_OF_TWO,
                                          dict(core="lstm", shared_torso=True)),
    "a3c-conv, 4x84x84 bytes (Atari)": (gym.spaces.Box(0, 255, (4, 84, 84), np.uint8),
                                        gym.spaces.Discrete(6), dict(torso="a3c-conv")),
}


def block(net, obs: torch.Tensor, calls: int) -> float:
    state = net.initial_state(1)
    start = time.process_time()
    for _ in range(calls):
        _, _, state = net.act(obs, state)
    return (time.process_time() - start) / calls


def measure(obs_space: gym.Space, act_space: gym.Space, options: dict, blocks: int, calls: int
            ) -> tuple[list[float], list[float]]:
    new = after.ActorCritic(after.NetworkSpec.from_spaces(obs_space, act_space, **options))
    old = before.ActorCritic(before.NetworkSpec.from_spaces(obs_space, act_space, **options))
    old.load_state_dict(new.state_dict())  # the same weights under the same names
    obs = torch.from_numpy(obs_space.sample())[None]
    times: tuple[list[float], list[float]] = ([], [])
    with torch.no_grad():
        block(old, obs, calls), block(new, obs, calls)  # warm both
        for i in range(blocks):
            pair = ((0, old), (1, new)) if i % 2 == 0 else ((1, new), (0, old))
            for side, net in pair:
                times[side].append(block(net, obs, calls))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=40)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    lines = [f"CPU us per net.act(obs, state) call at batch 1: a3c_base (before) and a3c (after) in one "
             f"process, {args.blocks} alternating blocks of {args.calls} calls each",
             f"machine: {machine()}", "",
             "| network | before | after | after / before (median of the blocks' ratios) |",
             "|---|---:|---:|---:|"]
    for name, (obs_space, act_space, options) in NETWORKS.items():
        old, new = measure(obs_space, act_space, options, args.blocks, args.calls)
        ratio = statistics.median(n / o for o, n in zip(old, new, strict=True))
        lines.append(f"| {name} | {statistics.median(old) * 1e6:.1f} | {statistics.median(new) * 1e6:.1f} | "
                     f"{ratio:.3f} |")
    report(lines, args.out)


if __name__ == "__main__":
    main()
