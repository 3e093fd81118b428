"""The actor-learner loop of Mnih et al. 2016 (Algorithm S3), the same for every driver.

A3C runs one ActorLearner in each worker process (or Ray actor); A2C runs one in its own process
over a batch of envs. Only the Backend differs: where the global network is pulled from and where
the gradient is pushed to.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from a3c.config import Config
from a3c.core.gradients import compute_gradients
from a3c.core.messages import LearnerReport, UpdateStats
from a3c.core.networks import ActorCritic
from a3c.core.rollout import RolloutCollector
from a3c.drivers.base import Backend
from a3c.errors import NonFiniteError


class ActorLearner:
    """A network, envs behind a collector, and a backend to sync with: one learner of the paper."""

    def __init__(self, rank: int, config: Config, net: ActorCritic, collector: RolloutCollector,
                 backend: Backend, start_time: float):
        self.rank = rank
        self.config = config
        self.net = net
        self.collector = collector
        self.backend = backend
        self.start_time = start_time
        self.report = LearnerReport(rank)
        self.next_flush = time.monotonic()  # the first update is reported at once: when learning began
        self.skipped_in_a_row = 0

    def update(self) -> None:
        """Sync, roll out, compute returns and gradients, push: one pass of the loop."""
        net, backend = self.net, self.backend
        version = backend.pull(net)                     # theta_w <- theta, phi_w <- phi
        rollout = self.collector.collect(net)           # T steps with pi_{theta_w}
        # returns R, advantages A = R - V(s), the loss, its gradients d theta and d phi:
        stats = compute_gradients(net, rollout, self.config, backend.global_steps)
        if stats.finite:  # a skipped rollout leaves nothing behind, the running statistics included
            self.collector.update_statistics(net, self.config.gamma)  # obs_norm's, reward_norm's
            staleness = backend.push(net, version, rollout.num_steps)  # theta <- theta - alpha d theta
            self.report.add_update(stats, staleness)
            self.skipped_in_a_row = 0
        else:
            self._skip(rollout.num_steps, stats)  # a NaN or inf never reaches the global network
        if rollout.episodes:
            now, step = time.time() - self.start_time, backend.global_steps()
            self.report.episodes.extend((now, step, e.episode_return, e.length) for e in rollout.episodes)

    def run(self, send_report: Callable[[LearnerReport], None]) -> None:
        """Loop until the backend says stop, reporting every config.log_interval seconds."""
        while not self.backend.should_stop():
            self.update()
            if self.flush_due():
                send_report(self.take_report())
        send_report(self.take_report(final=True))

    def _skip(self, steps: int, stats: UpdateStats) -> None:
        self.backend.skip(steps)  # the env steps were taken; no update was applied
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

    def take_report(self, final: bool = False) -> LearnerReport:
        """What happened since the last report, stamped with the time and the global step.

        The final report also counts the steps of the episodes still running, so that the logged
        episodes' lengths and these add up to the steps this learner took.
        """
        report, self.report = self.report, LearnerReport(self.rank)
        report.wall_time = time.time() - self.start_time
        report.global_step = self.backend.global_steps()
        if final:
            report.unfinished_steps = unfinished_steps(self.collector.envs)
        self.next_flush = time.monotonic() + self.config.log_interval
        return report


def unfinished_steps(envs: object) -> int:
    """Steps of the episodes running in envs now, as RecordEpisodeStatistics counts them."""
    try:
        return int(sum(envs.get_attr("episode_lengths")))  # type: ignore[attr-defined]
    except (AttributeError, TypeError, ValueError):
        return 0
