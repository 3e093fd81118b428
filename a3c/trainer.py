"""The A3C trainer: starts the workers, then supervises, evaluates, logs and checkpoints until a stop."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch

from a3c.checkpoint import save_checkpoint
from a3c.config import Config
from a3c.envs import make_env
from a3c.errors import WorkerError
from a3c.evaluation import EvalResult, evaluate
from a3c.hogwild import SharedCounters, WorkerPool
from a3c.metrics import RunLogger
from a3c.networks import ActorCritic

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


class A3CTrainer:
    """Owns one training run of a global network that outlives it (learn() may be called again)."""

    def __init__(self, config: Config, net: ActorCritic, optimizer: torch.optim.Optimizer,
                 run_dir: Path, start_steps: int = 0, start_updates: int = 0, verbose: int = 1):
        self.config = config
        self.net = net
        self.optimizer = optimizer
        self.run_dir = run_dir
        self.start_steps = start_steps
        self.counters = SharedCounters(config.resolved_workers(), start_steps, start_updates)
        self.verbose = verbose
        self.eval_env = make_env(config.env_id)
        self.eval_net = ActorCritic(net.spec)

    def evaluate(self, episodes: int, seed: int) -> EvalResult:
        """Evaluate a snapshot of the global network, so Hogwild writes cannot tear an episode."""
        self.eval_net.load_state_dict(self.net.state_dict())
        return evaluate(self.eval_net, self.eval_env, episodes, deterministic=True, seed=seed)

    def train(self) -> TrainResult:
        cfg = self.config
        total = self.start_steps + cfg.total_steps
        logger = RunLogger(self.run_dir, total, self.verbose)
        start = time.time()
        pool = WorkerPool(cfg.replace(total_steps=total), self.net, self.optimizer, self.counters, start)
        evals = _Schedule(cfg.eval_interval, self.start_steps)
        checkpoints = _Schedule(cfg.checkpoint_interval, self.start_steps)
        best_snapshot = None
        failure: WorkerError | None = None
        reason = "total_steps"
        pool.start()
        try:
            while True:
                for report in pool.poll(timeout=0.1):
                    logger.record(report)
                steps, elapsed = self.counters.steps(), time.time() - start
                logger.progress(steps, elapsed)
                if steps >= total:
                    break
                if cfg.max_seconds is not None and elapsed >= cfg.max_seconds:
                    reason = "max_seconds"
                    break
                if evals.due(steps):
                    result = self.evaluate(cfg.eval_episodes, seed=10_000 + steps)
                    logger.evaluation(time.time() - start, steps, result)
                    if cfg.target_return is not None and result.mean_return >= cfg.target_return:
                        best_snapshot = {k: v.clone() for k, v in self.net.state_dict().items()}
                        reason = "target_return"
                        break
                if checkpoints.due(steps):
                    self._save(self._periodic_path(steps), steps)
        except KeyboardInterrupt:
            reason = "interrupted"
        except WorkerError as exc:
            failure, reason = exc, "worker_failed"
        finally:
            for report in pool.stop():
                logger.record(report)
        if best_snapshot is not None:
            # The evaluated parameters reached the target; updates after that are not the result.
            self.net.load_state_dict(best_snapshot)
        steps = self.counters.steps()
        final_eval = None
        if failure is not None:
            # Nothing lost: what the workers learned until the failure is saved before we give up.
            self._save(self.run_dir / "model.safetensors", steps)
            logger.close()
            raise failure
        if cfg.final_eval_episodes and reason != "interrupted":
            final_eval = self.evaluate(cfg.final_eval_episodes, seed=1_000_000)
            logger.evaluation(time.time() - start, steps, final_eval)
        checkpoint = self._save(self.run_dir / "model.safetensors", steps)
        elapsed = time.time() - start
        logger.progress(steps, elapsed)
        logger.close()
        return TrainResult(
            run_dir=self.run_dir, checkpoint=checkpoint, steps=steps,
            updates=self.counters.updates(), elapsed=elapsed, stop_reason=reason,
            final_eval=final_eval, staleness_mean=logger.staleness_mean,
            staleness_max=logger.staleness_max,
        )

    def _periodic_path(self, steps: int) -> Path:
        return self.run_dir / "checkpoints" / f"step_{steps:012d}.safetensors"

    def _save(self, path: Path, steps: int) -> Path:
        counters = {"steps": steps, "updates": self.counters.updates()}
        save_checkpoint(path, self.net, self.config, counters, self.optimizer)
        if path.parent.name == "checkpoints":
            for old in sorted(path.parent.glob("step_*.safetensors"))[:-KEEP_CHECKPOINTS]:
                old.unlink()
        return path
