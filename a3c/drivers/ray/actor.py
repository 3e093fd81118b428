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
from collections.abc import Callable

import numpy as np
import ray
import torch

from a3c.config import Config
from a3c.core.messages import LearnerReport
from a3c.core.networks import ActorCritic, NetworkSpec
from a3c.core.normalization import ObsNormalizer, moments_from_arrays
from a3c.core.rollout import RolloutCollector
from a3c.drivers.actor_learner import ActorLearner
from a3c.drivers.base import Backend, OneComputeThread, learner_seed
from a3c.drivers.processes import keep_freed_memory
from a3c.drivers.ray.server import Joined, Reply, flat_gradients, load_flat_parameters
from a3c.envs.make import make_training_envs
from a3c.errors import WorkerError

# Sending costs a worker at most 1/(1 + PUSH_SPACING) of its time, and the server about as much
# again per call; the value and its effect are measured in benchmarks/results/ray_scaling.md.
PUSH_SPACING = 20.0


SERVER_LOST = (ray.exceptions.RayActorError, ray.exceptions.ObjectLostError)  # its calls, its objects
RECONNECT_TIMEOUT = 120.0  # seconds a worker waits for the driver to put a new server in a lost one's place


def server_name(base: str, generation: int) -> str:
    """The Ray name of a run's parameter server: one per generation (a dead actor keeps its name)."""
    return f"{base}-{generation}"


