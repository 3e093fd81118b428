"""A process that writes checkpoints as a trainer does, forever, until it is killed (for the crash tests).

Every tensor of save number i holds the value i, so a reader can tell a whole checkpoint from a mix.
"""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

from a3c.config import Config
from a3c.core.networks import ActorCritic, NetworkSpec
from a3c.run.checkpoint import prune_checkpoints, read_counters, save_checkpoint

CONFIG = Config(env_id="CartPole-v1", hidden_sizes=(64, 64), keep_checkpoints=3).validated()


class AdamState:
    """What a checkpoint reads of an Adam optimizer, without constructing one: the first optimizer a
    process constructs imports torch._dynamo, a second or more that each writer would wait for."""

    def __init__(self, params: list[torch.nn.Parameter]):
        self.param_groups = [{"params": params}]
        self.state = {p: {"step": torch.zeros(()), "exp_avg": torch.zeros_like(p),
                          "exp_avg_sq": torch.zeros_like(p)} for p in params}


def network() -> tuple[ActorCritic, AdamState]:
    obs = gym.spaces.Box(-1.0, 1.0, (16384,), dtype=np.float32)  # a 13 MB file, and cheap to build
    spec = NetworkSpec.from_spaces(obs, gym.spaces.Discrete(2), hidden_sizes=CONFIG.hidden_sizes)
    net = ActorCritic(spec)
    return net, AdamState(list(net.parameters()))


def write_forever(run_dir: str, ready) -> None:
    torch.set_num_threads(1)
    root = Path(run_dir)
    net, optimizer = network()
    counters = read_counters(root / "model.safetensors")
    i = counters["steps"] if counters else 0
    told = False
    while True:
        i += 1
        with torch.no_grad():
            for tensor in [*net.state_dict().values(),
                           *(v for state in optimizer.state.values() for v in state.values())]:
                tensor.fill_(i)
        save_checkpoint(root / "model.safetensors", net, CONFIG, {"steps": i, "updates": i}, optimizer)
        save_checkpoint(root / "checkpoints" / f"step_{i:012d}.safetensors", net, CONFIG,
                        {"steps": i, "updates": i}, optimizer)
        prune_checkpoints(root / "checkpoints", CONFIG.keep_checkpoints)
        if not told:  # once: the kill may come at any point after this
            ready.set()
            told = True
