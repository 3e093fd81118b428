"""The Ray driver: starts the parameter server and the worker actors, relays reports, mirrors the network.

It is a Driver like the local HogwildDriver, so the supervisor runs it unchanged. The global network
lives in the parameter server; after every advance the trainer's network and optimizer hold a copy
of one version of it, with that version's counters, so the supervisor's evaluations and checkpoints
see a consistent state.
"""

from __future__ import annotations

import logging
import time
import uuid

import ray
import torch

from a3c.config import Config, usable_cores
from a3c.core.messages import LearnerReport
from a3c.core.networks import ActorCritic
from a3c.core.optim import load_optimizer_tensors, optimizer_tensors
from a3c.drivers.base import Driver, Event
from a3c.drivers.ray.actor import WorkerActor
from a3c.drivers.ray.server import ParameterServer, Snapshot
from a3c.errors import ConfigError, NonFiniteError, WorkerError

SERVER_TIMEOUT = 60.0  # seconds without an answer from the parameter server before giving up
STOP_TIMEOUT = 10.0  # seconds for the workers to finish their update once asked to stop


def connect(config: Config) -> bool:
    """Join config.ray_address, or start a local Ray instance; True if this call started Ray.

    A process already connected (ray.init called before) keeps its connection.
    """
    if ray.is_initialized():
        return False
    if config.ray_address is None:
        # Logical CPUs are scheduling tokens: allow as many workers as asked, as the local backend does.
        ray.init(num_cpus=max(usable_cores(), config.resolved_workers()), include_dashboard=False,
                 logging_level=logging.WARNING, _node_ip_address="127.0.0.1")
    else:
        try:
            ray.init(address=config.ray_address, logging_level=logging.WARNING)
        except ConnectionError as exc:
            raise ConfigError(f"cannot join the Ray cluster at {config.ray_address!r}: {exc}") from None
    return True


