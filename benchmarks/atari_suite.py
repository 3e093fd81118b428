"""The plain default command on rl-baselines3-zoo's Atari games at its 10M agent steps, one seed each.

    python benchmarks/atari_suite.py --out runs/atari_suite                           # every game
    python benchmarks/atari_suite.py --games BreakoutNoFrameskip-v4 --hours 1.5 --out runs/atari_suite

Each game is `a3c train GAME --seed 0 --total-steps 10000000 --target-return none` (the atari preset:
the paper's conv torso and its shared RMSProp rule, 2 workers x 8 envs, a greedy evaluation over 10
whole games at the end). A game takes hours of these 2 cores, so a run may be stopped and continued:
--hours stops the runner's current game with SIGINT once that much time has passed (the trainer
saves a checkpoint and exits), and the next invocation continues it with `a3c train --resume`. Each
part's output is kept (stdout-part1.txt, stdout-part2-resumed.txt, ...) and `segments.json` says
when each part ran, from which step to which, and for how long. The table's running time is read
from the run's update log, so that neither the time between parts nor a pause (SIGSTOP, while
something else is measured) counts in it.

The table: our final evaluation beside rl-baselines3-zoo's A2C at 10M steps (benchmark.md, its
NoFrameskip-v4 ids), each also as a human-normalised score, (score - random) / (human - random),
with the random and human scores of Wang et al. 2016 that Badia et al. 2020 (Agent57) tabulate. The
A3C paper's own Atari scores (its Table S3) are from human starts, an evaluation protocol this runner
does not reproduce, so they are not set beside ours.

The zoo evaluates Atari agents with sampled actions (benchmark.md: "It uses the deterministic policy
except for Atari games"), where the trainer's final evaluation is greedy. So once a game is done the
runner also plays its final model for 10 whole games with sampled actions (`a3c eval RUN --stochastic`,
the same episode seeds), kept in sampled.json, and the table gives both, each against the zoo.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from common import FINAL_EVAL_SEED, commit, invocation, machine, read_csv

from a3c.errors import CheckpointError
from a3c.run.checkpoint import latest_checkpoint

BUDGET = 10_000_000  # rl-baselines3-zoo's for Atari
FINAL_EVAL_EPISODES = 10  # the atari preset's final evaluation: 10 whole games


@dataclass(frozen=True)
class Game:
    env_id: str
    zoo_a2c: float  # rl-baselines3-zoo benchmark.md, a2c at 10M steps
    random: float  # Wang et al. 2016, as tabulated by Badia et al. 2020
    human: float

    def normalised(self, score: float) -> float:
        return (score - self.random) / (self.human - self.random)


GAMES = [
    Game("BreakoutNoFrameskip-v4", 279.8, 1.7, 30.5),
    Game("SpaceInvadersNoFrameskip-v4", 627.2, 148.0, 1668.7),
    Game("QbertNoFrameskip-v4", 3882.0, 163.9, 13455.0),
    Game("BeamRiderNoFrameskip-v4", 2890.0, 363.9, 16926.5),
    Game("SeaquestNoFrameskip-v4", 1721.0, 68.4, 42054.7),
    Game("PongNoFrameskip-v4", 17.3, -20.7, 14.6),
]
BY_ID = {game.env_id: game for game in GAMES}


def _rows(path: Path) -> list[dict[str, float]]:
    return read_csv(path) if path.is_file() else []


def read_segments(run_dir: Path) -> list[dict]:
    path = run_dir / "segments.json"
    return json.loads(path.read_text()) if path.is_file() else []


def final_evaluation(run_dir: Path, budget: int) -> tuple[int, float, float] | None:
    """(step, mean, std) of the trainer's final 10-game evaluation at the budget, or None."""
    rows = [r for r in _rows(run_dir / "evaluations.csv")
            if r["episodes"] == FINAL_EVAL_EPISODES and r["global_step"] >= budget]
    if not rows:
        return None
    last = rows[-1]
    return int(last["global_step"]), last["mean_return"], last["std_return"]


def sampled_evaluation(run_dir: Path) -> tuple[float, float] | None:
    """(mean, std) of the final model over 10 whole games with sampled actions, as the zoo evaluates
    Atari; played once, when the game is done and its model is there, then read from sampled.json."""
    path = run_dir / "sampled.json"
    if not path.is_file():
        if not (run_dir / "model.safetensors").is_file():
            return None  # a game whose model was not kept (its logs alone are committed)
        out = subprocess.run([sys.executable, "-m", "a3c.cli", "eval", str(run_dir), "--stochastic", "--json",
                              "--episodes", str(FINAL_EVAL_EPISODES), "--seed", str(FINAL_EVAL_SEED)],
                             check=True, capture_output=True, text=True).stdout
        path.write_text(out.strip().splitlines()[-1] + "\n")
    result = json.loads(path.read_text())
    return result["mean_return"], result["std_return"]


def running_seconds(run_dir: Path, longest_gap: float = 30.0) -> float:
    """The time the run's workers ran, from its update log: the time to the first update, then every
    gap between consecutive update reports up to longest_gap. Longer gaps are a run paused (SIGSTOP,
    for another measurement) or stopped between two parts, and are left out, with them the few
    seconds a resumed part takes to start."""
    times = sorted(r["wall_time"] for r in _rows(run_dir / "updates.csv"))
    if not times:
        return 0.0
    return times[0] + sum(b - a for a, b in zip(times, times[1:], strict=False) if b - a <= longest_gap)


