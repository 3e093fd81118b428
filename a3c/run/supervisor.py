"""What every driver's run shares: stop conditions, evaluations, the target snapshot, checkpoints, logs.

A driver (A3C's Hogwild worker processes, A3C on Ray, A2C's batched loop) only turns experience into
updates of the global network. The Supervisor decides when to evaluate, checkpoint and stop, the
same way for all of them, so the algorithms differ in how they learn and in nothing else.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from a3c.config import Config, usable_cores
from a3c.core.networks import ActorCritic
from a3c.drivers.base import Driver, RunPosition
from a3c.run.callbacks import Callback, CallbackList, RunContext
from a3c.run.checkpoint import atomic_write, prune_checkpoints, remove_stale_temporaries, save_checkpoint
from a3c.run.evaluation import EvalResult, evaluate, make_eval_envs
from a3c.run.metrics import RunLogger, cut_logs
from a3c.run.signals import StopSignals

_FINAL_EVAL_SEED = 1_000_000  # the final evaluation's first episode seed


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
    signal: int | None = None  # SIGINT or SIGTERM, if one stopped the run or its final evaluation
    worker_restarts: int = 0
    skipped_updates: int = 0  # updates not applied: their loss or gradient was not finite
    episode_steps: int = 0  # the lengths of the episodes logged, summed
    unfinished_steps: int = 0  # steps of the episodes still running when the learners stopped


def write_run_info(run_dir: Path, config: Config, start: float, resumed: dict | None = None) -> None:
    """run.json: the config and the epoch time that the logs' wall_time counts from.

    A resumed run's wall_time goes on from the checkpoint's training time, so its start_time is
    that much before now; each resume is listed with the checkpoint it started from.
    """
    info: dict[str, Any] = {"start_time": start, "argv": sys.argv, "config": config.to_dict(),
                            "torch": torch.__version__, "cores": usable_cores()}
    path = run_dir / "run.json"
    if resumed is not None:
        try:
            earlier = json.loads(path.read_text())
            history = earlier.get("resumes", []) if isinstance(earlier, dict) else []
        except (OSError, ValueError):
            history = []
        info["resumes"] = [*(h for h in history if isinstance(h, dict)), resumed]
    atomic_write(path, (json.dumps(info, indent=2) + "\n").encode())


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
    """Runs a driver until a stop condition, evaluating, logging and checkpointing the global network.

    position: where a resumed run stood (its checkpoint's counters and training time): the logs are
    cut back to it and go on from there. callback: the user's hooks (a3c.run.callbacks), called
    here in the supervising process; model is what they see as their model.
    """

    def __init__(self, config: Config, net: ActorCritic, optimizer: torch.optim.Optimizer,
                 run_dir: Path, start_steps: int = 0, verbose: int = 1,
                 position: RunPosition | None = None, resumed_from: Path | None = None,
                 callback: Callback | None = None, model: Any = None):
        self.callback = callback if callback is not None else CallbackList([])
        self.model = model
        self.config = config
        self.net = net
        self.optimizer = optimizer
        self.run_dir = run_dir
        self.start_steps = start_steps
        self.verbose = verbose
        self.position = position
        self.resumed_from = resumed_from
        self.eval_envs = make_eval_envs(config, 1)  # more are made when an evaluation first needs them
        self.eval_net = net.replica()  # on the CPU, wherever the global network lives
        self._start = time.time()
        self._total = start_steps + config.total_steps

    def _confirm_target(self, cfg: Config, steps: int, start: float, logger: RunLogger,
                        signals: StopSignals) -> bool:
        """Re-evaluate the snapshot that reached the target as the final evaluation will (same
        episodes, same seed): a run stops at its target only if its final evaluation holds it too.
        A lucky short evaluation otherwise ends training on a policy that then scores below it."""
        if not cfg.final_eval_episodes:
            return True
        envs = make_eval_envs(cfg, cfg.final_eval_episodes, self.eval_envs)
        result = signals.call_abortable(evaluate, self.eval_net, envs, cfg.final_eval_episodes, True,
                                        _FINAL_EVAL_SEED)
        if result is None:
            return False  # a stop signal came during the evaluation: the loop sees it next
        logger.evaluation(time.time() - start, steps, result)
        return result.mean_return >= cfg.target_return

    def evaluate(self, episodes: int, seed: int) -> EvalResult:
        """Evaluate a snapshot of the global network, so concurrent writes cannot tear an episode."""
        self.eval_net.load_state_dict(self.net.state_dict())
        envs = make_eval_envs(self.config, episodes, self.eval_envs)
        return evaluate(self.eval_net, envs, episodes, deterministic=True, seed=seed)

    def run(self, driver: Driver) -> TrainResult:
        # From here on Ctrl-C and SIGTERM stop the run cleanly, with a checkpoint (a3c.signals).
        with StopSignals(quiet=self.verbose == 0, kill=driver.kill) as signals:
            if self.position is not None:
                cut_logs(self.run_dir, self.start_steps)  # later rows: training the checkpoint lacks
            logger = RunLogger(self.run_dir, self._total, self.verbose,
                               purge_step=self.start_steps + 1 if self.position is not None else None)
            try:
                return self._run(driver, self.config.replace(total_steps=self._total), logger, signals)
            finally:
                logger.close()
                for env in self.eval_envs:
                    env.close()

    def _run(self, driver: Driver, cfg: Config, logger: RunLogger, signals: StopSignals) -> TrainResult:
        begun = time.time()
        earlier = self.position.wall_time if self.position is not None else 0.0
        self._start = start = begun - earlier  # the logs' wall_time: training time, over all segments
        resumed = None
        if self.position is not None:
            exact = driver.restores_exactly
            resumed = {"checkpoint": str(self.resumed_from), "steps": self.start_steps,
                       "time": begun, "argv": sys.argv,
                       "envs": "restored exactly" if exact else "reseeded"}
            logger.event(earlier, self.start_steps, "resumed",
                         f"from {self.resumed_from} at step {self.start_steps:,}; envs {resumed['envs']}")
        write_run_info(self.run_dir, self.config, start, resumed)
        remove_stale_temporaries(self.run_dir)
        if (self.run_dir / "checkpoints").is_dir():
            remove_stale_temporaries(self.run_dir / "checkpoints")
        evals = _Schedule(cfg.eval_interval, self.start_steps)
        checkpoints = _Schedule(cfg.checkpoint_interval, self.start_steps)
        best_snapshot = None
        failure: Exception | None = None
        reason = "total_steps"
        self.callback.init_callback(RunContext(
            model=self.model, run_dir=self.run_dir, num_timesteps=driver.steps,
            evaluate=self.evaluate,
            save=lambda path: self._save(Path(path), driver.steps(), driver.updates(), driver)))
        self.callback.on_training_start()
        try:
            driver.start(cfg, start)
        except BaseException as exc:
            driver.stop()  # whatever did start
            if isinstance(exc, Exception):  # the run directory says why it holds no training
                logger.event(time.time() - start, self.start_steps, "failed", _first_line(exc))
            raise
        try:
            while signals.received is None:
                reports = driver.advance()
                for report in reports:
                    logger.record(report)
                self._log_events(driver, logger)
                if reports and self.callback.on_reports(reports) is False:
                    reason = "callback"
                    break
                steps = driver.steps()
                logger.progress(steps, time.time() - start)
                if steps >= cfg.total_steps:
                    break
                if cfg.max_seconds is not None and time.time() - begun >= cfg.max_seconds:
                    reason = "max_seconds"
                    break
                if evals.due(steps):
                    result = signals.call_abortable(self.evaluate, cfg.eval_episodes, 10_000 + steps)
                    if result is None:
                        break  # a stop signal came during the evaluation
                    logger.evaluation(time.time() - start, steps, result)
                    if cfg.target_return is not None and result.mean_return >= cfg.target_return \
                            and self._confirm_target(cfg, steps, start, logger, signals):
                        best_snapshot = {k: v.clone() for k, v in self.eval_net.state_dict().items()}
                        reason = "target_return"
                        break
                    if self.callback.on_evaluation(result) is False:
                        reason = "callback"
                        break
                if checkpoints.due(steps):
                    path = self._save(self._periodic_path(steps), steps, driver.updates(), driver)
                    if self.callback.on_checkpoint(path) is False:
                        reason = "callback"
                        break
        except Exception as exc:  # a failed worker, a diverged learner, an env that raised
            failure, reason = exc, "failed"
        if signals.received is not None and failure is None and reason == "total_steps" \
                and driver.steps() < cfg.total_steps:
            reason = signals.reason
        try:
            for report in driver.stop():  # a first signal here only flags: the stop goes on
                logger.record(report)
            self._log_events(driver, logger)
        except Exception as exc:
            failure = failure or exc
        self.callback.on_training_end()
        if reason == "callback":
            logger.event(time.time() - start, driver.steps(), "callback",
                         f"a callback stopped the run at step {driver.steps():,}")
        if best_snapshot is not None:
            # The evaluated parameters reached the target; updates after that are not the result.
            self.net.load_state_dict(best_snapshot)
        steps, updates = driver.steps(), driver.updates()
        if failure is not None:
            # Nothing lost: what was learned until the failure is saved before we give up.
            logger.event(time.time() - start, steps, "failed", _first_line(failure))
            try:
                self._save(self.run_dir / "model.safetensors", steps, updates, driver)
            except Exception as exc:  # the failure is the news; say that the save failed too
                logger.event(time.time() - start, steps, "checkpoint_failed", str(exc))
            raise failure
        final_eval = None
        if cfg.final_eval_episodes and signals.received is None:
            logger.note(f"final evaluation: {cfg.final_eval_episodes} greedy episodes")
            final_eval = signals.call_abortable(self.evaluate, cfg.final_eval_episodes, _FINAL_EVAL_SEED)
            if final_eval is not None:
                logger.evaluation(time.time() - start, steps, final_eval)
        checkpoint = self._save(self.run_dir / "model.safetensors", steps, updates, driver)
        if signals.received is not None:
            logger.event(time.time() - start, steps, signals.reason,
                         f"stopped by {_signal_name(signals.received)}; saved {checkpoint}")
        logger.progress(steps, time.time() - start)
        return TrainResult(
            run_dir=self.run_dir, checkpoint=checkpoint, steps=steps, updates=updates,
            elapsed=time.time() - begun, stop_reason=reason, final_eval=final_eval,
            staleness_mean=logger.staleness_mean, staleness_max=logger.staleness_max,
            signal=signals.received, worker_restarts=driver.restarts,
            skipped_updates=logger.skipped_count, episode_steps=logger.episode_steps,
            unfinished_steps=logger.unfinished_steps,
        )

    def _log_events(self, driver: Driver, logger: RunLogger) -> None:
        for kind, detail in driver.take_events():
            logger.event(time.time() - self._start, driver.steps(), kind, detail)

    def _periodic_path(self, steps: int) -> Path:
        return self.run_dir / "checkpoints" / f"step_{steps:012d}.safetensors"

    def _save(self, path: Path, steps: int, updates: int, driver: Driver | None = None) -> Path:
        counters = {"steps": steps, "updates": updates, "target_steps": self._total,
                    "wall_time": round(time.time() - self._start, 3)}
        resume = driver.resume_state() if driver is not None else None
        save_checkpoint(path, self.net, self.config, counters, self.optimizer, resume)
        if path.parent.name == "checkpoints":
            prune_checkpoints(path.parent, self.config.keep_checkpoints)
        return path


def _signal_name(signum: int) -> str:
    import signal

    return signal.Signals(signum).name


def _first_line(exc: BaseException) -> str:
    """An exception as one line for the event log: its message's first line, else its type."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
