"""What a run reports: CSV logs in the run directory, TensorBoard events, and a live progress line."""

from __future__ import annotations

import csv
import os
import time
from collections import deque
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from a3c.core.messages import LearnerReport
from a3c.run.evaluation import EvalResult

EPISODE_COLUMNS = ["wall_time", "global_step", "worker", "episode_return", "episode_length"]
UPDATE_COLUMNS = [
    "wall_time", "global_step", "worker", "updates", "policy_loss", "value_loss", "entropy",
    "grad_norm", "staleness_mean", "staleness_max", "skipped",
]
EVAL_COLUMNS = ["wall_time", "global_step", "mean_return", "std_return", "episodes"]
EVENT_COLUMNS = ["wall_time", "global_step", "event", "detail"]  # restarts, interrupts, resumes, failures
STEP_LOGS = ("episodes.csv", "updates.csv", "evaluations.csv", "events.csv")


class _CsvLog:
    def __init__(self, path: Path, columns: list[str]):
        new = not path.exists() or path.stat().st_size == 0
        self.file = open(path, "a", newline="")
        self.writer = csv.writer(self.file)
        if new:
            self.writer.writerow(columns)

    def write(self, row: list) -> None:
        self.writer.writerow(row)

    def flush(self) -> None:
        self.file.flush()

    def close(self) -> None:
        self.file.close()


def cut_logs(run_dir: Path, steps: int) -> None:
    """Drop the log rows after global step `steps`, and any row a killed writer left half written.

    A run resumed from a checkpoint at `steps` goes on from there; rows logged after that checkpoint
    describe training whose result was lost, and the resumed run will log its own.
    """
    for name in STEP_LOGS:
        path = run_dir / name
        if not path.is_file():
            continue
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
        if not rows:
            continue
        header, body = rows[0], rows[1:]
        if "global_step" not in header:
            continue
        at = header.index("global_step")
        kept = [r for r in body if len(r) == len(header) and r[at].isdigit() and int(r[at]) <= steps]
        if len(kept) == len(body) and path.read_bytes().endswith(b"\n"):
            continue
        tmp = path.with_name(f".{name}.tmp{os.getpid()}")
        with open(tmp, "w", newline="") as f:
            csv.writer(f).writerows([header, *kept])
        os.replace(tmp, path)


