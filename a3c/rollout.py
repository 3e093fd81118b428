"""Collect T steps from a batch of envs with a policy, without autograd: the Rollout record."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np
import torch

from a3c.networks import ActorCritic


@dataclass
class Episode:
    """A finished episode as the env's RecordEpisodeStatistics saw it (unshaped rewards)."""

    env_index: int
    episode_return: float
    length: int


@dataclass
class Rollout:
    """Time-major buffers [T, N, ...], reused between rollouts to keep the hot path allocation-free."""

    obs: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    values: np.ndarray
    next_values: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    episodes: list[Episode] = field(default_factory=list)

    @classmethod
    def empty(cls, T: int, envs: gym.vector.VectorEnv) -> Rollout:
        N = envs.num_envs
        obs_space, act_space = envs.single_observation_space, envs.single_action_space
        return cls(
            obs=np.zeros((T, N, *obs_space.shape), dtype=obs_space.dtype),
            actions=np.zeros((T, N, *act_space.shape), dtype=np.float32 if act_space.shape else np.int64),
            rewards=np.zeros((T, N), dtype=np.float32),
            values=np.zeros((T, N), dtype=np.float32),
            next_values=np.zeros((T, N), dtype=np.float32),
            terminated=np.zeros((T, N), dtype=bool),
            truncated=np.zeros((T, N), dtype=bool),
        )

    @property
    def num_steps(self) -> int:
        return self.rewards.size


class RolloutCollector:
    """Owns a batch of envs and their current observations; fills a Rollout per call."""

    def __init__(self, envs: gym.vector.VectorEnv, n_steps: int, seed: int):
        self.envs = envs
        self.rollout = Rollout.empty(n_steps, envs)
        self._final_values = np.zeros_like(self.rollout.values)  # V(final obs) where an episode ended
        self.obs, _ = envs.reset(seed=seed)
        space = envs.single_action_space
        self.clip = (space.low, space.high) if isinstance(space, gym.spaces.Box) else None

    @torch.no_grad()
    def collect(self, net: ActorCritic) -> Rollout:
        r = self.rollout
        r.episodes = []
        to_net, to_numpy = _converters(net)
        for t in range(len(r.rewards)):
            obs_t = to_net(self.obs)
            actions, values = net.act(obs_t)
            actions = to_numpy(actions)
            r.obs[t] = self.obs
            r.actions[t] = actions
            r.values[t] = to_numpy(values)
            env_actions = actions if self.clip is None else np.clip(actions, *self.clip)
            self.obs, rewards, terminated, truncated, info = self.envs.step(env_actions)
            r.rewards[t] = rewards
            r.terminated[t] = terminated
            r.truncated[t] = truncated
            if t > 0:
                r.next_values[t - 1] = r.values[t]
            if "final_obs" in info:
                self._episode_ends(t, info, net)
        r.next_values[-1] = to_numpy(net.value(to_net(self.obs)))
        # Where an episode ended, the value of the state after it is not the next row's value.
        ends = r.terminated | r.truncated
        if ends[:-1].any():
            ended_at = np.nonzero(ends[:-1])
            r.next_values[ended_at] = self._final_values[ended_at]
        if ends[-1].any():
            r.next_values[-1, ends[-1]] = self._final_values[-1, ends[-1]]
        return r

    def _episode_ends(self, t: int, info: dict, net: ActorCritic) -> None:
        r = self.rollout
        for i in np.flatnonzero(info["_final_obs"]):
            # A truncated episode bootstraps from its final observation's value; a terminal one from 0.
            if r.truncated[t, i] and not r.terminated[t, i]:
                final = torch.as_tensor(np.asarray(info["final_obs"][i], dtype=r.obs.dtype),
                                        device=net.value_head.weight.device)[None]
                self._final_values[t, i] = net.value(final).item()
            else:
                self._final_values[t, i] = 0.0
        final_info = info.get("final_info", {})
        if "episode" in final_info:
            stats, mask = final_info["episode"], final_info["_episode"]
            for i in np.flatnonzero(mask):
                r.episodes.append(Episode(int(i), float(stats["r"][i]), int(stats["l"][i])))


def _converters(
    net: ActorCritic,
) -> tuple[Callable[[np.ndarray], torch.Tensor], Callable[[torch.Tensor], np.ndarray]]:
    """NumPy to the net's device and back (A2C on a GPU); on the CPU no copy, as in the hot path."""
    device = net.value_head.weight.device
    if device.type == "cpu":
        return torch.from_numpy, torch.Tensor.numpy
    return (lambda a: torch.from_numpy(a).to(device)), (lambda t: t.cpu().numpy())
