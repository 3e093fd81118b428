"""Run the real `a3c` command in the background and find every process it started, through /proc.

Each run gets a marker in its environment, which every process it starts inherits (workers, the
forkserver, the resource tracker, env subprocesses): scanning /proc/*/environ for the marker finds
them all, whatever their command line or parent.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from tests.conftest import REPO_ROOT

MARKER = "A3C_TEST_RUN"


class Run:
    """`python -m a3c.cli ARGS` in its own session (process group), output to files."""

    def __init__(self, tmp_path: Path, *args: object):
        self.marker = uuid.uuid4().hex
        self.out, self.err = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        env[MARKER] = self.marker
        with open(self.out, "w") as out, open(self.err, "w") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "a3c.cli", *map(str, args)], stdout=out, stderr=err,
                cwd=REPO_ROOT, env=env, start_new_session=True)

    @property
    def stderr(self) -> str:
        return self.err.read_text()

    @property
    def stdout(self) -> str:
        return self.out.read_text()

    def ctrl_c(self) -> None:
        """What a terminal does on Ctrl-C: SIGINT to every process of the foreground group."""
        os.killpg(self.process.pid, signal.SIGINT)

    def signal(self, sig: int) -> None:
        os.kill(self.process.pid, sig)

    def wait(self, timeout: float) -> int | None:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def processes(self) -> list[int]:
        """Pids of every live process of this run (zombies are dead: they hold no memory or CPU)."""
        return marked_processes(self.marker)

    def workers(self) -> list[int]:
        """The run's worker processes: spawned by the trainer, or forked by its forkserver."""
        out = []
        for pid in self.processes():
            cmdline = _read(f"/proc/{pid}/cmdline")
            forked = _parent(pid) != self.process.pid and b"forkserver" in cmdline
            if b"spawn_main" in cmdline or forked:
                out.append(pid)
        return out

    def stuck(self, pid: int) -> bool:
        """The process sleeps in the kernel (in a sleep call: how the ToyStuck env blocks)."""
        return _read(f"/proc/{pid}/wchan") in (b"hrtimer_nanosleep", b"do_nanosleep")

    def kill_all(self) -> None:
        """Clean up after a failed test: SIGKILL whatever of this run is left."""
        for pid in [self.process.pid, *self.processes()]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.wait(10)


def marked_processes(marker: str) -> list[int]:
    needle = f"{MARKER}={marker}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        environ = _read(f"/proc/{entry}/environ")
        if needle in environ.split(b"\0") and _state(int(entry)) not in ("Z", "X", ""):
            found.append(int(entry))
    return found


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:  # gone meanwhile, or not ours to read
        return b""


def _stat(pid: int) -> list[str]:
    text = _read(f"/proc/{pid}/stat").decode(errors="replace")
    return text.rpartition(")")[2].split() if text else []


def _state(pid: int) -> str:
    fields = _stat(pid)
    return fields[0] if fields else ""


def _parent(pid: int) -> int:
    fields = _stat(pid)
    return int(fields[1]) if len(fields) > 1 else 0


def wait_for(condition: Callable[[], object], timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return bool(condition())
