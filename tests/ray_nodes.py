"""Ray nodes on this machine for the tests: loopback only, in a temporary directory of their own.

A Ray cluster made with ray.cluster_utils writes its address into Ray's `ray_current_cluster` file,
which a plain ray.init() elsewhere on the machine would then join; in a directory of its own
(RAY_TMPDIR) it leaves the machine's file alone. Ray's socket paths must stay under 108 bytes, so
the directory is a short one under /tmp, not pytest's.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator

LISTEN = "0A"  # a listening socket's state in /proc/net/tcp
# max_seconds of runs a callback ends: one that never would fails, not hangs; it counts Ray's
# start-up too, over 90 s on a machine whose cores other work keeps busy.
SAFETY_SECONDS = 300


@contextlib.contextmanager
def short_tempdir() -> Iterator[str]:
    path = tempfile.mkdtemp(prefix="a3c-ray-", dir="/tmp")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def listening_addresses(pids: list[int]) -> set[str]:
    """The IP addresses on which these processes listen for TCP connections."""
    inodes = set()
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    target = os.readlink(f"/proc/{pid}/fd/{fd}")
                    if target.startswith("socket:["):
                        inodes.add(target[len("socket:["):-1])
    found = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        with open(table) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if fields[3] == LISTEN and fields[9] in inodes:
                    found.add(_ip(fields[1].split(":")[0], width))
    return found


def _ip(hex_address: str, width: int) -> str:
    """/proc/net/tcp's little-endian hex address as text: 0100007F is 127.0.0.1."""
    import ipaddress

    raw = bytes.fromhex(hex_address)
    words = [raw[i:i + 4][::-1] for i in range(0, len(raw), 4)]  # each 32-bit word is little-endian
    address = ipaddress.ip_address(b"".join(words))
    if width == 32 and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def kill_node(node) -> list[int]:
    """SIGKILL a Ray node's raylet and every process under it (its workers, its agents) at once, as
    when its machine goes away; return their pids. `node` is a ray.cluster_utils node."""
    import signal

    from ray._private import ray_constants

    [raylet] = node.all_processes[ray_constants.PROCESS_TYPE_RAYLET]
    pids = _descendants(raylet.process.pid)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    raylet.process.wait(10)
    return pids


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                with open(f"/proc/{entry}/stat") as f:
                    parent = int(f.read().rpartition(")")[2].split()[1])
                children.setdefault(parent, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def after(condition: Callable[[], bool], timeout: float = 120.0) -> None:
    """Wait until condition() holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError
        time.sleep(0.05)
