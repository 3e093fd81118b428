"""Our defaults against rl-baselines3-zoo's A2C table, env by env, at its step budgets.

    python benchmarks/zoo.py --out benchmarks/results/zoo                    # every env we support
    python benchmarks/zoo.py --envs LunarLander-v3 --seeds 5 --out ...       # one row
    python benchmarks/zoo.py --envs LunarLander-v3 --first-seed 100 --total-steps 1000000 --out ...
    python benchmarks/zoo.py --sb3 CartPole-v1 LunarLander-v3 --out ...      # and the reference
    python benchmarks/zoo.py --sb3 LunarLander-v3 --sb3-seeds 2 --out ...    # the reference on 2 seeds

Each run is the plain default command a user would type, with the zoo's budget and a seed:
`a3c train ENV --seed S --total-steps BUDGET --target-return none --final-eval-episodes 20`, then a
greedy evaluation of 20 whole episodes (the trainer's own final evaluation); with --stop-at-target
the env's reward threshold stops it, as `a3c train ENV --seed S` alone does. Runs go one after
another, each alone on the machine's cores. A run whose directory already holds its final
evaluation is not run again, so the benchmark can be stopped and started again.

For each env: the median and the interquartile mean of the final evaluations over the seeds, with
95 % percentile-bootstrap intervals (a3c.run.statistics, after rliable), the zoo's score, how many
seeds reach it, and the wall time of a run. With --sb3, Stable-Baselines3's A2C runs the same budget
with the zoo's hyperparameters for that env (hyperparams/a2c.yml), for the wall-time ratio.

The zoo's scores (benchmark.md, mean over its evaluation episodes of one trained agent; "M" = 1e6
steps) are for its Gymnasium ids of the time: LunarLander-v2 is LunarLander-v3 here,
LunarLanderContinuous-v2 LunarLander-v3 with continuous=True, and MuJoCo's v3 ids v5.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from common import commit, machine, sb3_greedy_returns, write_evaluation

from a3c.run.statistics import bootstrap_ci, iqm, median

FINAL_EVAL_EPISODES = 20


@dataclass(frozen=True)
class Row:
    """One env of the zoo's A2C table."""

    name: str  # the row's name here
    env_id: str
    zoo_id: str
    zoo_score: float
    budget: int
    env_kwargs: dict = field(default_factory=dict)
    seeds: int = 5
    sb3: dict | None = None  # the zoo's hyperparameters for Stable-Baselines3's A2C, if we run it


# rl-baselines3-zoo benchmark.md, a2c rows for envs this library's spaces support (Bullet envs are not
# in Gymnasium; Atari is benchmarks/atari_suite.py's).
ZOO = [
    Row("CartPole-v1", "CartPole-v1", "CartPole-v1", 500.0, 500_000,
        sb3=dict(n_envs=8, ent_coef=0.0)),
    Row("Acrobot-v1", "Acrobot-v1", "Acrobot-v1", -83.353, 500_000,
        sb3=dict(n_envs=16, ent_coef=0.0, normalize=True)),
    Row("MountainCar-v0", "MountainCar-v0", "MountainCar-v0", -111.263, 1_000_000),
    Row("Pendulum-v1", "Pendulum-v1", "Pendulum-v1", -162.965, 1_000_000),
    Row("MountainCarContinuous-v0", "MountainCarContinuous-v0", "MountainCarContinuous-v0", 91.166,
        100_000),
    Row("LunarLander-v3", "LunarLander-v3", "LunarLander-v2", 155.751, 200_000,
        sb3=dict(n_envs=8, gamma=0.995, n_steps=5, learning_rate=("linear", 0.00083), ent_coef=1e-5)),
    Row("LunarLanderContinuous", "LunarLander-v3", "LunarLanderContinuous-v2", 84.225, 5_000_000,
        env_kwargs={"continuous": True}),
    Row("BipedalWalker-v3", "BipedalWalker-v3", "BipedalWalker-v3", 299.754, 5_000_000),
    # The zoo's MuJoCo A2C: Stable-Baselines3's defaults (1 env, T=5, RMSprop 7e-4) with VecNormalize.
    Row("HalfCheetah-v5", "HalfCheetah-v5", "HalfCheetah-v3", 3041.174, 1_000_000, seeds=3,
        sb3=dict(normalize=True)),
    Row("Hopper-v5", "Hopper-v5", "Hopper-v3", 733.454, 1_000_000, seeds=3, sb3=dict(normalize=True)),
    Row("Swimmer-v5", "Swimmer-v5", "Swimmer-v3", 200.627, 1_000_000, seeds=3,
        sb3=dict(normalize=True, gamma=0.9999)),
]
BY_NAME = {row.name: row for row in ZOO}


