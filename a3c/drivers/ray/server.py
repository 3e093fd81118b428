"""The parameter server: the global network and its optimizer, applying gradients as they arrive.

It is a plain class, made a Ray actor by the driver (``ray.remote(ParameterServer)``), so its
bookkeeping can be tested without a cluster. Workers push one flat float32 gradient per update;
every reply carries the newest *published* parameters: a reference into Ray's object store, put
once per version and shared by all workers (and all of a node's workers read one copy).
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from a3c.config import Config
from a3c.core.gradients import gradient_buffer
from a3c.core.messages import LearnerReport
from a3c.core.networks import ActorCritic, NetworkSpec
from a3c.core.normalization import moments_from_arrays
from a3c.core.optim import make_optimizer, schedule_lr
from a3c.drivers.processes import keep_freed_memory
from a3c.errors import CheckpointError

# A put into the object store costs the server a fixed time whatever the size, so publishing every
# version would cap a small network's update rate. The server puts a new version only once the
# time since the last put is PUBLISH_SPACING times that put's duration (at most 1/11 of its time
# goes into puts), and at least every MAX_PUBLISH_GAP seconds, so that one slow put does not leave
# the workers on old parameters. The value is measured in benchmarks/results/ray_scaling.md.
PUBLISH_SPACING = 10.0
MAX_PUBLISH_GAP = 0.01
# Below this size the parameters travel in the reply itself, copied for each worker, and never
# through the object store: Ray sends returns this small inline anyway (its
# max_direct_call_object_size, 100 KiB), and a copy is far cheaper than a put on the server and a
# round trip to the raylet for each worker's get (benchmarks/results/ray_scaling.md).
INLINE_PARAMETER_BYTES = 100 * 1024


def flat_parameters(net: ActorCritic) -> np.ndarray:
    """All of net's parameters as one float32 vector, in net.parameters() order."""
    with torch.no_grad():
        return torch.cat([p.reshape(-1) for p in net.parameters()]).numpy()


def flat_gradients(net: ActorCritic) -> np.ndarray:
    """All of net's gradients as one float32 vector (a copy of its gradient buffer, in parameter
    order): one buffer to serialize, no per-tensor pickles."""
    return gradient_buffer(net).clone().numpy()


def load_flat_parameters(net: ActorCritic, flat: np.ndarray) -> None:
    """Copy a vector made by flat_parameters into net's parameters."""
    # Arrays read from the object store are read-only views; torch wants a writable buffer.
    source = torch.from_numpy(np.array(flat, dtype=np.float32, copy=True))
    with torch.no_grad():
        torch._foreach_copy_(net.params, [source[place].view_as(p) for p, place in
                                          zip(net.params, net.param_slices, strict=True)])


Statistics = tuple[float, np.ndarray, np.ndarray]  # a count, mean and variance (of observations, of returns)


class Reply(NamedTuple):
    """What a worker learns from each push: its staleness and the run's state after the update."""

    staleness: tuple[int, ...]  # per gradient: updates others applied between its pull and it
    version: int  # the version of `params`: the global update count it includes
    params: Any  # version's flat parameters: an array (small nets, or no Ray), an ObjectRef, or None
    statistics: tuple[Statistics, ...] | None  # the network's normalizers' (obs_norm's, reward_norm's),
    # global, sent with new parameters
    steps: int  # env steps of all workers, earlier runs included
    stop: bool  # the run is over: finish the update in hand and return


class Joined(NamedTuple):
    """What a worker learns when it starts: which start of its rank this is, and the parameters."""

    incarnation: int  # earlier starts of this rank in this run: 0 for its first worker
    start_steps: int  # env steps of the earlier runs a resumed run continues, else 0
    counts: tuple[int, int]  # (steps, updates) the server has counted for this rank so far
    generation: int  # of the server: 0, then 1 after the driver restored a lost one
    reply: Reply


