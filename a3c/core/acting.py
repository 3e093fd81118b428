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
from a3c.core.torsos import Trace

Observations = np.ndarray | dict[str, np.ndarray]


class NetworkActing:
    """The network's own act and value, with the conversions from and to NumPy (and, for A2C on a
    GPU, the copies to and from its device)."""

    def __init__(self, net: ActorCritic):
        self.net = net
        self._to_net, self._to_numpy = _converters(net.device)

    def start(self, steps: int) -> None:
        """Nothing to prepare: the network reads its weights at each call."""

    def act(self, obs: Observations, state: State, trace: Trace | None) -> Step:
        actions, values, state = self.net.act(self._tensors(obs), state, trace=trace)
        return self._to_numpy(actions), self._to_numpy(values), state

    def value(self, obs: Observations, state: State) -> np.ndarray:
        return self._to_numpy(self.net.value(self._tensors(obs), state))

    def _tensors(self, obs: Observations) -> torch.Tensor | dict[str, torch.Tensor]:
        if isinstance(obs, dict):
            return {k: self._to_net(v) for k, v in obs.items()}
        return self._to_net(obs)


def _converters(device: torch.device) -> tuple[Callable[[np.ndarray], torch.Tensor],
                                               Callable[[torch.Tensor], np.ndarray]]:
    """NumPy to the device and back (A2C on a GPU); on the CPU no copy, as in the hot path."""
    if device.type == "cpu":
        return torch.from_numpy, torch.Tensor.numpy
    return (lambda a: torch.from_numpy(a).to(device)), (lambda t: t.cpu().numpy())


def acting_for(net: ActorCritic, batch: int) -> PackedMLP | NetworkActing:
    """How a rollout collector acts with this network on `batch` envs."""
    return packed_mlp(net, batch) or NetworkActing(net)
