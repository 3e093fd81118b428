"""Optimizers whose state lives in shared memory, so every Hogwild worker updates the same moments.

torch's optimizers create their state lazily, inside whichever process steps first; here the state
is created eagerly and moved to shared memory before any worker starts. Adam is torch's own rule
(one process gives exactly torch.optim's results); RMSProp is the A3C paper's, and torch's variant
carries its own name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn

from a3c.config import Config
from a3c.errors import CheckpointError

_BUFFERS = {"adam": ("exp_avg", "exp_avg_sq"), "rmsprop": ("square_avg",), "rmsprop-torch": ("square_avg",)}


def _create_state(optimizer: torch.optim.Optimizer, buffers: tuple[str, ...], share: bool = True) -> None:
    """Create torch's state eagerly (as its first step would), in shared memory when `share`.

    Eager state also gives a checkpoint's optimizer tensors a place to be loaded into. The step
    count is a CPU tensor, as torch's non-capturable Adam and RMSprop expect on any device, except
    for a fused kernel, which takes it on the parameters' device (A2C's Adam on a GPU).
    """
    for group in optimizer.param_groups:
        for p in group["params"]:
            state = optimizer.state[p]
            device = p.device if group.get("fused") else None
            state["step"] = torch.zeros((), dtype=torch.float32, device=device)
            for name in buffers:
                state[name] = torch.zeros_like(p, memory_format=torch.preserve_format)
            if share:
                for value in state.values():
                    value.share_memory_()


# torch.optim.Optimizer.add_param_group, which every optimizer's constructor calls, is wrapped to
# import torch._dynamo on its first call (to keep torch.compile out of it): a second or two of
# imports on the way to a run's first update, for a compiler this library never uses. The
# optimizers below call the function the wrapper wraps.
_ADD_PARAM_GROUP = getattr(torch.optim.Optimizer.add_param_group, "__wrapped__",
                           torch.optim.Optimizer.add_param_group)


class _WithoutDynamo:
    def add_param_group(self, param_group: dict) -> None:
        _ADD_PARAM_GROUP(self, param_group)


class SharedAdam(_WithoutDynamo, torch.optim.Adam):
    """Adam with exp_avg, exp_avg_sq and step shared across processes (lock-free, Hogwild); with
    share=False the same eager state in this process's own memory (A2C, the Ray parameter server).

    torch's fused kernel: one call for every parameter, where the foreach path issues a dozen ops
    over the list; on the classic-control network's 12 small tensors it costs a third of the time
    (benchmarks/results/adam-fused.md). It updates the shared state in place, as the others do.
    """

    def __init__(
        self,
        params: Iterable[nn.Parameter],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        share: bool = True,
    ):
        super().__init__(params, lr=lr, betas=betas, eps=eps, fused=True)
        _create_state(self, _BUFFERS["adam"], share)

    @torch.no_grad()
    def step(self, closure: None = None) -> None:
        """torch's fused Adam step (what Adam.step runs with fused=True), called directly: around the
        kernel, Adam.step's hooks, checks and regrouping of the tensors cost more CPU than the
        kernel itself on the classic-control network (benchmarks/results/update-cost.md)."""
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            states = [self.state[p] for p in params]
            steps = [state["step"] for state in states]
            torch._foreach_add_(steps, 1)
            beta1, beta2 = group["betas"]
            torch._fused_adam_(params, [p.grad for p in params], [state["exp_avg"] for state in states],
                               [state["exp_avg_sq"] for state in states], [], steps, amsgrad=False,
                               lr=group["lr"], beta1=beta1, beta2=beta2, weight_decay=group["weight_decay"],
                               eps=group["eps"], maximize=False)


class SharedRMSprop(_WithoutDynamo, torch.optim.Optimizer):
    """The A3C paper's RMSProp (Mnih et al. 2016, section 4 and supplementary section 7), with its
    statistics shared by every Hogwild worker:

        g = alpha * g + (1 - alpha) * grad^2;  theta -= lr * grad / sqrt(g + eps)

    eps sits inside the root, as in the paper and in TensorFlow's RMSProp (which OpenAI Baselines'
    Atari settings were tuned with). torch's RMSprop puts it outside, sqrt(g) + eps: that rule is
    optimizer "rmsprop-torch" (SharedTorchRMSprop).
    """

    def __init__(
        self,
        params: Iterable[nn.Parameter],
        lr: float = 7e-4,
        alpha: float = 0.99,
        eps: float = 1e-5,
        share: bool = True,
    ):
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps))
        _create_state(self, _BUFFERS["rmsprop"], share)

    @torch.no_grad()
    def step(self, closure: None = None) -> None:
        _rmsprop_step(self, eps_inside_the_root=True)


class SharedTorchRMSprop(_WithoutDynamo, torch.optim.RMSprop):
    """torch's RMSprop, theta -= lr * grad / (sqrt(g) + eps), with its square average shared.

    Stable-Baselines3's A2C uses this rule by default; optimizer "rmsprop-torch".
    """

    def __init__(self, params: Iterable[nn.Parameter], lr: float = 7e-4, alpha: float = 0.99,
                 eps: float = 1e-5, share: bool = True):
        super().__init__(params, lr=lr, alpha=alpha, eps=eps, foreach=True)
        _create_state(self, _BUFFERS["rmsprop"], share)

    @torch.no_grad()
    def step(self, closure: None = None) -> None:
        """torch's foreach RMSprop without momentum, centring or weight decay (what this optimizer
        is built with), called directly: RMSprop.step imports torch._dynamo on its first call."""
        _rmsprop_step(self, eps_inside_the_root=False)


def _rmsprop_step(optimizer: torch.optim.Optimizer, eps_inside_the_root: bool) -> None:
    """g = alpha * g + (1 - alpha) * grad^2; theta -= lr * grad / sqrt(g + eps) (the paper's
    rule), or / (sqrt(g) + eps) (torch's), over every parameter with a gradient."""
    for group in optimizer.param_groups:
        params = [p for p in group["params"] if p.grad is not None]
        if not params:
            continue
        grads = [p.grad for p in params]
        states = [optimizer.state[p] for p in params]
        square_avgs = [s["square_avg"] for s in states]
        torch._foreach_add_([s["step"] for s in states], 1.0)
        torch._foreach_mul_(square_avgs, group["alpha"])
        torch._foreach_addcmul_(square_avgs, grads, grads, value=1.0 - group["alpha"])
        if eps_inside_the_root:
            denominators = torch._foreach_add(square_avgs, group["eps"])
            torch._foreach_sqrt_(denominators)
        else:
            denominators = torch._foreach_sqrt(square_avgs)
            torch._foreach_add_(denominators, group["eps"])
        torch._foreach_addcdiv_(params, grads, denominators, value=-group["lr"])


def make_shared_optimizer(name: str, params: Iterable[nn.Parameter], lr: float, eps: float,
                          alpha: float, share: bool = True) -> torch.optim.Optimizer:
    """adam, rmsprop (the paper's rule) or rmsprop-torch, with state in shared memory if `share`."""
    if name == "adam":
        return SharedAdam(params, lr=lr, eps=eps, share=share)
    kind = SharedRMSprop if name == "rmsprop" else SharedTorchRMSprop
    return kind(params, lr=lr, alpha=alpha, eps=eps, share=share)


def make_optimizer(config: Config, params: Iterable[nn.Parameter], shared: bool) -> torch.optim.Optimizer:
    """The configured optimizer: in shared memory for Hogwild workers, in this process's own
    memory for one process (A2C, the Ray parameter server); the update rule is the same."""
    eps = config.adam_eps if config.optimizer == "adam" else config.rms_eps
    return make_shared_optimizer(config.optimizer, params, config.lr, eps, config.rms_alpha, share=shared)


def linear(start: float, end: float, steps: int, total: int) -> float:
    """start at step 0, end from step `total` on, a straight line between."""
    progress = min(1.0, max(0.0, steps / total))
    return start + (end - start) * progress


def lr_at(config: Config, steps: int) -> float:
    """The learning rate after `steps` env steps: constant, or annealed linearly to zero."""
    if config.lr_schedule == "linear":
        return linear(config.lr, 0.0, steps, config.total_steps)
    return config.lr


def entropy_coef_at(config: Config, steps: Callable[[], int]) -> float:
    """The entropy weight after steps() env steps: constant, or linear to entropy_coef_final;
    steps is read only when the weight can change."""
    if config.entropy_schedule == "linear":
        return linear(config.entropy_coef, config.entropy_coef_final, steps(), config.total_steps)
    return config.entropy_coef


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
