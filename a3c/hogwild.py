"""The local A3C backend: a global network and optimizer in shared memory, one process per worker.

Workers write gradients into the global network and step the shared optimizer without a lock
(Hogwild). Counters live in a shared [workers, 2] tensor where each worker writes only its own row,
so the totals are exact without a lock too.
"""

from __future__ import annotations

import functools
import os
import queue
import signal
import time
import traceback
from dataclasses import dataclass

import numpy as np
import torch
import torch.multiprocessing as mp

from a3c.config import Config
from a3c.envs import make_training_envs
from a3c.errors import WorkerError
from a3c.networks import ActorCritic
from a3c.processes import worker_context
from a3c.rollout import RolloutCollector
from a3c.worker import WorkerReport, run_worker

STEPS, UPDATES = 0, 1


class SharedCounters:
    """Per-worker env steps and updates in shared memory; a run's totals are their sums."""

    def __init__(self, workers: int, start_steps: int = 0, start_updates: int = 0):
        self.table = torch.zeros(workers + 1, 2, dtype=torch.int64).share_memory_()
        self.table[-1] = torch.tensor([start_steps, start_updates])  # what earlier runs did

    @functools.cached_property
    def rows(self) -> np.ndarray:
        """A NumPy view of the shared table: indexing it costs a tenth of indexing the tensor."""
        return self.table.numpy()

    def __getstate__(self) -> dict:
        return {"table": self.table}  # the view is rebuilt in each process, over the same memory

    def steps(self) -> int:
        return int(self.rows[:, STEPS].sum())

    def updates(self) -> int:
        return int(self.rows[:, UPDATES].sum())


def lr_at(config: Config, steps: int) -> float:
    """The learning rate after `steps` env steps: constant, or annealed linearly to zero."""
    if config.lr_schedule == "linear":
        return config.lr * max(0.0, 1.0 - steps / config.total_steps)
    return config.lr


class HogwildBackend:
    """pull = copy from shared memory; push = hand our gradients to the shared optimizer and step it."""

    def __init__(self, rank: int, config: Config, global_net: ActorCritic,
                 optimizer: torch.optim.Optimizer, counters: SharedCounters, stop: mp.Event):
        self.rank = rank
        self.config = config
        self.global_params = global_net.params
        self.optimizer = optimizer
        self.counters = counters
        self.stop = stop
        self._linked = False

    def pull(self, net: ActorCritic) -> int:
        with torch.no_grad():
            torch._foreach_copy_(net.params, self.global_params)
        return self.counters.updates()

    def push(self, net: ActorCritic, pulled_version: int, steps: int) -> int:
        if not self._linked:
            # The global parameters' .grad (private to this process) alias our local gradients.
            for g, p in zip(self.global_params, net.parameters(), strict=True):
                g.grad = p.grad
            self._linked = True
        row = self.counters.rows[self.rank]
        if self.config.lr_schedule != "constant":
            lr = lr_at(self.config, self.counters.steps())
            for group in self.optimizer.param_groups:
                group["lr"] = lr
        staleness = self.counters.updates() - pulled_version
        self.optimizer.step()
        row[STEPS] += steps
        row[UPDATES] += 1
        return staleness

    def global_steps(self) -> int:
        return self.counters.steps()

    def should_stop(self) -> bool:
        return self.stop.is_set() or self.counters.steps() >= self.config.total_steps


def _worker_main(rank: int, config: Config, global_net: ActorCritic,
                 optimizer: torch.optim.Optimizer, counters: SharedCounters, stop: mp.Event,
                 reports: mp.Queue, start_time: float) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the trainer's to handle
    torch.set_num_threads(1)
    seed = config.seed + rank * config.n_envs  # worker w's envs: seed + w * n_envs, + 1, ...
    torch.manual_seed(seed)
    np.random.seed(seed)
    try:
        env = make_training_envs(config, seed)
        collector = RolloutCollector(env, config.n_steps, seed=seed)
        net = ActorCritic(global_net.spec)
        net.share_statistics(global_net)  # observation normalisation, if on: one shared copy
        backend = HogwildBackend(rank, config, global_net, optimizer, counters, stop)
        # Our parent is the trainer (spawn) or its forkserver, which exits with the trainer: either
        # way a new parent pid means the trainer is gone.
        run_worker(rank, config, net, collector, backend, reports.put, start_time, os.getppid())
        env.close()
    except BaseException:
        reports.put(("error", rank, traceback.format_exc()))
        raise SystemExit(1) from None


@dataclass
class _Worker:
    rank: int
    process: mp.Process


class WorkerPool:
    """Owns the worker processes: starts them, relays their reports, notices deaths, stops them."""

    def __init__(self, config: Config, global_net: ActorCritic, optimizer: torch.optim.Optimizer,
                 counters: SharedCounters, start_time: float):
        self.config = config
        self.ctx = worker_context()
        self.stop_event = self.ctx.Event()
        self.reports: mp.Queue = self.ctx.Queue()
        self.workers: list[_Worker] = []
        self._args = (config, global_net, optimizer, counters, self.stop_event, self.reports,
                      start_time)

    def start(self) -> None:
        for rank in range(self.config.resolved_workers()):
            p = self.ctx.Process(target=_worker_main, args=(rank, *self._args),
                                 name=f"a3c-worker-{rank}", daemon=True)
            p.start()
            self.workers.append(_Worker(rank, p))

    def poll(self, timeout: float) -> list[WorkerReport]:
        """Reports that arrived within `timeout`; raises WorkerError if a worker failed."""
        out: list[WorkerReport] = []
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            try:
                item = self.reports.get(timeout=max(remaining, 0.0)) if remaining > 0 \
                    else self.reports.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, tuple) and item[0] == "error":
                raise WorkerError(f"worker {item[1]} failed:\n{item[2].rstrip()}")
            out.append(item)
        self._check_alive()
        return out

    def _check_alive(self) -> None:
        if self.stop_event.is_set():
            return
        for w in self.workers:
            code = w.process.exitcode
            if code is not None and code != 0:
                how = (f"killed by {signal.Signals(-code).name}" if code < 0
                       else f"exit status {code}")
                raise WorkerError(f"worker {w.rank} (pid {w.process.pid}) died: {how}")

    def all_exited(self) -> bool:
        return all(w.process.exitcode is not None for w in self.workers)

    def stop(self, timeout: float = 10.0) -> list[WorkerReport]:
        """Ask every worker to finish its update, collect last reports, then make sure all are gone."""
        self.stop_event.set()
        last: list[WorkerReport] = []
        deadline = time.monotonic() + timeout
        while not self.all_exited() and time.monotonic() < deadline:
            last.extend(self._drain(0.05))
        last.extend(self._drain(0.0))
        for w in self.workers:
            if w.process.exitcode is None:
                w.process.kill()
            w.process.join(timeout=5)
        return last

    def _drain(self, timeout: float) -> list[WorkerReport]:
        out = []
        try:
            while True:
                item = self.reports.get(timeout=timeout) if timeout else self.reports.get_nowait()
                if not (isinstance(item, tuple) and item[0] == "error"):
                    out.append(item)
        except queue.Empty:
            return out
