"""A learner's Atari games stepped as one batch in C++ by ale-py's AtariVectorEnv.

The emulator, the no-op starts, the FIRE press at reset, the frame skip with its max-pool, the
84x84 grayscale and the frame stack all run in ale-py's threads, without a Python wrapper per game.
AtariBatch adds, in NumPy over the whole batch, what the wrapper pipeline adds above its episode
statistics (envs/atari.py): whole-game scores and lengths, a lost life as `terminated` for the
learner while the game goes on, and rewards clipped to [-1, 1]; and it speaks the interface the
rollout collector takes from gymnasium's vector envs with same-step autoreset.

Steps are counted as the wrapper pipeline counts them: one per agent action. A reset's FIRE frame
and no-op frames are part of the reset, not steps; after a lost life nothing is pressed for the
agent, so a game's length in the episode log is the number of actions the learner took in it.
"""

from __future__ import annotations

import time
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.envs.registration import EnvSpec
from gymnasium.vector import AutoresetMode

from a3c.envs.atari import FRAME_SKIP, FRAME_STACK, INSTALL_HINT, NOOP_MAX, SCREEN_SIZE
from a3c.errors import EnvError

MAX_FRAMES = 108_000  # ale-py's registrations for v0, v4 and v5: 30 minutes of play, then truncated


class AtariBatch:
    """num_envs games of one Atari id, as the learner sees them; the vector-env interface.

    reset(seed) seeds game i with seed + i. step(actions) returns the observations [N, 4, 84, 84]
    uint8 (a game that ended is already reset: same-step autoreset), clipped rewards, `terminated`
    (the game ended, or a life was lost), `truncated` (108,000 frames), and where anything ended
    info['final_obs'] / info['_final_obs']; where a whole game ended, info['final_info']['episode']
    with its unclipped score 'r', its length 'l' in agent steps and its time 't', masked by
    info['final_info']['_episode'], as gymnasium's RecordEpisodeStatistics reports them.
    """

    def __init__(self, spec: EnvSpec, num_envs: int, *, num_threads: int, noop_max: int = NOOP_MAX,
                 **overrides: Any):
        """spec: the Atari id's registration (its game, sticky actions, action set, frame limit);
        num_threads: ale-py's threads for this batch (set it: its default counts the host's cores,
        not those this process may use); overrides: repeat_action_probability, full_action_space."""
        try:
            from ale_py.vector_env import AtariVectorEnv
        except ImportError:
            raise EnvError(f"ale-py's AtariVectorEnv is missing (ale-py 0.12 has it): "
                           f"{INSTALL_HINT}; or learn through the wrappers with vec_env sync") from None
        if num_threads < 1:
            raise EnvError(f"num_threads must be at least 1, got {num_threads}")
        game = {**spec.kwargs, **overrides}
        self.env_id = spec.id
        self.repeat_action_probability = float(game.get("repeat_action_probability", 0.0))
        try:
            self._games = AtariVectorEnv(
                game["game"], num_envs, num_threads=num_threads,
                autoreset_mode=AutoresetMode.SAME_STEP,
                repeat_action_probability=self.repeat_action_probability,
                full_action_space=bool(game.get("full_action_space", False)),
                max_num_frames_per_episode=int(game.get("max_num_frames_per_episode") or MAX_FRAMES),
                img_height=SCREEN_SIZE, img_width=SCREEN_SIZE, grayscale=True, stack_num=FRAME_STACK,
                frameskip=FRAME_SKIP, maxpool=True, noop_max=noop_max, use_fire_reset=True,
                episodic_life=False, life_loss_info=False, reward_clipping=False,  # ours, below
            )
        except (TypeError, ValueError, RuntimeError, gym.error.Error) as exc:
            raise EnvError(f"{spec.id}: ale-py's AtariVectorEnv refused it ({exc}); it needs "
                           "ale-py >= 0.12, or learn through the wrappers with vec_env sync") from None
        self.num_envs = num_envs
        self.num_threads = num_threads
        self.single_observation_space = self._games.single_observation_space
        self.single_action_space = self._games.single_action_space
        self.lives = np.zeros(num_envs, dtype=np.int64)
        self.episode_returns = np.zeros(num_envs, dtype=np.float64)
        self.episode_lengths = np.zeros(num_envs, dtype=np.int64)
        self.episode_start = np.zeros(num_envs, dtype=np.float64)

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        """Start every game afresh (seeded seed, seed + 1, ...); the episode statistics too."""
        obs, info = self._games.reset(seed=seed)
        self.lives[:] = info["lives"]
        self.episode_returns[:] = 0.0
        self.episode_lengths[:] = 0
        self.episode_start[:] = time.perf_counter()
        return obs, {}

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        obs, rewards, game_over, truncated, info = self._games.step(actions)
        self.episode_returns += rewards
        self.episode_lengths += 1
        ended = game_over | truncated  # the game itself ended, and ale-py has reset it
        lives = info["lives"]  # of the new game where one ended
        life_lost = (lives < self.lives) & (lives > 0) & ~ended
        self.lives[:] = lives
        terminated = game_over | life_lost
        out: dict[str, Any] = {}
        if ended.any() or life_lost.any():
            # ale-py's final_obs holds every game's last observation, the current one where the
            # game goes on, so it is right for a lost life too; without a reset it is not sent.
            out["final_obs"] = info.get("final_obs", obs)
            out["_final_obs"] = ended | life_lost
        if ended.any():
            now = time.perf_counter()
            out["final_info"] = {
                "episode": {"r": self.episode_returns.copy(), "l": self.episode_lengths.copy(),
                            "t": np.round(now - self.episode_start, 6)},
                "_episode": ended,
            }
            out["_final_info"] = ended
            self.episode_returns[ended] = 0.0
            self.episode_lengths[ended] = 0
            self.episode_start[ended] = now
        return obs, np.clip(rewards, -1, 1).astype(np.float32), terminated, truncated, out

    def get_attr(self, name: str) -> tuple[Any, ...]:
        """Per-game values of the episode statistics ('episode_lengths', 'episode_returns'), as
        gymnasium's vector envs give their sub-envs' RecordEpisodeStatistics attributes."""
        if name not in ("episode_lengths", "episode_returns"):
            raise AttributeError(f"AtariBatch has no per-game attribute {name!r}")
        return tuple(getattr(self, name).tolist())

    def close(self) -> None:
        """ale-py's threads end when its vector env is freed; it has no close of its own."""
        self._games = None  # type: ignore[assignment]
