"""The two Atari pipelines give the learner the same game, and every step of it is counted once.

Learning steps Atari games in ale-py's C++ AtariVectorEnv (a3c/envs/atari_batch.py); evaluation,
rendering and video play them through Gymnasium's wrappers (a3c/envs/atari.py). What "the same"
can mean depends on where randomness enters:

- The emulator is deterministic. A NoFrameskip-v4 game has no sticky actions, so with the no-op
  starts off a game is fixed by its actions alone: the two pipelines must then agree exactly, frame
  for frame, in everything the learner sees (observations, clipped rewards, lives lost, final
  observations) and in the episode log (whole-game scores and lengths).
- The no-op count and the sticky actions come from each pipeline's own generators (NumPy's in
  Gymnasium, std::mt19937 and ALE's in ale-py), seeded differently from the same seed, so with them
  on the same seed plays different games. There the two must agree in distribution: over many
  games of a fixed (seeded, uniformly random) policy, the mean score and the mean length within
  four standard errors of their difference.
"""

from __future__ import annotations

import csv
import functools

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

pytest.importorskip("ale_py")
pytest.importorskip("cv2")

from a3c import A2C, A3C  # noqa: E402
from a3c.config import usable_cores  # noqa: E402
from a3c.envs.atari_batch import AtariBatch  # noqa: E402
from a3c.envs.make import _find_spec, make_env, make_training_envs  # noqa: E402
from a3c.errors import ConfigError  # noqa: E402
from a3c.presets import build_config  # noqa: E402
from a3c.run.checkpoint import load_checkpoint  # noqa: E402


def wrapper_games(env_id: str, n: int, noop_max: int) -> gym.vector.VectorEnv:
    """What make_training_envs builds with vec_env sync, with the no-op starts as given."""
    make = functools.partial(make_env, env_id, training=True, noop_max=noop_max)
    return gym.vector.SyncVectorEnv([make] * n, autoreset_mode=AutoresetMode.SAME_STEP)


def vector_games(env_id: str, n: int, noop_max: int) -> AtariBatch:
    """What make_training_envs builds with vec_env ale, with the no-op starts as given."""
    return AtariBatch(_find_spec(env_id, env_id), n, num_threads=1, noop_max=noop_max)


def episodes(info: dict) -> dict[int, tuple[float, int]]:
    """{env index: (score, length)} of the whole games that ended at this step."""
    final = info.get("final_info", {})
    if "episode" not in final:
        return {}
    stats = final["episode"]
    return {int(i): (float(stats["r"][i]), int(stats["l"][i])) for i in np.flatnonzero(final["_episode"])}


@pytest.mark.parametrize("env_id, steps", [("BreakoutNoFrameskip-v4", 800),
                                           ("SpaceInvadersNoFrameskip-v4", 1500)])
def test_without_no_op_starts_both_pipelines_give_the_learner_the_same_game_frame_for_frame(env_id, steps):
    """Breakout waits for FIRE after each of its 5 lives; SpaceInvaders scores 5-30 points a hit."""
    old, new = wrapper_games(env_id, 2, noop_max=0), vector_games(env_id, 2, noop_max=0)
    obs_old, _ = old.reset(seed=0)
    obs_new, _ = new.reset(seed=0)
    assert np.array_equal(obs_old, obs_new)
    rng = np.random.default_rng(0)
    lives_lost, games = 0, []
    for t in range(steps):
        actions = rng.integers(new.single_action_space.n, size=2)
        *seen_old, info_old = old.step(actions)
        *seen_new, info_new = new.step(actions)
        for name, a, b in zip(("obs", "reward", "terminated", "truncated"), seen_old, seen_new, strict=True):
            assert np.array_equal(a, b), f"step {t}: {name} differs: {a} and {b}"
        assert ("final_obs" in info_old) == ("final_obs" in info_new), f"step {t}"
        if "final_obs" in info_new:
            ended = info_new["_final_obs"]
            assert np.array_equal(info_old["_final_obs"], ended), f"step {t}"
            for i in np.flatnonzero(ended):
                assert np.array_equal(info_old["final_obs"][i], info_new["final_obs"][i]), f"step {t}"
        assert episodes(info_old) == episodes(info_new), f"step {t}"
        ended = episodes(info_new)
        games += ended.values()
        lives_lost += int(seen_new[2].sum()) - len(ended)  # terminated, and the game goes on
    assert len(games) >= 4 and lives_lost >= 2 * len(games)  # whole games, with lives lost in each
    assert old.get_attr("episode_lengths") == new.get_attr("episode_lengths")  # the games still running
    old.close()
    new.close()


