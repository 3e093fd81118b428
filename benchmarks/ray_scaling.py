"""The Ray backend on one machine: the parameter server's update rate, and env steps/s by worker count.

    python benchmarks/ray_scaling.py --out benchmarks/results/ray_scaling.md

1. Parameter server: 1 and 2 client actors push a pre-made CartPole-v1 gradient as fast as they
   can through the real RayBackend (pull the newest published parameters, push, at most
   max_inflight_pushes in flight); the rate is the server's applied updates per second.
   With at most --per-push gradients per call (gradients_per_push; default 8, the config's), each its
   own update, and with --other-per-push (default 1).
2. Training throughput: `a3c train CartPole-v1 --backend ray --workers W` for each W, and the local
   backend with 2 workers, and Ray with 2 workers and --other-per-push gradients per call,
   interleaved in one invocation so that all see the same machine load; the
   rate is env steps/s over the last --measure seconds of each run (Ray's start-up is not counted).
   Each run's start-up is measured too: the seconds from the command's launch to its first update
   (each learner reports its first update at once), a new local Ray instance's start included.
3. Ray's own start-up, the floor under the first update: in a fresh interpreter, `import ray`, a
   new local instance (`ray.init`, loopback, no dashboard), then the first actor that imports torch
   answering a call.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import invocation, machine, median, read_csv, run_train, start_time


def commit() -> str:
    import subprocess

    done = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True, text=True,
                          cwd=Path(__file__).parent)
    return done.stdout.strip() or "unknown"


def server_rate(clients: int, seconds: float, inflight: int, per_push: int) -> dict[str, float]:
    """Updates/s the parameter server applies with `clients` actors pushing pre-made gradients."""
    import gymnasium as gym
    import ray
    import torch

    from a3c.core.networks import ActorCritic, NetworkSpec
    from a3c.core.optim import make_optimizer, optimizer_tensors
    from a3c.drivers.ray.actor import RayBackend, join, server_name
    from a3c.drivers.ray.server import ParameterServer
    from a3c.presets import build_config

    config = build_config("CartPole-v1", max_inflight_pushes=inflight, gradients_per_push=per_push,
                          total_steps=10**12)
    env = gym.make(config.env_id)
    spec = NetworkSpec.from_spaces(env.observation_space, env.action_space,
                                   hidden_sizes=config.hidden_sizes, activation=config.activation,
                                   shared_torso=config.shared_torso)
    net = ActorCritic(spec)
    optimizer = make_optimizer(config, net.parameters(), shared=False)
    base = f"bench-server-{clients}-{time.monotonic_ns()}"
    server = ray.remote(ParameterServer).options(num_cpus=0, name=server_name(base, 0)).remote(
        config, spec, net.state_dict(), optimizer_tensors(optimizer, net))

    @ray.remote(num_cpus=1)
    class Client:
        def __init__(self, rank: int):
            torch.set_num_threads(1)
            self.net = ActorCritic(spec)
            for p in self.net.parameters():
                p.grad = torch.randn_like(p) * 1e-3
            self.backend = RayBackend(rank, config, base, *join(base, rank))

        def run(self, until: float) -> int:
            n = 0
            while time.time() < until:
                version = self.backend.pull(self.net)
                self.backend.push(self.net, version, config.n_steps)
                n += 1
            self.backend.drain()
            return n

    actors = [Client.remote(rank) for rank in range(clients)]
    ray.get([a.run.remote(time.time() + 1.0) for a in actors])  # warm up
    before = ray.get(server.stats.remote())
    t0 = time.time()
    ray.get([a.run.remote(t0 + seconds) for a in actors])
    after = ray.get(server.stats.remote())
    elapsed = time.time() - t0
    for actor in [*actors, server]:
        ray.kill(actor)
    updates = after["updates"] - before["updates"]
    return {"updates_per_s": updates / elapsed, "puts_per_s": (after["puts"] - before["puts"]) / elapsed,
            "server_cpu_us": 1e6 * (after["cpu_seconds"] - before["cpu_seconds"]) / max(updates, 1)}


def training_rate(backend: str, workers: int, per_push: int, seconds: float, measure: float,
                  seed: int) -> tuple[float, float]:
    """Env steps/s of a real `a3c train` run over its last `measure` seconds, and the seconds from the
    command's launch to its first update."""
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run"
        per_push_option = ["--gradients-per-push", str(per_push)] if backend == "ray" else []
        launched = run_train("CartPole-v1", run_dir, "--backend", backend, "--workers", str(workers),
                             *per_push_option, "--seed", str(seed), "--max-seconds", str(seconds),
                             "--total-steps", str(10**9), "--target-return", "none", "--eval-interval", "0",
                             "--final-eval-episodes", "0", "--checkpoint-interval", "0")
        rows = read_csv(run_dir / "updates.csv")
        first_update = start_time(run_dir) + rows[0]["wall_time"] - launched
    end = rows[-1]["wall_time"]
    window = [r for r in rows if r["wall_time"] >= end - measure]
    first, last = window[0], window[-1]
    if last["wall_time"] - first["wall_time"] < measure / 2:
        raise RuntimeError(f"{backend} x{workers}: reports span too little time to measure a rate")
    rate = (last["global_step"] - first["global_step"]) / (last["wall_time"] - first["wall_time"])
    return rate, first_update


