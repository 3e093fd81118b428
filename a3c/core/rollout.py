"""Collect T steps from a batch of envs with a policy, without autograd: the Rollout record."""

from __future__ import annotations

from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np
import torch

from a3c.core.acting import NetworkActing, Observations, acting_for, as_tensors
from a3c.core.messages import Episode
from a3c.core.networks import ActorCritic, State, clone_state
from a3c.core.packed import PackedMLP
from a3c.core.torsos import Observation, Trace
from a3c.spaces import action_converter, action_spec, batch_of_one, observation_parts, split_observation


def observation_buffer(T: int, N: int, space: gym.Space) -> Observations:
    """Zeros [T, N, ...] for an observation space: one array, or a dict of one per part (Dict and
    Tuple spaces, a3c.spaces), each of its part's dtype."""
    parts = observation_parts(space)
    if len(parts) == 1 and parts[0].key == "":
        return np.zeros((T, N, *parts[0].shape), dtype=parts[0].dtype)
    return {p.key: np.zeros((T, N, *p.shape), dtype=p.dtype) for p in parts}


@dataclass
class Rollout:
    """Time-major buffers [T, N, ...], reused between rollouts to keep the hot path allocation-free.

    obs is one array, or a dict of arrays by part for Dict and Tuple observation spaces; actions
    are the network's (a3c.core.networks.ActorCritic.act), not yet the env's.
    """

    obs: Observations
    actions: np.ndarray
    rewards: np.ndarray
    values: np.ndarray
    next_values: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    episodes: list[Episode] = field(default_factory=list)
    initial_state: State = None  # the network's state before the first step (None: feed-forward)
    trace: Trace | None = None  # the acting passes' torso outputs, where the network replays them
    packed: PackedMLP | None = None  # the packed network that acted, whose weights the update differentiates

    @classmethod
    def empty(cls, T: int, envs: gym.vector.VectorEnv) -> Rollout:
        N = envs.num_envs
        action = action_spec(envs.single_action_space)
        integer = action.kind in ("discrete", "multi_discrete")
        return cls(
            obs=observation_buffer(T, N, envs.single_observation_space),
            actions=np.zeros((T, N) if action.kind == "discrete" else (T, N, action.dim),
                             dtype=np.int64 if integer else np.float32),
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

    def __init__(self, envs: gym.vector.VectorEnv, n_steps: int, seed: int, sde_sample_freq: int = 0):
        self.envs = envs
        self.sde_sample_freq = sde_sample_freq  # 0: fresh exploration noise at each rollout's start
        self.steps_to_noise = 0  # sde_sample_freq > 0: steps left before the next fresh draw
        self.rollout = Rollout.empty(n_steps, envs)
        self._final_values = np.zeros_like(self.rollout.values)  # V(final obs) where an episode ended
        self.parts = observation_parts(envs.single_observation_space)
        self.structured = isinstance(self.rollout.obs, dict)
        self.obs = self._observation(envs.reset(seed=seed)[0])
        self.to_env = action_converter(envs.single_action_space)  # None: the network's actions are the env's
        self.state: State = None
        self.running_returns: np.ndarray | None = None  # reward_norm: each env's discounted return so far
        self._acting_with: tuple[ActorCritic, PackedMLP | NetworkActing] | None = None

    def _acting(self, net: ActorCritic) -> PackedMLP | NetworkActing:
        """How to act with net on these envs, worked out once per network."""
        if self._acting_with is None or self._acting_with[0] is not net:
            self._acting_with = (net, acting_for(net, self.envs.num_envs))
        return self._acting_with[1]

    def _observation(self, obs: object) -> Observations:
        return split_observation(obs, self.parts) if self.structured else obs

    @torch.no_grad()
    def collect(self, net: ActorCritic) -> Rollout:
        r = self.rollout
        r.episodes = []
        if not self.sde_sample_freq:
            net.resample_noise(self.envs.num_envs)
        if self.state is None:  # the first rollout (a feed-forward network's state stays None)
            self.state = net.initial_state(self.envs.num_envs)
        r.initial_state = clone_state(self.state)
        r.trace = Trace() if net.replays_torso else None
        acting = self._acting(net)
        acting.start(len(r.rewards))  # the weights stay as they are until the rollout's update
        r.packed = acting if isinstance(acting, PackedMLP) else None
        for t in range(len(r.rewards)):
            if self.sde_sample_freq:
                self._count_noise_step(net)
            actions, values, self.state = acting.act(self.obs, self.state, r.trace)
            self._step(t, actions, values, net)
        r.next_values[-1] = acting.value(self.obs, self.state)
        # Where an episode ended, the value of the state after it is not the next row's value.
        ends = r.terminated | r.truncated
        if ends[:-1].any():
            ended_at = np.nonzero(ends[:-1])
            r.next_values[ended_at] = self._final_values[ended_at]
        if ends[-1].any():
            r.next_values[-1, ends[-1]] = self._final_values[-1, ends[-1]]
        return r

    def _count_noise_step(self, net: ActorCritic) -> None:
        """Draw fresh noise every sde_sample_freq steps, whether or not a rollout ends between."""
        if self.steps_to_noise == 0:
            net.resample_noise(self.envs.num_envs)
            self.steps_to_noise = self.sde_sample_freq
        self.steps_to_noise -= 1

    def update_statistics(self, net: ActorCritic, gamma: float) -> None:
        """Merge the last rollout's observations (and, with reward_norm, its returns discounted by
        gamma) into the network's running statistics.

        Called once the gradient is computed, not at the end of the rollout: acting and learning
        then see the same statistics, so the values behind the advantages are the values the loss
        differentiates.
        """
        net.observe(self.rollout.obs)  # its Box parts, unless they hold NaN or inf
        if net.return_normalizer is not None:
            r = self.rollout
            start = self.running_returns if self.running_returns is not None else np.zeros(r.rewards.shape[1])
            self.running_returns = net.return_normalizer.observe(start, r.rewards, r.terminated | r.truncated,
                                                                 gamma)

    def _step(self, t: int, actions: np.ndarray, values: np.ndarray, net: ActorCritic) -> None:
        """Record step t's observation, action and value, step the envs, record what came back."""
        r = self.rollout
        if self.structured:
            for key, buffer in r.obs.items():
                buffer[t] = self.obs[key]
        else:
            r.obs[t] = self.obs
        r.actions[t] = actions
        r.values[t] = values
        env_actions = actions if self.to_env is None else self.to_env(actions)
        obs, r.rewards[t], r.terminated[t], r.truncated[t], info = self.envs.step(env_actions)
        self.obs = split_observation(obs, self.parts) if self.structured else obs
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
                final = self._final_observation(info["final_obs"][i], net.device)
                self._final_values[t, i] = net.value(final, net.state_at(self.state, i)).item()
            else:
                self._final_values[t, i] = 0.0
        self.state = net.reset_state(self.state, ended)
        final_info = info.get("final_info", {})
        if "episode" in final_info:
            stats, mask = final_info["episode"], final_info["_episode"]
            for i in np.flatnonzero(mask):
                r.episodes.append(Episode(int(i), float(stats["r"][i]), int(stats["l"][i])))


    def _final_observation(self, obs: object, device: torch.device) -> Observation:
        """One env's last observation of an episode, as a batch of one for the network."""
        r = self.rollout
        if isinstance(r.obs, dict):
            parts = split_observation(obs, self.parts)
            batch = batch_of_one({k: np.asarray(v, dtype=r.obs[k].dtype) for k, v in parts.items()})
        else:
            batch = batch_of_one(np.asarray(obs, dtype=r.obs.dtype))
        return as_tensors(batch, device)


