"""The local A3C backend: a global network and optimizer in shared memory, one process per worker.

Workers write gradients into the global network and step the shared optimizer without a lock
(Hogwild). Counters live in a shared [workers, 2] tensor where each worker writes only its own row,
so the totals are exact without a lock too.

Nothing the workers share holds a lock a dying worker could take with it: the stop request is a
shared flag, and each worker reports through its own pipe. A worker that raises or is killed is
restarted (same rank, new process, the current global network) up to config.max_restarts times.
A worker exits by itself when the trainer dies, even while stuck in an env step.
"""

from __future__ import annotations

import ctypes
import functools
import os
import queue
import select
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
from a3c.envs import make_training_envs
from a3c.errors import NonFiniteError, WorkerError
from a3c.networks import ActorCritic
from a3c.optim import schedule_lr
from a3c.processes import is_running, worker_context
from a3c.rollout import RolloutCollector
from a3c.signals import sigint_blocked
from a3c.worker import WorkerReport, run_worker

STEPS, UPDATES = 0, 1


class SharedCounters:
    """Per-worker env steps and updates in shared memory; a run's totals are their sums."""

    def __init__(self, workers: int, start_steps: int = 0, start_updates: int = 0):
        self.table = torch.zeros(workers + 1, 2, dtype=torch.int64).share_memory_()
        self.table[-1] = torch.tensor([start_steps, start_updates])  # what earlier runs did

    @functools.cached_property
    def rows(self) -> np.ndarray:
        """A NumPy view of the shared table: indexing it costs a tenth of indexing the tensor."""
        return self.table.numpy()

    def __getstate__(self) -> dict:
        return {"table": self.table}  # the view is rebuilt in each process, over the same memory

    def steps(self) -> int:
        return int(self.rows[:, STEPS].sum())

    def updates(self) -> int:
        return int(self.rows[:, UPDATES].sum())


class HogwildBackend:
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


def worker_seed(config: Config, rank: int, incarnation: int = 0, start_steps: int = 0) -> int:
    """Worker rank's first env seed: seed + rank * n_envs in a fresh run (its envs take that, + 1, ...).

    A restarted worker, or any worker of a resumed run, draws a new one from all four numbers, so
    that it does not replay the episodes its rank played before.
    """
    if incarnation == 0 and start_steps == 0:
        return config.seed + rank * config.n_envs
    sequence = np.random.SeedSequence([config.seed, rank, incarnation, start_steps])
    return int(sequence.generate_state(1)[0]) % 2**31


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


PR_SET_PDEATHSIG = 1


def _let_go_of_the_forkserver() -> None:
    """Close our copy of the trainer's end of the forkserver's lifeline.

    The forkserver exits when every copy of that pipe's writing end is closed; it hands one to each
    child it forks (so that the child could use it too). Held by a worker stuck in C code, it would
    keep the forkserver, and through it that worker, alive after the trainer is gone.
    """
    from multiprocessing import forkserver

    server = forkserver._forkserver  # type: ignore[attr-defined]
    if getattr(server, "_forkserver_alive_fd", None) is not None:
        os.close(server._forkserver_alive_fd)
        server._forkserver_alive_fd = None
        server._forkserver_address = None
        server._forkserver_pid = None


def exit_with_trainer(trainer_pid: int, parent_pid: int) -> None:
    """Make this process exit as soon as the trainer does, whatever its main thread is doing.

    Two guards. The kernel sends us SIGKILL when our parent dies (prctl PR_SET_PDEATHSIG): our
    parent is the trainer, or its forkserver, which exits when the trainer does (once no worker
    holds its lifeline); this works even while the main thread is stuck in C code that holds the
    GIL. And a thread waits on the trainer's own pid (a pidfd, or polling where there is none) and
    ends the process when it exits.
    """
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent_pid:
        os._exit(1)  # the parent died before the kernel was told to tell us
    try:
        pidfd: int | None = os.pidfd_open(trainer_pid)
    except ProcessLookupError:
        os._exit(1)
    except (AttributeError, OSError):
        pidfd = None
    threading.Thread(target=_watch_trainer, args=(trainer_pid, pidfd), name="a3c-trainer-watch",
                     daemon=True).start()


def _watch_trainer(pid: int, pidfd: int | None) -> None:
    if pidfd is not None:
        select.select([pidfd], [], [])  # readable once the process has exited
    else:
        while is_running(pid):
            time.sleep(0.5)
    os._exit(1)  # nobody will read our work



def _worker_main(rank: int, incarnation: int, conn: connection.Connection, config: Config,
                 global_net: ActorCritic, optimizer: torch.optim.Optimizer, counters: SharedCounters,
                 stop_flag: torch.Tensor, start_time: float, trainer_pid: int) -> None:
    parent = os.getppid()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the trainer's to handle
    _let_go_of_the_forkserver()
    exit_with_trainer(trainer_pid, parent)
    outbox = _Outbox(conn)
    torch.set_num_threads(1)
    seed = worker_seed(config, rank, incarnation, int(counters.rows[-1, STEPS]))
    torch.manual_seed(seed)
    np.random.seed(seed)
    code = 0
    try:
        env = make_training_envs(config, seed)
        collector = RolloutCollector(env, config.n_steps, seed=seed)
        net = ActorCritic(global_net.spec)
        net.share_statistics(global_net)  # observation normalisation, if on: one shared copy
        backend = HogwildBackend(rank, config, global_net, optimizer, counters, stop_flag)
        run_worker(rank, config, net, collector, backend, outbox.put, start_time)
        env.close()
    except NonFiniteError as exc:  # the run diverged: a restart would not help
        outbox.put(("fatal", str(exc)))
        code = 3
    except BaseException:
        outbox.put(("error", traceback.format_exc()))
        code = 1
    outbox.close()
    if code:
        raise SystemExit(code)


