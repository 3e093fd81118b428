"""A sweep: a grid of runs (envs x option values x seeds) as Ray Tune trials, and one table of their scores.

Each trial is a plain `a3c train` run in a directory of its own (local backend or A2C inside the
trial, one CPU per worker reserved on the cluster), so `a3c eval`, `a3c plot` and `--resume` work on
it as on any run. A trial counts as finished once its `trial.json` (its score) is written; running the
sweep again runs only the trials without one, an interrupted trial going on from its newest
checkpoint. The table groups the trials by env and option values and gives, over the seeds, the
median, the interquartile mean and bootstrap confidence intervals of the final greedy evaluation.

The grid file (JSON or TOML; data only, never code)::

    envs = ["CartPole-v1"]
    seeds = [0, 1, 2]
    algo = "a3c"                  # or "a2c"; A3C trials use the local backend
    [options]                     # the same for every trial: any `a3c train` option
    total_steps = 100000
    workers = 2
    [grid]                        # one trial per combination of these values
    lr = [0.001, 0.003]
"""

from __future__ import annotations

import csv
import itertools
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from a3c.config import ALGOS, Config, read_data_file
from a3c.errors import CheckpointError, ConfigError, TrainingError
from a3c.run.statistics import bootstrap_ci, iqm, median

# Set per trial by the grid file's keys, not by its options.
_FIXED = {"env_id": "envs", "seed": "seeds", "algo": "algo", "run_dir": "the sweep's --out",
          "backend": "the sweep (trials run the local backend)", "ray_address": "the sweep's --ray-address"}
TRIAL_RESULT = "trial.json"  # written when a trial has finished: its score
SUMMARY_COLUMNS = ["env_id", "options", "runs", "median", "iqm", "iqm_ci_low", "iqm_ci_high",
                   "median_ci_low", "median_ci_high", "mean_steps", "seeds"]


@dataclass(frozen=True)
class Trial:
    """One run of the sweep: an env, one combination of the grid's values, a seed."""

    env_id: str
    seed: int
    algo: str
    options: dict[str, Any]  # the grid file's options, then this combination's values
    point: dict[str, Any] = field(default_factory=dict)  # this combination's values alone
    cwd: str = ""  # where the sweep was started: 'module:Env' ids import from there, as with a3c train

    @property
    def name(self) -> str:
        point = ",".join(f"{k}={_text(v)}" for k, v in self.point.items())
        safe = "".join(c if c.isalnum() or c in "-_.=," else "_" for c in self.env_id)
        return f"{safe}__{point or 'defaults'}__seed={self.seed}"

    @property
    def cpus(self) -> int:
        """CPUs the trial reserves: one per A3C worker process, one for A2C's loop."""
        return int(self.options.get("workers", 1)) if self.algo == "a3c" else 1


@dataclass(frozen=True)
class Grid:
    envs: list[str]
    seeds: list[int]
    algo: str
    options: dict[str, Any]
    grid: dict[str, list[Any]]

    def trials(self, cwd: str = "") -> list[Trial]:
        keys = list(self.grid)
        out = []
        for env_id in self.envs:
            for values in itertools.product(*(self.grid[k] for k in keys)):
                point = dict(zip(keys, values, strict=True))
                for seed in self.seeds:
                    out.append(Trial(env_id, seed, self.algo, {**self.options, **point}, point, cwd))
        return out


