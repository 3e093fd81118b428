"""Ctrl-C and SIGTERM as a request to stop: the first stops the run cleanly and saves, the second exits now.

A KeyboardInterrupt raised wherever the trainer happens to be can tear what it was doing (a report
half read from a worker's pipe, a stop half done, a final evaluation whose exception escapes before
the checkpoint is written). Instead, the first signal only sets a flag that the training loop reads
between steps; the one thing it interrupts at once is an evaluation, which changes nothing. A second
signal means "now": the workers are killed and KeyboardInterrupt (SIGINT) or SystemExit(143)
(SIGTERM) is raised where the trainer is, without saving; the command exits with 130 or 143, and a
notebook's kernel survives it.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from typing import Any, TypeVar

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_T = TypeVar("_T")


class _Abort(BaseException):
    """Raised by the handler inside call_abortable only; never escapes it."""


class StopSignals:
    """While entered (in the main thread), SIGINT and SIGTERM set `received` instead of killing us."""

    def __init__(self, quiet: bool = False, kill: Callable[[], None] | None = None):
        self.received: int | None = None
        self.quiet = quiet
        self.kill = kill  # ends the run's other processes at once, on a second signal
        self._abortable = False
        self._previous: dict[int, Any] = {}

    @property
    def reason(self) -> str:
        """'interrupted' (SIGINT) or 'terminated' (SIGTERM)."""
        return "interrupted" if self.received == signal.SIGINT else "terminated"

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():  # handlers live in the main thread
            for sig in STOP_SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: object) -> None:
        name = signal.Signals(signum).name
        if self.received is not None:
            os.write(2, f"\na3c: {name} again: stopping now, without saving\n".encode())
            if self.kill is not None:
                self.kill()
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            raise SystemExit(128 + signum)
        self.received = signum
        if not self.quiet:
            os.write(2, f"\na3c: {name}: stopping the workers and saving a checkpoint "
                        f"(send it again to exit at once)\n".encode())
        if self._abortable:
            self._abortable = False
            raise _Abort

    def call_abortable(self, fn: Callable[..., _T], *args: Any) -> _T | None:
        """fn(*args), or None if a stop signal came before or during it (it is interrupted at once).

        Only for work whose interruption leaves nothing half done, such as evaluating a snapshot.
        """
        try:
            try:
                self._abortable = True
                if self.received is None:
                    return fn(*args)
            finally:
                self._abortable = False
        except _Abort:
            pass
        return None
