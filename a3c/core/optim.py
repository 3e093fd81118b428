"""Optimizers whose state lives in shared memory, so every Hogwild worker updates the same moments.

torch's Adam and RMSprop create their state lazily, inside whichever process steps first; here the
state is created eagerly and moved to shared memory before any worker starts, and the update rule
is torch's own, so one process gives exactly torch.optim's results.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn

from a3c.config import Config
from a3c.errors import CheckpointError

_BUFFERS = {"adam": ("exp_avg", "exp_avg_sq"), "rmsprop": ("square_avg",)}


def _create_state(optimizer: torch.optim.Optimizer, buffers: tuple[str, ...], share: bool = True) -> None:
    """Create torch's state eagerly (as its first step would), in shared memory when `share`.

    Eager state also gives a checkpoint's optimizer tensors a place to be loaded into. The step
    count stays a CPU tensor, as torch's non-capturable Adam and RMSprop expect, on any device.
    """
    for group in optimizer.param_groups:
        for p in group["params"]:
            state = optimizer.state[p]
            state["step"] = torch.zeros((), dtype=torch.float32)
            for name in buffers:
                state[name] = torch.zeros_like(p, memory_format=torch.preserve_format)
            if share:
                for value in state.values():
                    value.share_memory_()


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
        _create_state(self, _BUFFERS["adam"])


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
        _create_state(self, _BUFFERS["rmsprop"])


def make_shared_optimizer(name: str, params: Iterable[nn.Parameter], lr: float, eps: float,
                          alpha: float) -> torch.optim.Optimizer:
    if name == "adam":
        return SharedAdam(params, lr=lr, eps=eps)
    return SharedRMSprop(params, lr=lr, alpha=alpha, eps=eps)


def make_optimizer(config: Config, params: Iterable[nn.Parameter], shared: bool) -> torch.optim.Optimizer:
    """The configured optimizer: shared for Hogwild workers, or torch's own for one process (A2C).

    Both are torch's Adam or RMSprop with the same hyper-parameters, so the update rule is one.
    """
    eps = config.adam_eps if config.optimizer == "adam" else config.rms_eps
    if shared:
        return make_shared_optimizer(config.optimizer, params, config.lr, eps, config.rms_alpha)
    if config.optimizer == "adam":
        optimizer: torch.optim.Optimizer = torch.optim.Adam(params, lr=config.lr, eps=eps, foreach=True)
    else:
        optimizer = torch.optim.RMSprop(
            params, lr=config.lr, alpha=config.rms_alpha, eps=eps, foreach=True)
    _create_state(optimizer, _BUFFERS[config.optimizer], share=False)
    return optimizer


def lr_at(config: Config, steps: int) -> float:
    """The learning rate after `steps` env steps: constant, or annealed linearly to zero."""
    if config.lr_schedule == "linear":
        return config.lr * max(0.0, 1.0 - steps / config.total_steps)
    return config.lr


def schedule_lr(optimizer: torch.optim.Optimizer, config: Config, steps: Callable[[], int]) -> None:
    """Set the learning rate for the next step; `steps` is read only when the rate can change."""
    if config.lr_schedule != "constant":
        lr = lr_at(config, steps())
        for group in optimizer.param_groups:
            group["lr"] = lr


def optimizer_tensors(optimizer: torch.optim.Optimizer, net: nn.Module) -> dict[str, torch.Tensor]:
    """Optimizer state keyed by parameter name, e.g. 'torso.layers.0.weight/exp_avg'."""
    names = {id(p): n for n, p in net.named_parameters()}
    out = {}
    for group in optimizer.param_groups:
        for p in group["params"]:
            for key, value in optimizer.state[p].items():
                out[f"{names[id(p)]}/{key}"] = value.detach().cpu().clone()
    return out


def load_optimizer_tensors(
    optimizer: torch.optim.Optimizer, net: nn.Module, tensors: dict[str, torch.Tensor]
) -> None:
    """Copy saved state (keyed as optimizer_tensors keys it) into the optimizer's tensors in place."""
    names = {id(p): n for n, p in net.named_parameters()}
    for group in optimizer.param_groups:
        for p in group["params"]:
            for key, value in optimizer.state[p].items():
                saved = tensors.get(f"{names[id(p)]}/{key}")
                if saved is None or saved.shape != value.shape:
                    raise CheckpointError(f"optimizer state {names[id(p)]}/{key} missing or misshapen")
                value.copy_(saved)
