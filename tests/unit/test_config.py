"""One configuration, validated once: every bad value is a ConfigError that names its field."""

import dataclasses
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from a3c.config import ACTIVATIONS, ALGOS, LR_SCHEDULES, MAX_ENVS, MAX_WIDTH, MAX_WORKERS, OPTIMIZERS, Config
from a3c.errors import ConfigError, EnvError
from a3c.presets import PRESETS, build_config

FIELDS = {f.name: f for f in dataclasses.fields(Config)}


def valid(**changes) -> Config:
    return Config(env_id="CartPole-v1", **changes).validated()


def test_defaults_are_valid():
    cfg = valid()
    assert cfg.workers == 0 and cfg.resolved_workers() >= 1


@pytest.mark.parametrize("name, value", [
    ("workers", -1), ("total_steps", 0), ("total_steps", -5), ("max_seconds", 0.0), ("max_seconds", -1),
    ("n_steps", 0), ("gamma", 1.5), ("gamma", -0.1), ("gae_lambda", 1.01), ("entropy_coef", -0.01),
    ("value_coef", -1), ("max_grad_norm", -0.5), ("lr", 0), ("lr", -1e-3), ("adam_eps", 0),
    ("rms_alpha", 1.0), ("rms_eps", 0), ("hidden_sizes", ()), ("hidden_sizes", (64, 0)),
    ("eval_interval", -1), ("eval_episodes", 0), ("final_eval_episodes", -1),
    ("checkpoint_interval", -1), ("log_interval", 0), ("algo", "ppo"), ("optimizer", "sgd"),
    ("lr_schedule", "cosine"), ("activation", "swish"), ("gamma", math.nan), ("lr", math.inf),
    ("seed", -1), ("hidden_sizes", (64, MAX_WIDTH + 1)), ("policy_sizes", (2**31 - 1,)),
    ("value_sizes", (0,)), ("conv_hidden", MAX_WIDTH + 1), ("core_size", MAX_WIDTH + 1),
    ("workers", 2**32), ("workers", MAX_WORKERS + 1), ("n_envs", MAX_ENVS + 1),
    ("conv_precision", "float16"), ("sde_sample_freq", -1),
])
def test_bad_values_name_their_field(name, value):
    with pytest.raises(ConfigError, match=name):
        valid(**{name: value})


def test_an_sde_sample_freq_without_state_dependent_noise_says_to_set_use_sde():
    with pytest.raises(ConfigError, match="set use_sde true"):
        valid(sde_sample_freq=16)
    assert valid(sde_sample_freq=16, use_sde=True).sde_sample_freq == 16


@pytest.mark.parametrize("name, value", [
    ("workers", "2"), ("workers", 2.0), ("workers", True), ("lr", "abc"), ("lr", None), ("gamma", True),
    ("shared_torso", 1), ("hidden_sizes", [64, 64]), ("hidden_sizes", (64.0,)), ("hidden_sizes", (True,)),
    ("max_seconds", "10"), ("run_dir", 5), ("preset", 1),
])
def test_wrong_types_name_their_field(name, value):
    with pytest.raises(ConfigError, match=f"{name} must be"):
        valid(**{name: value})


def test_env_id_is_required_and_a_string():
    with pytest.raises(ConfigError, match="env_id"):
        Config().validated()
    with pytest.raises(ConfigError, match="env_id must be"):
        Config(env_id=3).validated()


def test_seed_range():
    assert valid(seed=0).seed == 0 and valid(seed=2**31 - 1).seed == 2**31 - 1
    with pytest.raises(ConfigError, match="seed"):
        valid(seed=2**32)


def test_ints_are_accepted_for_floats_and_none_for_optionals():
    cfg = valid(lr=1, gamma=1, max_seconds=None, target_return=None, run_dir=None)
    assert cfg.lr == 1 and cfg.gamma == 1


def test_from_dict_refuses_hidden_sizes_that_are_not_a_list():
    with pytest.raises(ConfigError, match="hidden_sizes"):
        Config.from_dict({"env_id": "CartPole-v1", "hidden_sizes": 64})


def test_env_id_given_twice_is_a_config_error_not_a_type_error():
    with pytest.raises(ConfigError, match="env_id is given twice"):
        build_config("CartPole-v1", env_id="Acrobot-v1")
    with pytest.raises(ConfigError, match="env_id is given twice"):
        build_config("CartPole-v1", env_id=3)
    assert build_config("CartPole-v1", env_id="CartPole-v1").env_id == "CartPole-v1"
    with pytest.raises(ConfigError, match="unknown preset ''"):
        build_config("CartPole-v1", preset="")  # not silently the default one


@pytest.mark.parametrize("name, value", [
    ("keep_checkpoints", 0), ("max_restarts", -1), ("max_skipped_updates", 0), ("run_dir", " "),
])
def test_fault_options_name_their_field(name, value):
    with pytest.raises(ConfigError, match=name):
        valid(**{name: value})


def test_unknown_keys_are_refused():
    with pytest.raises(ConfigError, match="bogus"):
        Config.from_dict({"env_id": "CartPole-v1", "bogus": 1})
    with pytest.raises(ConfigError, match="bogus"):
        build_config("CartPole-v1", bogus=1)


def test_dict_round_trip():
    cfg = valid(hidden_sizes=(32, 16), lr=3e-4, max_seconds=12.5)
    d = cfg.to_dict()
    assert d["hidden_sizes"] == [32, 16]  # JSON-friendly
    assert Config.from_dict(d) == cfg


