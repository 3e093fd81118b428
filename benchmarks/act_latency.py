"""Time of one acting forward pass at batch 1 (an A3C worker with one env), by network kind.

    python benchmarks/act_latency.py --calls 20000 --repeats 5

Measured with process CPU time on one intra-op thread, in one process: `net.act(obs, state)` under
no_grad, as the rollout collector calls it, for the CartPole network of the classic-control preset
(separate 64-64 tanh torsos), the same with a shared torso, a Gaussian head on Pendulum's spaces,
and the LSTM agent on the memory task.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from common import machine, median, report

from a3c.core.networks import ActorCritic, NetworkSpec
from a3c.envs.make import make_env

NETWORKS = {
    "mlp, separate torsos (CartPole-v1)": ("CartPole-v1", dict(shared_torso=False)),
    "mlp, shared torso (CartPole-v1)": ("CartPole-v1", dict(shared_torso=True)),
    "mlp, Gaussian head (Pendulum-v1)": ("Pendulum-v1", dict(shared_torso=False)),
    "mlp + LSTM 256 (a3c/CueMemory-v0)": ("a3c/CueMemory-v0", dict(core="lstm", shared_torso=True)),
}


def seconds_per_call(env_id: str, options: dict, calls: int) -> float:
    env = make_env(env_id)
    net = ActorCritic(NetworkSpec.from_spaces(env.observation_space, env.action_space, **options))
    obs = torch.as_tensor(env.reset(seed=0)[0])[None]
    env.close()
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
