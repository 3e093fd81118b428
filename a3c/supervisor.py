"""What every driver's run shares: stop conditions, evaluations, the target snapshot, checkpoints, logs.

A driver (A3C's Hogwild worker pool, A2C's batched loop) only turns experience into updates of the
global network. The Supervisor decides when to evaluate, checkpoint and stop, the same way for both,
so the two algorithms differ in how they learn and in nothing else.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch

from a3c.checkpoint import save_checkpoint
from a3c.config import Config, usable_cores
from a3c.envs import make_env
from a3c.errors import WorkerError
from a3c.evaluation import EvalResult, evaluate
from a3c.metrics import RunLogger
from a3c.networks import ActorCritic
from a3c.worker import WorkerReport

KEEP_CHECKPOINTS = 3


@dataclass
class TrainResult:
    run_dir: Path
    checkpoint: Path
    steps: int
    updates: int
    elapsed: float
    stop_reason: str
    final_eval: EvalResult | None
    staleness_mean: float
    staleness_max: int


class Driver(Protocol):
    """How a run turns experience into updates of the global network: the part A3C and A2C differ in."""

    def start(self, config: Config, start_time: float) -> None:
        """Begin; config.total_steps is the absolute env step count at which to stop."""

    def advance(self) -> list[WorkerReport]:
        """Make some progress (an update, or a short wait on workers); the reports to log.

        Raises WorkerError when the driver cannot go on.
        """

    def stop(self) -> list[WorkerReport]:
        """Stop learning; the last reports."""

    def steps(self) -> int:
        """Env steps taken, earlier runs included."""

    def updates(self) -> int:
        """Updates applied to the global network, earlier runs included."""


def write_run_info(run_dir: Path, config: Config, start: float) -> None:
    """run.json: the config and the epoch time that the logs' wall_time counts from."""
    info = {"start_time": start, "argv": sys.argv, "config": config.to_dict(),
            "torch": torch.__version__, "cores": usable_cores()}
    (run_dir / "run.json").write_text(json.dumps(info, indent=2) + "\n")


class _Schedule:
    """Fires every `interval` env steps (never when interval is 0)."""

    def __init__(self, interval: int, start: int):
        self.interval = interval
        self.next = start + interval

    def due(self, steps: int) -> bool:
        if self.interval <= 0 or steps < self.next:
            return False
        self.next = steps - steps % self.interval + self.interval
        return True


class Supervisor:
    """Runs a driver until a stop condition, evaluating, logging and checkpointing the global network."""

    def __init__(self, config: Config, net: ActorCritic, optimizer: torch.optim.Optimizer,
                 run_dir: Path, start_steps: int = 0, verbose: int = 1):
        self.config = config
        self.net = net
        self.optimizer = optimizer
        self.run_dir = run_dir
        self.start_steps = start_steps
        self.verbose = verbose
        self.eval_env = make_env(config.env_id)
        self.eval_net = ActorCritic(net.spec)  # on the CPU, wherever the global network lives

    def evaluate(self, episodes: int, seed: int) -> EvalResult:
        """Evaluate a snapshot of the global network, so concurrent writes cannot tear an episode."""
        self.eval_net.load_state_dict(self.net.state_dict())
        return evaluate(self.eval_net, self.eval_env, episodes, deterministic=True, seed=seed)

    def run(self, driver: Driver) -> TrainResult:
        cfg = self.config
        total = self.start_steps + cfg.total_steps
        logger = RunLogger(self.run_dir, total, self.verbose)
        try:
            return self._run(driver, cfg.replace(total_steps=total), logger)
        finally:
            logger.close()

    def _run(self, driver: Driver, cfg: Config, logger: RunLogger) -> TrainResult:
        start = time.time()
        write_run_info(self.run_dir, self.config, start)
        evals = _Schedule(cfg.eval_interval, self.start_steps)
        checkpoints = _Schedule(cfg.checkpoint_interval, self.start_steps)
        best_snapshot = None
        failure: WorkerError | None = None
        reason = "total_steps"
        driver.start(cfg, start)
        try:
            while True:
                for report in driver.advance():
                    logger.record(report)
                steps, elapsed = driver.steps(), time.time() - start
                logger.progress(steps, elapsed)
                if steps >= cfg.total_steps:
                    break
                if cfg.max_seconds is not None and elapsed >= cfg.max_seconds:
                    reason = "max_seconds"
                    break
                if evals.due(steps):
                    result = self.evaluate(cfg.eval_episodes, seed=10_000 + steps)
                    logger.evaluation(time.time() - start, steps, result)
                    if cfg.target_return is not None and result.mean_return >= cfg.target_return:
                        best_snapshot = {k: v.clone() for k, v in self.eval_net.state_dict().items()}
                        reason = "target_return"
                        break
                if checkpoints.due(steps):
                    self._save(self._periodic_path(steps), steps, driver.updates())
        except KeyboardInterrupt:
            reason = "interrupted"
        except WorkerError as exc:
            failure, reason = exc, "worker_failed"
        finally:
            for report in driver.stop():
                logger.record(report)
        if best_snapshot is not None:
            # The evaluated parameters reached the target; updates after that are not the result.
            self.net.load_state_dict(best_snapshot)
        steps, updates = driver.steps(), driver.updates()
        if failure is not None:
            # Nothing lost: what was learned until the failure is saved before we give up.
            self._save(self.run_dir / "model.safetensors", steps, updates)
            raise failure
        final_eval = None
        if cfg.final_eval_episodes and reason != "interrupted":
            final_eval = self.evaluate(cfg.final_eval_episodes, seed=1_000_000)
            logger.evaluation(time.time() - start, steps, final_eval)
        checkpoint = self._save(self.run_dir / "model.safetensors", steps, updates)
        elapsed = time.time() - start
        logger.progress(steps, elapsed)
        return TrainResult(
            run_dir=self.run_dir, checkpoint=checkpoint, steps=steps, updates=updates,
            elapsed=elapsed, stop_reason=reason, final_eval=final_eval,
            staleness_mean=logger.staleness_mean, staleness_max=logger.staleness_max,
        )

    def _periodic_path(self, steps: int) -> Path:
        return self.run_dir / "checkpoints" / f"step_{steps:012d}.safetensors"

    def _save(self, path: Path, steps: int, updates: int) -> Path:
        save_checkpoint(path, self.net, self.config, {"steps": steps, "updates": updates}, self.optimizer)
        if path.parent.name == "checkpoints":
            for old in sorted(path.parent.glob("step_*.safetensors"))[:-KEEP_CHECKPOINTS]:
                old.unlink()
        return path
