"""Where a Ray run runs: a new local instance on loopback, or the cluster named by --ray-address.

A local instance is always a new one. Ray's own default (``ray.init()`` without an address) joins
whatever cluster the environment or Ray's ``ray_current_cluster`` file names, a cluster that may
have died long ago; only ``--ray-address`` joins one here.

Loopback stays loopback. Ray turns 127.0.0.1 into the machine's outward address so that other
machines can reach a node, and its servers then listen on every interface: a cluster of one
machine, which has no need of the network, would be reachable from it. While Ray starts or joins a
node on loopback, ``loopback_only`` has it take 127.0.0.1 as the node's address, which its servers
then bind to.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import signal
import threading
from collections.abc import Iterator

import ray

from a3c.errors import ConfigError, TrainingError

LOOPBACK = "127.0.0.1"


@contextlib.contextmanager
def loopback_only() -> Iterator[None]:
    """While inside, Ray takes this machine's address to be 127.0.0.1 (as it does where it supports
    no multi-machine cluster), so the nodes it starts or joins on loopback stay there."""
    from ray._private import ray_constants  # the one switch Ray reads for this

    saved = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved


def is_loopback(address: str) -> bool:
    """Whether HOST:PORT (or HOST) names this machine's loopback interface."""
    if address.startswith("["):  # [IPv6]:PORT
        host = address[1:].partition("]")[0]
    else:
        host = address.rsplit(":", 1)[0] if address.count(":") == 1 else address
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_started: str | None = None  # what start_local started, until a run's connect() takes it


def connect(address: str | None, cpus: int) -> str:
    """Join the cluster at `address` ('auto' or HOST:PORT), or if None start a new local Ray instance
    on loopback with `cpus` CPUs; what was done, for the log.

    A process already connected (ray.init called before, as in a Ray Tune trial) keeps its connection.
    """
    global _started
    if ray.is_initialized():
        if _started is not None and address is None:  # the instance start_local started for this run
            started, _started = _started, None
            return started
        return f"ran on the Ray cluster this process was connected to ({describe()})"
    if address is None:
        return start_local(cpus)
    joining = loopback_only() if is_loopback(address) else contextlib.nullcontext()
    try:
        with joining, _signals_kept():
            ray.init(address=address, logging_level=logging.WARNING)
    except (ConnectionError, ValueError) as exc:
        raise ConfigError(f"cannot join the Ray cluster at {address!r}: {exc}; start it first "
                          "(ray start --head), or drop --ray-address for a local instance") from None
    return f"joined the Ray cluster at {address} ({describe()})"


def start_local(cpus: int, for_the_next_run: bool = False) -> str:
    """Start a new local Ray instance on loopback with `cpus` CPUs and connect to it; with
    for_the_next_run, the next connect(None, ...) takes it as the one it would have started."""
    global _started
    with loopback_only(), _signals_kept():
        try:
            # address="local": a new instance, whatever RAY_ADDRESS or ray_current_cluster say.
            ray.init(address="local", num_cpus=cpus, include_dashboard=False,
                     logging_level=logging.WARNING, _node_ip_address=LOOPBACK)
        except Exception as exc:  # Ray raises bare Exceptions (a node not up within its 30 s), OSErrors
            with contextlib.suppress(Exception):
                ray.shutdown()  # a node that started but that this process did not connect to
            why = " ".join(str(exc).split()) or type(exc).__name__
            raise TrainingError(f"the local Ray instance did not start: {why} (Ray gives its processes "
                                "30 s to start, which busy cores can exceed; a cluster started first with "
                                "ray start --head --node-ip-address 127.0.0.1 is joined by --ray-address)"
                                ) from None
    started = f"started a new local Ray instance ({describe()})"
    if for_the_next_run:
        _started = started
    return started


@contextlib.contextmanager
def _signals_kept() -> Iterator[None]:
    """ray.init makes SIGTERM exit the process at once; a run's SIGTERM stops it cleanly, with a
    checkpoint (a3c.run.signals), so the handler in place before is put back."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def describe() -> str:
    """The connected cluster in a line: its GCS address, nodes and CPUs."""
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    addresses = sorted({n["NodeManagerAddress"] for n in nodes})
    cpus = ray.cluster_resources().get("CPU", 0)
    return (f"GCS {ray.get_runtime_context().gcs_address}, {len(nodes)} node(s) at "
            f"{', '.join(addresses)}, {cpus:g} CPUs")