def test_preset_values_then_overrides():
    cfg = build_config("CartPole-v1")
    assert cfg.preset == "classic-control"
    for key, value in PRESETS["classic-control"].values.items():
        assert getattr(cfg, key) == value, key
    cfg = build_config("CartPole-v1", lr=5e-4, n_steps=7)
    assert (cfg.lr, cfg.n_steps) == (5e-4, 7)
    assert cfg.gamma == PRESETS["classic-control"].values["gamma"]
    with pytest.raises(ConfigError, match="preset"):
        build_config("CartPole-v1", preset="no-such-preset")
    with pytest.raises(ConfigError, match="lr"):
        build_config("CartPole-v1", lr=-1.0)


@pytest.mark.parametrize("env_id, threshold", [
    ("CartPole-v1", 475.0), ("Acrobot-v1", -100.0), ("Pendulum-v1", None),
])
def test_target_return_defaults_to_the_envs_reward_threshold(env_id, threshold):
    assert build_config(env_id).target_return == threshold


def test_an_unknown_env_id_is_named_while_the_config_is_built():
    # before the network, the processes or torch are made or imported
    with pytest.raises(EnvError, match="NoSuchEnv-v0"):
        build_config("NoSuchEnv-v0")


def test_explicit_target_return_wins_even_when_none():
    assert build_config("CartPole-v1", target_return=200).target_return == 200
    assert build_config("CartPole-v1", target_return=None).target_return is None


# --- property: anything goes in, only a ConfigError or a config that keeps every promise comes out ---

def _values_for(name: str) -> st.SearchStrategy:
    choices = {"algo": ALGOS, "optimizer": OPTIMIZERS, "activation": ACTIVATIONS,
               "lr_schedule": LR_SCHEDULES}
    if "choices" in FIELDS[name].metadata:
        choices[name] = FIELDS[name].metadata["choices"]
    junk = st.one_of(
        st.none(), st.booleans(), st.integers(-10**20, 10**20), st.floats(), st.text(max_size=6),
        st.tuples(st.integers(-5, 300)), st.lists(st.integers(-5, 300), max_size=3),
        st.tuples(st.integers(1, 300), st.integers(1, 300)), st.floats(0, 1), st.integers(0, 100),
    )
    if name in choices:
        return st.one_of(st.sampled_from(choices[name]), junk)
    return junk


CHANGES = st.fixed_dictionaries({}, optional={
    name: _values_for(name) for name in FIELDS if name not in ("env_id", "preset")
})


def keeps_documented_constraints(cfg: Config) -> None:
    assert isinstance(cfg.env_id, str) and cfg.env_id
    assert cfg.algo in ALGOS and cfg.optimizer in OPTIMIZERS
    assert cfg.activation in ACTIVATIONS and cfg.lr_schedule in LR_SCHEDULES
    for name in ("workers", "seed", "total_steps", "n_steps", "eval_interval", "eval_episodes",
                 "final_eval_episodes", "checkpoint_interval"):
        value = getattr(cfg, name)
        assert isinstance(value, int) and not isinstance(value, bool), name
    for name in ("gamma", "gae_lambda", "entropy_coef", "value_coef", "max_grad_norm", "lr", "adam_eps",
                 "rms_alpha", "rms_eps", "log_interval"):
        value = getattr(cfg, name)
        assert isinstance(value, int | float) and not isinstance(value, bool), name
        assert math.isfinite(value), name
    assert cfg.workers >= 0 and cfg.resolved_workers() >= 1
    assert 0 <= cfg.seed < 2**32 - cfg.resolved_workers()  # numpy and gymnasium take seed + rank
    assert cfg.total_steps > 0 and cfg.n_steps > 0
    assert cfg.max_seconds is None or (math.isfinite(cfg.max_seconds) and cfg.max_seconds > 0)
    assert cfg.target_return is None or math.isfinite(cfg.target_return)
    assert 0 <= cfg.gamma <= 1 and 0 <= cfg.gae_lambda <= 1
    assert cfg.entropy_coef >= 0 and cfg.value_coef >= 0 and cfg.max_grad_norm >= 0
    assert cfg.lr > 0 and cfg.adam_eps > 0 and cfg.rms_eps > 0 and 0 <= cfg.rms_alpha < 1
    assert isinstance(cfg.hidden_sizes, tuple) and len(cfg.hidden_sizes) > 0
    for name in ("hidden_sizes", "policy_sizes", "value_sizes"):
        assert all(isinstance(h, int) and not isinstance(h, bool) and 0 < h <= MAX_WIDTH
                   for h in getattr(cfg, name)), name
    assert 0 <= cfg.conv_hidden <= MAX_WIDTH and 0 < cfg.core_size <= MAX_WIDTH
    assert cfg.eval_interval >= 0 and cfg.eval_episodes > 0 and cfg.final_eval_episodes >= 0
    assert cfg.checkpoint_interval >= 0 and cfg.log_interval > 0
    assert isinstance(cfg.shared_torso, bool)
    assert cfg.run_dir is None or (isinstance(cfg.run_dir, str) and cfg.run_dir.strip())
    for name in ("keep_checkpoints", "max_restarts", "max_skipped_updates"):
        value = getattr(cfg, name)
        assert isinstance(value, int) and not isinstance(value, bool), name
    assert cfg.keep_checkpoints > 0 and cfg.max_restarts >= 0 and cfg.max_skipped_updates > 0


def accept_or_config_error(make) -> None:
    try:
        cfg = make()
    except ConfigError:
        return
    keeps_documented_constraints(cfg)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(CHANGES)
def test_random_values_give_a_config_error_or_a_config_that_keeps_its_promises(changes):
    accept_or_config_error(lambda: Config(env_id="CartPole-v1", **changes).validated())
    accept_or_config_error(lambda: Config.from_dict({"env_id": "CartPole-v1", **changes}))
    accept_or_config_error(lambda: build_config("CartPole-v1", **changes))