def read_grid(path: str | os.PathLike) -> Grid:
    """A sweep's grid file, checked: every option a Config field of the right type, the grid's
    values lists, A3C trials' worker count given (it reserves their CPUs)."""
    data = read_data_file(path, "sweep file")
    name = os.fspath(path)
    unknown = sorted(set(data) - {"envs", "seeds", "algo", "options", "grid"})
    if unknown:
        raise ConfigError(f"sweep file {name}: unknown keys {', '.join(unknown)}; expected envs, seeds, "
                          "algo, options, grid")
    envs, seeds = data.get("envs"), data.get("seeds", [0])
    if not isinstance(envs, list) or not envs or not all(isinstance(e, str) and e for e in envs):
        raise ConfigError(f"sweep file {name}: envs must be a non-empty list of env ids")
    if not isinstance(seeds, list) or not seeds or not all(type(s) is int for s in seeds):
        raise ConfigError(f"sweep file {name}: seeds must be a non-empty list of integers")
    algo = data.get("algo", "a3c")
    if algo not in ALGOS:
        raise ConfigError(f"sweep file {name}: unknown algo {algo!r}; choose from {', '.join(ALGOS)}")
    options, grid = data.get("options", {}), data.get("grid", {})
    if not isinstance(options, dict) or not isinstance(grid, dict):
        raise ConfigError(f"sweep file {name}: options and grid must be tables (key = value)")
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"sweep file {name}: grid.{key} must be a non-empty list of values")
    for key in [*options, *grid]:
        if key in _FIXED:
            raise ConfigError(f"sweep file {name}: {key} is set by {_FIXED[key]}, not by options or grid")
    options = dict(options)
    if algo == "a3c":
        options.setdefault("workers", 1)  # its CPUs are reserved on the cluster: never "all cores"
    for trial in Grid(envs, seeds, algo, options, grid).trials():  # each combination, type-checked
        config = Config.from_dict({**_lists_as_tuples(trial.options), "env_id": trial.env_id, "algo": algo})
        if config.final_eval_episodes <= 0:
            raise ConfigError(f"sweep file {name}: final_eval_episodes must be positive: a trial's "
                              "score is its final evaluation")
        if algo == "a3c" and config.workers <= 0:
            raise ConfigError(f"sweep file {name}: workers must be positive (the CPUs each trial reserves)")
    return Grid(envs, seeds, algo, options, grid)


def trial_result(directory: Path) -> dict[str, Any] | None:
    """A finished trial's result, or None while it has none."""
    try:
        return json.loads((directory / TRIAL_RESULT).read_text())
    except (OSError, ValueError):
        return None


def run_trial(trial: Trial, directory: Path) -> dict[str, Any]:
    """Run one trial as `a3c train` (resumed from its checkpoint if an earlier sweep was cut short);
    write and return its result. Raises TrainingError with the run's last words if it fails."""
    from a3c.run.checkpoint import latest_checkpoint, load_checkpoint

    directory.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "a3c.cli", "train", "--quiet"]
    try:
        position = load_checkpoint(latest_checkpoint(directory)).position()
    except CheckpointError:  # none yet: a trial not started, or stopped before its first checkpoint
        position = None
    resumed = position is not None
    if position is not None and position.steps >= position.target_steps:
        command = []  # it ran to its end: only its result is missing (the sweep stopped right then)
    elif position is not None:
        # the sweep's own trial, made from the grid the user runs: what it names is theirs to import
        command += ["--resume", str(directory), "--trust-code"]
    else:
        options_file = directory / "trial_options.json"
        options_file.write_text(json.dumps({**trial.options, "seed": trial.seed, "algo": trial.algo},
                                           indent=2) + "\n")
        command += [trial.env_id, "--config", str(options_file), "--run-dir", str(directory)]
    env = dict(os.environ)
    cwd = trial.cwd if trial.cwd and os.path.isdir(trial.cwd) else None
    if cwd is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [cwd, env.get("PYTHONPATH")]))
    with open(directory / "train.log", "a") as log:
        code = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, cwd=cwd, env=env).returncode \
            if command else 0
    if code != 0:
        tail = (directory / "train.log").read_text().strip().splitlines()[-3:]
        raise TrainingError(f"trial {trial.name} failed (exit status {code}): {' | '.join(tail)}")
    evaluations = _rows(directory / "evaluations.csv")
    if not evaluations:
        raise TrainingError(f"trial {trial.name} logged no final evaluation")
    final = evaluations[-1]  # the supervisor logs the final evaluation last
    counters = load_checkpoint(latest_checkpoint(directory)).counters
    result = {"trial": trial.name, "env_id": trial.env_id, "seed": trial.seed, "algo": trial.algo,
              "point": trial.point, "score": float(final["mean_return"]),
              "score_std": float(final["std_return"]),
              "eval_episodes": int(final["episodes"]), "steps": int(counters["steps"]),
              "wall_time": float(counters.get("wall_time", 0.0)), "resumed": resumed}
    tmp = directory / f".{TRIAL_RESULT}.tmp"
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    os.replace(tmp, directory / TRIAL_RESULT)
    return result


def _tune_trial(config: dict[str, Any]) -> None:
    """The body of one Ray Tune trial: config["run"] is (the trial, its directory)."""
    from ray import tune

    trial, directory = config["run"]
    result = run_trial(Trial(**trial), Path(directory))
    tune.report({"score": result["score"], "steps": result["steps"]})


