"""Where an A3C worker's agent step goes on Atari, next to the emulator alone and the references.

    python benchmarks/atari_profile.py --out benchmarks/results/atari_profile.md

All in one run, so that the ratios hold on a machine whose speed changes from day to day:

1. Env only, random actions, the atari preset's layout (8 envs per process): Gymnasium's wrapper
   pipeline (SyncVectorEnv), ale-py's AtariVectorEnv as it comes, and AtariBatch (the same with the
   learner's view added), in one process and in two processes at once (the cores two workers use).
2. The worker loop of the atari preset (8 envs, T=5) in one process with one torch thread, for the
   paper's torso (a3c-conv) and the Nature torso (nature-conv), through each pipeline: first the
   real loop (ActorLearner.update, as a worker runs it), then the same work with a clock around
   each part: pull (copy the global parameters), env step, acting forward (and the bootstrap
   value), the collector's own work (buffer copies, NumPy <-> torch, episode bookkeeping), returns,
   learning forward, loss, backward, gradient clipping, optimizer step. The learning parts follow
   core/gradients.compute_gradients call for call; the real loop's time shows what the clocks cost.
3. A3C learning with 2 workers (`a3c train`, atari preset) for both torsos; our A2C (atari-a2c, 16
   envs); Stable-Baselines3 A2C (CnnPolicy, 16 envs, its Atari wrappers, 4 stacked frames).

Every measure is taken twice: in wall time, and in CPU time (user + system of every process and
thread that does the work: ale-py's threads, the workers, the trainer). On a machine shared with
other work, wall time is stretched by whatever else runs, and by different amounts from one
measure to the next; the CPU time an agent step costs is not. The CPU-based ratios are what the
wall-time ratios are on an idle machine whose cores the measured work fills.
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import commit, invocation, machine, read_csv, run_train, start_time  # noqa: E402

from a3c import A3C  # noqa: E402
from a3c.core.losses import actor_critic_loss  # noqa: E402
from a3c.core.returns import returns_and_advantages  # noqa: E402
from a3c.core.rollout import RolloutCollector  # noqa: E402
from a3c.drivers.actor_learner import ActorLearner  # noqa: E402
from a3c.drivers.hogwild import HogwildBackend, SharedCounters  # noqa: E402
from a3c.envs.make import make_training_envs  # noqa: E402
from a3c.presets import build_config  # noqa: E402

ENV_ID = "PongNoFrameskip-v4"
TORSOS = ("a3c-conv", "nature-conv")
PIPELINES = {"ale": "AtariBatch (ale-py's AtariVectorEnv)", "sync": "Gymnasium wrappers (SyncVectorEnv)"}
PARTS = (  # (key, label, group)
    ("pull", "pull: copy the global parameters", "copies and conversions"),
    ("env", "env step", "env"),
    ("act", "acting forward (8 envs), and the bootstrap value", "acting forward"),
    ("collector", "collector's own work: buffer copies, NumPy <-> torch, bookkeeping",
     "copies and conversions"),
    ("returns", "n-step returns and advantages (NumPy)", "other"),
    ("forward", "learning forward (40 observations, autograd)", "learning forward"),
    ("loss", "loss", "learning forward"),
    ("backward", "backward", "learning backward"),
    ("clip", "gradient norm clipping", "optimizer step"),
    ("push", "optimizer step (shared RMSProp), counters, learning rate", "optimizer step"),
)


# --- 1. env only ---------------------------------------------------------------------------------

def make_envs(kind: str, n_envs: int, env_id: str = ENV_ID) -> Any:
    """sync: the wrappers as make_training_envs batches them; ale: AtariBatch; raw: ale-py alone
    (Pong)."""
    if kind == "raw":
        from ale_py.vector_env import AtariVectorEnv

        return AtariVectorEnv("pong", n_envs, num_threads=1, autoreset_mode="SameStep",
                              reward_clipping=False, repeat_action_probability=0.0)
    return make_training_envs(build_config(env_id, n_envs=n_envs, vec_env=kind), seed=0)


def env_rate(kind: str, n_envs: int, seconds: float, barrier: Any = None, env_id: str = ENV_ID
             ) -> tuple[float, float]:
    """(agent steps per wall second, CPU seconds per agent step) of n_envs envs stepped with
    random actions for about `seconds`."""
    envs = make_envs(kind, n_envs, env_id)
    envs.reset(seed=0)
    rng = np.random.default_rng(0)
    n_actions = int(envs.single_action_space.n)
    for _ in range(20):
        envs.step(rng.integers(n_actions, size=n_envs))
    if barrier is not None:
        barrier.wait()
    steps, start, cpu = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - start < seconds:
        for _ in range(20):
            envs.step(rng.integers(n_actions, size=n_envs))
        steps += 20 * n_envs
    rate, cpu_per_step = steps / (time.perf_counter() - start), (time.process_time() - cpu) / steps
    envs.close()
    return rate, cpu_per_step


def _env_rate_child(kind: str, n_envs: int, seconds: float, barrier: Any, out: Any, env_id: str) -> None:
    out.put(env_rate(kind, n_envs, seconds, barrier, env_id))


def env_rate_parallel(kind: str, n_envs: int, seconds: float, processes: int, env_id: str = ENV_ID
                      ) -> tuple[float, float]:
    """The summed rate of `processes` processes stepping their own envs at the same time, and
    their mean CPU seconds per agent step."""
    ctx = mp.get_context("fork")
    barrier, out = ctx.Barrier(processes), ctx.Queue()
    children = [ctx.Process(target=_env_rate_child, args=(kind, n_envs, seconds, barrier, out, env_id))
                for _ in range(processes)]
    for c in children:
        c.start()
    results = [out.get() for _ in children]
    for c in children:
        c.join()
    return sum(r for r, _ in results), sum(c for _, c in results) / processes


# --- 2. the worker loop, whole and in parts --------------------------------------------------------

def _now() -> tuple[float, float]:
    """(wall, CPU of this process and its threads) in seconds."""
    return time.perf_counter(), time.process_time()


class Clock:
    """Wall and CPU seconds spent per part, summed."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = defaultdict(float)
        self.cpu: dict[str, float] = defaultdict(float)

    def add(self, key: str, wall: float, cpu: float) -> None:
        self.wall[key] += wall
        self.cpu[key] += cpu

    def timed(self, key: str, fn: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            wall, cpu = time.perf_counter(), time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                self.add(key, time.perf_counter() - wall, time.process_time() - cpu)
        return call


class TimedEnvs:
    """The envs, with a clock around step."""

    def __init__(self, envs: Any, clock: Clock):
        self._envs = envs
        self.step = clock.timed("env", envs.step)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._envs, name)


