"""Time of one acting forward pass at batch 1 (an A3C worker with one env), by network kind.

    python benchmarks/act_latency.py --calls 20000 --repeats 5

Measured with process CPU time on one intra-op thread, in one process: `net.act(obs, state)` under
no_grad, as the rollout collector calls it, for the CartPole network of the classic-control preset
(separate 64-64 tanh torsos), the same with a shared torso, a Gaussian head on Pendulum's spaces,
the LSTM agent on the memory task, and the A3C paper's conv torso on a stack of four 84x84 Atari
frames (bytes, as the Atari pipeline gives them; no emulator needed).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from common import machine, median, report

from a3c.core.networks import ActorCritic, NetworkSpec
from a3c.envs.make import make_env

ATARI = "atari frames"  # the spaces of the Atari pipeline, without an emulator

NETWORKS = {
    "mlp, separate torsos (CartPole-v1)": ("CartPole-v1", dict(shared_torso=False)),
    "mlp, shared torso (CartPole-v1)": ("CartPole-v1", dict(shared_torso=True)),
    "mlp, Gaussian head (Pendulum-v1)": ("Pendulum-v1", dict(shared_torso=False)),
    "mlp + LSTM 256 (a3c/CueMemory-v0)": ("a3c/CueMemory-v0", dict(core="lstm", shared_torso=True)),
    "a3c-conv, 4x84x84 bytes (Atari)": (ATARI, dict(torso="a3c-conv")),
}


def seconds_per_call(env_id: str, options: dict, calls: int) -> float:
    if env_id == ATARI:
        obs_space, act_space = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8), gym.spaces.Discrete(6)
        obs = torch.from_numpy(obs_space.sample())[None]
    else:
        env = make_env(env_id)
        obs_space, act_space = env.observation_space, env.action_space
        obs = torch.as_tensor(env.reset(seed=0)[0])[None]
        env.close()
    net = ActorCritic(NetworkSpec.from_spaces(obs_space, act_space, **options))
    state = net.initial_state(1)
    with torch.no_grad():
        for _ in range(200):
            net.act(obs, state)
        start = time.process_time()
        for _ in range(calls):
            _, _, state = net.act(obs, state)
    return (time.process_time() - start) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    lines = [f"CPU time of one net.act(obs, state) call at batch 1, median of {args.repeats} x "
             f"{args.calls} calls", f"machine: {machine()}", "",
             "| network | CPU us per call |", "|---|---:|"]
    for name, (env_id, options) in NETWORKS.items():
        cost = median([seconds_per_call(env_id, options, args.calls) for _ in range(args.repeats)])
        lines.append(f"| {name} | {cost * 1e6:.1f} |")
    report(lines, args.out)


if __name__ == "__main__":
    main()
