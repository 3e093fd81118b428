"""The supervisor's decisions, in seconds: when it evaluates, confirms a target, checkpoints and stops,
and what it saves when its driver fails.

The driver here is a small real Driver: it takes a fixed number of steps per advance and, at chosen
steps, sets the network's policy (through its head's bias: the toy envs' observations are zeros,
so the features are too). The envs, networks, evaluations, checkpoints and logs are the real ones.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

import tests.toy_envs  # noqa: F401  (registers the toy envs)
from a3c.core.messages import LearnerReport
from a3c.core.networks import ActorCritic, NetworkSpec
from a3c.core.optim import make_optimizer
from a3c.drivers.base import Driver, RunPosition
from a3c.envs.make import make_env
from a3c.errors import WorkerError
from a3c.presets import build_config
from a3c.run.checkpoint import load_checkpoint
from a3c.run.supervisor import Supervisor, TrainResult

PICK_ZERO, EVEN_SEED = "tests.toy_envs:ToyPickZero-v0", "tests.toy_envs:ToyEvenSeed-v0"


def greedy(action: int) -> Callable[[ActorCritic], None]:
    def set_policy(net: ActorCritic) -> None:
        with torch.no_grad():
            net.policy.linear.bias.copy_(torch.tensor([5.0, -5.0] if action == 0 else [-5.0, 5.0]))
    return set_policy


class ScriptedDriver(Driver):
    """Takes `per_advance` steps per advance; runs script[step] on the network when it gets there."""

    def __init__(self, net: ActorCritic, per_advance: int = 100,
                 script: dict[int, Callable[[ActorCritic], None]] | None = None,
                 fail_at: int | None = None, exact: bool = False):
        self.net = net
        self.per_advance = per_advance
        self.script = script or {}
        self.fail_at = fail_at
        self.exact = exact
        self._steps = self._updates = 0
        self.started = self.stopped = False

    def start(self, config, start_time):
        self.started = True

    def advance(self):
        self._steps += self.per_advance
        self._updates += 1
        if self.fail_at is not None and self._steps >= self.fail_at:
            raise WorkerError(f"worker 0 failed at step {self._steps}")
        if self._steps in self.script:
            self.script[self._steps](self.net)
        report = LearnerReport(0, episodes=[(0.0, self._steps, 1.0, self.per_advance)])
        return [report]

    def stop(self):
        self.stopped = True
        return []

    def steps(self):
        return self._steps

    def updates(self):
        return self._updates

    @property
    def restores_exactly(self):
        return self.exact


def supervise(tmp_path: Path, env_id: str, driver_options: dict | None = None,
              position: RunPosition | None = None, **options) -> tuple[TrainResult, ScriptedDriver]:
    options = {"algo": "a2c", "total_steps": 1000, "eval_interval": 0, "checkpoint_interval": 0,
               "final_eval_episodes": 4, "eval_episodes": 1, "log_interval": 0.05, **options}
    config = build_config(env_id, **options)
    env = make_env(env_id)
    net = ActorCritic(NetworkSpec.from_spaces(env.observation_space, env.action_space))
    env.close()
    greedy(1)(net)  # scores 0 on ToyPickZero until the script says otherwise
    optimizer = make_optimizer(config, net.parameters(), shared=False)
    driver = ScriptedDriver(net, **(driver_options or {}))
    start = position.steps if position is not None else 0
    resumed_from = tmp_path / "old.safetensors" if position is not None else None
    supervisor = Supervisor(config, net, optimizer, tmp_path / "run", start, verbose=0,
                            position=position, resumed_from=resumed_from)
    return supervisor.run(driver), driver


def rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_the_run_stops_at_total_steps_and_saves_the_network_with_its_counters(tmp_path):
    result, driver = supervise(tmp_path, PICK_ZERO)
    assert driver.started and driver.stopped
    assert (result.stop_reason, result.steps, result.updates) == ("total_steps", 1000, 10)
    ckpt = load_checkpoint(result.checkpoint)
    assert ckpt.counters["steps"] == 1000 and ckpt.counters["updates"] == 10
    assert result.final_eval is not None and result.final_eval.returns == [0.0] * 4
    assert len(rows(tmp_path / "run" / "episodes.csv")) == 10


def test_max_seconds_stops_the_run_before_its_steps(tmp_path):
    result, _ = supervise(tmp_path, PICK_ZERO, driver_options={"per_advance": 1}, total_steps=10**9,
                          max_seconds=0.5)
    assert result.stop_reason == "max_seconds" and 0 < result.steps < 10**9


def test_evaluations_come_every_eval_interval_steps(tmp_path):
    result, _ = supervise(tmp_path, PICK_ZERO, eval_interval=250, target_return=None)
    evals = rows(tmp_path / "run" / "evaluations.csv")
    # 100 steps per advance: due at the first count past 250, 500, 750, then the final evaluation
    assert [int(r["global_step"]) for r in evals] == [300, 500, 800, 1000]
    assert [int(r["episodes"]) for r in evals] == [1, 1, 1, 4]


def test_a_target_reached_and_confirmed_stops_the_run_with_the_evaluated_network(tmp_path):
    result, driver = supervise(tmp_path, PICK_ZERO, driver_options={"script": {400: greedy(0)}},
                               eval_interval=100)
    assert result.stop_reason == "target_return"
    assert result.steps == 400 and driver.stopped
    assert result.final_eval is not None and result.final_eval.mean_return == 1.0
    ckpt = load_checkpoint(result.checkpoint)
    assert ckpt.counters["steps"] == 400
    assert ckpt.model_state["policy.linear.bias"].tolist() == [5.0, -5.0]


def test_a_lucky_short_evaluation_is_not_taken_for_the_target(tmp_path):
    # Periodic evaluations of 1 episode use seed 10_000 + steps, even here: they score 1. The
    # confirmation runs the final evaluation's 4 episodes (seeds 1_000_000 + k, half of them odd):
    # 0.5, below the target, so the run goes on to its total steps.
    result, _ = supervise(tmp_path, EVEN_SEED, eval_interval=200)
    assert result.stop_reason == "total_steps" and result.steps == 1000
    evals = [(int(r["global_step"]), int(r["episodes"]), float(r["mean_return"]))
             for r in rows(tmp_path / "run" / "evaluations.csv")]
    assert (200, 1, 1.0) in evals and (200, 4, 0.5) in evals  # reached, then not confirmed
    assert evals[-1] == (1000, 4, 0.5)


def test_checkpoints_come_every_checkpoint_interval_and_only_the_newest_are_kept(tmp_path):
    supervise(tmp_path, PICK_ZERO, checkpoint_interval=300, keep_checkpoints=2, final_eval_episodes=0)
    kept = sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir())
    assert kept == ["step_000000000600.safetensors", "step_000000000900.safetensors"]
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / kept[-1]).counters["steps"] == 900


def test_a_driver_failure_saves_what_was_learned_logs_it_and_raises(tmp_path):
    with pytest.raises(WorkerError, match="failed at step 500"):
        supervise(tmp_path, PICK_ZERO, driver_options={"fail_at": 500, "script": {300: greedy(0)}})
    ckpt = load_checkpoint(tmp_path / "run" / "model.safetensors")
    assert ckpt.counters["steps"] == 500  # the steps the driver had counted when it failed
    assert ckpt.model_state["policy.linear.bias"].tolist() == [5.0, -5.0]
    events = rows(tmp_path / "run" / "events.csv")
    assert [e["event"] for e in events] == ["failed"] and "failed at step 500" in events[0]["detail"]


@pytest.mark.parametrize("exact", [True, False])
def test_a_resumed_run_logs_whether_its_driver_restores_exactly(tmp_path, exact):
    position = RunPosition(steps=0, updates=0, target_steps=1000, wall_time=12.5)
    result, _ = supervise(tmp_path, PICK_ZERO, driver_options={"exact": exact}, position=position,
                          final_eval_episodes=0)
    events = rows(tmp_path / "run" / "events.csv")
    assert events[0]["event"] == "resumed"
    assert events[0]["detail"].endswith("restored exactly" if exact else "reseeded")
    assert float(events[0]["wall_time"]) == pytest.approx(12.5)
