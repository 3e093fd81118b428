"""Optimizers whose state lives in shared memory, so every Hogwild worker updates the same moments.

torch's Adam and RMSprop create their state lazily, inside whichever process steps first; here the
state is created eagerly and moved to shared memory before any worker starts, and the update rule
is torch's own, so one process gives exactly torch.optim's results.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn


def _share_state(optimizer: torch.optim.Optimizer, buffers: tuple[str, ...]) -> None:
    for group in optimizer.param_groups:
        for p in group["params"]:
            state = optimizer.state[p]
            state["step"] = torch.zeros((), dtype=torch.float32).share_memory_()
            for name in buffers:
                state[name] = torch.zeros_like(p, memory_format=torch.preserve_format).share_memory_()


class SharedAdam(torch.optim.Adam):
    """Adam with exp_avg, exp_avg_sq and step shared across processes (lock-free, Hogwild)."""

    def __init__(
        self,
        params: Iterable[nn.Parameter],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ):
        super().__init__(params, lr=lr, betas=betas, eps=eps, foreach=True)
        _share_state(self, ("exp_avg", "exp_avg_sq"))


class SharedRMSprop(torch.optim.RMSprop):
    """The A3C paper's shared RMSProp: one square-average g shared by all workers.

    g = alpha * g + (1 - alpha) * grad^2; theta -= lr * grad / (sqrt(g) + eps).
    """

    def __init__(
        self,
        params: Iterable[nn.Parameter],
        lr: float = 7e-4,
        alpha: float = 0.99,
        eps: float = 1e-5,
    ):
        super().__init__(params, lr=lr, alpha=alpha, eps=eps, foreach=True)
        _share_state(self, ("square_avg",))


def make_shared_optimizer(name: str, params: Iterable[nn.Parameter], lr: float, eps: float,
                          alpha: float) -> torch.optim.Optimizer:
    if name == "adam":
        return SharedAdam(params, lr=lr, eps=eps)
    return SharedRMSprop(params, lr=lr, alpha=alpha, eps=eps)