class TimedNet:
    """The network as the collector uses it, with a clock around its forward passes."""

    def __init__(self, net: Any, clock: Clock):
        self._net = net
        self.act = clock.timed("act", net.act)
        self.value = clock.timed("act", net.value)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._net, name)


def worker(torso: str, pipeline: str) -> tuple[Any, Any, Any, Any]:
    """A worker as drivers/hogwild.py builds one: the global network in shared memory, its shared
    optimizer, a local network, the envs, the collector and the backend."""
    model = A3C(ENV_ID, torso=torso, vec_env=pipeline, workers=1, seed=0, verbose=0)
    config = model.config
    assert config.n_envs == 8 and config.n_steps == 5, "the atari preset's layout"
    counters = SharedCounters(1)
    backend = HogwildBackend(0, config, model.policy, model.optimizer, counters,
                             torch.zeros(1, dtype=torch.bool))
    net = type(model.policy)(model.policy.spec)
    envs = make_training_envs(config, seed=0)
    return config, net, envs, backend


def real_loop(torso: str, pipeline: str, updates: int, warmup: int) -> tuple[float, float]:
    """Wall and CPU seconds per agent step of ActorLearner.update, as a worker runs it."""
    config, net, envs, backend = worker(torso, pipeline)
    collector = RolloutCollector(envs, config.n_steps, seed=0)
    learner = ActorLearner(0, config, net, collector, backend, time.time())
    for _ in range(warmup):
        learner.update()
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(updates):
        learner.update()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    envs.close()
    steps = updates * config.n_envs * config.n_steps
    return wall / steps, cpu / steps


