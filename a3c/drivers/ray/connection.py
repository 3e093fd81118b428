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
from collections.abc import Iterator

import ray

from a3c.errors import ConfigError

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
    host = address.rsplit(":", 1)[0] if address.count(":") == 1 else address
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def connect(address: str | None, cpus: int) -> str:
    """Join the cluster at `address` ('auto' or HOST:PORT), or if None start a new local Ray instance
    on loopback with `cpus` CPUs; what was done, for the log.

    A process already connected (ray.init called before, as in a Ray Tune trial) keeps its connection.
    """
    if ray.is_initialized():
        return f"ran on the Ray cluster this process was connected to ({describe()})"
    if address is None:
        with loopback_only():
            # address="local": a new instance, whatever RAY_ADDRESS or ray_current_cluster say.
            ray.init(address="local", num_cpus=cpus, include_dashboard=False,
                     logging_level=logging.WARNING, _node_ip_address=LOOPBACK)
        return f"started a new local Ray instance ({describe()})"
    joining = loopback_only() if is_loopback(address) else contextlib.nullcontext()
    try:
        with joining:
            ray.init(address=address, logging_level=logging.WARNING)
    except (ConnectionError, ValueError) as exc:
        raise ConfigError(f"cannot join the Ray cluster at {address!r}: {exc}; start it first "
                          "(ray start --head), or drop --ray-address for a local instance") from None
    return f"joined the Ray cluster at {address} ({describe()})"


def describe() -> str:
    """The connected cluster in a line: its GCS address, nodes and CPUs."""
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    addresses = sorted({n["NodeManagerAddress"] for n in nodes})
    cpus = ray.cluster_resources().get("CPU", 0)
    return (f"GCS {ray.get_runtime_context().gcs_address}, {len(nodes)} node(s) at "
            f"{', '.join(addresses)}, {cpus:g} CPUs")
