"""The Ray driver: starts the parameter server and the worker actors, relays reports, mirrors the network.

It is a Driver like the local HogwildDriver, so the supervisor runs it unchanged. The global network
lives in the parameter server; after every advance the trainer's network and optimizer hold a copy
of one version of it, with that version's counters, so the supervisor's evaluations and checkpoints
see a consistent state. That copy is also the snapshot from which a lost server is restored.
"""

from __future__ import annotations

import time
import uuid

import ray
import torch

from a3c.config import Config, usable_cores
from a3c.core.messages import LearnerReport
from a3c.core.networks import ActorCritic
from a3c.core.optim import load_optimizer_tensors, optimizer_tensors
from a3c.drivers.base import Driver, Event
from a3c.drivers.ray.actor import WorkerActor, server_name
from a3c.drivers.ray.connection import connect
from a3c.drivers.ray.server import ParameterServer, Snapshot
from a3c.errors import ConfigError, NonFiniteError, WorkerError

SERVER_TIMEOUT = 60.0  # seconds without an answer from the parameter server before giving up
# A new server's first answer waits for its process to start and import torch, and for the
# workers' to do the same beside it: on a machine busy with other work that alone can pass a minute.
SERVER_START_TIMEOUT = 300.0
STOP_TIMEOUT = 10.0  # seconds for the workers to finish their update once asked to stop
# A server lost again this soon after the last was restored points at a cause a restore will not
# cure (a node out of memory, a bug): the run stops, with its checkpoints, instead of looping.
SERVER_LOSS_WINDOW = 60.0
HEAD_NODE = "node:__internal_head__"  # a resource only Ray's head node has