_FLOOR = """
import json, logging, time
t0 = time.perf_counter()
import ray
t1 = time.perf_counter()
ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level=logging.WARNING,
         _node_ip_address="127.0.0.1")
t2 = time.perf_counter()

@ray.remote(num_cpus=0)
class Probe:
    def __init__(self):
        import torch  # noqa: F401  (what every worker and the server import first)

    def ping(self):
        return 1

ray.get(Probe.remote().ping.remote())
t3 = time.perf_counter()
print(json.dumps({"import ray": t1 - t0, "ray.init": t2 - t1, "first torch actor": t3 - t2,
                  "total": t3 - t0}))
"""


def ray_floor() -> dict[str, float]:
    """Seconds for each phase of Ray's own start-up, in a fresh interpreter (see _FLOOR)."""
    done = subprocess.run([sys.executable, "-c", _FLOOR], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=35.0,
                        help="length of each training run, Ray's start-up included")
    parser.add_argument("--measure", type=float, default=12.0, help="seconds at the end of a run to measure")
    parser.add_argument("--server-seconds", type=float, default=8.0)
    parser.add_argument("--inflight", type=int, default=2, help="max_inflight_pushes of the clients")
    parser.add_argument("--per-push", type=int, default=8,
                        help="gradients_per_push of the Ray runs (the most per call; the config's default)")
    parser.add_argument("--other-per-push", type=int, default=1,
                        help="also measure gradients_per_push this (ray, 2 workers; server)")
    parser.add_argument("--out", type=Path, default=None, help="also write the report here")
    parser.add_argument("--note", default="", help="what else ran on the machine, for the report")
    parser.add_argument("--floor-only", action="store_true",
                        help="measure Ray's own start-up only (section 3)")
    args = parser.parse_args()
    import ray

    command = invocation()
    started = time.strftime("%Y-%m-%d %H:%M")
    floors = []
    for _ in range(args.repeats):
        floors.append(ray_floor())
        print("Ray's start-up: " + ", ".join(f"{k} {v:.2f} s" for k, v in floors[-1].items()), flush=True)
    floor = [
        "",
        f"## Ray's own start-up in a fresh interpreter (seconds, median of {args.repeats}; runs)",
        "",
        "| phase | median | runs |",
        "|---|---:|---|",
        *(f"| {phase} | {median([f[phase] for f in floors]):.2f} | "
          f"{', '.join(f'{f[phase]:.2f}' for f in floors)} |" for phase in floors[0]),
    ]
    header = [
        "# Ray backend scaling on one machine",
        "",
        f"command: `{command}`  ",
        f"machine: {machine()}; run {started}  ",
        f"load average at the end: {open('/proc/loadavg').read().split()[:3]}  ",
        f"commit: {commit()}; what else ran: {args.note or 'not noted'}",
    ]
    if args.floor_only:
        write("\n".join(header + floor), args.out)
        return

    from a3c.drivers.ray.connection import start_local

    start_local(8)
    server_rows = []
    for per_push in (args.per_push, args.other_per_push):
        for clients in (1, 2):
            runs = [server_rate(clients, args.server_seconds, args.inflight, per_push)
                    for _ in range(args.repeats)]
            server_rows.append((clients, per_push, runs))
            print(f"server, {clients} client(s), {per_push} per push: "
                  f"{[round(r['updates_per_s']) for r in runs]} updates/s", flush=True)
    ray.shutdown()

    runs_list = [("local", 2, 1), *(("ray", w, args.per_push) for w in args.workers),
                 ("ray", 2, args.other_per_push)]
    rates: dict[tuple[str, int, int], list[float]] = {}
    firsts: dict[tuple[str, int, int], list[float]] = {}
    for repeat in range(args.repeats):
        for backend, workers, per_push in runs_list:
            rate, first = training_rate(backend, workers, per_push, args.seconds, args.measure, seed=repeat)
            rates.setdefault((backend, workers, per_push), []).append(rate)
            firsts.setdefault((backend, workers, per_push), []).append(first)
            print(f"{backend} x{workers}, {per_push} per push (repeat {repeat}): {rate:,.0f} env steps/s, "
                  f"first update {first:.2f} s after the command", flush=True)

    local = median(rates[("local", 2, 1)])
    lines = [
        *header,
        "",
        f"## Parameter server: gradient applications per second (CartPole-v1 network, "
        f"{args.server_seconds:g} s per run, max_inflight_pushes {args.inflight}, median of {args.repeats})",
        "",
        "| clients | gradients per push | updates/s (median) | runs | puts/s | server CPU per update |",
        "|---:|---:|---:|---|---:|---:|",
    ]
    for clients, per_push, runs in server_rows:
        ups = [r["updates_per_s"] for r in runs]
        best = runs[ups.index(median(ups))] if len(ups) % 2 else runs[0]
        lines.append(f"| {clients} | {per_push} | {median(ups):,.0f} | {', '.join(f'{u:,.0f}' for u in ups)} "
                     f"| {best['puts_per_s']:,.0f} | {best['server_cpu_us']:,.0f} us |")
    lines += [
        "",
        f"## Training throughput: CartPole-v1 env steps/s ({args.seconds:g} s runs, last "
        f"{args.measure:g} s measured, median of {args.repeats}, runs interleaved)",
        "",
        "| backend | workers | gradients per push | env steps/s (median) | runs | vs local, 2 workers "
        "| first update after the command (median; runs) |",
        "|---|---:|---:|---:|---|---:|---|",
    ]
    for (backend, workers, per_push), rs in rates.items():
        shown = per_push if backend == "ray" else "-"
        fs = firsts[(backend, workers, per_push)]
        lines.append(f"| {backend} | {workers} | {shown} | {median(rs):,.0f} | "
                     f"{', '.join(f'{r:,.0f}' for r in rs)} | {median(rs) / local:.0%} | "
                     f"{median(fs):.2f} s; {', '.join(f'{f:.2f}' for f in fs)} |")
    # Each repeat runs local x2 and ray x2 within a few minutes of each other: their ratio is less
    # exposed to the load of a shared machine drifting than the ratio of medians.
    lines.append("")
    for per_push in sorted({args.per_push, args.other_per_push}):
        if ("ray", 2, per_push) not in rates:
            continue
        ray_rates = rates[("ray", 2, per_push)]
        pairs = [r / here for r, here in zip(ray_rates, rates[("local", 2, 1)], strict=True)]
        lines.append(f"Ray ({per_push} gradient(s) per push) / local, 2 workers, per repeat: "
                     f"{', '.join(f'{p:.0%}' for p in pairs)} (median {median(pairs):.0%}); "
                     f"ratio of the medians: {median(ray_rates) / local:.0%}.  ")
    write("\n".join(lines + floor), args.out)
    if args.out:  # the figures, for benchmarks/readme_table.py
        def key(backend: str, workers: int, per_push: int) -> str:
            return f"{backend} x{workers}, {per_push} per push"

        record = {
            "commit": commit(), "machine": machine(), "date": started,
            "env_steps_per_s": {key(*k): median(rs) for k, rs in rates.items()},
            "first_update_s": {key(*k): median(fs) for k, fs in firsts.items()},
            "server_updates_per_s": {f"{c} clients, {p} per push": median([r["updates_per_s"] for r in runs])
                                     for c, p, runs in server_rows},
            "ray_start_s": {phase: median([f[phase] for f in floors]) for phase in floors[0]},
        }
        args.out.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")


def write(text: str, out: Path | None) -> None:
    print(text)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")


if __name__ == "__main__":
    main()