@dataclass
class _Worker:
    rank: int
    incarnation: int
    process: BaseProcess
    inbox: connection.Connection
    error: str | None = None  # the traceback it sent before it died
    fatal: str | None = None  # why the run cannot go on (NonFiniteError)
    closed: bool = False  # its pipe is at its end: it exited and we read all it sent


class WorkerPool:
    """Owns the worker processes: starts them, relays their reports, restarts the dead, stops them."""

    def __init__(self, config: Config, global_net: ActorCritic, optimizer: torch.optim.Optimizer,
                 counters: SharedCounters, start_time: float):
        self.config = config
        self.ctx = worker_context()
        self.stop_flag = torch.zeros(1, dtype=torch.int64).share_memory_()
        self.workers: list[_Worker] = []
        self.restarts = 0
        self._events: list[tuple[str, str]] = []
        self._args = (config, global_net, optimizer, counters, self.stop_flag, start_time, os.getpid())

    def start(self) -> None:
        for rank in range(self.config.resolved_workers()):
            self.workers.append(self._start_worker(rank, 0))

    def _start_worker(self, rank: int, incarnation: int) -> _Worker:
        inbox, outbox = self.ctx.Pipe(duplex=False)
        p = self.ctx.Process(target=_worker_main, args=(rank, incarnation, outbox, *self._args),
                             name=f"a3c-worker-{rank}", daemon=True)
        with sigint_blocked():
            p.start()
        outbox.close()  # the worker holds the only writing end: when it dies, the pipe ends
        return _Worker(rank, incarnation, p, inbox)

    @property
    def stopping(self) -> bool:
        return bool(self.stop_flag[0])

    def poll(self, timeout: float) -> list[WorkerReport]:
        """Reports that arrived within `timeout`. A worker that died is restarted; one failure more
        than max_restarts allows raises WorkerError (NonFiniteError if a worker diverged)."""
        open_ = [w.inbox for w in self.workers if not w.closed]
        if open_:
            connection.wait(open_, timeout)
        else:
            time.sleep(timeout)
        reports = self._receive()
        self._check_exits()  # after reading: a worker's last words (its traceback) are in hand
        return reports

    def _receive(self, worker: _Worker | None = None) -> list[WorkerReport]:
        """Everything the workers have sent so far, without waiting."""
        out: list[WorkerReport] = []
        for w in [worker] if worker is not None else self.workers:
            while not w.closed and w.inbox.poll():
                try:
                    item = w.inbox.recv()
                except (EOFError, OSError):  # the worker exited (a message cut short by a kill included)
                    w.closed = True
                    w.inbox.close()
                    break
                if isinstance(item, WorkerReport):
                    out.append(item)
                elif item[0] == "error":
                    w.error = item[1]
                elif item[0] == "fatal":
                    w.fatal = item[1]
        return out

    def _check_exits(self) -> None:
        if self.stopping:
            return
        for i, w in enumerate(self.workers):
            code = w.process.exitcode
            if code is None:
                continue
            if w.fatal is not None:
                raise NonFiniteError(w.fatal)
            if code == 0:
                continue  # done: the run reached its steps
            pid, allowed = w.process.pid, self.config.max_restarts
            if w.error is not None:
                what = f"worker {w.rank} failed (pid {pid})"
                detail = "\n" + w.error.rstrip()
            else:
                how = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"
                what, detail = f"worker {w.rank} (pid {pid}) died: {how}", ""
            if self.restarts >= allowed:
                raise WorkerError(f"{what}; no restarts left (max_restarts {allowed}), so the run "
                                  f"stops{detail}")
            self.restarts += 1
            new = self._start_worker(w.rank, w.incarnation + 1)
            self.workers[i] = new
            w.inbox.close()
            last_line = w.error.strip().splitlines()[-1] if w.error else ""
            self._events.append(("worker_restarted", f"{what}{': ' + last_line if last_line else ''}; "
                                 f"restarted as pid {new.process.pid} "
                                 f"(restart {self.restarts} of at most {allowed})"))

    def take_events(self) -> list[tuple[str, str]]:
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

    def all_exited(self) -> bool:
        return all(w.process.exitcode is not None for w in self.workers)

    def stop(self, timeout: float = 5.0) -> list[WorkerReport]:
        """Ask every worker to finish its update, collect last reports, then make sure all are gone."""
        self.stop_flag[0] = 1
        last: list[WorkerReport] = []
        deadline = time.monotonic() + timeout
        while not self.all_exited() and time.monotonic() < deadline:
            open_ = [w.inbox for w in self.workers if not w.closed]
            if open_:
                connection.wait(open_, 0.05)
            last.extend(self._receive())
        for w in self.workers:
            if w.process.exitcode is None:
                w.process.kill()  # stuck past the timeout (an env step that never returns)
            w.process.join(timeout=5)
        last.extend(self._receive())
        for w in self.workers:
            w.inbox.close()
        return last