@dataclass
class Run:
    algo: str  # "a3c" (ours, the default command) or "sb3-a2c"
    name: str
    seed: int
    final_eval: float
    wall_seconds: float
    steps: int


def run_ours(row: Row, seed: int, out: Path, extra: list[str], stop_at_target: bool = False) -> Run:
    """stop_at_target: the env's registered reward threshold stops the run, as in the plain default
    command (the trainer stops only if a 20-episode final evaluation holds it)."""
    run_dir = out / "runs" / row.name / f"a3c-seed{seed}"
    finished = (run_dir / "zoo.json").is_file()  # written once a run's final evaluation is in
    done = _read_result("a3c", row, seed, run_dir, early=True) if finished else None
    if done is not None:
        return done
    shutil.rmtree(run_dir, ignore_errors=True)
    target = [] if stop_at_target else ["--target-return", "none"]
    cmd = [sys.executable, "-m", "a3c.cli", "train", row.env_id, "--seed", str(seed),
           "--total-steps", str(row.budget), *target,
           "--final-eval-episodes", str(FINAL_EVAL_EPISODES), "--quiet", "--run-dir", str(run_dir), *extra]
    if row.env_kwargs:
        cmd += ["--env-kwargs", json.dumps(row.env_kwargs)]
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    started = time.time()
    with open(run_dir.parent / f"a3c-seed{seed}.log", "w") as log:
        subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, check=True)
    result = _read_result("a3c", row, seed, run_dir, stop_at_target)
    assert result is not None, f"{run_dir}: no final evaluation"
    (run_dir / "zoo.json").write_text(json.dumps({**asdict(result), "command": cmd,
                                                  "launched": started}) + "\n")
    return result


def _read_result(algo: str, row: Row, seed: int, run_dir: Path, early: bool = False) -> Run | None:
    """The final evaluation and wall time a finished run left in its directory, or None; early: a
    run that stopped at its target before the budget counts as finished."""
    path = run_dir / "evaluations.csv"
    if not path.is_file():
        return None
    with open(path, newline="") as f:
        finals = [r for r in csv.DictReader(f) if int(r["episodes"]) == FINAL_EVAL_EPISODES]
    if not finals or (int(finals[-1]["global_step"]) < row.budget and not early):
        return None
    last = finals[-1]
    wall = float(last["wall_time"])  # Stable-Baselines3's runs write their training time here
    updates = run_dir / "updates.csv"
    if updates.is_file():  # ours: the last update's time, so that the final evaluation is not counted
        with open(updates, newline="") as f:
            wall = max(float(r["wall_time"]) for r in csv.DictReader(f))
    return Run(algo, row.name, seed, float(last["mean_return"]), wall, int(last["global_step"]))


def run_sb3(row: Row, seed: int, out: Path) -> Run:
    run_dir = out / "runs" / row.name / f"sb3-a2c-seed{seed}"
    done = _read_result("sb3-a2c", row, seed, run_dir)
    if done is not None:
        return done
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    subprocess.run([sys.executable, __file__, "--sb3-run", row.name, str(seed), str(run_dir)], check=True)
    result = _read_result("sb3-a2c", row, seed, run_dir)
    assert result is not None
    return result


def sb3_run(name: str, seed: int, run_dir: Path) -> None:
    """Stable-Baselines3's A2C with the zoo's hyperparameters, one torch thread, on this run's budget;
    the final evaluation as ours: 20 greedy episodes of the raw env, seeds 1_000_000 + k."""
    import torch
    from stable_baselines3 import A2C
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    row = BY_NAME[name]
    params = dict(row.sb3 or {})
    n_envs, normalize = params.pop("n_envs", 1), params.pop("normalize", False)
    if isinstance(params.get("learning_rate"), tuple):
        start = params["learning_rate"][1]
        params["learning_rate"] = lambda progress: progress * start  # the zoo's lin_X
    torch.set_num_threads(1)
    envs = make_vec_env(row.env_id, n_envs=n_envs, seed=seed, env_kwargs=row.env_kwargs)
    if normalize:
        envs = VecNormalize(envs, gamma=params.get("gamma", 0.99))
    model = A2C("MlpPolicy", envs, seed=seed, device="cpu", verbose=0, **params)
    started = time.time()
    model.learn(total_timesteps=row.budget)
    seconds = time.time() - started
    returns = sb3_greedy_returns(model, row.env_id, FINAL_EVAL_EPISODES, row.env_kwargs,
                                 envs.normalize_obs if normalize else None)
    write_evaluation(run_dir, seconds, model.num_timesteps, returns)


