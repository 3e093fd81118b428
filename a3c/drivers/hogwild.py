"""A3C on one machine: a global network and optimizer in shared memory, one process per worker.

Workers write gradients into the global network and step the shared optimizer without a lock
(Hogwild). Counters live in a shared [workers + 1, 2] tensor where each worker writes only its own
row, so the totals are exact without a lock too.

Nothing the workers share holds a lock a dying worker could take with it: the stop request is a
shared flag, and each worker reports through its own pipe. A worker that raises or is killed is
restarted (same rank, new process, the current global network) up to config.max_restarts times.
A worker exits by itself when the trainer dies, even while stuck in an env step.
"""

from __future__ import annotations

import functools
import os
import queue
import signal
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from multiprocessing import connection
from multiprocessing.process import BaseProcess

import numpy as np
import torch

from a3c.config import Config
from a3c.core.messages import LearnerReport
from a3c.core.networks import ActorCritic
from a3c.core.optim import schedule_lr
from a3c.core.rollout import RolloutCollector
from a3c.drivers.actor_learner import ActorLearner
from a3c.drivers.base import Backend, Driver, Event, OneComputeThread, learner_seed
from a3c.drivers.processes import (
    exit_with_trainer,
    keep_freed_memory,
    let_go_of_the_forkserver,
    sigint_blocked,
    worker_context,
)
from a3c.envs.make import make_training_envs
from a3c.errors import NonFiniteError, WorkerError

STEPS, UPDATES = 0, 1
DRAIN_TIMEOUT = 2.0  # seconds to read what an exited worker left in its pipe


class SharedCounters:
    """Per-worker env steps and updates in shared memory; a run's totals are their sums."""

    def __init__(self, workers: int, start_steps: int = 0, start_updates: int = 0):
        self.table = torch.zeros(workers + 1, 2, dtype=torch.int64).share_memory_()
        self.table[-1] = torch.tensor([start_steps, start_updates])  # what earlier runs did

    @functools.cached_property
    def rows(self) -> np.ndarray:
        """A NumPy view of the shared table: indexing it is cheaper than indexing the tensor."""
        return self.table.numpy()

    def __getstate__(self) -> dict:
        return {"table": self.table}  # the view is rebuilt in each process, over the same memory

    @property
    def start_steps(self) -> int:
        """Env steps of earlier runs: where this run's counting began."""
        return int(self.rows[-1, STEPS])

    def steps(self) -> int:
        return int(self.rows[:, STEPS].sum())

    def updates(self) -> int:
        return int(self.rows[:, UPDATES].sum())


class HogwildBackend(Backend):
    """pull = copy from shared memory; push = hand our gradients to the shared optimizer and step it."""

    def __init__(self, rank: int, config: Config, global_net: ActorCritic,
                 optimizer: torch.optim.Optimizer, counters: SharedCounters, stop_flag: torch.Tensor):
        self.rank = rank
        self.config = config
        self.global_params = global_net.params
        self.optimizer = optimizer
        self.counters = counters
        self.stop_flag = stop_flag.numpy()  # shared: set by the trainer, read here without a lock
        self._linked = False

    def pull(self, net: ActorCritic) -> int:
        with torch.no_grad():
            torch._foreach_copy_(net.params, self.global_params)
        return self.counters.updates()

    def push(self, net: ActorCritic, pulled_version: int, steps: int) -> int:
        if not self._linked:
            # The global parameters' .grad (private to this process) alias our local gradients.
            for g, p in zip(self.global_params, net.parameters(), strict=True):
                g.grad = p.grad
            self._linked = True
        row = self.counters.rows[self.rank]
        schedule_lr(self.optimizer, self.config, self.counters.steps)
        staleness = self.counters.updates() - pulled_version
        self.optimizer.step()
        row[STEPS] += steps
        row[UPDATES] += 1
        return staleness

    def skip(self, steps: int) -> None:
        self.counters.rows[self.rank][STEPS] += steps  # taken, but their update was not applied

    def global_steps(self) -> int:
        return self.counters.steps()

    def should_stop(self) -> bool:
        return bool(self.stop_flag[0]) or self.counters.steps() >= self.config.total_steps


class _Outbox:
    """A worker's reports to the trainer through its own pipe, sent by a thread: a trainer busy
    evaluating never stalls learning, and a worker that dies holds no lock another one needs."""

    def __init__(self, conn: connection.Connection):
        self.conn = conn
        self.items: queue.SimpleQueue = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._send, name="a3c-outbox", daemon=True)
        self.thread.start()

    def put(self, item: object) -> None:
        self.items.put(item)

    def _send(self) -> None:
        while (item := self.items.get()) is not None:
            try:
                self.conn.send(item)
            except OSError:  # the trainer is gone
                return

    def close(self) -> None:
        """Send what is queued, then close the pipe."""
        self.items.put(None)
        self.thread.join()
        self.conn.close()


