"""The A3C trainer: Hogwild worker processes (or Ray actors) learn; the shared Supervisor evaluates,
checkpoints, stops."""

from __future__ import annotations

from pathlib import Path

import torch

from a3c.config import Config
from a3c.evaluation import EvalResult
from a3c.hogwild import SharedCounters, WorkerPool
from a3c.networks import ActorCritic
from a3c.run_state import RunPosition
from a3c.supervisor import KEEP_CHECKPOINTS, Driver, Supervisor, TrainResult, write_run_info
from a3c.worker import WorkerReport

__all__ = ["A3CTrainer", "HogwildDriver", "KEEP_CHECKPOINTS", "TrainResult", "write_run_info"]


class HogwildDriver:
    """A3C's way to learn: worker processes update the shared network; we relay their reports."""

    def __init__(self, net: ActorCritic, optimizer: torch.optim.Optimizer, counters: SharedCounters):
        self.net = net
        self.optimizer = optimizer
        self.counters = counters
        self.pool: WorkerPool | None = None

    def start(self, config: Config, start_time: float) -> None:
        self.pool = WorkerPool(config, self.net, self.optimizer, self.counters, start_time)
        self.pool.start()

    def advance(self) -> list[WorkerReport]:
        assert self.pool is not None
        return self.pool.poll(timeout=0.1)

    def take_events(self) -> list[tuple[str, str]]:
        return self.pool.take_events() if self.pool is not None else []

    def kill(self) -> None:
        if self.pool is not None:
            self.pool.kill()

    @property
    def restarts(self) -> int:
        return self.pool.restarts if self.pool is not None else 0

    def stop(self) -> list[WorkerReport]:
        return self.pool.stop() if self.pool is not None else []

    def steps(self) -> int:
        return self.counters.steps()

    def updates(self) -> int:
        return self.counters.updates()


class A3CTrainer:
    """Owns one training run of a global network that outlives it (learn() may be called again)."""

    def __init__(self, config: Config, net: ActorCritic, optimizer: torch.optim.Optimizer,
                 run_dir: Path, start_steps: int = 0, start_updates: int = 0, verbose: int = 1,
                 position: RunPosition | None = None, resumed_from: Path | None = None):
        self.config = config
        self.net = net
        self.run_dir = run_dir
        # A3C resumes with freshly seeded workers: their envs were in processes that are gone.
        self.supervisor = Supervisor(config, net, optimizer, run_dir, start_steps, verbose,
                                     position, resumed_from)
        self.driver: Driver
        if config.backend == "ray":
            from a3c.distributed import RayDriver  # says what to install when Ray is missing

            self.driver = RayDriver(net, optimizer, start_steps, start_updates)
        else:
            self.counters = SharedCounters(config.resolved_workers(), start_steps, start_updates)
            self.driver = HogwildDriver(net, optimizer, self.counters)

    def evaluate(self, episodes: int, seed: int) -> EvalResult:
        """Evaluate a snapshot of the global network, so Hogwild writes cannot tear an episode."""
        return self.supervisor.evaluate(episodes, seed)

    def train(self) -> TrainResult:
        return self.supervisor.run(self.driver)
