"""The public API, shaped like Stable-Baselines3: A3C(env, ...).learn(...).save(path); A3C.load(path)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from a3c.checkpoint import load_checkpoint, load_optimizer_tensors, save_checkpoint
from a3c.config import Config
from a3c.envs import make_env
from a3c.errors import CheckpointError, ConfigError
from a3c.evaluation import EvalResult, evaluate, to_env_action
from a3c.networks import ActorCritic, NetworkSpec
from a3c.optim import make_shared_optimizer
from a3c.presets import build_config
from a3c.trainer import A3CTrainer, TrainResult


def default_run_dir(config: Config) -> Path:
    name = config.env_id.replace("/", "_").replace(":", "_")
    return Path("runs") / f"{name}-{config.algo}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"


class A3C:
    """Asynchronous advantage actor-critic: Hogwild workers sharing one network and optimizer.

    >>> model = A3C("CartPole-v1", workers=2, seed=0)
    >>> model.learn(total_steps=200_000)
    >>> model.save("cartpole.safetensors")
    """

    def __init__(self, env: str, *, preset: str | None = None, verbose: int = 1,
                 config: Config | None = None, **hparams: Any):
        self.config = config.validated() if config is not None else build_config(env, preset, **hparams)
        probe = make_env(self.config.env_id)
        self.observation_space, self.action_space = probe.observation_space, probe.action_space
        probe.close()
        spec = NetworkSpec.from_spaces(
            self.observation_space, self.action_space, hidden_sizes=self.config.hidden_sizes,
            activation=self.config.activation, shared_torso=self.config.shared_torso,
        )
        torch.manual_seed(self.config.seed)
        self.policy = ActorCritic(spec)
        self.policy.share_memory()
        self.optimizer = make_shared_optimizer(
            self.config.optimizer, self.policy.parameters(), self.config.lr,
            self.config.adam_eps if self.config.optimizer == "adam" else self.config.rms_eps,
            self.config.rms_alpha,
        )
        self.verbose = verbose
        self.num_steps = 0
        self.num_updates = 0
        self.last_result: TrainResult | None = None

    def learn(self, total_steps: int | None = None, *, max_seconds: float | None = None,
              target_return: float | None = None, run_dir: str | os.PathLike | None = None) -> A3C:
        """Train until total_steps more env steps, max_seconds, or the target evaluation return."""
        changes: dict[str, Any] = {}
        if total_steps is not None:
            changes["total_steps"] = total_steps
        if max_seconds is not None:
            changes["max_seconds"] = max_seconds
        if target_return is not None:
            changes["target_return"] = target_return
        if run_dir is not None:
            changes["run_dir"] = str(run_dir)
        config = self.config.replace(**changes).validated()
        directory = Path(config.run_dir) if config.run_dir else default_run_dir(config)
        trainer = A3CTrainer(config, self.policy, self.optimizer, directory,
                             self.num_steps, self.num_updates, self.verbose)
        self.last_result = trainer.train()
        self.num_steps, self.num_updates = self.last_result.steps, self.last_result.updates
        return self

    def predict(self, observation: np.ndarray, state: Any = None, episode_start: Any = None,
                deterministic: bool = False) -> tuple[np.ndarray | int, None]:
        """Action(s) for one observation or a batch; (action, None) like Stable-Baselines3."""
        obs = torch.as_tensor(np.asarray(observation, dtype=self.observation_space.dtype))
        single = obs.dim() == len(self.observation_space.shape)
        if obs.shape[-len(self.observation_space.shape):] != self.observation_space.shape:
            raise ConfigError(
                f"observation shape {tuple(obs.shape)} does not match {self.observation_space.shape}")
        with torch.no_grad():
            actions, _ = self.policy.act(obs[None] if single else obs, deterministic)
        if single:
            return to_env_action(actions[0], self.action_space), None
        return np.stack([np.asarray(to_env_action(a, self.action_space)) for a in actions]), None

    def evaluate(self, episodes: int = 10, deterministic: bool = True, seed: int = 0) -> EvalResult:
        env = make_env(self.config.env_id)
        try:
            return evaluate(self.policy, env, episodes, deterministic, seed)
        finally:
            env.close()

    def save(self, path: str | os.PathLike) -> Path:
        counters = {"steps": self.num_steps, "updates": self.num_updates}
        return save_checkpoint(path, self.policy, self.config, counters, self.optimizer)

    @classmethod
    def load(cls, path: str | os.PathLike, verbose: int = 1) -> A3C:
        ckpt = load_checkpoint(path)
        model = cls(ckpt.config.env_id, config=ckpt.config, verbose=verbose)
        if model.policy.spec != ckpt.spec:
            raise CheckpointError(f"{path}: the env's spaces do not match the network it stores")
        net = ckpt.build_network()
        with torch.no_grad():
            for dst, src in zip(model.policy.parameters(), net.parameters(), strict=True):
                dst.copy_(src)
        if ckpt.optimizer_state:
            load_optimizer_tensors(model.optimizer, model.policy, ckpt.optimizer_state)
        model.num_steps = int(ckpt.counters.get("steps", 0))
        model.num_updates = int(ckpt.counters.get("updates", 0))
        return model