@pytest.mark.parametrize("pipeline", [wrapper_games, vector_games])
@pytest.mark.parametrize("env_id, sticky", [("BreakoutNoFrameskip-v4", False), ("ALE/Breakout-v5", True)])
def test_v5_ids_have_sticky_actions_and_v4_ids_none_in_both_pipelines(pipeline, env_id, sticky):
    """Two games seeded differently, no no-ops, the same actions: only sticky actions can part them."""
    games = pipeline(env_id, 2, noop_max=0)
    games.reset(seed=0)  # game 0 seeded 0, game 1 seeded 1
    rng = np.random.default_rng(0)
    parted = False
    for _ in range(300):
        obs, *_ = games.step(np.full(2, rng.integers(games.single_action_space.n)))
        parted = parted or not np.array_equal(obs[0], obs[1])
    games.close()
    assert parted == sticky


def test_with_no_op_starts_and_sticky_actions_both_pipelines_score_alike_and_last_as_long():
    """ALE/Breakout-v5 as the atari preset learns it (8 envs), 32 whole games each of a random policy."""
    n_games = 32
    results = {}
    for vec_env in ("ale", "sync"):
        envs = make_training_envs(build_config("ALE/Breakout-v5", n_envs=8, vec_env=vec_env), seed=0)
        envs.reset(seed=0)
        rng = np.random.default_rng(0)
        games: list[tuple[float, int]] = []
        while len(games) < n_games:
            *_, info = envs.step(rng.integers(envs.single_action_space.n, size=8))
            games += episodes(info).values()
        envs.close()
        results[vec_env] = np.array(games[:n_games], dtype=float)
    for column, what in ((0, "score"), (1, "length")):
        a, b = results["ale"][:, column], results["sync"][:, column]
        se = np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
        assert abs(a.mean() - b.mean()) <= 4 * se, \
            f"mean {what}: {a.mean():.2f} and {b.mean():.2f} (standard error {se:.2f})"
    assert (results["ale"][:, 0] == np.round(results["ale"][:, 0])).all()  # points, unclipped and whole


@pytest.mark.parametrize("algo, vec_env", [("a3c", "ale"), ("a2c", "sync")])
def test_every_step_of_an_atari_run_is_counted_once(tmp_path, algo, vec_env):
    """The step counter, the episode log (plus the games still running at the end) and the final
    checkpoint agree, on a game with lives and FIRE, through either pipeline (tests/integration/
    test_atari.py checks the same on Pong for A2C and the LSTM agent through ale-py's)."""
    if algo == "a3c":
        model = A3C("BreakoutNoFrameskip-v4", workers=2, n_envs=4, vec_env=vec_env, seed=0, verbose=0,
                    eval_interval=0, final_eval_episodes=0, checkpoint_interval=0)
    else:
        model = A2C("BreakoutNoFrameskip-v4", n_envs=4, vec_env=vec_env, seed=0, verbose=0,
                    eval_interval=0, final_eval_episodes=0, checkpoint_interval=0)
    model.learn(total_steps=2_400, run_dir=tmp_path)
    result = model.last_result
    with open(tmp_path / "episodes.csv") as f:
        games = list(csv.DictReader(f))
    assert len(games) >= 4
    logged = sum(int(g["episode_length"]) for g in games)
    assert logged + result.unfinished_steps == result.steps >= 2_400
    assert load_checkpoint(tmp_path / "model.safetensors").counters["steps"] == result.steps


def test_the_atari_presets_learn_through_ale_py_with_its_threads_set():
    a3c_envs = make_training_envs(build_config("ALE/Pong-v5"), seed=0)
    a2c_envs = make_training_envs(build_config("ALE/Pong-v5", algo="a2c", n_envs=4), seed=0)
    assert isinstance(a3c_envs, AtariBatch) and a3c_envs.num_envs == 8 and a3c_envs.num_threads == 1
    assert a3c_envs.repeat_action_probability == 0.25
    assert isinstance(a2c_envs, AtariBatch) and a2c_envs.num_threads == min(usable_cores(), 4)
    obs, _ = a3c_envs.reset(seed=0)
    assert obs.shape == (8, 4, 84, 84) and obs.dtype == np.uint8
    a3c_envs.close()
    a2c_envs.close()
    v4 = make_training_envs(build_config("PongNoFrameskip-v4"), seed=0)
    assert v4.repeat_action_probability == 0.0
    v4.close()
    with pytest.raises(ConfigError, match="vec_env ale steps Atari games"):
        build_config("CartPole-v1", vec_env="ale")
