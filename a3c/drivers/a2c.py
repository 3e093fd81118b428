"""The A2C driver: one process steps a batch of envs and applies one synchronous update per rollout.

It is the actor-learner loop of A3C with a different backend: the learner's network *is* the global network,
so ``pull`` copies nothing and ``push`` steps the optimizer at once; no other update can come in
between, so the staleness is zero by construction. The batch of envs comes from gymnasium.vector;
the network and the update may run on a GPU while the envs step on the CPU.
"""

from __future__ import annotations

import gymnasium as gym
import torch

from a3c.config import Config
from a3c.core.messages import LearnerReport
from a3c.core.networks import ActorCritic
from a3c.core.optim import schedule_lr
from a3c.core.rollout import RolloutCollector
from a3c.drivers.actor_learner import ActorLearner
from a3c.drivers.base import Backend, Driver, OneComputeThread, ResumeState, RunPosition
from a3c.drivers.processes import keep_freed_memory, sigint_blocked
from a3c.envs.make import make_training_envs
from a3c.envs.state import capture, restore, sub_envs
from a3c.errors import ConfigError


def resolve_device(name: str) -> torch.device:
    """cpu, cuda, or auto (cuda when torch sees a GPU); a clear error when cuda is asked for and absent."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            "device 'cuda' was asked for, but torch sees no CUDA GPU here; use device cpu or auto")
    return torch.device(name)


class SyncBackend(Backend):
    """pull: nothing to copy (the learner's network is the global one); push: step the optimizer now."""

    def __init__(self, config: Config, optimizer: torch.optim.Optimizer, start_steps: int,
                 start_updates: int):
        self.config = config
        self.optimizer = optimizer
        self.steps = start_steps
        self.updates = start_updates

    def pull(self, net: ActorCritic) -> int:
        return self.updates

    def push(self, net: ActorCritic, pulled_version: int, steps: int) -> int:
        schedule_lr(self.optimizer, self.config, lambda: self.steps)
        self.optimizer.step()
        staleness = self.updates - pulled_version  # 0: nothing runs between our pull and push
        self.steps += steps
        self.updates += 1
        return staleness

    def skip(self, steps: int) -> None:
        self.steps += steps  # taken, but their update was not applied

    def global_steps(self) -> int:
        return self.steps

    def should_stop(self) -> bool:
        return self.steps >= self.config.total_steps


class A2CDriver(Driver):
    """One ActorLearner over a batch of envs, stepped by the supervisor one update at a time."""

    def __init__(self, net: ActorCritic, optimizer: torch.optim.Optimizer, start_steps: int,
                 start_updates: int, position: RunPosition | None = None):
        self.net = net
        self.optimizer = optimizer
        self.start_steps = start_steps
        self.start_updates = start_updates
        self.position = position  # a resumed run's checkpoint: its envs and RNG, if it holds them
        self.learner: ActorLearner | None = None
        self.backend: SyncBackend | None = None
        self.envs: gym.vector.VectorEnv | None = None
        self._one_thread: OneComputeThread | None = None  # while learning
        self._last_state: ResumeState | None = None

    @property
    def restores_exactly(self) -> bool:
        """A resumed run goes on bit for bit: the checkpoint holds all of its learner's state."""
        return (self.position is not None and self.position.learner is not None
                and self.net.device.type == "cpu")

    def start(self, config: Config, start_time: float) -> None:
        # Everything random in a run follows from the seed: env i resets with seed + i and sampling
        # uses torch's generator seeded here. A later learn() call starts from a different seed,
        # unless it resumes a checkpoint that holds the envs' and the generator's state.
        seed = config.seed + self.start_steps
        torch.manual_seed(seed)
        with sigint_blocked():  # async envs' subprocesses leave Ctrl-C to us
            self.envs = make_training_envs(config, seed)
        collector = RolloutCollector(self.envs, config.n_steps, seed=seed,
                                     sde_sample_freq=config.sde_sample_freq)
        if self.restores_exactly:
            assert self.position is not None and self.position.learner is not None
            restore(self.envs, self.position.learner, collector, self.position.source)
        self.backend = SyncBackend(config, self.optimizer, self.start_steps, self.start_updates)
        self.learner = ActorLearner(0, config, self.net, collector, self.backend, start_time)
        # The batch is small: one intra-op thread is faster than several and leaves cores to envs.
        self._one_thread = OneComputeThread()
        keep_freed_memory()

    def advance(self) -> list[LearnerReport]:
        assert self.learner is not None
        self.learner.update()
        return [self.learner.take_report()] if self.learner.flush_due() else []

    def resume_state(self) -> ResumeState | None:
        """The learner's RNG and envs for a checkpoint (a3c.envs.state), captured before the envs close."""
        if self.learner is None or self.envs is None:
            return self._last_state
        if self.net.device.type != "cpu" or sub_envs(self.envs) is None:
            return None  # sampling on a GPU, or envs in other processes: not exact, reseed on resume
        collector = self.learner.collector
        return capture(self.envs, collector.obs, collector.state, collector.running_returns)

    def kill(self) -> None:
        """End the async envs' processes at once (a second Ctrl-C): none outlives the run."""
        processes = self.envs.processes if isinstance(self.envs, gym.vector.AsyncVectorEnv) else []
        for process in processes:
            if process.is_alive():
                process.kill()

    def stop(self) -> list[LearnerReport]:
        if self._one_thread is not None:
            self._one_thread.restore()
            self._one_thread = None
        reports = [self.learner.take_report(final=True)] if self.learner is not None else []
        if self.envs is not None:
            self._last_state = self.resume_state()
            self.envs.close()
            self.envs = None
        return reports

    def steps(self) -> int:
        return self.backend.steps if self.backend is not None else self.start_steps

    def updates(self) -> int:
        return self.backend.updates if self.backend is not None else self.start_updates
