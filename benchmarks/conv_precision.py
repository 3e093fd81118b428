"""CPU time of the conv torso's share of an Atari update, float32 against bfloat16 weights and activations.

    python benchmarks/conv_precision.py --rounds 7 --updates 40 --out benchmarks/results/conv_precision.md

One update of an A3C worker on the atari preset's layout (8 envs, T=5): five acting passes over 8
stacks of 84x84x4 frames with the layers' outputs kept (ConvTorso.forward with a trace, no
autograd), one more for the bootstrap value, then the learning pass replayed from them over the 40
stacks (ConvTorso.replay) and its backward, each torso as `--conv-precision` builds it (bfloat16:
the weights cast once per rollout). The heads, the loss and the optimizer are left out: this is
the part a lower precision speeds up. One torch thread, as a worker has; the precisions take turns
update by update, so the machine's load falls on each alike. Reports the median over rounds of the
CPU us per agent step; how bfloat16 learns is not measured here.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from common import machine, median, report

from a3c.core.torsos import PRECISIONS, ConvTorso, Trace
from a3c.drivers.processes import keep_freed_memory

N_ENVS, N_STEPS, SHAPE = 8, 5, (4, 84, 84)


def update(torso: ConvTorso, weights: dict[str, torch.Tensor], frames: torch.Tensor) -> None:
    """One update's torso work from the float32 weights (copied in, as a worker pulls the global
    ones); frames: uint8 [N_STEPS + 1, N_ENVS, *SHAPE]."""
    torso.load_state_dict(weights)
    torso.zero_grad(set_to_none=True)
    trace = Trace()
    with torch.no_grad():
        for t in range(N_STEPS):
            torso(frames[t], trace)
        torso(frames[N_STEPS])  # the bootstrap value's pass
    torso.replay(frames[:N_STEPS].flatten(0, 1), trace).sum().backward()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--torsos", nargs="+", default=["a3c-conv", "nature-conv"])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--updates", type=int, default=40, help="updates per precision per round")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    keep_freed_memory()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    frames = torch.randint(0, 256, (N_STEPS + 1, N_ENVS, *SHAPE), dtype=torch.uint8)
    rows = []
    for kind in args.torsos:
        weights = {k: v.clone() for k, v in ConvTorso(SHAPE, kind).state_dict().items()}
        torsos = {precision: ConvTorso(SHAPE, kind, precision=precision) for precision in PRECISIONS}
        cpu: dict[str, list[float]] = {precision: [] for precision in torsos}
        for torso in torsos.values():  # warm-up
            for _ in range(5):
                update(torso, weights, frames)
        for _ in range(args.rounds):
            spent = dict.fromkeys(torsos, 0.0)
            for _ in range(args.updates):
                for precision, torso in torsos.items():
                    start = time.process_time()
                    update(torso, weights, frames)
                    spent[precision] += time.process_time() - start
            for precision in torsos:
                cpu[precision].append(spent[precision] / (args.updates * N_ENVS * N_STEPS) * 1e6)
        fp32, bf16 = median(cpu["float32"]), median(cpu["bfloat16"])
        rows.append(f"| {kind} | {fp32:,.0f} | {bf16:,.0f} | {fp32 / bf16:.2f}x |")
        print(rows[-1], flush=True)
    report([
        f"# The conv torso's share of an Atari update: float32 against bfloat16 ({started})", "",
        f"Command: `python benchmarks/conv_precision.py --rounds {args.rounds} --updates {args.updates}`; "
        f"machine: {machine()}", "",
        "CPU us per agent step (median of the rounds) of the torso's acting passes, its replayed "
        "learning pass and backward; one torch thread.", "",
        "| torso | float32 | bfloat16 | float32 / bfloat16 |", "|---|---:|---:|---:|", *rows,
    ], args.out)


if __name__ == "__main__":
    main()