def parts_loop(torso: str, pipeline: str, updates: int, warmup: int) -> Clock:
    """Wall and CPU seconds per agent step of each part of the same loop ('whole': all of it)."""
    config, net, envs, backend = worker(torso, pipeline)
    clock = Clock()
    collector = RolloutCollector(TimedEnvs(envs, clock), config.n_steps, seed=0)
    timed_net = TimedNet(net, clock)
    steps = 0
    for i in range(warmup + updates):
        if i == warmup:
            clock.wall.clear()
            clock.cpu.clear()
            start = _now()
        marks = [_now()]
        version = backend.pull(net)
        marks.append(_now())
        inner = [clock.wall["env"] + clock.wall["act"], clock.cpu["env"] + clock.cpu["act"]]
        rollout = collector.collect(timed_net)  # type: ignore[arg-type]
        marks.append(_now())
        returns, advantages = returns_and_advantages(
            rollout.rewards, rollout.values, rollout.next_values, rollout.terminated,
            rollout.truncated, config.gamma, config.gae_lambda)
        marks.append(_now())
        logprobs, entropy, values = net.evaluate_actions(
            torch.from_numpy(rollout.obs), torch.from_numpy(rollout.actions), rollout.initial_state,
            torch.from_numpy(rollout.resets()))
        marks.append(_now())
        loss = actor_critic_loss(logprobs, entropy, values, torch.from_numpy(returns).flatten(),
                                 torch.from_numpy(advantages).flatten(), config.value_coef,
                                 config.entropy_coef)
        grads = [p.grad for p in net.params if p.grad is not None]
        if grads:
            torch._foreach_zero_(grads)
        marks.append(_now())
        loss.total.backward()
        marks.append(_now())
        torch.nn.utils.clip_grad_norm_(net.params, config.max_grad_norm, foreach=True)
        loss.total.item()
        marks.append(_now())
        backend.push(net, version, rollout.num_steps)
        marks.append(_now())
        for key, (a, b) in zip(("pull", "collector", "returns", "forward", "loss", "backward", "clip",
                                "push"), itertools.pairwise(marks), strict=True):
            wall, cpu = b[0] - a[0], b[1] - a[1]
            if key == "collector":  # less the env steps and forward passes timed inside it
                wall -= clock.wall["env"] + clock.wall["act"] - inner[0]
                cpu -= clock.cpu["env"] + clock.cpu["act"] - inner[1]
            clock.add(key, wall, cpu)
        if i >= warmup:
            steps += rollout.num_steps
    end = _now()
    clock.add("whole", end[0] - start[0], end[1] - start[1])
    envs.close()
    per_step = Clock()
    for key in clock.wall:
        per_step.add(key, clock.wall[key] / steps, clock.cpu[key] / steps)
    return per_step


# --- 3. learning runs and the reference -----------------------------------------------------------

def tree_cpu_seconds(root: int) -> float:
    """User + system CPU seconds of root's living descendants (their threads included)."""
    children: dict[int, list[int]] = defaultdict(list)
    times: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # after the command name, which may hold spaces
        children[int(fields[1])].append(int(entry))
        times[int(entry)] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    total, todo = 0.0, list(children[root])
    while todo:
        pid = todo.pop()
        total += times.get(pid, 0.0)
        todo += children[pid]
    return total


class CpuSampler(threading.Thread):
    """(epoch time, CPU seconds of this process's descendants) every `interval` seconds."""

    def __init__(self, interval: float = 0.5):
        super().__init__(daemon=True)
        self.interval = interval
        self.samples: list[tuple[float, float]] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(self.interval):
            self.samples.append((time.time(), tree_cpu_seconds(os.getpid())))

    def at(self, when: float) -> float:
        times = [t for t, _ in self.samples]
        return float(np.interp(when, times, [c for _, c in self.samples]))


def learning_rate(seconds: float, *options: str, env_id: str = ENV_ID) -> tuple[float, float]:
    """Agent steps per wall second of `a3c train env_id OPTIONS` from 10 s after its start to 3 s
    before its end (the processes all running), and the CPU seconds all its processes spent per
    agent step in that window."""
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run"
        sampler = CpuSampler()
        sampler.start()
        run_train(env_id, run_dir, "--max-seconds", str(seconds), "--total-steps", str(10**9),
                  "--target-return", "none", "--eval-interval", "0", "--final-eval-episodes", "0",
                  "--checkpoint-interval", "0", "--seed", "0", *options)
        sampler.done.set()
        sampler.join()
        rows = read_csv(run_dir / "updates.csv")
        end = max(r["wall_time"] for r in rows) - 3.0
        window = [r for r in rows if 10.0 <= r["wall_time"] <= end]
        if len(window) < 2:
            raise RuntimeError(f"{' '.join(options)}: too few update reports; give it more --learn-seconds")
        first, last = window[0], window[-1]
        origin = start_time(run_dir)
        steps, wall = last["global_step"] - first["global_step"], last["wall_time"] - first["wall_time"]
        cpu = sampler.at(origin + last["wall_time"]) - sampler.at(origin + first["wall_time"])
        return steps / wall, cpu / steps