class RayDriver(Driver):
    """A3C on a Ray cluster: one ParameterServer actor and config.workers WorkerActor actors."""

    def __init__(self, net: ActorCritic, optimizer: torch.optim.Optimizer, start_steps: int = 0,
                 start_updates: int = 0):
        self.net = net
        self.optimizer = optimizer
        self._steps = start_steps
        self._updates = start_updates
        self.config: Config | None = None
        self.server: ray.actor.ActorHandle | None = None
        self.workers: list[ray.actor.ActorHandle] = []
        self.runs: dict[ray.ObjectRef, int] = {}  # each worker's run() call: rank
        self.worker_counts: dict[int, tuple[int, int]] = {}
        self._restarts = 0  # worker actors started again: by Ray (a dead one) or by us (a raising one)
        self._events: list[Event] = []

    def start(self, config: Config, start_time: float) -> None:
        connect(config)
        workers = config.resolved_workers()
        cpus = ray.cluster_resources().get("CPU", 0)
        if cpus < workers:
            raise ConfigError(f"the Ray cluster has {cpus:g} CPUs, and each of the {workers} workers "
                              "needs one: lower --workers or add nodes")
        optimizer_state = optimizer_tensors(self.optimizer, self.net)
        # The server reserves no CPU, so that N workers fill N CPUs; it runs where the driver runs.
        # Workers find the server by a name unique to this run: what a restarted worker needs to
        # start again is then in its arguments, not in the object store.
        server_name = f"a3c-parameter-server-{uuid.uuid4().hex}"
        server_actor = ray.remote(ParameterServer).options(num_cpus=0, max_restarts=0, name=server_name)
        self.server = server_actor.remote(config, self.net.spec, self.net.state_dict(), optimizer_state,
                                          self._steps, self._updates)
        # A worker whose actor dies is started anew by Ray (fresh env, newest parameters) and its
        # run() resumed; config.max_restarts bounds the restarts of all workers together (advance).
        worker_actor = ray.remote(WorkerActor).options(
            num_cpus=1, max_restarts=config.max_restarts, max_task_retries=-1)
        self.config = config
        self._new_worker = lambda rank: worker_actor.remote(rank, config, self.net.spec, server_name,
                                                            start_time)
        self.workers = [self._new_worker(rank) for rank in range(workers)]
        self.runs = {w.run.remote(): rank for rank, w in enumerate(self.workers)}

    def advance(self) -> list[LearnerReport]:
        if self.runs:
            finished, _ = ray.wait(list(self.runs), num_returns=1, timeout=0.1)
        else:
            finished = []
            time.sleep(0.1)
        reports = self._sync()
        if self._restarts > self.config.max_restarts:
            raise WorkerError(f"worker actors were restarted {self._restarts} times, more than max_restarts "
                              f"({self.config.max_restarts}) allows")
        for ref in finished:
            rank = self.runs.pop(ref)
            try:
                ray.get(ref)
            except ray.exceptions.RayActorError as exc:
                raise WorkerError(f"worker {rank} died and max_restarts ({self.config.max_restarts}) "
                                  f"allows no more restarts: {exc}") from None
            except ray.exceptions.RayTaskError as exc:
                if isinstance(exc.cause, NonFiniteError):  # the run diverged: a restart would not help
                    raise NonFiniteError(str(exc.cause)) from None
                self._replace_failed(rank, str(exc).rstrip())
        return reports

    def _replace_failed(self, rank: int, traceback: str) -> None:
        """A worker whose loop raised (its actor lives on, so Ray restarts nothing): a new actor takes
        its rank, as the local backend starts a new process, within the same max_restarts."""
        allowed = self.config.max_restarts
        if self._restarts >= allowed:
            raise WorkerError(f"worker {rank} failed; no restarts left (max_restarts {allowed}), so the "
                              f"run stops:\n{traceback}")
        ray.kill(self.workers[rank], no_restart=True)
        last_line = traceback.splitlines()[-1].strip() if traceback else ""
        if self._steps >= self.config.total_steps:  # it failed after the last step: the run is over
            self._events.append(("worker_failed", f"worker {rank} failed after the run's last step, "
                                 f"so it was not restarted: {last_line}"))
            return
        # The server counts the restart and logs it, with this reason, when the new actor first pulls.
        self.server.expect_restart.remote(rank, f"worker {rank} failed: {last_line}")
        self.workers[rank] = self._new_worker(rank)
        self.runs[self.workers[rank].run.remote()] = rank

    def stop(self) -> list[LearnerReport]:
        """Ask the workers to finish, take the last reports and state, then end every actor."""
        if self.server is None:
            return []
        reports: list[LearnerReport] = []
        try:
            self.server.request_stop.remote()
            if self.runs:
                ray.wait(list(self.runs), num_returns=len(self.runs), timeout=STOP_TIMEOUT)
            reports = self._sync()
        except WorkerError:
            pass  # the server is gone: the network keeps the last version we copied
        finally:
            for actor in [*self.workers, self.server]:
                ray.kill(actor)
            self.server, self.workers, self.runs = None, [], {}
        return reports

    def take_events(self) -> list[Event]:
        """What happened to the workers since the last call (a worker actor restarted), for the log."""
        events, self._events = self._events, []
        return events

    @property
    def restarts(self) -> int:
        return self._restarts

    def steps(self) -> int:
        return self._steps

    def updates(self) -> int:
        return self._updates

    def _sync(self) -> list[LearnerReport]:
        """Copy the server's current version into our network and optimizer; its reports since last time."""
        assert self.server is not None
        try:
            snapshot: Snapshot = ray.get(self.server.snapshot.remote(), timeout=SERVER_TIMEOUT)
        except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError) as exc:
            raise WorkerError(f"the parameter server was lost, so the run cannot go on: {exc}") from None
        # torch.tensor copies: the arrays Ray hands over are read-only views of its message buffer.
        with torch.no_grad():
            self.net.load_state_dict({k: torch.tensor(v) for k, v in snapshot.model_state.items()})
        load_optimizer_tensors(self.optimizer, self.net,
                               {k: torch.tensor(v) for k, v in snapshot.optimizer_state.items()})
        self._steps, self._updates = snapshot.steps, snapshot.updates
        self.worker_counts = snapshot.worker_counts
        self._restarts = snapshot.restarts
        self._events.extend(snapshot.events)
        return snapshot.reports