def run_sweep(grid: Grid, out: Path, ray_address: str | None = None,
              note: Callable[[str], None] = print) -> tuple[list[dict[str, Any]], list[str]]:
    """Run every trial of the grid that has no result in `out` yet, as Ray Tune trials on the cluster
    at ray_address (a new local instance if None); write the summary; return the results and the
    failures (one line each)."""
    out = out.resolve()
    trials = grid.trials(cwd=os.getcwd())
    directories = {t.name: out / "trials" / t.name for t in trials}
    if len(directories) != len(trials):
        raise ConfigError("the sweep's grid names the same trial twice: give each value once")
    pending = [t for t in trials if trial_result(directories[t.name]) is None]
    note(f"sweep: {len(trials)} trials, {len(trials) - len(pending)} finished before, {len(pending)} to run")
    (out / "sweep.json").parent.mkdir(parents=True, exist_ok=True)
    (out / "sweep.json").write_text(json.dumps(asdict(grid), indent=2) + "\n")
    failures: list[str] = []
    if pending:
        failures = _run_on_tune(pending, directories, out, ray_address, note)
    results = [r for t in trials if (r := trial_result(directories[t.name])) is not None]
    write_summary(results, out)
    return results, failures


def _run_on_tune(pending: list[Trial], directories: dict[str, Path], out: Path, ray_address: str | None,
                 note: Callable[[str], None]) -> list[str]:
    from ray import tune

    from a3c.config import usable_cores
    from a3c.drivers.ray.connection import connect

    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # Tune's older reporter keeps quiet at verbose=0
    note(f"sweep: {connect(ray_address, max(usable_cores(), max(t.cpus for t in pending)))}")
    by_cpus: dict[int, list[Trial]] = {}
    for t in pending:
        by_cpus.setdefault(t.cpus, []).append(t)
    for cpus, trials in sorted(by_cpus.items()):  # Tune reserves one amount per trainable
        space = {"run": tune.grid_search([(asdict(t), str(directories[t.name])) for t in trials])}
        tuner = tune.Tuner(
            tune.with_resources(_tune_trial, {"cpu": cpus}), param_space=space,
            run_config=tune.RunConfig(name=f"tune-{cpus}cpu", storage_path=str(out / "tune"), verbose=0))
        tuner.fit()
    failures = []
    for t in pending:
        if trial_result(directories[t.name]) is None:
            failures.append(f"{t.name}: no result; see {directories[t.name] / 'train.log'}")
    return failures


def summarize(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per env and grid point: the statistics of its trials' scores over the seeds."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in results:
        groups.setdefault((r["env_id"], _point_text(r["point"])), []).append(r)
    rows = []
    for (env_id, point), members in sorted(groups.items()):
        scores = [m["score"] for m in members]
        iqm_low, iqm_high = bootstrap_ci(scores, iqm)
        median_low, median_high = bootstrap_ci(scores, median)
        rows.append({"env_id": env_id, "options": point, "runs": len(scores), "median": median(scores),
                     "iqm": iqm(scores), "iqm_ci_low": iqm_low, "iqm_ci_high": iqm_high,
                     "median_ci_low": median_low, "median_ci_high": median_high,
                     "mean_steps": sum(m["steps"] for m in members) / len(members),
                     "seeds": " ".join(str(m["seed"]) for m in sorted(members, key=lambda m: m["seed"]))})
    return rows


def write_summary(results: list[dict[str, Any]], out: Path) -> Path:
    """summary.csv and summary.md in `out`: the table of summarize(results)."""
    rows = summarize(results)
    with open(out / "summary.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, SUMMARY_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    lines = ["| env | options | runs | median [95% CI] | IQM [95% CI] | mean steps | seeds |",
             "|---|---|---:|---|---|---:|---|"]
    for r in rows:
        lines.append(f"| {r['env_id']} | {r['options']} | {r['runs']} | {r['median']:.2f} "
                     f"[{r['median_ci_low']:.2f}, {r['median_ci_high']:.2f}] | {r['iqm']:.2f} "
                     f"[{r['iqm_ci_low']:.2f}, {r['iqm_ci_high']:.2f}] | {r['mean_steps']:,.0f} "
                     f"| {r['seeds']} |")
    (out / "summary.md").write_text(
        "Final greedy evaluation return over seeds: median and interquartile mean (IQM), each with its "
        "95% percentile-bootstrap interval over the runs.\n\n" + "\n".join(lines) + "\n")
    return out / "summary.md"


def _lists_as_tuples(options: dict[str, Any]) -> dict[str, Any]:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in options.items()}


def _rows(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _text(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "-".join(str(v) for v in value)
    return str(value)


def _point_text(point: dict[str, Any]) -> str:
    return ", ".join(f"{k}={_text(v)}" for k, v in point.items()) or "defaults"