def sb3_rate(seconds: float, threads: int, n_envs: int = 16, env_id: str = ENV_ID) -> tuple[float, float]:
    """Stable-Baselines3 A2C with its Atari defaults, in a fresh interpreter (--sb3-child)."""
    out = subprocess.run([sys.executable, __file__, "--sb3-child", str(seconds), str(n_envs), str(threads),
                          env_id],
                         capture_output=True, text=True, check=True)
    rate, cpu = out.stdout.strip().splitlines()[-1].split()
    return float(rate), float(cpu)


def sb3_child(seconds: float, n_envs: int, threads: int, env_id: str) -> None:
    """SB3's A2C, CnnPolicy, make_atari_env + VecFrameStack(4), as rl-baselines3-zoo runs Atari,
    with `threads` torch threads. Prints agent steps/s and CPU seconds per agent step, measured
    after a 10 s warm-up."""
    import ale_py
    import gymnasium as gym
    from stable_baselines3 import A2C
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_atari_env
    from stable_baselines3.common.vec_env import VecFrameStack

    gym.register_envs(ale_py)
    torch.set_num_threads(threads)

    class Rate(BaseCallback):
        def _on_training_start(self) -> None:
            self.start = time.perf_counter()
            self.mark: tuple[float, float, int] | None = None
            self.result = (0.0, 0.0)

        def _on_step(self) -> bool:
            now = time.perf_counter()
            if self.mark is None and now - self.start >= 10.0:
                self.mark = (now, time.process_time(), self.num_timesteps)
            if self.mark is not None and now - self.mark[0] >= seconds:
                steps = self.num_timesteps - self.mark[2]
                self.result = (steps / (now - self.mark[0]), (time.process_time() - self.mark[1]) / steps)
                return False
            return True

    env = VecFrameStack(make_atari_env(env_id, n_envs=n_envs, seed=0), n_stack=4)
    model = A2C("CnnPolicy", env, device="cpu", seed=0, verbose=0)
    rate = Rate()
    model.learn(total_timesteps=10**9, callback=rate)
    print(*rate.result)


# --- the report ----------------------------------------------------------------------------------

