"""The worker loop of the seed's pseudocode, the same for every backend.

A backend implements only the two calls of the loop that touch the global network: ``pull``
(sync local <- global) and ``push`` (apply the local gradient to the global network).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from a3c.config import Config
from a3c.envs import SingleEnv
from a3c.errors import NonFiniteError
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

    # Optional: skip(steps) counts env steps whose update was not applied (a non-finite gradient).


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
    skipped: int = 0  # updates not applied: their loss or gradient was not finite
    unfinished_steps: int = 0  # in a learner's last report: steps of the episodes still running

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
        self.skipped_in_a_row = 0

    def update(self) -> None:
        """Sync, roll out, compute returns and gradients, push: one pass of the loop."""
        net, backend = self.net, self.backend
        version = backend.pull(net)                           # theta_w <- theta, phi_w <- phi
        rollout = self.collector.collect(net)                 # T steps with pi_{theta_w}
        stats = compute_gradients(net, rollout, self.config)  # returns, advantages, loss, d theta, d phi
        if stats.finite:
            staleness = backend.push(net, version, rollout.num_steps)  # theta <- theta - alpha d theta
            self.report.add_update(stats, staleness)
            self.skipped_in_a_row = 0
        else:
            self._skip(rollout.num_steps, stats)  # a NaN or inf never reaches the global network
        if rollout.episodes:
            now, step = time.time() - self.start_time, backend.global_steps()
            self.report.episodes.extend((now, step, e.episode_return, e.length) for e in rollout.episodes)

    def _skip(self, steps: int, stats: UpdateStats) -> None:
        skip = getattr(self.backend, "skip", None)
        if skip is not None:
            skip(steps)  # the env steps were taken; no update was applied
        self.report.skipped += 1
        self.skipped_in_a_row += 1
        if self.skipped_in_a_row >= self.config.max_skipped_updates:
            raise NonFiniteError(
                f"learner {self.rank} skipped {self.skipped_in_a_row} updates in a row because the "
                f"loss or gradient was not finite (last: loss {stats.total_loss}, gradient norm "
                f"{stats.grad_norm}); none was applied. Look for NaN or inf in the env's rewards or "
                "observations, or lower lr (limit: max_skipped_updates)")

    def flush_due(self) -> bool:
        return time.monotonic() >= self.next_flush

    def take_report(self, final: bool = False) -> WorkerReport:
        """What happened since the last report, stamped with the time and the global step.

        The final report also counts the steps of the episodes still running, so that the logged
        episodes' lengths and these add up to the steps this learner took.
        """
        report, self.report = self.report, WorkerReport(self.rank)
        report.wall_time = time.time() - self.start_time
        report.global_step = self.backend.global_steps()
        if final:
            report.unfinished_steps = unfinished_steps(self.collector.envs)
        self.next_flush = time.monotonic() + self.config.log_interval
        return report


def unfinished_steps(envs: object) -> int:
    """Steps of the episodes running in envs now, as RecordEpisodeStatistics counts them."""
    try:
        if isinstance(envs, SingleEnv):
            return int(envs.env.get_wrapper_attr("episode_lengths"))
        return int(sum(envs.get_attr("episode_lengths")))  # type: ignore[attr-defined]
    except (AttributeError, TypeError, ValueError):
        return 0


def run_worker(
    rank: int,
    config: Config,
    net: ActorCritic,
    collector: RolloutCollector,
    backend: ParameterBackend,
    send_report: Callable[[WorkerReport], None],
    start_time: float,
) -> None:
    """Loop until the backend says stop, reporting every config.log_interval seconds."""
    worker = Worker(rank, config, net, collector, backend, start_time)
    while not backend.should_stop():
        worker.update()
        if worker.flush_due():
            send_report(worker.take_report())
    send_report(worker.take_report(final=True))
