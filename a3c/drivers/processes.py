"""How worker processes start and end. Kept free of torch so the CLI can start the forkserver first thing."""

from __future__ import annotations

import ctypes
import multiprocessing as mp
import os
import select
import signal
import sys
import threading
import time
from multiprocessing import forkserver
from multiprocessing.context import BaseContext

PRELOAD = ["a3c.drivers.hogwild"]  # not torch._dynamo: a3c.core.optim's optimizers never import it


def worker_context() -> BaseContext:
    """Workers fork from a forkserver that has already imported torch and this package.

    A spawned worker spends a second or more importing torch before its first step. The forkserver
    is a clean single-threaded process (not the trainer, whose threads would not survive a fork),
    so its children start in milliseconds with everything imported. Spawn where there is no fork.
    torch.multiprocessing's shared-memory tensors pass to either kind of child.
    """
    if "forkserver" not in mp.get_all_start_methods():
        return mp.get_context("spawn")
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)
    return ctx


def prestart_workers() -> None:
    """Start the forkserver now, so its imports overlap the trainer's own start-up."""
    if worker_context().get_start_method() == "forkserver":
        forkserver.ensure_running()


def is_running(pid: int) -> bool:
    """Whether a process with this pid exists (it may be another user's)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class sigint_blocked:
    """Block SIGINT in this thread while child processes start, so that they begin with it blocked.

    A Ctrl-C at the terminal goes to every process in the foreground group; workers and env
    subprocesses must leave it to the trainer, also in the moments before they could ignore it
    themselves. The trainer loses nothing: its other threads take the signal meanwhile, and it is
    pending for this thread at worst.
    """

    def __enter__(self) -> None:
        self._old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})

    def __exit__(self, *exc: object) -> None:
        signal.pthread_sigmask(signal.SIG_SETMASK, self._old)


PR_SET_PDEATHSIG = 1


def let_go_of_the_forkserver() -> None:
    """Close our copy of the trainer's end of the forkserver's lifeline.

    The forkserver exits when every copy of that pipe's writing end is closed; it hands one to each
    child it forks (so that the child could use it too). Held by a worker stuck in C code, it would
    keep the forkserver, and through it that worker, alive after the trainer is gone.
    """
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


# glibc's mallopt parameters (malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
# The largest M_MMAP_THRESHOLD glibc takes on 64-bit systems (half its 64 MiB heap size).
MMAP_THRESHOLD_MAX = 32 << 20


def keep_freed_memory() -> None:
    """Have glibc's malloc keep the memory a learning step frees, for the next step to reuse.

    A learning step allocates and frees tensors of megabytes: a batch of images as floats, the
    convolutions' activations and their gradients. By default glibc gives each one fresh pages
    from the OS (mmap, or a heap it trims back after each free), and every page is faulted in
    again when the tensor is first written, which on Atari's learning pass cost more CPU than the
    arithmetic around it (benchmarks/results/atari_loop_ab.md). Allocations up to 32 MiB now come
    from the heap, which is never trimmed: the process keeps its peak heap, tens of megabytes.
    A no-op where the C library is not glibc.
    """
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return
    mallopt(M_TRIM_THRESHOLD, 1 << 30)
    mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX)


def _watch_trainer(pid: int, pidfd: int | None) -> None:
    if pidfd is not None:
        select.select([pidfd], [], [])  # readable once the process has exited
    else:
        while is_running(pid):
            time.sleep(0.5)
    os._exit(1)  # nobody will read our work
