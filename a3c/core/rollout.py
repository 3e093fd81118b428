"""Collect T steps from a batch of envs with a policy, without autograd: the Rollout record."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np
import torch

from a3c.core.messages import Episode
from a3c.core.networks import ActorCritic, State, clone_state


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
    initial_state: State = None  # the network's state before the first step (None: feed-forward)

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

    def resets(self) -> np.ndarray:
        """bool [T, N]: where an episode ended at the step before, so the state starts afresh."""
        resets = np.zeros_like(self.terminated)
        resets[1:] = self.terminated[:-1] | self.truncated[:-1]
        return resets


class RolloutCollector:
    """Owns a batch of envs, their current observations and the network's state; fills a Rollout.

    The network's state (a recurrent core's; None for a feed-forward one) is carried from step to
    step and from rollout to rollout, and set back to the initial state where an episode ended,
    before the next episode's first step.
    """

    def __init__(self, envs: gym.vector.VectorEnv, n_steps: int, seed: int):
        self.envs = envs
        self.rollout = Rollout.empty(n_steps, envs)
        self._final_values = np.zeros_like(self.rollout.values)  # V(final obs) where an episode ended
        self.obs, _ = envs.reset(seed=seed)
        space = envs.single_action_space
        self.clip = (space.low, space.high) if isinstance(space, gym.spaces.Box) else None
        self.state: State = None

    @torch.no_grad()
    def collect(self, net: ActorCritic) -> Rollout:
        r = self.rollout
        r.episodes = []
        net.new_rollout(self.envs.num_envs)
        if self.state is None:  # the first rollout (a feed-forward network's state stays None)
            self.state = net.initial_state(self.envs.num_envs)
        r.initial_state = clone_state(self.state)
        to_net, to_numpy = _converters(net)
        for t in range(len(r.rewards)):
            actions, values, self.state = net.act(to_net(self.obs), self.state)
            self._step(t, to_numpy(actions), to_numpy(values), net)
        r.next_values[-1] = to_numpy(net.value(to_net(self.obs), self.state))
        # Where an episode ended, the value of the state after it is not the next row's value.
        ends = r.terminated | r.truncated
        if ends[:-1].any():
            ended_at = np.nonzero(ends[:-1])
            r.next_values[ended_at] = self._final_values[ended_at]
        if ends[-1].any():
            r.next_values[-1, ends[-1]] = self._final_values[-1, ends[-1]]
        return r

    def update_statistics(self, net: ActorCritic) -> None:
        """Merge the last rollout's observations into the network's running statistics.

        Called once the gradient is computed, not at the end of the rollout: acting and learning
        then see the same statistics, so the values behind the advantages are the values the loss
        differentiates.
        """
        obs = self.rollout.obs
        if net.normalizer is not None and np.isfinite(obs).all():  # a NaN would poison them for good
            net.normalizer.update(torch.from_numpy(obs))

    def _step(self, t: int, actions: np.ndarray, values: np.ndarray, net: ActorCritic) -> None:
        """Record step t's observation, action and value, step the envs, record what came back."""
        r = self.rollout
        r.obs[t] = self.obs
        r.actions[t] = actions
        r.values[t] = values
        env_actions = actions if self.clip is None else np.clip(actions, *self.clip)
        self.obs, r.rewards[t], r.terminated[t], r.truncated[t], info = self.envs.step(env_actions)
        if t > 0:
            r.next_values[t - 1] = r.values[t]
        if "final_obs" in info:
            self._episode_ends(t, info, net)

    def _episode_ends(self, t: int, info: dict, net: ActorCritic) -> None:
        r = self.rollout
        ended = info["_final_obs"]
        for i in np.flatnonzero(ended):
            # A truncated episode bootstraps from its final observation's value, which continues
            # the episode's own state; a terminal one from 0.
            if r.truncated[t, i] and not r.terminated[t, i]:
                final = torch.as_tensor(np.asarray(info["final_obs"][i], dtype=r.obs.dtype),
                                        device=net.device)[None]
                self._final_values[t, i] = net.value(final, net.state_at(self.state, i)).item()
            else:
                self._final_values[t, i] = 0.0
        self.state = net.reset_state(self.state, ended)
        final_info = info.get("final_info", {})
        if "episode" in final_info:
            stats, mask = final_info["episode"], final_info["_episode"]
            for i in np.flatnonzero(mask):
                r.episodes.append(Episode(int(i), float(stats["r"][i]), int(stats["l"][i])))


def _converters(
    net: ActorCritic,
) -> tuple[Callable[[np.ndarray], torch.Tensor], Callable[[torch.Tensor], np.ndarray]]:
    """NumPy to the net's device and back (A2C on a GPU); on the CPU no copy, as in the hot path."""
    device = net.device
    if device.type == "cpu":
        return torch.from_numpy, torch.Tensor.numpy
    return (lambda a: torch.from_numpy(a).to(device)), (lambda t: t.cpu().numpy())
