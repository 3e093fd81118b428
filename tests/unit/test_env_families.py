"""Presets chosen from the env id's family, and one clear line when a family's package is missing."""

from __future__ import annotations

import subprocess
import sys
import warnings

import pytest

from a3c import A3C
from a3c.errors import A3CWarning, ConfigError
from a3c.presets import PRESETS, build_config, preset_for


@pytest.mark.parametrize("env_id, algo, core, preset", [
    ("CartPole-v1", "a3c", "none", "classic-control"),
    ("CartPole-v1", "a2c", "none", "classic-control-a2c"),
    ("ALE/Pong-v5", "a3c", "none", "atari"),
    ("PongNoFrameskip-v4", "a3c", "lstm", "atari-lstm"),
    ("ALE/Breakout-v5", "a2c", "none", "atari-a2c"),
    ("Pendulum-v1", "a3c", "none", "continuous-control"),
    ("InvertedPendulum-v5", "a2c", "none", "mujoco"),
    ("HalfCheetah-v5", "a3c", "none", "mujoco"),
    ("FrozenLake-v1", "a3c", "none", "toy-text"),  # Discrete observations
    ("Blackjack-v1", "a3c", "lstm", "toy-text"),  # a Tuple of Discrete parts
    ("tests.toy_envs:ToyMultiBinaryObs-v0", "a3c", "none", "toy-text"),  # a user's, by its spaces
    ("tests.toy_envs:ToyDictObs-v0", "a3c", "none", "classic-control"),  # a Box part among them
    ("Taxi-v4", "a2c", "none", "classic-control-a2c"),
    ("BipedalWalker-v3", "a3c", "none", "box2d"),
    ("CarRacing-v3", "a2c", "none", "box2d"),  # images, Box actions
    ("LunarLander-v3", "a3c", "none", "classic-control"),  # Box2D, discrete actions
])
def test_preset_follows_the_family(env_id, algo, core, preset):
    assert preset_for(env_id, algo, core) == preset


def test_env_kwargs_that_change_the_action_space_change_the_family():
    assert preset_for("LunarLander-v3", env_kwargs={"continuous": True}) == "box2d"
    cfg = build_config("LunarLander-v3", env_kwargs={"continuous": True})
    assert cfg.preset == "box2d" and cfg.gamma == 0.99 and cfg.gae_lambda == 0.95 and not cfg.use_sde


def test_normalisation_is_on_where_there_is_a_box_vector_to_normalise():
    assert build_config("MountainCar-v0").obs_norm  # its velocity is a hundredth of its position's scale
    cfg = build_config("FrozenLake-v1")  # one-hot: nothing to normalise, so no warning that it is off
    assert cfg.preset == "toy-text" and not cfg.obs_norm


def test_every_preset_cites_a_source_and_builds():
    for name, preset in PRESETS.items():
        assert len(preset.source) > 40, name
    cfg = build_config("Pendulum-v1", lr=1e-3)
    assert cfg.preset == "continuous-control" and cfg.obs_norm and cfg.lr == 1e-3  # CLI overrides win
    assert cfg.reward_scale == 0.1 and build_config("ALE/Pong-v5").lr_schedule == "linear"
    assert cfg.use_sde and not build_config("Pendulum-v1", use_sde=False).use_sde


def _fails_without(module: str, code: str) -> str:
    """Run code in a fresh interpreter where importing `module` fails; its stderr's last line."""
    out = subprocess.run(
        [sys.executable, "-c", f"import sys; sys.modules[{module!r}] = None\n{code}"],
        capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    return out.stderr.strip().splitlines()[-1]


def test_mujoco_id_without_mujoco_says_what_to_install():
    line = _fails_without("mujoco", "from a3c.envs.make import make_env; make_env('InvertedPendulum-v5')")
    assert line.startswith("a3c.errors.EnvError") and 'pip install "a3c[mujoco]"' in line


def test_box2d_id_without_box2d_says_what_to_install():
    line = _fails_without("Box2D", "from a3c.envs.make import make_env; make_env('BipedalWalker-v3')")
    assert line.startswith("a3c.errors.EnvError") and 'pip install "a3c[box2d]"' in line


def test_atari_id_without_ale_py_says_what_to_install():
    line = _fails_without("ale_py", "from a3c.envs.make import make_env; make_env('PongNoFrameskip-v4')")
    assert line.startswith("a3c.errors.EnvError") and 'pip install "a3c[atari]"' in line


def test_an_lstm_core_composes_with_any_preset():
    for env_id in ("CartPole-v1", "Pendulum-v1"):
        cfg = build_config(env_id, core="lstm")  # the presets give these separate torsos
        assert cfg.core == "lstm" and cfg.shared_torso
    with pytest.raises(ConfigError, match="shared_torso"):
        build_config("CartPole-v1", core="lstm", shared_torso=False)  # asked for both: say so


def test_obs_norm_that_a_preset_chose_gives_no_warning_and_one_asked_for_does():
    env = "tests.toy_envs:ToyDictObs-v0"  # a Box part beside parts obs_norm leaves alone
    with warnings.catch_warnings():
        warnings.simplefilter("error", A3CWarning)
        assert A3C(env, workers=1).policy.normalizer is not None  # classic-control's obs_norm
    with pytest.warns(A3CWarning, match="normalises the Box parts .* only"):
        A3C(env, preset="toy-text", obs_norm=True, workers=1)