class RunLogger:
    """Owns the run directory's logs; fed by the trainer, never by workers directly."""

    def __init__(self, run_dir: Path, total_steps: int, verbose: int = 1, recent: int = 20,
                 purge_step: int | None = None):
        from torch.utils.tensorboard import SummaryWriter  # slow import, only where a run logs

        run_dir.mkdir(parents=True, exist_ok=True)
        self.run_dir = run_dir
        self.episodes = _CsvLog(run_dir / "episodes.csv", EPISODE_COLUMNS)
        self.updates = _CsvLog(run_dir / "updates.csv", UPDATE_COLUMNS)
        self.evals = _CsvLog(run_dir / "evaluations.csv", EVAL_COLUMNS)
        self.events = _CsvLog(run_dir / "events.csv", EVENT_COLUMNS)
        # purge_step: a resumed run hides the TensorBoard points logged after its checkpoint
        self.tb = SummaryWriter(str(run_dir / "tb"), purge_step=purge_step)
        self.recent = deque(maxlen=recent)
        self.episode_count = 0
        self.episode_steps = 0  # the logged episodes' lengths, summed
        self.unfinished_steps = 0  # steps of episodes running when learners sent their last report
        self.skipped_count = 0
        self._next_flush = time.monotonic() + 1.0
        self.staleness_sum = 0
        self.staleness_max = 0
        self.update_count = 0
        self.last_eval: float | None = None
        self.console = Console(stderr=True, quiet=verbose == 0)
        self.live = self.console.is_terminal and verbose > 0
        self._progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(),
            TextColumn("{task.completed:>10,.0f} steps"), TextColumn("{task.fields[rate]:>8,.0f} steps/s"),
            TextColumn("return {task.fields[ret]}"), TextColumn("eval {task.fields[eval]}"),
            TimeElapsedColumn(), console=self.console, disable=not self.live,
        )
        self._task = self._progress.add_task("training", total=total_steps, rate=0, ret="-", eval="-")
        self._progress.start()
        self._rate_mark = (time.monotonic(), 0)
        self._rate = 0.0
        self._next_line = 0.0

    @property
    def recent_return(self) -> float | None:
        return float(np.mean(self.recent)) if self.recent else None

    def record(self, report: LearnerReport) -> None:
        for wall, step, ret, length in report.episodes:
            self.episodes.write([f"{wall:.3f}", step, report.rank, ret, length])
            self.tb.add_scalar("train/episode_return", ret, step)
            self.recent.append(ret)
            self.episode_count += 1
            self.episode_steps += length
        self.unfinished_steps += report.unfinished_steps
        if report.updates or report.skipped:
            n = report.updates
            policy, value, entropy, grad = report.sums / n if n else [""] * 4
            self.update_count += n
            self.skipped_count += report.skipped
            self.staleness_sum += report.staleness_sum
            self.staleness_max = max(self.staleness_max, report.staleness_max)
            self.updates.write([
                f"{report.wall_time:.3f}", report.global_step, report.rank, n, policy, value,
                entropy, grad, report.staleness_sum / n if n else "", report.staleness_max,
                report.skipped,
            ])
            if n:
                for name, value_ in (("policy_loss", policy), ("value_loss", value),
                                     ("entropy", entropy), ("grad_norm", grad)):
                    self.tb.add_scalar(f"losses/{name}", value_, report.global_step)
            if report.skipped:
                self.tb.add_scalar("train/skipped_updates", self.skipped_count, report.global_step)

    def evaluation(self, wall: float, step: int, result: EvalResult) -> None:
        self.evals.write([f"{wall:.3f}", step, result.mean_return, result.std_return, len(result.returns)])
        self.tb.add_scalar("eval/mean_return", result.mean_return, step)
        self.last_eval = result.mean_return

    def event(self, wall: float, step: int, kind: str, detail: str) -> None:
        """Something that happened to the run (a worker restarted, a signal, a resume): logged and shown."""
        self.events.write([f"{wall:.3f}", step, kind, detail])
        self.events.flush()
        self.note(detail)

    def note(self, text: str) -> None:
        """A line on the console (stderr), unless the run is quiet."""
        self.console.print(f"a3c: {text}", highlight=False, markup=False, soft_wrap=True)

    def progress(self, step: int, elapsed: float) -> None:
        now = time.monotonic()
        if now >= self._next_flush:  # a killed trainer loses at most a second of rows
            self._next_flush = now + 1.0
            for log in (self.episodes, self.updates, self.evals):
                log.flush()
        t0, s0 = self._rate_mark
        if now - t0 >= 1.0:
            self._rate = (step - s0) / (now - t0)
            self._rate_mark = (now, step)
            self.tb.add_scalar("train/steps_per_second", self._rate, step)
        ret = self.recent_return
        ret_text = "-" if ret is None else f"{ret:8.1f}"
        eval_text = "-" if self.last_eval is None else f"{self.last_eval:8.1f}"
        self._progress.update(self._task, completed=step, rate=self._rate, ret=ret_text, eval=eval_text)
        if not self.live and now >= self._next_line:
            self._next_line = now + 5.0
            self.console.print(
                f"[{elapsed:7.1f}s] steps {step:>10,}  {self._rate:>8,.0f} steps/s  "
                f"return {ret_text}  eval {eval_text}", highlight=False,
            )

    @property
    def staleness_mean(self) -> float:
        return self.staleness_sum / self.update_count if self.update_count else 0.0

    def close(self) -> None:
        self._progress.stop()
        for log in (self.episodes, self.updates, self.evals, self.events):
            log.close()
        self.tb.close()
