"""A3C workers as Ray actors: the actor-learner loop behind a Ray pull and push.

Pushes are asynchronous: a worker sends its gradient and goes on with its next rollout, keeping at
most ``config.max_inflight_pushes`` calls unanswered; one more waits for the oldest, so a slow
parameter server slows its workers down instead of queueing their gradients without bound. A call
carries one or more consecutive gradients, each applied as its own update: a worker sends once
PUSH_SPACING times its last call's cost has passed since that call, or once it holds
``config.gradients_per_push``. A Ray call costs each side a fixed amount of CPU whatever it
carries, about as much as a whole CartPole update; so a CartPole worker sends a few gradients per
call, while an Atari worker, whose update takes far longer, sends each on its own.
Pulls never wait: they load the newest parameters the server's replies have announced.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections import deque

import numpy as np
import ray
import torch

from a3c.config import Config
from a3c.core.messages import LearnerReport
from a3c.core.networks import ActorCritic, NetworkSpec
from a3c.core.normalization import ObsNormalizer
from a3c.core.rollout import RolloutCollector
from a3c.drivers.actor_learner import ActorLearner
from a3c.drivers.base import Backend
from a3c.drivers.ray.server import Reply, flat_gradients, load_flat_parameters
from a3c.envs.make import make_training_envs

# Sending costs a worker at most 1/(1 + PUSH_SPACING) of its time, and the server about as much
# again per call; the value and its effect are measured in benchmarks/results/ray_scaling.md.
PUSH_SPACING = 20.0


class RayBackend(Backend):
    """pull: load the newest parameters (and obs_norm statistics) the server's replies brought;
    push: hold the flat gradient, and send what is held once a call is worth its cost."""

    def __init__(self, rank: int, config: Config, server: ray.actor.ActorHandle,
                 normalizer: ObsNormalizer | None = None):
        self.rank = rank
        self.config = config
        self.server = server
        self.version = -1  # of the parameters in our network
        self.pending: deque[ray.ObjectRef] = deque()  # unanswered pushes, oldest first
        self.batch: list[tuple[np.ndarray, int, int]] = []  # gradients not sent yet: (g, version, steps)
        self.staleness: deque[int] = deque()  # answered pushes' staleness, not yet handed out
        self._next_send = 0.0  # monotonic time from which the gradients held may be sent
        self.latest: Reply = ray.get(server.latest.remote(rank))
        self.params = self.latest.params  # reference to the newest published parameters we know of
        self.statistics = self.latest.statistics  # obs_norm's, as of those parameters
        self.normalizer = normalizer  # the worker network's: what it observed goes with the gradients
        if normalizer is not None:
            normalizer.take_recent()  # from now on

    def pull(self, net: ActorCritic) -> int:
        # Take the replies already there, oldest first, but for the push sent a moment ago: it is
        # not answered yet, and asking costs as much as an answer.
        while len(self.pending) > 1:
            try:
                reply = ray.get(self.pending[0], timeout=0)
            except ray.exceptions.GetTimeoutError:
                break  # a busy server: go on with what we have
            self.pending.popleft()
            self._take(reply)
        if self.latest.version != self.version:
            params = self.params
            load_flat_parameters(net, ray.get(params) if isinstance(params, ray.ObjectRef) else params)
            if self.statistics is not None and net.normalizer is not None:
                count, mean, var = self.statistics
                net.normalizer.assign((count, torch.from_numpy(mean), torch.from_numpy(var)))
            self.version = self.latest.version
        return self.version

    def push(self, net: ActorCritic, pulled_version: int, steps: int) -> int:
        """Send the gradient; return the staleness of an earlier push (known once it is applied).

        Each push's staleness is handed out once, in order, by a later call, so a report's sums count
        every applied update but the last few in flight, and the first calls return 0.
        """
        self.batch.append((flat_gradients(net), pulled_version, steps))
        if len(self.batch) >= self.config.gradients_per_push or time.monotonic() >= self._next_send:
            self._send()
        return self.staleness.popleft() if self.staleness else 0

    def skip(self, steps: int) -> None:
        """Count the env steps of an update not pushed (the loop skips non-finite gradients)."""
        self.server.skip.remote(self.rank, steps)

    def global_steps(self) -> int:
        return self.latest.steps

    def should_stop(self) -> bool:
        return self.latest.stop or self.latest.steps >= self.config.total_steps

    def drain(self) -> None:
        """Send what is left and wait until every gradient has been applied."""
        if self.batch:
            self._send()
        while self.pending:
            self._take(ray.get(self.pending.popleft()))

    def _send(self) -> None:
        while len(self.pending) >= self.config.max_inflight_pushes:
            self._take(ray.get(self.pending.popleft()))  # back-pressure: wait for the oldest
        grads, versions, steps = zip(*self.batch, strict=True)
        observed = None
        if self.normalizer is not None:  # what this worker saw since it last sent, for the global stats
            count, mean, var = self.normalizer.take_recent()
            observed = (count, mean.numpy(), var.numpy())
        start = time.monotonic()
        self.pending.append(self.server.push.remote(self.rank, versions, steps, observed, *grads))
        sent = time.monotonic()
        self._next_send = sent + PUSH_SPACING * (sent - start)
        self.batch = []

    def _take(self, reply: Reply) -> None:
        self.staleness.extend(reply.staleness)
        self.latest = reply  # the server answers our pushes in order: versions only move forward
        if reply.params is not None:  # a version not announced to us before
            self.params = reply.params
            self.statistics = reply.statistics


class WorkerActor:
    """One A3C worker as a Ray actor (made one by the driver): envs, a network, the actor-learner
    loop and a RayBackend."""

    def __init__(self, rank: int, config: Config, spec: NetworkSpec, server_name: str,
                 start_time: float):
        torch.set_num_threads(1)
        seed = config.seed + rank * config.n_envs  # as the local backend's: seed + w * n_envs, + 1, ...
        torch.manual_seed(seed)
        np.random.seed(seed)
        self.rank = rank
        self.config = config
        self.server = ray.get_actor(server_name)
        self.start_time = start_time
        self.env = make_training_envs(config, seed)
        self.collector = RolloutCollector(self.env, config.n_steps, seed=seed)
        self.net = ActorCritic(spec, trust_code=True)  # the spec of the driver's network
        self.backend = RayBackend(rank, config, self.server, self.net.normalizer)
        self._last_report: ray.ObjectRef | None = None

    def run(self) -> int:
        """The worker loop until the server says stop; every push applied and report delivered."""
        try:
            learner = ActorLearner(self.rank, self.config, self.net, self.collector, self.backend,
                                   self.start_time)
            learner.run(self._send_report)
        except Exception:
            with contextlib.suppress(Exception):  # the failure to report is the one above
                self.backend.drain()  # the gradients held came from sound rollouts: apply them
            raise
        self.backend.drain()
        if self._last_report is not None:
            ray.get(self._last_report)  # the server runs our calls in order: all earlier ones too
        self.env.close()
        return self.rank

    def pid(self) -> int:
        return os.getpid()

    def _send_report(self, report: LearnerReport) -> None:
        self._last_report = self.server.report.remote(report)