def newest_server(base: str, after: int = -1,
                  timeout: float = RECONNECT_TIMEOUT) -> tuple[ray.actor.ActorHandle, int]:
    """The run's newest parameter server of a generation above `after`, and its generation; waits for
    the driver to start one, and raises WorkerError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        generation, handle = -1, None
        with contextlib.suppress(ValueError):  # ray.get_actor: no actor of that name (yet)
            while True:
                handle = ray.get_actor(server_name(base, generation + 1))
                generation += 1
        if handle is not None and generation > after:
            return handle, generation
        if time.monotonic() > deadline:
            raise WorkerError(f"no parameter server of this run ({base}) could be reached for "
                              f"{timeout:.0f} s, so the worker gives up")
        time.sleep(0.1)


class RayBackend(Backend):
    """pull: load the newest parameters (and obs_norm, reward_norm statistics) the server's replies brought;
    push: hold the flat gradient, and send what is held once a call is worth its cost.

    When the server is lost, the backend waits for the driver's new one, restored from its newest
    snapshot, and goes on with it: the gradients in flight or held are dropped, and the new server is
    told how many this worker had sent, so that it can count what the loss cost.
    """

    def __init__(self, rank: int, config: Config, base: str, server: ray.actor.ActorHandle,
                 joined: Joined, normalizers: tuple[ObsNormalizer, ...] = ()):
        self.rank = rank
        self.config = config
        self.base = base  # the name of the run's servers, less the generation
        self.server = server
        self.generation = joined.generation
        self.version = -1  # of the parameters in our network
        self.pending: deque[ray.ObjectRef] = deque()  # unanswered pushes, oldest first
        self.batch: list[tuple[np.ndarray, int, int]] = []  # gradients not sent yet: (g, version, steps)
        self.staleness: deque[int] = deque()  # answered pushes' staleness, not yet handed out
        self._next_send = 0.0  # monotonic time from which the gradients held may be sent
        self.sent = list(joined.counts)  # (steps, updates) of this rank sent to the server, in all
        self.latest: Reply = joined.reply
        self.params = self.latest.params  # reference to the newest published parameters we know of
        self.statistics = self.latest.statistics  # obs_norm's and reward_norm's, as of those parameters
        self.normalizers = normalizers  # the worker network's: what it saw goes with the gradients
        for normalizer in normalizers:
            normalizer.take_recent()  # from now on

    def pull(self, net: ActorCritic) -> int:
        while True:
            try:
                return self._pull(net)
            except SERVER_LOST:
                self._reconnect()

    def _pull(self, net: ActorCritic) -> int:
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
            for normalizer, (count, mean, var) in zip(net.normalizers(), self.statistics or (), strict=False):
                normalizer.assign(moments_from_arrays(count, mean, var))
            self.version = self.latest.version
        return self.version

    def push(self, net: ActorCritic, pulled_version: int, steps: int) -> int:
        """Send the gradient; return the staleness of an earlier push (known once it is applied).

        Each push's staleness is handed out once, in order, by a later call, so a report's sums count
        every applied update but the last few in flight, and the first calls return 0.
        """
        self.batch.append((flat_gradients(net), pulled_version, steps))
        if len(self.batch) >= self.config.gradients_per_push or time.monotonic() >= self._next_send:
            try:
                self._send()
            except SERVER_LOST:
                self._reconnect()
        return self.staleness.popleft() if self.staleness else 0

    def skip(self, steps: int) -> None:
        """Count the env steps of an update not pushed (the loop skips non-finite gradients)."""
        self.sent[0] += steps
        self.server.skip.remote(self.rank, steps)

    def global_steps(self) -> int:
        return self.latest.steps

    def should_stop(self) -> bool:
        return self.latest.stop or self.latest.steps >= self.config.total_steps

    def drain(self) -> None:
        """Send what is left and wait until every gradient has been applied."""
        while True:
            try:
                if self.batch:
                    self._send()
                while self.pending:
                    self._take(ray.get(self.pending[0]))
                    self.pending.popleft()
                return
            except SERVER_LOST:
                self._reconnect()

    def _send(self) -> None:
        while len(self.pending) >= self.config.max_inflight_pushes:
            self._take(ray.get(self.pending[0]))  # back-pressure: wait for the oldest
            self.pending.popleft()
        grads, versions, steps = zip(*self.batch, strict=True)
        observed = None
        if self.normalizers:  # what this worker saw since it last sent, for the global stats
            observed = tuple((count, mean.numpy(), var.numpy())
                             for count, mean, var in (n.take_recent() for n in self.normalizers))
        start = time.monotonic()
        self.pending.append(self.server.push.remote(self.rank, versions, steps, observed, *grads))
        sent = time.monotonic()
        self._next_send = sent + PUSH_SPACING * (sent - start)
        self.batch = []
        self.sent[0] += sum(steps)
        self.sent[1] += len(grads)

    def _take(self, reply: Reply) -> None:
        self.staleness.extend(reply.staleness)
        self.latest = reply  # the server answers our pushes in order: versions only move forward
        if reply.params is not None:  # a version not announced to us before
            self.params = reply.params
            self.statistics = reply.statistics

    def _reconnect(self) -> None:
        """The server is lost: drop what was in flight or held, and go on with its successor."""
        for _, _, steps in self.batch:  # computed after the snapshot: lost with the rest, and counted
            self.sent[0] += steps
            self.sent[1] += 1
        self.batch, self.staleness = [], deque()
        self.pending.clear()
        sent = tuple(self.sent)
        self.server, joined = call_newest_server(self.base, self.generation,
                                                 lambda server: server.rejoin.remote(self.rank, sent))
        self.generation = joined.generation
        self.sent = list(joined.counts)
        self.version = -1  # load the restored parameters at the next pull
        self.latest, self.params, self.statistics = joined.reply, joined.reply.params, joined.reply.statistics
        for normalizer in self.normalizers:
            normalizer.take_recent()  # what it saw since its last push went with the old server


class WorkerActor:
    """One A3C worker as a Ray actor (made one by the driver): envs, a network, the actor-learner
    loop and a RayBackend."""

    def __init__(self, rank: int, config: Config, spec: NetworkSpec, server_base: str,
                 start_time: float):
        OneComputeThread()
        keep_freed_memory()
        self.rank = rank
        self.config = config
        self.start_time = start_time
        server, joined = join(server_base, rank)
        # The seeding rule of every backend: a restarted worker, or one of a resumed run, plays new episodes.
        seed = learner_seed(config, rank, joined.incarnation, joined.start_steps)
        torch.manual_seed(seed)
        np.random.seed(seed)
        self.env = make_training_envs(config, seed)
        self.collector = RolloutCollector(self.env, config.n_steps, seed=seed,
                                          sde_sample_freq=config.sde_sample_freq)
        self.net = ActorCritic(spec, trust_code=True)  # the spec of the driver's network
        self.backend = RayBackend(rank, config, server_base, server, joined, self.net.normalizers())
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
            with contextlib.suppress(*SERVER_LOST):  # a report to a server lost since: lost with it
                ray.get(self._last_report)  # the server runs our calls in order: all earlier ones too
        self.env.close()
        return self.rank

    def pid(self) -> int:
        return os.getpid()

    def _send_report(self, report: LearnerReport) -> None:
        self._last_report = self.backend.server.report.remote(report)


def join(base: str, rank: int) -> tuple[ray.actor.ActorHandle, Joined]:
    """Find the run's newest parameter server and join it as a worker of `rank` on this node."""
    node = ray.get_runtime_context().get_node_id()
    return call_newest_server(base, -1, lambda server: server.join.remote(rank, node))


def call_newest_server(base: str, after: int, call: Callable[[ray.actor.ActorHandle], ray.ObjectRef]
                       ) -> tuple[ray.actor.ActorHandle, Joined]:
    """call(server) on the run's newest server of a generation above `after`, and its answer; a server
    lost before it answers is followed by the one the driver puts in its place."""
    while True:
        server, generation = newest_server(base, after)
        try:
            return server, ray.get(call(server))
        except SERVER_LOST:
            after = generation
