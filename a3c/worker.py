"""The worker loop of the seed's pseudocode, the same for every backend.

A backend implements only the two calls of the loop that touch the global network: ``pull``
(sync local <- global) and ``push`` (apply the local gradient to the global network).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from a3c.config import Config
from a3c.learner import UpdateStats, compute_gradients
from a3c.networks import ActorCritic
from a3c.rollout import RolloutCollector


class ParameterBackend(Protocol):
    def pull(self, net: ActorCritic) -> int:
        """Copy the global parameters into net; return the global update count seen."""

    def push(self, net: ActorCritic, pulled_version: int, steps: int) -> int:
        """Apply net's gradients to the global network; return updates others made since the pull."""

    def global_steps(self) -> int:
        """Env steps taken by all workers so far."""

    def should_stop(self) -> bool:
        """True once the run is over for this worker."""


@dataclass
class WorkerReport:
    """What a worker tells the trainer between flushes: finished episodes and update statistics."""

    rank: int
    episodes: list[tuple[float, int, float, int]] = field(default_factory=list)  # time, step, R, len
    updates: int = 0
    sums: np.ndarray = field(default_factory=lambda: np.zeros(4))  # policy, value, entropy, grad
    staleness_sum: int = 0
    staleness_max: int = 0
    wall_time: float = 0.0  # seconds since the run started, at the flush
    global_step: int = 0

    def add_update(self, stats: UpdateStats, staleness: int) -> None:
        self.updates += 1
        self.sums += (stats.policy_loss, stats.value_loss, stats.entropy, stats.grad_norm)
        self.staleness_sum += staleness
        self.staleness_max = max(self.staleness_max, staleness)


class Worker:
    """One learner of the seed's loop: a network, envs behind a collector, and a backend to sync with.

    A3C runs one per process (run_worker); A2C runs one in the trainer's process over a batch of envs.
    """

    def __init__(self, rank: int, config: Config, net: ActorCritic, collector: RolloutCollector,
                 backend: ParameterBackend, start_time: float):
        self.rank = rank
        self.config = config
        self.net = net
        self.collector = collector
        self.backend = backend
        self.start_time = start_time
        self.report = WorkerReport(rank)
        self.next_flush = time.monotonic() + config.log_interval

    def update(self) -> None:
        """Sync, roll out, compute returns and gradients, push: one pass of the loop."""
        net, backend = self.net, self.backend
        version = backend.pull(net)                           # theta_w <- theta, phi_w <- phi
        rollout = self.collector.collect(net)                 # T steps with pi_{theta_w}
        stats = compute_gradients(net, rollout, self.config)  # returns, advantages, loss, d theta, d phi
        staleness = backend.push(net, version, rollout.num_steps)  # theta <- theta - alpha d theta
        self.report.add_update(stats, staleness)
        if rollout.episodes:
            now, step = time.time() - self.start_time, backend.global_steps()
            self.report.episodes.extend((now, step, e.episode_return, e.length) for e in rollout.episodes)

    def flush_due(self) -> bool:
        return time.monotonic() >= self.next_flush

    def take_report(self) -> WorkerReport:
        """What happened since the last report, stamped with the time and the global step."""
        report, self.report = self.report, WorkerReport(self.rank)
        report.wall_time = time.time() - self.start_time
        report.global_step = self.backend.global_steps()
        self.next_flush = time.monotonic() + self.config.log_interval
        return report


def run_worker(
    rank: int,
    config: Config,
    net: ActorCritic,
    collector: RolloutCollector,
    backend: ParameterBackend,
    send_report: Callable[[WorkerReport], None],
    start_time: float,
    parent_pid: int | None = None,
) -> None:
    """Loop until the backend says stop, reporting every config.log_interval seconds."""
    worker = Worker(rank, config, net, collector, backend, start_time)
    while not backend.should_stop():
        worker.update()
        if worker.flush_due():
            send_report(worker.take_report())
            if parent_pid is not None and os.getppid() != parent_pid:
                return  # the trainer is gone: nobody will read our work
    send_report(worker.take_report())
