"""How worker processes start. Kept free of torch so the CLI can start the forkserver first thing."""

from __future__ import annotations

import multiprocessing as mp
import os
from multiprocessing import forkserver
from multiprocessing.context import BaseContext

# torch's optimizers import torch._dynamo (~0.7 s) on their first step: do it once, in the server.
PRELOAD = ["a3c.hogwild", "torch._dynamo"]


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