@dataclass
class Snapshot:
    """The global network's state for the driver: to evaluate, checkpoint, log, and restore a lost
    server from."""

    steps: int
    updates: int
    model_state: dict[str, np.ndarray]  # NumPy: far cheaper to pickle than tensors
    optimizer_state: dict[str, np.ndarray]  # keyed as a3c.core.optim.optimizer_tensors keys them
    reports: list[LearnerReport]
    worker_counts: dict[int, tuple[int, int]] = field(default_factory=dict)  # rank: (steps, updates)
    restarts: int = 0  # worker actors started again (by Ray, or by the driver), this run
    events: list[tuple[str, str]] = field(default_factory=list)  # (kind, detail) since the last call
    starts: dict[int, int] = field(default_factory=dict)  # rank: workers of that rank started so far
    worker_nodes: dict[int, str] = field(default_factory=dict)  # rank: the Ray node its worker runs on


class ParameterServer:
    """Holds the global network and its optimizer; applies each pushed gradient at once (async A3C)."""

    def __init__(self, config: Config, spec: NetworkSpec, model_state: dict[str, torch.Tensor],
                 optimizer_state: dict[str, torch.Tensor], start_steps: int = 0, start_updates: int = 0,
                 put: Callable[[np.ndarray], Any] | None = None,
                 publish_spacing: float = PUBLISH_SPACING,
                 inline_bytes: int = INLINE_PARAMETER_BYTES, restored: Snapshot | None = None,
                 generation: int = 0):
        """start_steps, start_updates: the counters of the earlier runs a resumed run continues.
        restored: the driver's newest snapshot of a server that was lost (its model and optimizer
        state are model_state and optimizer_state), whose counters and workers this one takes over;
        generation counts the servers of this run (0 for the first)."""
        torch.set_num_threads(1)
        keep_freed_memory()
        self.config = config
        self.net = ActorCritic(spec, trust_code=True)  # the spec of the driver's network
        self.net.load_state_dict(model_state)
        self.names = [name for name, _ in self.net.named_parameters()]
        params = self.net.params
        # One flat vector holds every parameter (the network's are views of it, laid out as
        # param_slices says), and one its gradient: a push is one copy, and the optimizer steps one
        # tensor, not one per layer.
        self.flat = nn.Parameter(torch.cat([p.detach().reshape(-1) for p in params]))
        self.flat.grad = torch.zeros_like(self.flat)
        self._grad_array = self.flat.grad.numpy()
        for p, place in zip(params, self.net.param_slices, strict=True):
            p.data = self.flat.detach()[place].view_as(p)
        # The configured optimizer, as the local backend's (Adam through torch's fused kernel):
        # elementwise, so one flat tensor gives exactly the per-layer result.
        self.optimizer = make_optimizer(config, [self.flat], shared=False)
        if optimizer_state:
            self._load_optimizer_state(optimizer_state)
        self.start_steps = start_steps  # where this run began: part of the workers' seeding rule
        self.generation = generation
        self.version = start_updates  # the global update count: a version of the parameters
        self.steps = start_steps
        self.worker_counts: dict[int, list[int]] = {}
        self._own: dict[int, deque[int]] = {}  # rank: versions its own recent updates produced
        self._sent: dict[int, int] = {}  # rank: the version of the parameters it was last sent
        self.reports: list[LearnerReport] = []
        self.events: list[tuple[str, str]] = []
        self._starts: dict[int, int] = {}  # rank: times a worker of that rank joined
        self._restart_reasons: dict[int, str] = {}  # rank: why the driver replaced its worker
        self.worker_nodes: dict[int, str] = {}  # rank: the node its newest worker joined from
        if restored is not None:
            self.version, self.steps = restored.updates, restored.steps
            self.worker_counts = {rank: list(counts) for rank, counts in restored.worker_counts.items()}
            self._starts = dict(restored.starts)
            self.worker_nodes = dict(restored.worker_nodes)
        self.stopping = False
        if put is None:
            import ray

            put = ray.put
        self._put = put
        self.inline = self.flat.numel() * self.flat.element_size() <= inline_bytes
        self.publish_spacing = publish_spacing
        self.puts = 0
        self._published: tuple[int, Any] = (-1, None)
        self._next_publish = 0.0  # monotonic time from which a new version may be put
        self._publish(force=True)

    # --- the workers' calls ---

    def join(self, rank: int, node: str = "") -> Joined:
        """A worker of `rank` starts (its first, a restarted or a replacing one, on `node`): which
        start it is, for its seeds, and the newest parameters (published now if need be)."""
        incarnation = self._starts.get(rank, 0)
        self._starts[rank] = incarnation + 1
        before = self.worker_nodes.get(rank)
        if node:
            self.worker_nodes[rank] = node
        if incarnation > 0:
            reason = self._restart_reasons.pop(rank, f"worker {rank}'s actor died")
            where = f" on node {node[:8]}" + (f" (was {before[:8]})" if before not in (None, node) else "")
            self.events.append(("worker_restarted", f"{reason}; started again{where} (restart "
                                f"{incarnation} of this worker)"))
        counts = self.worker_counts.get(rank, [0, 0])
        return Joined(incarnation, self.start_steps, (counts[0], counts[1]), self.generation,
                      self._fresh_reply(rank))

    def rejoin(self, rank: int, sent: tuple[int, int]) -> Joined:
        """A worker whose server was lost comes back to this one, restored from the driver's snapshot.

        sent: the (steps, updates) the worker had sent in all, counted from the server's counts at
        its join. What the snapshot does not count of them was lost with the old server.
        """
        counts = self.worker_counts.setdefault(rank, [0, 0])
        steps, updates = sent[0] - counts[0], sent[1] - counts[1]
        self.events.append(("updates_lost", f"worker {rank} reconnected to the restored parameter "
                            f"server; lost with the old one: {updates} of its updates ({steps} env "
                            "steps) applied or sent after the snapshot"))
        self._own.pop(rank, None)
        return Joined(max(self._starts.get(rank, 1) - 1, 0), self.start_steps, (counts[0], counts[1]),
                      self.generation, self._fresh_reply(rank))

    def _fresh_reply(self, rank: int) -> Reply:
        self._publish(force=True)
        self._sent.pop(rank, None)  # a new (or reconnected) worker holds no reference yet
        return self._reply(rank, ())

    def push(self, rank: int, pulled_versions: Sequence[int], steps: Sequence[int],
             observed: tuple[Statistics, ...] | None, *grads: np.ndarray) -> Reply:
        """theta <- theta - alpha * g (the optimizer's rule) for each of `rank`'s gradients, in order.

        B flat gradients of one worker (usually 1), each pulled at its version and counting its env
        steps. One argument each: Ray sends each small argument inline, where one [B, N] array past
        100 KiB would go through the object store. `observed`: with obs_norm or reward_norm, for each
        of the network's normalizers, the moments of what the worker saw since its last push (its
        observations, its discounted returns), merged into the global statistics.
        """
        for normalizer, (count, mean, var) in zip(self.net.normalizers(), observed or (), strict=False):
            normalizer.merge(moments_from_arrays(count, mean, var))
        own = self._own.setdefault(rank, deque())
        staleness = []
        for grad, pulled_version, n in zip(grads, pulled_versions, steps, strict=True):
            while own and own[0] <= pulled_version:  # a worker's pulls only move forward
                own.popleft()
            # Versions applied since the pull, less this worker's own updates it did not have then.
            staleness.append(self.version - pulled_version - len(own))
            self._grad_array[:] = grad
            schedule_lr(self.optimizer, self.config, lambda: self.steps)
            self.optimizer.step()
            self.version += 1
            self.steps += n
            counts = self.worker_counts.setdefault(rank, [0, 0])
            counts[0] += n
            counts[1] += 1
            own.append(self.version)
        self._publish()
        return self._reply(rank, tuple(staleness))

    def skip(self, rank: int, steps: int) -> None:
        """Count env steps whose update the worker did not push (its gradient was not finite)."""
        self.steps += steps
        self.worker_counts.setdefault(rank, [0, 0])[0] += steps

    def expect_restart(self, rank: int, reason: str) -> None:
        """The driver is starting a new worker of this rank (the old one raised): why, for the log."""
        self._restart_reasons[rank] = reason

    def report(self, report: LearnerReport) -> None:
        """Hold a worker's report (episodes, update statistics) until the driver collects it."""
        self.reports.append(report)

    def should_stop(self) -> bool:
        return self.stopping or self.steps >= self.config.total_steps

    # --- the driver's calls ---

    def snapshot(self) -> Snapshot:
        """Parameters, optimizer state and counters of one version, and the reports since the last call."""
        reports, self.reports = self.reports, []
        events, self.events = self.events, []
        return Snapshot(
            steps=self.steps, updates=self.version,
            model_state={k: v.detach().numpy().copy() for k, v in self.net.state_dict().items()},
            optimizer_state=self._optimizer_state(),
            reports=reports,
            worker_counts={rank: (s, u) for rank, (s, u) in self.worker_counts.items()},
            restarts=sum(n - 1 for n in self._starts.values()), events=events,
            starts=dict(self._starts), worker_nodes=dict(self.worker_nodes),
        )

    def request_stop(self) -> None:
        self.stopping = True

    def pid(self) -> int:
        return os.getpid()

    def node(self) -> str:
        """The id of the Ray node this server runs on (as an actor)."""
        import ray

        return ray.get_runtime_context().get_node_id()

    def stats(self) -> dict[str, float]:
        """For benchmarks: updates applied, puts made, and this process's CPU time."""
        return {"updates": self.version, "puts": self.puts, "cpu_seconds": time.process_time()}

    def _optimizer_state(self) -> dict[str, np.ndarray]:
        """The flat optimizer state keyed per parameter, as a3c.core.optim.optimizer_tensors keys it."""
        out = {}
        for key, value in self.optimizer.state[self.flat].items():
            parts = ([value[place] for place in self.net.param_slices] if value.dim()
                     else [value] * len(self.names))  # step: shared
            for name, part, p in zip(self.names, parts, self.net.params, strict=True):
                out[f"{name}/{key}"] = (part.view_as(p) if value.dim() else part).numpy().copy()
        return out

    def _load_optimizer_state(self, tensors: dict[str, torch.Tensor]) -> None:
        for key, value in self.optimizer.state[self.flat].items():
            try:
                parts = [tensors[f"{name}/{key}"] for name in self.names]
            except KeyError as exc:
                raise CheckpointError(f"optimizer state {exc.args[0]} missing") from None
            with torch.no_grad():
                value.copy_(torch.cat([t.reshape(-1) for t in parts]) if value.dim() else parts[0])

    def _reply(self, rank: int, staleness: tuple[int, ...]) -> Reply:
        version, params = (self.version, None) if self.inline else self._published
        if self._sent.get(rank) == version:
            params = None  # a reference in a reply costs the server time: send each one once
        else:
            self._sent[rank] = version
            if self.inline:
                params = self.flat.detach().numpy().copy()  # the reply is serialized after we return
        statistics = None
        if params is not None and self.net.normalizers():
            statistics = tuple((float(n.count), n.mean.numpy().copy(), n.var.numpy().copy())
                               for n in self.net.normalizers())
        return Reply(staleness, version, params, statistics, self.steps, self.should_stop())

    def _publish(self, force: bool = False) -> None:
        """Put the newest version in the object store, at most once per version, spaced out in time."""
        if self.inline:
            return
        now = time.monotonic()
        if self._published[0] != self.version and (force or now >= self._next_publish):
            self._published = (self.version, self._put(self.flat.detach().numpy()))  # put copies
            done = time.monotonic()
            self._next_publish = done + min(self.publish_spacing * (done - now), MAX_PUBLISH_GAP)
            self.puts += 1