def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--sb3-child":
        sb3_child(float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env-seconds", type=float, default=5.0)
    parser.add_argument("--env-rounds", type=int, default=3, help="env-only measures: medians of")
    parser.add_argument("--updates", type=int, default=100, help="measured updates per loop")
    parser.add_argument("--warmup", type=int, default=20, help="updates before measuring")
    parser.add_argument("--learn-seconds", type=float, default=40.0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)  # as a worker runs
    load_before = os.getloadavg()
    started = time.strftime("%Y-%m-%d %H:%M")

    rounds: dict[tuple[str, int], list[tuple[float, float]]] = defaultdict(list)
    for _ in range(args.env_rounds):  # the pipelines in turn, so that a change of load hits each
        for kind in ("sync", "raw", "ale"):
            rounds[kind, 1].append(env_rate(kind, 8, args.env_seconds))
            rounds[kind, 2].append(env_rate_parallel(kind, 8, args.env_seconds, processes=2))
            print("env", kind, rounds[kind, 1][-1], rounds[kind, 2][-1], flush=True)
    env = {key: (float(np.median([r for r, _ in values])), float(np.median([c for _, c in values])))
           for key, values in rounds.items()}
    loops: dict[tuple[str, str], tuple[tuple[float, float], Clock]] = {}
    for torso in TORSOS:
        for pipeline in PIPELINES:
            loops[torso, pipeline] = (real_loop(torso, pipeline, args.updates, args.warmup),
                                      parts_loop(torso, pipeline, args.updates, args.warmup))
            print("loop", torso, pipeline, loops[torso, pipeline][0], flush=True)
    runs = {  # label: `a3c train` options
        "A3C, 2 workers x 8 envs, a3c-conv, ale-py": ("--workers", "2"),
        "A3C, 2 workers x 8 envs, nature-conv, ale-py": ("--workers", "2", "--torso", "nature-conv"),
        "A3C, 2 workers x 8 envs, a3c-conv, wrappers": ("--workers", "2", "--vec-env", "sync"),
        "A2C (this project), 16 envs x 5, a3c-conv, ale-py (2 threads)": ("--algo", "a2c"),
    }
    learning = {}
    for label, options in runs.items():
        learning[label] = learning_rate(args.learn_seconds, *options)
        print(label, learning[label], flush=True)
    # One torch thread, as benchmarks/compare.py runs SB3: a robust CPU measure (torch's threads spin
    # while they wait for each other, so on a busy machine more threads inflate the CPU time past
    # the work), and all the cores (torch's default) for its best wall time on an idle machine.
    cores = len(os.sched_getaffinity(0))
    sb3_label = "Stable-Baselines3 A2C, CnnPolicy, 16 envs (its Atari wrappers), 1 torch thread"
    sb3_all_label = (f"Stable-Baselines3 A2C, the same, {cores} torch threads (its CPU time counts "
                     "threads spinning while they wait)")
    learning[sb3_label] = sb3_rate(args.learn_seconds, threads=1)
    learning[sb3_all_label] = sb3_rate(args.learn_seconds, threads=cores)
    print("sb3", learning[sb3_label], learning[sb3_all_label], flush=True)
    load_after = os.getloadavg()

    labels = list(runs)
    a3c, nature, a3c_sync = (learning[label] for label in labels[:3])
    sb3, env2 = learning[sb3_label], env["ale", 2]

    def spread(values: list[tuple[float, float]]) -> str:
        cpu = [c * 1e6 for _, c in values]
        return f"{min(cpu):,.0f}-{max(cpu):,.0f}"

    def ratios(a: tuple[float, float], b: tuple[float, float]) -> str:
        """a's rate over b's: in wall time (this run), and from the CPU time a step costs."""
        return f"{a[0] / b[0]:.2f}x | {b[1] / a[1]:.2f}x"

    command = invocation()
    lines = [
        f"# Where an A3C worker's agent step goes on Atari ({ENV_ID})",
        "",
        f"Command: `{command}`",
        "",
        f"Date: {started}; commit {commit()}; machine: {machine()}; load average "
        f"{load_before[0]:.1f} before, {load_after[0]:.1f} after. The machine is shared: other work "
        "stretches wall time, by different amounts from one measure to the next, so each ratio is "
        "given in wall time (this run) and from the CPU time an agent step costs (what the wall "
        "ratio is on an idle machine whose two cores the work fills).",
        "",
        "## Ratios, measured in this run",
        "",
        "| measure | wall time | CPU time |",
        "|---|---:|---:|",
        f"| A3C learning (2 workers x 8 envs, a3c-conv, ale-py) / env only (2 processes x 8 envs, "
        f"AtariBatch, random actions) | {ratios(a3c, env2)} |",
        f"| the same, nature-conv | {ratios(nature, env2)} |",
        "| A3C learning (a3c-conv) / Stable-Baselines3 A2C (CnnPolicy, 16 envs; it keeps one core "
        f"busy, so on an idle machine about twice the CPU-time ratio) | {ratios(a3c, sb3)} |",
        f"| the same, nature-conv | {ratios(nature, sb3)} |",
        f"| A3C learning (a3c-conv) / Stable-Baselines3 A2C with {cores} torch threads, wall time | "
        f"{a3c[0] / learning[sb3_all_label][0]:.2f}x | |",
        f"| A3C learning through ale-py / through the wrappers | {ratios(a3c, a3c_sync)} |",
        "| env only, one process: ale-py (AtariBatch) / the wrappers | "
        f"{ratios(env['ale', 1], env['sync', 1])} |",
        "",
        "## Env only, random actions, 8 envs per process",
        "",
        f"Medians of {args.env_rounds} rounds, the pipelines in turn (the CPU time's range over them in "
        "brackets). Two processes at once may cost more CPU per step than one alone: the two "
        "cores share caches, and may be two threads of one physical core.",
        "",
        "| pipeline | CPU us per agent step: 1 process (rounds) | 2 processes at once | "
        "agent steps/s: 1 process | 2 processes at once | cores the 2 got |",
        "|---|---:|---:|---:|---:|---:|",
        *[f"| {label} | {env[kind, 1][1] * 1e6:,.0f} ({spread(rounds[kind, 1])}) | "
          f"{env[kind, 2][1] * 1e6:,.0f} | {env[kind, 1][0]:,.0f} | {env[kind, 2][0]:,.0f} | "
          f"{env[kind, 2][0] * env[kind, 2][1]:.2f} |"
          for kind, label in (("sync", PIPELINES["sync"]), ("raw", "ale-py's AtariVectorEnv alone"),
                              ("ale", PIPELINES["ale"]))],
        "",
        "## One A3C worker's loop, per agent step (8 envs, T=5, one process, one torch thread)",
        "",
        "CPU time per agent step of each part, and its share of the whole loop's CPU time; wall time "
        "for AtariBatch beside it. The env step's CPU is ale-py's thread (the worker's thread waits).",
        "",
    ]
    for torso in TORSOS:
        ale, sync = loops[torso, "ale"][1], loops[torso, "sync"][1]
        lines += [f"### {torso}", "",
                  "| part | CPU us, AtariBatch | share | CPU us, wrappers | share | wall us, AtariBatch |",
                  "|---|---:|---:|---:|---:|---:|"]
        for key, label, _ in PARTS:
            lines.append(f"| {label} | {ale.cpu[key] * 1e6:,.0f} | {ale.cpu[key] / ale.cpu['whole']:.0%} | "
                         f"{sync.cpu[key] * 1e6:,.0f} | {sync.cpu[key] / sync.cpu['whole']:.0%} | "
                         f"{ale.wall[key] * 1e6:,.0f} |")
        parts = [k for k, _, _ in PARTS]
        lines.append(f"| sum of the parts | {sum(ale.cpu[k] for k in parts) * 1e6:,.0f} | | "
                     f"{sum(sync.cpu[k] for k in parts) * 1e6:,.0f} | | "
                     f"{sum(ale.wall[k] for k in parts) * 1e6:,.0f} |")
        lines.append(f"| the timed loop, whole | {ale.cpu['whole'] * 1e6:,.0f} | 100% | "
                     f"{sync.cpu['whole'] * 1e6:,.0f} | 100% | {ale.wall['whole'] * 1e6:,.0f} |")
        (ale_wall, ale_cpu), (_, sync_cpu) = loops[torso, "ale"][0], loops[torso, "sync"][0]
        lines.append(f"| the real loop (ActorLearner.update), untimed | {ale_cpu * 1e6:,.0f} | | "
                     f"{sync_cpu * 1e6:,.0f} | | {ale_wall * 1e6:,.0f} ({1 / ale_wall:,.0f} steps/s) |")
        groups: dict[str, float] = defaultdict(float)
        for key, _, group in PARTS:
            groups[group] += ale.cpu[key]
        lines += ["", "By kind (AtariBatch, CPU): " + "; ".join(
            f"{group} {seconds / ale.cpu['whole']:.0%}" for group, seconds in groups.items()), ""]
    lines += [
        "## Learning (steady state: from 10 s after the start to 3 s before the end)",
        "",
        "| run | CPU us per agent step | agent steps/s | cores it got | x env only: wall, CPU | "
        "x SB3 A2C: wall, CPU |",
        "|---|---:|---:|---:|---:|---:|",
        *[f"| {label} | {r[1] * 1e6:,.0f} | {r[0]:,.0f} | {r[0] * r[1]:.2f} | {r[0] / env2[0]:.2f}, "
          f"{env2[1] / r[1]:.2f} | {r[0] / sb3[0]:.2f}, {sb3[1] / r[1]:.2f} |"
          for label, r in learning.items()],
        "",
        "CPU per agent step of a learning run: every process of the run (the trainer, its "
        "forkserver, the workers, ale-py's threads), sampled from /proc; cores it got: CPU seconds "
        "per wall second. The CPU-time ratio is the wall-time ratio of an idle machine for work that "
        "keeps both cores busy, as the env-only pair of processes and A3C's two workers do. "
        "Stable-Baselines3's A2C keeps one core busy (one process, one thread), so on an idle "
        "machine A3C's wall-time lead over it is about twice its CPU-time lead; our A2C alternates "
        "between ale-py's two threads and the network's one, and keeps between one and two busy.",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)


if __name__ == "__main__":
    main()
