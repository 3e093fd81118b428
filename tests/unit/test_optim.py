"""Shared optimizers: the update rules against torch's or hand-computed values, one set of moments
across many processes."""

import copy
import subprocess
import sys

import pytest
import torch
import torch.multiprocessing as mp
from torch import nn

from a3c.core.optim import SharedAdam, SharedRMSprop, SharedTorchRMSprop, make_shared_optimizer

LR = 1e-2


def gradient_sequence(model: nn.Module, steps: int, seed: int = 0) -> list[list[torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [[torch.randn(p.shape, generator=g) * (1 + k) for p in model.parameters()]
            for k in range(steps)]


def run(optimizer, model, grads):
    for k, step_grads in enumerate(grads):
        for p, grad in zip(model.parameters(), step_grads, strict=True):
            p.grad = grad.clone()
        for group in optimizer.param_groups:  # a rate that changes from step to step, as a schedule sets it
            group["lr"] = LR * (1 - k / len(grads))
        optimizer.step()


def small_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 2))


def all_moved(model: nn.Module) -> bool:
    pairs = zip(model.parameters(), small_model().parameters(), strict=True)
    return all(not torch.equal(p, q) for p, q in pairs)


@pytest.mark.parametrize("path", ["fused", "foreach", "per-tensor"])
def test_shared_adam_matches_torch_adam(path):
    ours_model = small_model()
    ref_model = copy.deepcopy(ours_model)
    grads = gradient_sequence(ours_model, 25)
    shared = SharedAdam(ours_model.parameters(), lr=LR, eps=1e-5)
    run(shared, ours_model, grads)
    options = {"fused": dict(fused=True), "foreach": dict(foreach=True), "per-tensor": dict(foreach=False)}
    torchs = torch.optim.Adam(ref_model.parameters(), lr=LR, eps=1e-5, **options[path])
    run(torchs, ref_model, grads)
    for ours, ref in zip(ours_model.parameters(), ref_model.parameters(), strict=True):
        # the same kernel (fused) is bit for bit; torch's other two within 1e-7
        torch.testing.assert_close(ours, ref, rtol=0, atol=0 if path == "fused" else 1e-7)
    assert all_moved(ours_model)
    if path == "fused":  # the moments and step counts too, which a checkpoint saves
        ours_state, ref_state = shared.state_dict()["state"], torchs.state_dict()["state"]
        for i in ref_state:
            for key in ("exp_avg", "exp_avg_sq", "step"):
                torch.testing.assert_close(ours_state[i][key], ref_state[i][key], rtol=0, atol=0)


@pytest.mark.parametrize("foreach", [True, None])
def test_shared_torch_rmsprop_matches_torch_rmsprop(foreach):
    ours_model = small_model()
    ref_model = copy.deepcopy(ours_model)
    grads = gradient_sequence(ours_model, 25)
    run(SharedTorchRMSprop(ours_model.parameters(), lr=LR, alpha=0.9, eps=1e-5), ours_model, grads)
    run(torch.optim.RMSprop(ref_model.parameters(), lr=LR, alpha=0.9, eps=1e-5, foreach=foreach),
        ref_model, grads)
    for ours, ref in zip(ours_model.parameters(), ref_model.parameters(), strict=True):
        torch.testing.assert_close(ours, ref, rtol=0, atol=0 if foreach else 1e-7)
    assert all_moved(ours_model)


def test_shared_rmsprop_is_the_papers_rule_with_eps_inside_the_root():
    # g = alpha * g + (1 - alpha) * grad^2;  theta -= lr * grad / sqrt(g + eps)
    # lr 0.1, alpha 0.99, eps 0.1 and a gradient of 0.5, twice, by hand:
    #   g1 = 0.01 * 0.25 = 0.0025;     step 1 = 0.1 * 0.5 / sqrt(0.1025)   = 0.1561738
    #   g2 = 0.99 * g1 + 0.0025 = 0.004975; step 2 = 0.1 * 0.5 / sqrt(0.104975) = 0.1543217
    # (torch's rule, grad / (sqrt(g) + eps), would make the first step 0.3333333.)
    theta = nn.Parameter(torch.tensor([1.0], dtype=torch.float64))
    opt = SharedRMSprop([theta], lr=0.1, alpha=0.99, eps=0.1)
    theta.grad = torch.tensor([0.5], dtype=torch.float64)
    opt.step()
    assert theta.item() == pytest.approx(1.0 - 0.1561738, abs=1e-7)
    assert opt.state[theta]["square_avg"].item() == pytest.approx(0.0025, abs=1e-12)
    opt.step()
    assert theta.item() == pytest.approx(1.0 - 0.1561738 - 0.1543217, abs=1e-7)
    assert opt.state[theta]["square_avg"].item() == pytest.approx(0.004975, abs=1e-12)
    assert opt.state[theta]["step"].item() == 2


def test_torch_rmsprop_takes_the_other_first_step():
    theta = nn.Parameter(torch.tensor([1.0], dtype=torch.float64))
    opt = SharedTorchRMSprop([theta], lr=0.1, alpha=0.99, eps=0.1)
    theta.grad = torch.tensor([0.5], dtype=torch.float64)
    opt.step()
    assert theta.item() == pytest.approx(1.0 - 0.3333333, abs=1e-7)


