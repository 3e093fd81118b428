"""Callbacks: a user's code at the supervisor's decision points, shaped like Stable-Baselines3's.

They run in the supervising process, on what the learners report (every batch of reports, every
evaluation, every checkpoint), never inside a worker's hot loop: an A3C worker never waits for a
callback, and a callback sees the global network between updates, not during one. A hook that
returns False stops the run cleanly: the workers stop, the final checkpoint is written, and
learn() returns with stop_reason "callback".

    from a3c import A3C, EvalCallback, StopTrainingOnRewardThreshold

    stop = StopTrainingOnRewardThreshold(reward_threshold=475)
    A3C("CartPole-v1").learn(200_000, callback=EvalCallback(eval_freq=20_000, callback_on_new_best=stop))
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from a3c.core.messages import LearnerReport
from a3c.errors import ConfigError
from a3c.run.evaluation import EvalResult


@dataclass
class RunContext:
    """What a callback may read and do, given by the supervisor before the run starts."""

    model: Any  # the A3C or A2C object whose learn() runs
    run_dir: Path
    num_timesteps: Callable[[], int]  # env steps so far, earlier runs included
    evaluate: Callable[[int, int], EvalResult]  # (episodes, first seed): greedy, on a snapshot
    save: Callable[[Path], Path]  # write a checkpoint of the global network now


class Callback:
    """Override the hooks you need; each `on_*` returning False stops the run (None means go on)."""

    def __init__(self) -> None:
        self.context: RunContext | None = None
        self.n_calls = 0  # batches of reports seen

    # --- set by the supervisor ---

    def init_callback(self, context: RunContext) -> None:
        self.context = context
        self._init()

    @property
    def model(self) -> Any:
        return self._context.model

    @property
    def num_timesteps(self) -> int:
        return self._context.num_timesteps()

    @property
    def _context(self) -> RunContext:
        if self.context is None:
            raise RuntimeError(f"{type(self).__name__} is not attached to a run (learn(callback=...))")
        return self.context

    # --- hooks ---

    def _init(self) -> None:
        """Called once the context is set, before the training starts."""

    def on_training_start(self) -> None:
        """The learners are about to start."""

    def on_reports(self, reports: list[LearnerReport]) -> bool | None:
        """A batch of the learners' reports arrived (Stable-Baselines3's on_step)."""
        return None

    def on_evaluation(self, result: EvalResult) -> bool | None:
        """A periodic greedy evaluation of the global network finished."""
        return None

    def on_checkpoint(self, path: Path) -> bool | None:
        """A periodic checkpoint was written."""
        return None

    def on_training_end(self) -> None:
        """The learners have stopped; the final checkpoint is being written."""


class CallbackList(Callback):
    """Several callbacks, called in order; the run stops if any of them says so."""

    def __init__(self, callbacks: Iterable[Callback]):
        super().__init__()
        self.callbacks = list(callbacks)
        for callback in self.callbacks:
            if not isinstance(callback, Callback):
                raise ConfigError(f"callbacks must be a3c.callbacks.Callback objects, got {callback!r}")

    def _init(self) -> None:
        for callback in self.callbacks:
            callback.init_callback(self._context)

    def on_training_start(self) -> None:
        for callback in self.callbacks:
            callback.on_training_start()

    def on_reports(self, reports: list[LearnerReport]) -> bool:
        self.n_calls += 1
        return _all_go_on(c.on_reports(reports) for c in self.callbacks)

    def on_evaluation(self, result: EvalResult) -> bool:
        return _all_go_on(c.on_evaluation(result) for c in self.callbacks)

    def on_checkpoint(self, path: Path) -> bool:
        return _all_go_on(c.on_checkpoint(path) for c in self.callbacks)

    def on_training_end(self) -> None:
        for callback in self.callbacks:
            callback.on_training_end()


def _all_go_on(answers: Iterable[bool | None]) -> bool:
    answers = list(answers)  # every callback hears the news, even after one said stop
    return all(answer is not False for answer in answers)


def as_callback(callback: Callback | Iterable[Callback] | None) -> CallbackList:
    """learn(callback=...) takes None, one callback or a list."""
    if callback is None:
        return CallbackList([])
    if isinstance(callback, Callback):
        return CallbackList([callback])
    if isinstance(callback, Iterable) and not isinstance(callback, str | bytes):
        return CallbackList(callback)
    raise ConfigError(f"callback must be a Callback or a list of them, got {callback!r}")


class EvalCallback(Callback):
    """Evaluate the global network every eval_freq env steps; keep the best model.

    Each evaluation is greedy, over n_eval_episodes whole episodes of the real env (without the
    learning wrappers), on a snapshot of the global network. A new best mean return saves
    best_model.safetensors (in best_model_save_path, by default the run directory) and calls
    callback_on_new_best; callback_after_eval is called after every evaluation.
    """

    def __init__(self, eval_freq: int = 10_000, n_eval_episodes: int = 5,
                 best_model_save_path: str | Path | None = None,
                 callback_on_new_best: Callback | None = None, callback_after_eval: Callback | None = None,
                 verbose: int = 0):
        super().__init__()
        if eval_freq <= 0 or n_eval_episodes <= 0:
            raise ConfigError(f"EvalCallback: eval_freq and n_eval_episodes must be positive, got "
                              f"{eval_freq} and {n_eval_episodes}")
        self.eval_freq = eval_freq
        self.n_eval_episodes = n_eval_episodes
        self.best_model_save_path = best_model_save_path
        self.callback_on_new_best = callback_on_new_best
        self.callback_after_eval = callback_after_eval
        self.verbose = verbose
        self.best_mean_reward = -math.inf
        self.last_mean_reward = -math.inf
        self.evaluations: list[tuple[int, EvalResult]] = []
        self._next = eval_freq

    def _init(self) -> None:
        self._next = self.num_timesteps + self.eval_freq
        for child in (self.callback_on_new_best, self.callback_after_eval):
            if child is not None:
                child.init_callback(self._context)

    @property
    def best_model_path(self) -> Path:
        directory = Path(self.best_model_save_path) if self.best_model_save_path else self._context.run_dir
        return directory / "best_model.safetensors"

    def on_reports(self, reports: list[LearnerReport]) -> bool | None:
        steps = self.num_timesteps
        if steps < self._next:
            return None
        self._next = steps - steps % self.eval_freq + self.eval_freq
        result = self._context.evaluate(self.n_eval_episodes, 20_000 + steps)
        self.evaluations.append((steps, result))
        self.last_mean_reward = result.mean_return
        if self.verbose:
            print(f"a3c: EvalCallback at {steps:,} steps: mean return {result.mean_return:.2f}")
        go_on = True
        if result.mean_return > self.best_mean_reward:
            self.best_mean_reward = result.mean_return
            self._context.save(self.best_model_path)
            if self.callback_on_new_best is not None:
                go_on = self.callback_on_new_best.on_evaluation(result) is not False
        if self.callback_after_eval is not None:
            go_on = self.callback_after_eval.on_evaluation(result) is not False and go_on
        return go_on


class CheckpointCallback(Callback):
    """Save a checkpoint every save_freq env steps, as save_path/{name_prefix}_{steps}_steps.safetensors
    (save_path: by default the run directory's checkpoints/), all of them kept."""

    def __init__(self, save_freq: int, save_path: str | Path | None = None, name_prefix: str = "model"):
        super().__init__()
        if save_freq <= 0:
            raise ConfigError(f"CheckpointCallback: save_freq must be positive, got {save_freq}")
        self.save_freq = save_freq
        self.save_path = save_path
        self.name_prefix = name_prefix
        self.saved: list[Path] = []
        self._next = save_freq

    def _init(self) -> None:
        self._next = self.num_timesteps + self.save_freq

    def on_reports(self, reports: list[LearnerReport]) -> bool | None:
        steps = self.num_timesteps
        if steps >= self._next:
            self._next = steps - steps % self.save_freq + self.save_freq
            directory = Path(self.save_path) if self.save_path else self._context.run_dir / "checkpoints"
            self.saved.append(self._context.save(directory / f"{self.name_prefix}_{steps}_steps.safetensors"))
        return None


class StopTrainingOnRewardThreshold(Callback):
    """Stop once an evaluation's mean return reaches reward_threshold (alone, it hears the
    supervisor's periodic evaluations; as EvalCallback's callback_on_new_best, that one's)."""

    def __init__(self, reward_threshold: float, verbose: int = 0):
        super().__init__()
        self.reward_threshold = reward_threshold
        self.verbose = verbose

    def on_evaluation(self, result: EvalResult) -> bool:
        reached = result.mean_return >= self.reward_threshold
        if reached and self.verbose:
            print(f"a3c: mean return {result.mean_return:.2f} reached {self.reward_threshold}: stopping")
        return not reached


class StopTrainingOnNoModelImprovement(Callback):
    """Stop after max_no_improvement_evals evaluations in a row without a new best mean return
    (counting starts after min_evals evaluations)."""

    def __init__(self, max_no_improvement_evals: int, min_evals: int = 0, verbose: int = 0):
        super().__init__()
        if max_no_improvement_evals <= 0 or min_evals < 0:
            raise ConfigError("StopTrainingOnNoModelImprovement: max_no_improvement_evals must be "
                              f"positive and min_evals >= 0, got {max_no_improvement_evals}, {min_evals}")
        self.max_no_improvement_evals = max_no_improvement_evals
        self.min_evals = min_evals
        self.verbose = verbose
        self.best = -math.inf
        self.evals = 0
        self.without_improvement = 0

    def on_evaluation(self, result: EvalResult) -> bool:
        self.evals += 1
        if result.mean_return > self.best:
            self.best = result.mean_return
            self.without_improvement = 0
        elif self.evals > self.min_evals:
            self.without_improvement += 1
        stop = self.without_improvement >= self.max_no_improvement_evals
        if stop and self.verbose:
            print(f"a3c: no new best return in {self.without_improvement} evaluations: stopping")
        return not stop