def _worker_process_main(rank: int, incarnation: int, conn: connection.Connection, config: Config,
                         global_net: ActorCritic, optimizer: torch.optim.Optimizer,
                         counters: SharedCounters, stop_flag: torch.Tensor, start_time: float,
                         trainer_pid: int) -> None:
    """The body of a worker process: one ActorLearner on the shared network, reporting by pipe."""
    parent = os.getppid()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the trainer's to handle
    let_go_of_the_forkserver()
    exit_with_trainer(trainer_pid, parent)
    conn.send(("started",))  # now the trainer can tell a worker that failed from one that never ran
    outbox = _Outbox(conn)
    keep_freed_memory()
    OneComputeThread()
    seed = learner_seed(config, rank, incarnation, counters.start_steps)
    torch.manual_seed(seed)
    np.random.seed(seed)
    code = 0
    learner: ActorLearner | None = None
    try:
        env = make_training_envs(config, seed)
        collector = RolloutCollector(env, config.n_steps, seed=seed, sde_sample_freq=config.sde_sample_freq)
        net = global_net.replica()
        net.share_statistics(global_net)  # obs_norm and reward_norm statistics, if on: one shared copy
        backend = HogwildBackend(rank, config, global_net, optimizer, counters, stop_flag)
        learner = ActorLearner(rank, config, net, collector, backend, start_time)
        learner.run(outbox.put)
        env.close()
    except NonFiniteError as exc:  # the run diverged: a restart would not help
        _send_last_report(outbox, learner)
        outbox.put(("fatal", str(exc)))
        code = 3
    except BaseException:
        _send_last_report(outbox, learner)
        outbox.put(("error", traceback.format_exc()))
        code = 1
    outbox.close()
    if code:
        raise SystemExit(code)


def _send_last_report(outbox: _Outbox, learner: ActorLearner | None) -> None:
    """A failing worker's episodes and updates since its last report: they happened, so they are
    logged (the steps are in the shared counters already)."""
    if learner is None:
        return
    try:
        outbox.put(learner.take_report())
    except Exception:  # the failure itself is the news; a report that cannot be made is not
        pass


@dataclass
class WorkerProcess:
    """The trainer's handle on one worker process: the process, and the pipe it reports through."""

    rank: int
    incarnation: int  # 0 for the first process of this rank, +1 for each restart
    process: BaseProcess
    inbox: connection.Connection
    error: str | None = None  # the traceback it sent before it died
    fatal: str | None = None  # why the run cannot go on (NonFiniteError)
    closed: bool = False  # its pipe is at its end: it exited and we read all it sent
    heard: bool = False  # it said it started: its own code ran

    def receive(self, reports: list[LearnerReport]) -> None:
        """Read what the worker has sent so far, without waiting; reports go to `reports`."""
        while not self.closed and self.inbox.poll():
            try:
                item = self.inbox.recv()
            except (EOFError, OSError):  # the worker exited (a message cut short by a kill included)
                self.close()
                return
            self.heard = True
            if isinstance(item, LearnerReport):
                reports.append(item)
            elif item[0] == "error":
                self.error = item[1]
            elif item[0] == "fatal":
                self.fatal = item[1]

    def drain(self, reports: list[LearnerReport], timeout: float = DRAIN_TIMEOUT) -> None:
        """Read an exited worker's pipe to its end (its last reports and its traceback), then close it."""
        deadline = time.monotonic() + timeout
        while not self.closed and time.monotonic() < deadline:
            connection.wait([self.inbox], max(0.0, deadline - time.monotonic()))
            self.receive(reports)
        if not self.closed:
            self.close()

    def close(self) -> None:
        self.closed = True
        self.inbox.close()


# Why a worker most often exits before its own code runs: each worker process imports the main
# script again (multiprocessing's forkserver and spawn start methods), and a script that trains at
# its top level starts the training over in every worker, which multiprocessing refuses.
_UNGUARDED_SCRIPT = (
    "\nIf you train from a script, put the training under `if __name__ == \"__main__\":`: every "
    "worker process imports the main script again, and one that trains at its top level starts the "
    "training again inside each worker (multiprocessing then stops the worker; its traceback above "
    "says 'An attempt has been made to start a new process before the current process has finished "
    "its bootstrapping phase').")