class RayDriver(Driver):
    """A3C on a Ray cluster: one ParameterServer actor and config.workers WorkerActor actors."""

    def __init__(self, net: ActorCritic, optimizer: torch.optim.Optimizer, start_steps: int = 0,
                 start_updates: int = 0):
        self.net = net
        self.optimizer = optimizer
        self.start_steps, self.start_updates = start_steps, start_updates
        self._steps = start_steps
        self._updates = start_updates
        self.config: Config | None = None
        self.server: ray.actor.ActorHandle | None = None
        self.servers: list[ray.actor.ActorHandle] = []  # every generation started, the lost ones too
        self.workers: list[ray.actor.ActorHandle] = []
        self.runs: dict[ray.ObjectRef, int] = {}  # each worker's run() call: rank
        self.worker_counts: dict[int, tuple[int, int]] = {}
        self.worker_nodes: dict[int, str] = {}  # rank: the id of the Ray node its worker runs on
        self._restarts = 0  # worker actors started again: by Ray (a dead one) or by us (a raising one)
        self._events: list[Event] = []
        self._snapshot = Snapshot(start_steps, start_updates, {}, {}, [])  # the newest, without its reports
        self._snapshot_time = time.monotonic()
        self._restored_at: float | None = None  # when the last lost server was replaced
        self._lost_nodes: set[str] = set()
        self._server_answered = False  # has the current server answered once (it has started)

    def start(self, config: Config, start_time: float) -> None:
        # Logical CPUs are scheduling tokens: allow as many workers as asked, as the local backend does.
        self._events.append(("ray", connect(config.ray_address,
                                            max(usable_cores(), config.resolved_workers()))))
        workers = config.resolved_workers()
        cpus = ray.cluster_resources().get("CPU", 0)
        if cpus < workers:
            raise ConfigError(f"the Ray cluster has {cpus:g} CPUs, and each of the {workers} workers "
                              "needs one: lower --workers or add nodes")
        self.config = config
        # Workers find the server by a name unique to this run and to each server of it: what a
        # restarted worker needs to start again is then in its arguments, not in the object store.
        self._base = f"a3c-parameter-server-{uuid.uuid4().hex}"
        self._start_server(None)
        # A worker whose actor dies is started anew by Ray (fresh env, newest parameters) and its
        # run() resumed; config.max_restarts bounds the restarts of all workers together (advance).
        worker_actor = ray.remote(WorkerActor).options(
            num_cpus=1, max_restarts=config.max_restarts, max_task_retries=-1)
        self._new_worker = lambda rank: worker_actor.remote(rank, config, self.net.spec, self._base,
                                                            start_time)
        self.workers = [self._new_worker(rank) for rank in range(workers)]
        self.runs = {w.run.remote(): rank for rank, w in enumerate(self.workers)}

    def _start_server(self, restored: Snapshot | None) -> None:
        """The parameter server of the next generation: from the trainer's network and optimizer,
        which hold the newest snapshot, and that snapshot's counters when it replaces a lost one.

        It reserves no CPU, so that N workers fill N CPUs, and runs on the head node, where `a3c
        train` normally runs too (docs/distributed.md): a cluster does not outlive its head, and the
        driver's snapshots then cross no network.
        """
        assert self.config is not None
        generation = len(self.servers)
        actor = ray.remote(ParameterServer).options(
            num_cpus=0, resources={HEAD_NODE: 0.001}, max_restarts=0,
            name=server_name(self._base, generation))
        self.server = actor.remote(self.config, self.net.spec, self.net.state_dict(),
                                   optimizer_tensors(self.optimizer, self.net), self.start_steps,
                                   self.start_updates, restored=restored, generation=generation)
        self.servers.append(self.server)
        self._server_answered = False

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
        # The server counts the restart and logs it, with this reason, when the new actor joins.
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
            reports = self._sync(restore=False)
        except WorkerError:
            pass  # the server is gone: the network keeps the last version we copied
        finally:
            for actor in [*self.workers, *self.servers]:
                ray.kill(actor)
            self.server, self.servers, self.workers, self.runs = None, [], [], {}
        return reports

    def take_events(self) -> list[Event]:
        """What happened since the last call (where the run runs, a worker restarted, a node or the
        server lost), for the log."""
        events, self._events = self._events, []
        return events

    @property
    def restarts(self) -> int:
        return self._restarts

    def steps(self) -> int:
        return self._steps

    def updates(self) -> int:
        return self._updates

    def _sync(self, restore: bool = True) -> list[LearnerReport]:
        """Copy the server's current version into our network and optimizer; its reports since last time.

        A lost server is replaced by one restored from the previous copy (restore), once per
        SERVER_LOSS_WINDOW; a second loss within it, or a server that hangs, stops the run.
        """
        assert self.server is not None
        timeout = SERVER_TIMEOUT if self._server_answered else SERVER_START_TIMEOUT
        try:
            snapshot: Snapshot = ray.get(self.server.snapshot.remote(), timeout=timeout)
        except ray.exceptions.RayActorError as exc:
            if not restore:
                raise WorkerError(f"the parameter server was lost: {exc}") from None
            self._restore_server(str(exc).strip().splitlines()[0] if str(exc).strip() else "")
            return []
        except ray.exceptions.GetTimeoutError:
            started = "" if self._server_answered else " after it was started"
            raise WorkerError(f"the parameter server did not answer for {timeout:.0f} s{started}, so the "
                              "run cannot go on") from None
        self._server_answered = True
        # torch.tensor copies: the arrays Ray hands over are read-only views of its message buffer.
        with torch.no_grad():
            self.net.load_state_dict({k: torch.tensor(v) for k, v in snapshot.model_state.items()})
        load_optimizer_tensors(self.optimizer, self.net,
                               {k: torch.tensor(v) for k, v in snapshot.optimizer_state.items()})
        self._steps, self._updates = snapshot.steps, snapshot.updates
        self.worker_counts, self.worker_nodes = snapshot.worker_counts, snapshot.worker_nodes
        self._restarts = snapshot.restarts
        self._note_lost_nodes(snapshot.worker_nodes)
        self._events.extend(snapshot.events)
        reports = snapshot.reports
        # What a restore needs: the counters (the network and optimizer now hold the rest).
        snapshot.reports, snapshot.events, snapshot.model_state, snapshot.optimizer_state = [], [], {}, {}
        self._snapshot, self._snapshot_time = snapshot, time.monotonic()
        return reports

    def _restore_server(self, why: str) -> None:
        now = time.monotonic()
        if self._restored_at is not None and now - self._restored_at < SERVER_LOSS_WINDOW:
            raise WorkerError(f"the parameter server was lost again {now - self._restored_at:.0f} s after "
                              f"it was restored (within {SERVER_LOSS_WINDOW:.0f} s), so the run stops; "
                              f"its checkpoints are intact: {why}")
        self._restored_at = now
        snapshot = self._snapshot
        self._start_server(snapshot)
        self._events.append(("server_restored", (
            f"the parameter server was lost ({why}); a new one took its place, restored from the "
            f"driver's snapshot of update {snapshot.updates:,} at step {snapshot.steps:,}, taken "
            f"{now - self._snapshot_time:.2f} s before; the updates applied after it are lost, and "
            "each worker counts its own when it reconnects")))

    def _note_lost_nodes(self, worker_nodes: dict[int, str]) -> None:
        """Log each node that held workers and is gone, once, when its workers turn up elsewhere."""
        before = self._snapshot.worker_nodes
        moved = {rank: node for rank, node in before.items() if worker_nodes.get(rank, node) != node}
        if not moved:
            return
        alive = {n["NodeID"] for n in ray.nodes() if n.get("Alive")}
        for node in sorted(set(moved.values()) - alive - self._lost_nodes):
            self._lost_nodes.add(node)
            ranks = ", ".join(str(rank) for rank, n in sorted(moved.items()) if n == node)
            self._events.append(("node_lost", f"Ray node {node[:8]} is gone; its workers ({ranks}) were "
                                 "started again on the nodes left"))
