"""The two contracts of the drivers layer, each in one place.

``Driver``: what the supervisor calls to make a run learn. A3C's Hogwild processes, A3C on Ray and
A2C each implement it, and differ in nothing else the supervisor can see.

``Backend``: the two calls of the actor-learner loop that touch the global network, ``pull`` (sync
local <- global) and ``push`` (apply the local gradient to the global network), with the counters
the loop reads.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from a3c.config import Config
from a3c.core.messages import LearnerReport
from a3c.core.networks import ActorCritic
from a3c.envs.state import LearnerState

Event = tuple[str, str]  # (kind, detail) of something that happened to the learners, for events.csv
ResumeState = tuple[dict, dict[str, torch.Tensor]]  # a3c.envs.state.capture's (metadata, tensors)


class OneComputeThread:
    """A learner's torch and NumPy BLAS (OpenBLAS) kept to the calling thread: its batches are small,
    and either library would spread a product over every core, where the other learners are working
    (OpenBLAS past 2**18 multiply-adds: a packed MLP's over a rollout, a3c.core.packed). `restore()`
    gives the caller back its own counts, for a learner that runs in the caller's process (A2C)."""

    def __init__(self) -> None:
        self._threads = torch.get_num_threads()
        torch.set_num_threads(1)
        self._blas = threadpool_limits(limits=1, user_api="blas")

    def restore(self) -> None:
        # BLAS first: restoring OpenBLAS's limit also resets torch's OpenMP threads (to 1 here).
        self._blas.restore_original_limits()
        torch.set_num_threads(self._threads)


@dataclass
class RunPosition:
    """Where a resumed run stood at its checkpoint, and (when it could be captured) its learner's
    whole state, from which the run goes on exactly."""

    steps: int
    updates: int
    target_steps: int  # the step count the interrupted learn() was going to
    wall_time: float  # training seconds before this checkpoint, over all earlier segments
    learner: LearnerState | None = None  # None: not exact, the envs are seeded afresh
    source: str = "checkpoint"  # the file it was read from, for errors


def learner_seed(config: Config, rank: int, incarnation: int = 0, start_steps: int = 0) -> int:
    """The first env seed of worker `rank`, the same rule on every backend.

    In a fresh run it is seed + rank * n_envs (its envs take that, + 1, ...). A restarted worker
    (incarnation > 0), or any worker of a resumed run (start_steps > 0), draws a new one from all
    four numbers, so that it does not replay the episodes its rank played before.
    """
    if incarnation == 0 and start_steps == 0:
        return config.seed + rank * config.n_envs
    sequence = np.random.SeedSequence([config.seed, rank, incarnation, start_steps])
    return int(sequence.generate_state(1)[0]) % 2**31


class Driver(abc.ABC):
    """How a run turns experience into updates of the global network: the part A3C and A2C differ in.

    The supervisor calls start once, then advance until it decides to stop, then stop once. The
    members with a body have a default that fits a driver with nothing to do there.
    """

    @abc.abstractmethod
    def start(self, config: Config, start_time: float) -> None:
        """Begin; config.total_steps is the absolute env step count at which to stop."""

    @abc.abstractmethod
    def advance(self) -> list[LearnerReport]:
        """Make some progress (an update, or a short wait on workers); the reports to log.

        Raises WorkerError when the driver cannot go on.
        """

    @abc.abstractmethod
    def stop(self) -> list[LearnerReport]:
        """Stop learning; the last reports."""

    @abc.abstractmethod
    def steps(self) -> int:
        """Env steps taken, earlier runs included."""

    @abc.abstractmethod
    def updates(self) -> int:
        """Updates applied to the global network, earlier runs included."""

    def take_events(self) -> list[Event]:
        """What happened to the learners since the last call (a worker restarted)."""
        return []

    @property
    def restarts(self) -> int:
        """Workers restarted so far in this run."""
        return 0

    @property
    def restores_exactly(self) -> bool:
        """Whether this run, resumed from a checkpoint, goes on bit for bit where it stopped."""
        return False

    def resume_state(self) -> ResumeState | None:
        """The learner's RNG and envs for a checkpoint that can be continued exactly, or None."""
        return None

    def kill(self) -> None:
        """End the driver's processes at once (a second Ctrl-C); called from a signal handler."""
        return None  # a driver that starts no process has nothing to end


class Backend(abc.ABC):
    """Where an actor-learner's global network lives: shared memory, a parameter server, or itself."""

    @abc.abstractmethod
    def pull(self, net: ActorCritic) -> int:
        """Copy the global parameters into net; return the global update count seen."""

    @abc.abstractmethod
    def push(self, net: ActorCritic, pulled_version: int, steps: int) -> int:
        """Apply net's gradients to the global network; return updates others made since the pull."""

    @abc.abstractmethod
    def skip(self, steps: int) -> None:
        """Count env steps whose update was not applied (its loss or gradient was not finite)."""

    @abc.abstractmethod
    def global_steps(self) -> int:
        """Env steps taken by all learners so far."""

    @abc.abstractmethod
    def should_stop(self) -> bool:
        """True once the run is over for this learner."""
