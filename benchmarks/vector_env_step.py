"""One batched env step: gymnasium's SyncVectorEnv against this library's SerialEnvs, and the envs alone.

    python benchmarks/vector_env_step.py --env CartPole-v1 --n-envs 4 \\
        --out benchmarks/results/vector_env_step.md

The same envs (made as a learner makes them: make_env with training=True, so RecordEpisodeStatistics
and Gymnasium's own wrappers included), the same fixed actions, same-step autoreset; the three take
turns in blocks so that the machine's load falls on all alike. "alone" steps each wrapped env in a
plain loop and resets it at an episode's end, with no batching: the floor under both.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import commit, invocation, machine, report  # noqa: E402

from a3c.envs.make import SerialEnvs, make_env  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("--n-envs", type=int, default=4)
    parser.add_argument("--blocks", type=int, default=15, help="blocks per side")
    parser.add_argument("--steps", type=int, default=3000, help="batched steps per block")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    def envs() -> list[gym.Env]:
        return [make_env(args.env, seed=i, training=True) for i in range(args.n_envs)]

    sync = gym.vector.SyncVectorEnv([lambda e=e: e for e in envs()],
                                    autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    serial = SerialEnvs(envs())
    alone = envs()
    for batch in (sync, serial):
        batch.reset(seed=0)
    for i, env in enumerate(alone):
        env.reset(seed=i)
    sync.action_space.seed(0)
    actions = np.stack([sync.action_space.sample() for _ in range(64)])

    def step_alone(a: np.ndarray) -> None:
        for env, action in zip(alone, a, strict=True):
            _, _, terminated, truncated, _ = env.step(action)
            if terminated or truncated:
                env.reset()

    sides = {"SyncVectorEnv": sync.step, "SerialEnvs": serial.step, "the envs alone": step_alone}
    times: dict[str, list[float]] = {name: [] for name in sides}
    for i in range(args.blocks):
        for name, step in (sides.items() if i % 2 == 0 else reversed(sides.items())):
            start = time.process_time()
            for k in range(args.steps):
                step(actions[k % len(actions)])
            times[name].append((time.process_time() - start) / args.steps * 1e6)
    med = {name: statistics.median(t) for name, t in times.items()}
    lines = [
        f"# One batched step of {args.n_envs} x {args.env}: SyncVectorEnv, SerialEnvs, the envs alone", "",
        f"Command: `{invocation()}`", "",
        f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; commit {commit()}; "
        f"machine: {machine()}", "",
        f"CPU us per batched step, median of {args.blocks} blocks of {args.steps} steps each, the three "
        "in turn.", "",
        "| | CPU us per batched step | x the envs alone |",
        "|---|---:|---:|",
        *(f"| {name} | {us:.1f} | {us / med['the envs alone']:.2f}x |" for name, us in med.items()),
        "",
        f"SerialEnvs / SyncVectorEnv: **{med['SerialEnvs'] / med['SyncVectorEnv']:.2f}x** the CPU time.",
    ]
    report(lines, args.out)


if __name__ == "__main__":
    main()