def last_step(run_dir: Path) -> int:
    """The global step of the newest update report (0 before the first)."""
    return int(max((r["global_step"] for r in _rows(run_dir / "updates.csv")), default=0))


def has_checkpoint(run_dir: Path) -> bool:
    try:
        latest_checkpoint(run_dir)
    except CheckpointError:
        return False
    return True


def run_part(game: Game, run_dir: Path, budget: int, deadline: float | None) -> dict:
    """One part of a game's run: a new run, or the last one resumed from its newest checkpoint;
    stopped with SIGINT at the deadline."""
    segments = read_segments(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    part = len(list(run_dir.glob("stdout-part*.txt"))) + 1  # a part killed with the runner kept its log
    if has_checkpoint(run_dir):
        cmd = [sys.executable, "-m", "a3c.cli", "train", "--resume", str(run_dir)]
        log = run_dir / f"stdout-part{part}-resumed.txt"
    else:
        cmd = [sys.executable, "-m", "a3c.cli", "train", game.env_id, "--seed", "0",
               "--total-steps", str(budget), "--target-return", "none", "--run-dir", str(run_dir)]
        log = run_dir / f"stdout-part{part}.txt"
    started, from_step = time.time(), last_step(run_dir)
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        while proc.poll() is None:
            if deadline is not None and time.time() >= deadline:
                proc.send_signal(signal.SIGINT)  # the trainer saves a checkpoint and exits with 130
                proc.wait()
                break
            time.sleep(2.0)
    segment = dict(part=part, command=cmd, started=started, seconds=round(time.time() - started, 1),
                   from_step=from_step, to_step=last_step(run_dir), exit_status=proc.returncode)
    (run_dir / "segments.json").write_text(json.dumps([*segments, segment], indent=1) + "\n")
    if proc.returncode not in (0, 130):
        raise RuntimeError(f"{' '.join(cmd)} failed with exit status {proc.returncode}; see {log}")
    return segment


def table(out: Path, games: list[Game], budget: int) -> list[str]:
    lines = ["| game | zoo's A2C, 10M, sampled actions (human-normalised) | ours, greedy "
             "(human-normalised) | ours, sampled actions | steps | running time | parts | "
             "beats the zoo: greedy, sampled |",
             "|" + "---|" * 8]
    for game in games:
        run_dir = out / "runs" / game.env_id
        segments = read_segments(run_dir)
        final = final_evaluation(run_dir, budget)
        zoo = f"{game.zoo_a2c:g} ({game.normalised(game.zoo_a2c):.2f})"
        hours = running_seconds(run_dir) / 3600
        if final is None:
            lines.append(f"| {game.env_id} | {zoo} | running | | {last_step(run_dir):,} | {hours:.2f} h "
                         f"| {len(segments)} | |")
            continue
        step, mean, std = final
        sampled = sampled_evaluation(run_dir)
        beats = "yes" if mean > game.zoo_a2c else "no"
        if sampled is None:
            sampled_cell, beats_sampled = "not measured (no model)", "-"
        else:
            sampled_cell = f"{sampled[0]:.1f} +/- {sampled[1]:.1f} ({game.normalised(sampled[0]):.2f})"
            beats_sampled = "yes" if sampled[0] > game.zoo_a2c else "no"
        lines.append(f"| {game.env_id} | {zoo} | **{mean:.1f}** +/- {std:.1f} ({game.normalised(mean):.2f}) "
                     f"| {sampled_cell} | {step:,} | {hours:.2f} h | {len(segments)} "
                     f"| {beats}, {beats_sampled} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--games", nargs="+", default=[g.env_id for g in GAMES], choices=list(BY_ID))
    parser.add_argument("--hours", type=float, default=None,
                        help="stop (with a checkpoint) after this many hours; the next call continues")
    parser.add_argument("--total-steps", type=int, default=BUDGET,
                        help="each game's budget (a shorter one for a trial of the runner)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    deadline = None if args.hours is None else time.time() + args.hours * 3600
    games = [BY_ID[g] for g in args.games]
    for game in games:
        run_dir = args.out / "runs" / game.env_id
        while final_evaluation(run_dir, args.total_steps) is None:
            if deadline is not None and time.time() >= deadline:
                break
            segment = run_part(game, run_dir, args.total_steps, deadline)
            print(f"{game.env_id}: part {segment['part']}, steps {segment['from_step']:,} -> "
                  f"{segment['to_step']:,} in {segment['seconds']:.0f} s", flush=True)
        if deadline is not None and time.time() >= deadline:
            break
    lines = [f"# The default command on Atari at {args.total_steps:,} agent steps, "
             f"{time.strftime('%Y-%m-%d')}", "",
             f"- command: `{invocation()}` (called again "
             "until every game is done; each call continues where the last stopped)",
             f"- commit: {commit()}; machine: {machine()}", "",
             *table(args.out, games, args.total_steps)]
    (args.out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