class HogwildDriver(Driver):
    """A3C's local driver: owns the worker processes; starts them, relays their reports, restarts the
    dead, stops them. The network, optimizer and counters they share outlive it."""

    def __init__(self, net: ActorCritic, optimizer: torch.optim.Optimizer, start_steps: int = 0,
                 start_updates: int = 0):
        self.net = net
        self.optimizer = optimizer
        self.start_steps, self.start_updates = start_steps, start_updates
        self.counters: SharedCounters | None = None
        self.ctx = worker_context()
        self.stop_flag = torch.zeros(1, dtype=torch.int64).share_memory_()
        self.workers: list[WorkerProcess] = []
        self._restarts = 0
        self._events: list[Event] = []
        self._unlogged: list[LearnerReport] = []
        self._args: tuple = ()

    def start(self, config: Config, start_time: float) -> None:
        self.config = config
        self.counters = SharedCounters(config.resolved_workers(), self.start_steps, self.start_updates)
        self._args = (config, self.net, self.optimizer, self.counters, self.stop_flag, start_time,
                      os.getpid())
        for rank in range(config.resolved_workers()):
            self.workers.append(self._start_worker(rank, 0))

    def _start_worker(self, rank: int, incarnation: int) -> WorkerProcess:
        inbox, outbox = self.ctx.Pipe(duplex=False)
        p = self.ctx.Process(target=_worker_process_main, args=(rank, incarnation, outbox, *self._args),
                             name=f"a3c-worker-{rank}", daemon=True)
        with sigint_blocked():
            p.start()
        outbox.close()  # the worker holds the only writing end: when it dies, the pipe ends
        return WorkerProcess(rank, incarnation, p, inbox)

    @property
    def stopping(self) -> bool:
        return bool(self.stop_flag[0])

    @property
    def restarts(self) -> int:
        return self._restarts

    def steps(self) -> int:
        return self.counters.steps() if self.counters is not None else self.start_steps

    def updates(self) -> int:
        return self.counters.updates() if self.counters is not None else self.start_updates

    def advance(self, timeout: float = 0.1) -> list[LearnerReport]:
        """Reports that arrived within `timeout`. A worker that died is restarted; one failure more
        than max_restarts allows raises WorkerError (NonFiniteError if a worker diverged)."""
        open_ = [w.inbox for w in self.workers if not w.closed]
        if open_:
            connection.wait(open_, timeout)
        else:
            time.sleep(timeout)
        reports = self._unlogged  # where a failure leaves what was read: stop() returns it
        for w in self.workers:
            w.receive(reports)
        self._check_exits(reports)
        self._unlogged = []
        return reports

    def _check_exits(self, reports: list[LearnerReport]) -> None:
        if self.stopping:
            return
        for i, w in enumerate(self.workers):
            code = w.process.exitcode
            if code is None:
                continue
            w.drain(reports)  # its last words, its traceback among them, before it is judged
            if w.fatal is not None:
                raise NonFiniteError(w.fatal)
            if code == 0:
                continue  # done: the run reached its steps
            pid, allowed = w.process.pid, self.config.max_restarts
            if w.error is not None:
                what = f"worker {w.rank} failed (pid {pid})"
                detail = "\n" + w.error.rstrip()
            elif code > 0 and not w.heard:
                what = f"worker {w.rank} (pid {pid}) exited before it began (exit status {code})"
                detail = _UNGUARDED_SCRIPT if getattr(sys.modules["__main__"], "__file__", None) else ""
            else:
                how = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"
                what, detail = f"worker {w.rank} (pid {pid}) died: {how}", ""
            if self._restarts >= allowed:
                raise WorkerError(f"{what}; no restarts left (max_restarts {allowed}), so the run "
                                  f"stops{detail}")
            self._restarts += 1
            new = self._start_worker(w.rank, w.incarnation + 1)
            self.workers[i] = new
            last_line = w.error.strip().splitlines()[-1] if w.error else ""
            self._events.append(("worker_restarted", f"{what}{': ' + last_line if last_line else ''}; "
                                 f"restarted as pid {new.process.pid} "
                                 f"(restart {self._restarts} of at most {allowed})"))

    def take_events(self) -> list[Event]:
        events, self._events = self._events, []
        return events

    def kill(self) -> None:
        """SIGKILL every worker now (a second Ctrl-C): no report read, nothing waited for."""
        for w in self.workers:
            if w.process.exitcode is None:
                try:
                    os.kill(w.process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def _all_exited(self) -> bool:
        return all(w.process.exitcode is not None for w in self.workers)

    def stop(self, timeout: float = 5.0) -> list[LearnerReport]:
        """Ask every worker to finish its update, collect last reports, then make sure all are gone."""
        self.stop_flag[0] = 1
        last, self._unlogged = self._unlogged, []
        deadline = time.monotonic() + timeout
        while not self._all_exited() and time.monotonic() < deadline:
            open_ = [w.inbox for w in self.workers if not w.closed]
            if open_:
                connection.wait(open_, 0.05)
            for w in self.workers:
                w.receive(last)
        for w in self.workers:
            if w.process.exitcode is None:
                w.process.kill()  # stuck past the timeout (an env step that never returns)
            w.process.join(timeout=5)
        for w in self.workers:
            w.drain(last, timeout=0.5)
        return last
