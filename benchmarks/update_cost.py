"""Where an A3C worker's update goes on an MLP preset, part by part, and what torch's own calls cost
for the parts the library does its own way.

    python benchmarks/update_cost.py --env CartPole-v1 --out benchmarks/results/update-cost.md

One worker as drivers/hogwild.py builds one (the global network in shared memory, the shared
optimizer, a local network, the preset's envs), in one process on one torch thread. Each part of
ActorLearner.update is timed with perf_counter over `updates` updates. Then, on the same network and
gradient, in turn: torch's clip_grad_norm_ (foreach) against the gradient buffer's one norm and one
scale (a3c.core.gradients), and torch.optim.Adam(fused=True).step against SharedAdam.step, which
calls the same fused kernel directly.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import commit, invocation, machine, report  # noqa: E402

from a3c.api import A3C  # noqa: E402
from a3c.core.gradients import clip_by_norm, compute_gradients, gradient_buffer  # noqa: E402
from a3c.core.rollout import RolloutCollector  # noqa: E402
from a3c.drivers.base import OneComputeThread  # noqa: E402
from a3c.drivers.hogwild import HogwildBackend, SharedCounters  # noqa: E402
from a3c.envs.make import make_training_envs  # noqa: E402


def per_call(fn, calls: int, rounds: int) -> float:
    """Median over rounds of the CPU microseconds per call."""
    times = []
    for _ in range(rounds):
        start = time.process_time()
        for _ in range(calls):
            fn()
        times.append((time.process_time() - start) / calls * 1e6)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("--updates", type=int, default=2000)
    parser.add_argument("--calls", type=int, default=2000, help="calls per round of the comparisons")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    OneComputeThread()  # as a worker runs
    model = A3C(args.env, workers=1, seed=0, verbose=0)
    config = model.config
    net = type(model.policy)(model.policy.spec)
    net.share_statistics(model.policy)
    backend = HogwildBackend(0, config, model.policy, model.optimizer, SharedCounters(1),
                             torch.zeros(1, dtype=torch.bool))
    collector = RolloutCollector(make_training_envs(config, seed=0), config.n_steps, seed=0)
    parts = ("pull", "roll out", "returns, loss, backward, clipping", "statistics", "push (optimizer step)")
    spent = dict.fromkeys(parts, 0.0)

    def update(measure: bool) -> None:
        marks = [time.perf_counter()]
        version = backend.pull(net)
        marks.append(time.perf_counter())
        rollout = collector.collect(net)
        marks.append(time.perf_counter())
        compute_gradients(net, rollout, config)
        marks.append(time.perf_counter())
        collector.update_statistics(net, config.gamma)
        marks.append(time.perf_counter())
        backend.push(net, version, rollout.num_steps)
        marks.append(time.perf_counter())
        if measure:
            for part, (a, b) in zip(parts, zip(marks, marks[1:], strict=False), strict=True):
                spent[part] += b - a

    for _ in range(100):
        update(False)
    for _ in range(args.updates):
        update(True)
    steps = config.n_envs * config.n_steps
    total = sum(spent.values())

    params, flat = net.params, gradient_buffer(net)
    saved = flat.clone()

    def torch_clip() -> None:
        flat.copy_(saved)
        torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm, foreach=True)

    def buffer_clip() -> None:
        flat.copy_(saved)
        clip_by_norm(flat, config.max_grad_norm)

    torch_adam = torch.optim.Adam(net.params, lr=config.lr, fused=True)
    shared_adam = type(model.optimizer)(net.params, lr=config.lr, share=False)
    comparisons = [
        ("clipping the gradient's norm", "torch.nn.utils.clip_grad_norm_ (foreach)", torch_clip,
         "the buffer's norm and one scale", buffer_clip),
        ("the optimizer step", "torch.optim.Adam(fused=True).step", torch_adam.step,
         "SharedAdam.step (the same kernel, called directly)", shared_adam.step),
    ]
    rows = []
    for what, theirs, their_fn, ours, our_fn in comparisons:
        a, b = [], []
        for _ in range(args.rounds):
            a.append(per_call(their_fn, args.calls, 1))
            b.append(per_call(our_fn, args.calls, 1))
        rows.append(f"| {what} | {theirs}: {statistics.median(a):.1f} | {ours}: {statistics.median(b):.1f} | "
                    f"**{statistics.median(b) / statistics.median(a):.2f}x** |")
    lines = [
        f"# One A3C update on {args.env}'s preset ({config.n_envs} envs x {config.n_steps} steps), "
        "part by part",
        "", f"Command: `{invocation()}`", "",
        f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; commit {commit()}; "
        f"machine: {machine()}",
        "", f"Wall time (one process, one torch thread) per update, {args.updates} updates:", "",
        "| part | us per update | share | us per env step |", "|---|---:|---:|---:|",
        *(f"| {part} | {s / args.updates * 1e6:,.0f} | {s / total:.0%} | "
          f"{s / args.updates / steps * 1e6:.1f} |" for part, s in spent.items()),
        f"| whole update | {total / args.updates * 1e6:,.0f} | | {total / args.updates / steps * 1e6:.1f} |",
        "", f"CPU us per call, medians of {args.rounds} rounds of {args.calls} calls, the two in turn:", "",
        "| part | torch's call | this library's | ratio |", "|---|---|---|---:|", *rows,
    ]
    report(lines, args.out)


if __name__ == "__main__":
    main()
