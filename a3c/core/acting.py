"""A rollout's acting pass: NumPy observations in, NumPy actions and values out.

`NetworkActing` goes through the network's own `act`: any network, on any device. A feed-forward
MLP network on one vector acts through its packed NumPy form instead (a3c.core.packed), which
answers the same calls at a fraction of the CPU.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from a3c.core.networks import ActorCritic, State
from a3c.core.packed import PackedMLP, Step, packed_mlp
from a3c.core.torsos import Observation, Trace

Observations = np.ndarray | dict[str, np.ndarray]  # [T, N, ...] or [N, ...]: one array, or one per part


class NetworkActing:
    """The network's own act and value, with the conversions from and to NumPy (and, for A2C on a
    GPU, the copies to and from its device)."""

    def __init__(self, net: ActorCritic):
        self.net = net
        self._to_numpy = _converters(net.device)[1]

    def start(self, steps: int) -> None:
        """Nothing to prepare: the network reads its weights at each call."""

    def act(self, obs: Observations, state: State, trace: Trace | None) -> Step:
        actions, values, state = self.net.act(as_tensors(obs, self.net.device), state, trace=trace)
        return self._to_numpy(actions), self._to_numpy(values), state

    def value(self, obs: Observations, state: State) -> np.ndarray:
        return self._to_numpy(self.net.value(as_tensors(obs, self.net.device), state))


def as_tensors(obs: Observations, device: torch.device) -> Observation:
    """Observations (one array, or a dict of arrays by part) as the network's tensors on device."""
    to_net = _converters(device)[0]
    if isinstance(obs, dict):
        return {k: to_net(v) for k, v in obs.items()}
    return to_net(obs)


def _converters(device: torch.device) -> tuple[Callable[[np.ndarray], torch.Tensor],
                                               Callable[[torch.Tensor], np.ndarray]]:
    """NumPy to the device and back (A2C on a GPU); on the CPU no copy, as in the hot path."""
    if device.type == "cpu":
        return torch.from_numpy, torch.Tensor.numpy
    return (lambda a: torch.from_numpy(a).to(device)), (lambda t: t.cpu().numpy())


def acting_for(net: ActorCritic, batch: int) -> PackedMLP | NetworkActing:
    """How a rollout collector acts with this network on `batch` envs."""
    return packed_mlp(net, batch) or NetworkActing(net)