@pytest.mark.parametrize("name", ["adam", "rmsprop", "rmsprop-torch"])
def test_state_is_created_eagerly_in_shared_memory(name):
    model = small_model()
    opt = make_shared_optimizer(name, model.parameters(), lr=LR, eps=1e-5, alpha=0.99)
    expected = {"step", "exp_avg", "exp_avg_sq"} if name == "adam" else {"step", "square_avg"}
    for p in model.parameters():
        state = opt.state[p]
        assert set(state) == expected
        for key, tensor in state.items():
            assert tensor.is_shared(), key
    # ...and stays the same shared tensors once torch's step has run
    before = {(id(p), k): t.data_ptr() for p in model.parameters() for k, t in opt.state[p].items()}
    run(opt, model, gradient_sequence(model, 2))
    for p in model.parameters():
        for key, tensor in opt.state[p].items():
            assert tensor.is_shared() and tensor.data_ptr() == before[(id(p), key)], key
            assert torch.count_nonzero(tensor) > 0, key


# --- several processes -----------------------------------------------------------------------------

PROCESSES = 3
STEPS = 20


class Params(nn.Module):
    """One private parameter per process, plus one that every process updates."""

    def __init__(self):
        super().__init__()
        self.own = nn.ParameterList(nn.Parameter(torch.zeros(4)) for _ in range(PROCESSES))
        self.common = nn.Parameter(torch.zeros(4))


def step_own_parameters(rank: int, shared: list[tuple[Params, torch.optim.Optimizer]]) -> None:
    """Child process: gradient only on model.own[rank] and model.common; the others have no .grad."""
    torch.set_num_threads(1)
    for _ in range(STEPS):
        for model, optimizer in shared:
            for p in model.parameters():
                p.grad = None
            model.own[rank].grad = torch.ones(4)
            model.common.grad = torch.ones(4)
            optimizer.step()


def test_updates_from_every_process_land_in_the_shared_parameters():
    names = ("adam", "rmsprop", "rmsprop-torch")
    shared = []
    for name in names:
        model = Params()
        model.share_memory()
        shared.append((model, make_shared_optimizer(name, model.parameters(), lr=LR, eps=1e-5, alpha=0.99)))
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=step_own_parameters, args=(rank, shared)) for rank in range(PROCESSES)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0] * PROCESSES

    for name, (model, optimizer) in zip(names, shared, strict=True):
        # What one process alone does to a parameter in STEPS steps of gradient 1, in this process.
        alone = nn.Parameter(torch.zeros(4))
        reference = make_shared_optimizer(name, [alone], lr=LR, eps=1e-5, alpha=0.99)
        for _ in range(STEPS):
            alone.grad = torch.ones(4)
            reference.step()
        assert (alone.detach() < 0).all()

        for rank in range(PROCESSES):
            own = model.own[rank]
            # only process `rank` touched this parameter: exactly its STEPS updates, all of them landed
            torch.testing.assert_close(own.detach(), alone.detach(), rtol=0, atol=1e-7)
            assert optimizer.state[own]["step"].item() == STEPS, name
            for key, tensor in optimizer.state[own].items():
                assert torch.count_nonzero(tensor) > 0, (name, rank, key)
        common = optimizer.state[model.common]
        # Lock-free increments may be lost in a race, but not all of the other processes' steps.
        assert STEPS < common["step"].item() <= PROCESSES * STEPS, name
        assert (model.common.detach() < alone.detach()).all(), name  # moved further than one process



DYNAMO_PROBE = """
import sys

import torch

from a3c.core.optim import make_shared_optimizer
from a3c.drivers.processes import worker_context


def step(optimizer):
    for group in optimizer.param_groups:
        for p in group["params"]:
            p.grad = torch.ones_like(p)
    optimizer.step()
    sys.exit(10 if "torch._dynamo" in sys.modules else 0)


if __name__ == "__main__":
    names = ("adam", "rmsprop", "rmsprop-torch")
    optimizers = [make_shared_optimizer(name, [torch.nn.Parameter(torch.zeros(3))], lr=1e-3, eps=1e-5,
                                        alpha=0.99) for name in names]
    if "torch._dynamo" in sys.modules:
        sys.exit("building the optimizers imported torch._dynamo")
    ctx = worker_context()  # its server does not preload torch._dynamo
    for name, optimizer in zip(names, optimizers):
        child = ctx.Process(target=step, args=(optimizer,))
        child.start()
        child.join()
        if child.exitcode:
            sys.exit(f"{name}: a worker's step imported torch._dynamo (exit {child.exitcode})")
        for p in optimizer.param_groups[0]["params"]:
            assert (p < 0).all(), f"{name}: the worker's step did not reach the shared parameters"
    step(optimizers[0])  # and here, in the trainer's process
"""


def test_no_optimizer_imports_torch_dynamo(tmp_path):
    """torch._dynamo costs seconds of imports before a first update (the trainer's, and the
    workers' forkserver's if it preloaded it): building an optimizer, and a step in a worker or in
    the trainer, must not import it."""
    script = tmp_path / "probe.py"
    script.write_text(DYNAMO_PROBE)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