def summary(runs: list[Run], names: list[str], budget: int | None = None) -> list[str]:
    lines = ["| env | zoo's A2C (its id, budget) | seeds | median final eval [95% CI] | IQM [95% CI] "
             "| seeds at or above the zoo | wall time per run (median) | Stable-Baselines3 A2C: "
             "final eval (median), wall time, our time / its |", "|" + "---|" * 8]
    for name in names:
        row = BY_NAME[name]
        ours = [r for r in runs if r.name == name and r.algo == "a3c"]
        steps = f"; ours {budget:,} steps" if budget is not None and budget != row.budget else ""
        if not ours:
            continue
        scores = [r.final_eval for r in ours]
        wall = median([r.wall_seconds for r in ours])
        med_ci, iqm_ci = bootstrap_ci(scores, median), bootstrap_ci(scores, iqm)
        reached = sum(s >= row.zoo_score for s in scores)
        sb3 = [r for r in runs if r.name == name and r.algo == "sb3-a2c"]
        reference = "-"
        if sb3:
            sb3_wall = median([r.wall_seconds for r in sb3])
            reference = (f"{median([r.final_eval for r in sb3]):.1f} ({len(sb3)} seeds), {sb3_wall:.0f} s, "
                         f"**{wall / sb3_wall:.2f}x**")
        lines.append(
            f"| {name} | {row.zoo_score:g} ({row.zoo_id}, {row.budget:,}{steps}) | {len(scores)} "
            f"| {median(scores):.1f} [{med_ci[0]:.1f}, {med_ci[1]:.1f}] "
            f"| {iqm(scores):.1f} [{iqm_ci[0]:.1f}, {iqm_ci[1]:.1f}] | {reached}/{len(scores)} "
            f"| {wall:.0f} s | {reference} |")
    return lines


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--sb3-run":
        sb3_run(sys.argv[2], int(sys.argv[3]), Path(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", nargs="+", default=[row.name for row in ZOO], choices=list(BY_NAME))
    parser.add_argument("--seeds", type=int, default=None, help="seeds per env (default: the row's)")
    parser.add_argument("--sb3", nargs="*", default=[], choices=list(BY_NAME),
                        help="envs on which Stable-Baselines3's A2C runs too (the zoo's values)")
    parser.add_argument("--sb3-seeds", type=int, default=None,
                        help="Stable-Baselines3 runs on the first N of the seeds (default: all)")
    parser.add_argument("--first-seed", type=int, default=0,
                        help="seeds are first-seed, first-seed + 1, ... (seeds apart from those tuned on)")
    parser.add_argument("--total-steps", type=int, default=None,
                        help="every env's budget (default: the zoo's, each row's own)")
    parser.add_argument("--stop-at-target", action="store_true",
                        help="stop a run at the env's reward threshold, as the plain default command does")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("extra", nargs="*", help="options after -- go to every a3c train")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    runs: list[Run] = []
    for name in args.envs:
        row = BY_NAME[name] if args.total_steps is None else replace(BY_NAME[name], budget=args.total_steps)
        for seed in range(args.first_seed, args.first_seed + (args.seeds or row.seeds)):
            runs.append(run_ours(row, seed, args.out, args.extra, args.stop_at_target))
            last = runs[-1]
            print(f"{name} seed {seed}: final eval {last.final_eval:.1f} in {last.wall_seconds:.0f} s",
                  flush=True)
            if name in args.sb3 and (args.sb3_seeds is None or seed < args.first_seed + args.sb3_seeds):
                runs.append(run_sb3(row, seed, args.out))
                print(f"  Stable-Baselines3 A2C: {runs[-1].final_eval:.1f} in {runs[-1].wall_seconds:.0f} s",
                      flush=True)
    lines = [f"# Our defaults against rl-baselines3-zoo's A2C, {time.strftime('%Y-%m-%d')}", "",
             f"- command: `python benchmarks/zoo.py {' '.join(sys.argv[1:])}`",
             f"- commit: {commit()}; machine: {machine()}", "",
             *summary(runs, args.envs, args.total_steps)]
    (args.out / "summary.md").write_text("\n".join(lines) + "\n")
    (args.out / "runs.json").write_text(json.dumps([asdict(r) for r in runs], indent=1) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
