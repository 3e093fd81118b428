"""Named hyper-parameter sets per environment family, each saying where its values come from."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import gymnasium as gym

from a3c.config import Config, check_field
from a3c.envs import atari
from a3c.envs.make import make_env, reward_threshold
from a3c.errors import A3CError, ConfigError
from a3c.spaces import observation_parts


@dataclass(frozen=True)
class Preset:
    description: str
    source: str
    values: dict[str, Any]


# What the two discrete-action MLP presets share; classic control adds observation normalisation.
_DISCRETE_MLP: dict[str, Any] = dict(
    n_envs=4, n_steps=10, gamma=0.99, lr=1e-3, optimizer="adam", entropy_coef=0.001, value_coef=0.5,
    max_grad_norm=0.5, hidden_sizes=(64, 64), activation="tanh", shared_torso=False,
    total_steps=1_000_000, eval_interval=50_000, eval_episodes=10,
)

# What the continuous-action presets share; they differ in horizon and exploration.
_GAUSSIAN_MLP: dict[str, Any] = dict(
    n_envs=8, n_steps=8, lr=1e-3, lr_schedule="linear", optimizer="adam", entropy_coef=0.0,
    value_coef=0.4, max_grad_norm=0.5, reward_scale=0.1, hidden_sizes=(64, 64), activation="tanh",
    shared_torso=False, obs_norm=True, total_steps=1_000_000, eval_interval=50_000, eval_episodes=10,
)

# Locomotion's and landing's horizon: hundreds of steps between an action and its reward.
_LONG_HORIZON: dict[str, Any] = dict(gamma=0.99, gae_lambda=0.95)

PRESETS: dict[str, Preset] = {
    "classic-control": Preset(
        description="discrete classic control (CartPole, Acrobot, ...): small MLPs, Adam",
        source="tuned on CartPole-v1 with benchmarks/time_to_solve.py (2 workers): separate policy "
        "and value torsos, T=10 and entropy 0.001 reached a training return of 475 on every seed "
        "tried, where a shared torso with T=20 and entropy 0.01 did not; 4 envs per worker, stepped "
        "as one batch, cut the CPU cost per step (benchmarks/cpu_cost.py) and the time to 475 "
        "(benchmarks/results/time_to_solve-CartPole-v1-4envs-idle.md); lr 2e-3 was faster but "
        "unstable late in a 200k-step run. Observation normalisation as rl-baselines3-zoo's "
        "a2c.yml has for Acrobot-v1 and MountainCar-v0 (normalize): MountainCar's velocity is a "
        "hundredth of its position's scale, and with it MountainCar-v0 went from -200 to -113 at 1M "
        "steps and Acrobot-v1 from -84.8 to -79.3 at 500k (medians of 5 seeds), CartPole stayed at "
        "500 (benchmarks/results/classic-obs-norm.md, benchmarks/results/zoo/summary.md)",
        values=dict(**_DISCRETE_MLP, obs_norm=True),
    ),
    "toy-text": Preset(
        description="discrete actions on discrete observations (FrozenLake, Taxi, Blackjack, ...): "
        "one-hot inputs, small MLPs, Adam",
        source="the classic-control values, whose observation normalisation has nothing to do on "
        "one-hot inputs; measured with the plain command on FrozenLake-v1, FrozenLake8x8-v1, "
        "CliffWalking-v1, Blackjack-v1 and Taxi-v4 (benchmarks/results/toy-text.md): the lakes reach "
        "their reward thresholds on the median of 3 seeds, Taxi-v4 is not learned (its policy stops "
        "choosing pickup and drop-off, which cost -10 where illegal, before it has delivered once)",
        values=dict(_DISCRETE_MLP),
    ),
    # --- A2C presets (keyed by algo in preset_for) ---
    "classic-control-a2c": Preset(
        description="A2C on discrete classic control: 8 envs x 5 steps per update, RMSprop",
        source="Stable-Baselines3 A2C defaults (n_steps=5, lr=7e-4, torch's RMSprop alpha=0.99 eps=1e-5, "
        "gamma=0.99, vf_coef=0.5, max_grad_norm=0.5, separate 64-64 tanh torsos) with "
        "rl-baselines3-zoo hyperparams/a2c.yml for CartPole-v1 (n_envs=8, ent_coef=0.0)",
        values=dict(
            n_envs=8, n_steps=5, gamma=0.99, lr=7e-4, optimizer="rmsprop-torch", rms_alpha=0.99,
            rms_eps=1e-5, entropy_coef=0.0, value_coef=0.5, max_grad_norm=0.5,
            hidden_sizes=(64, 64), activation="tanh", shared_torso=False, total_steps=500_000,
            eval_interval=25_000, eval_episodes=10,
        ),
    ),
    # --- Atari (chosen for ale-py ids) ---
    "atari": Preset(
        description="A3C feed-forward on Atari from pixels: the paper's conv torso, shared RMSProp",
        source="Mnih et al. 2016 (A3C), section 8 and supplementary: 84x84x4 inputs with an action "
        "repeat of 4, conv 16 8x8/4 - 32 4x4/2 - 256 hidden, gamma 0.99, entropy 0.01, RMSProp "
        "(the paper's rule, eps inside the root, shared statistics) "
        "with decay 0.99, learning rate annealed linearly to 0, t_max 5. The "
        "paper samples the learning rate from LogUniform(1e-4, 1e-2); 7e-4 with eps 1e-5, value "
        "weight 0.5 and gradient norm 0.5 are OpenAI Baselines' A2C Atari defaults (a2c.py). "
        "Each worker steps 8 envs as one batch with T=5, so 2 workers hold Baselines' 16 envs x 5 "
        "steps; with it A3C reached +20 on PongNoFrameskip-v4 after 3.0M steps on 2 cores "
        "(benchmarks/results/pong-a3c-nofs.md), where 1 env per worker with T=20 had not learned "
        "by 1M steps",
        values=dict(
            torso="a3c-conv", vec_env="ale", core="none", n_envs=8, n_steps=5, gamma=0.99, lr=7e-4,
            lr_schedule="linear",
            optimizer="rmsprop", rms_alpha=0.99, rms_eps=1e-5, entropy_coef=0.01, value_coef=0.5,
            max_grad_norm=0.5, shared_torso=True, total_steps=10_000_000, eval_interval=1_000_000,
            eval_episodes=3, final_eval_episodes=10, checkpoint_interval=500_000,
        ),
    ),
    "atari-lstm": Preset(
        description="A3C LSTM on Atari: the paper's conv torso, 256 LSTM cells, shared RMSProp",
        source="Mnih et al. 2016 (A3C): the LSTM agent adds 256 LSTM cells after the hidden layer; "
        "the rest as preset 'atari'. T=20 as in ikostrikov/pytorch-a3c (num-steps 20), so that "
        "the LSTM is trained through 20 steps of time",
        values=dict(
            torso="a3c-conv", vec_env="ale", core="lstm", core_size=256, n_steps=20, gamma=0.99, lr=7e-4,
            lr_schedule="linear", optimizer="rmsprop", rms_alpha=0.99, rms_eps=1e-5,
            entropy_coef=0.01, value_coef=0.5, max_grad_norm=0.5, shared_torso=True,
            total_steps=10_000_000, eval_interval=1_000_000, eval_episodes=3, final_eval_episodes=10,
            checkpoint_interval=500_000,
        ),
    ),
    "atari-a2c": Preset(
        description="A2C on Atari: 16 envs x 5 steps, the A3C conv torso, RMSProp",
        source="OpenAI Baselines A2C Atari defaults (nenvs 16, nsteps 5, lr 7e-4 linear, RMSProp "
        "alpha 0.99 eps 1e-5, ent 0.01, vf 0.5, max_grad_norm 0.5); rl-baselines3-zoo a2c.yml "
        "atari uses the same with vf_coef 0.25",
        values=dict(
            torso="a3c-conv", vec_env="ale", n_envs=16, n_steps=5, gamma=0.99, lr=7e-4, lr_schedule="linear",
            optimizer="rmsprop", rms_alpha=0.99, rms_eps=1e-5, entropy_coef=0.01, value_coef=0.5,
            max_grad_norm=0.5, shared_torso=True, total_steps=10_000_000, eval_interval=1_000_000,
            eval_episodes=3, final_eval_episodes=10, checkpoint_interval=500_000,
        ),
    ),
    # --- continuous actions (Pendulum, MuJoCo) ---
    "continuous-control": Preset(
        description="Gaussian policy with state-dependent exploration on Box-action envs outside "
        "MuJoCo (Pendulum): MLPs, Adam, observation normalisation",
        source="rl-baselines3-zoo hyperparams/a2c.yml, Pendulum-v1 (tuned there): n_envs 8, "
        "n_steps 8, gae_lambda 0.9, ent_coef 0.0, vf_coef 0.4, max_grad_norm 0.5, normalize, "
        "use_sde. Tuned on Pendulum-v1 (benchmarks/results/pendulum.md): Adam from 1e-3 annealed "
        "linearly to 0, reward_scale 0.1, log_std_init -1 and gamma 0.95 (one swing's horizon); "
        "A3C reached -200 on 10 of 10 seeds within 1M steps, A2C on 9 of 10",
        values=dict(**_GAUSSIAN_MLP, gamma=0.95, gae_lambda=0.9, use_sde=True, log_std_init=-1.0),
    ),
    "mujoco": Preset(
        description="Gaussian policy on MuJoCo (InvertedPendulum, HalfCheetah, ...): MLPs, Adam, "
        "observation normalisation",
        source="the continuous-control values with independent noise from a softplus variance, as "
        "in the A3C paper, and gamma 0.99 with GAE 0.95 for locomotion's long horizon: "
        "HalfCheetah-v5 (benchmarks/results/halfcheetah-a3c.md), InvertedPendulum-v5 "
        "(benchmarks/results/compare-InvertedPendulum-v5.md); measured on Hopper-v5 (above the "
        "zoo's A2C), Ant-v5 (learns) and Walker2d-v5 (falls: benchmarks/results/mujoco-walker2d-ant.md), "
        "where an entropy bonus helped Walker2d and hurt Hopper "
        "(benchmarks/results/mujoco-options-2026-12-07.md)",
        values=dict(**_GAUSSIAN_MLP, **_LONG_HORIZON),
    ),
    "box2d": Preset(
        description="Gaussian policy on Box2D's continuous envs (LunarLander with continuous=True, "
        "BipedalWalker, CarRacing): MLPs or the conv torso, Adam, observation normalisation",
        source="the mujoco values, measured on Box2D (benchmarks/results/lunarlander-continuous.md): "
        "LunarLander-v3 with continuous=True at rl-baselines3-zoo's 5M steps ended at a median of "
        "134.7 over 5 seeds (the zoo's A2C 84.2), where the continuous-control preset's one-swing "
        "horizon (gamma 0.95) stays near -140 at 1M; BipedalWalker-v3 at 1M ended at 216.8 and 194.5 "
        "(2 seeds) against continuous-control's 31.0 and 178.5. CarRacing's learning is not measured",
        values=dict(**_GAUSSIAN_MLP, **_LONG_HORIZON),
    ),
}

_A2C_PRESETS = {"classic-control": "classic-control-a2c", "toy-text": "classic-control-a2c",
                "atari": "atari-a2c"}
_DISCRETE_PARTS = {"discrete", "multi_discrete", "multi_binary"}


def env_family(env_id: str, env_kwargs: dict[str, Any] | None = None,
               env_wrappers: tuple[str, ...] = ()) -> str:
    """classic-control, toy-text, atari, mujoco, box2d or continuous-control, from the id and its spaces.

    toy-text: discrete actions on observations made of discrete parts only (FrozenLake's and Taxi's
    states, Blackjack's Tuple), whatever package the env comes from. box2d: Gymnasium's Box2D envs
    with Box actions; LunarLander's discrete actions are classic control's.
    """
    name = env_id.partition(":")[2] if ":" in env_id else env_id
    if atari.looks_like_atari(name):
        return "atari"
    try:
        spec = gym.spec(name)
    except gym.error.Error:
        spec = None  # an env function, or an id make_env will say is unknown
    if spec is not None and atari.is_atari(spec):
        return "atari"
    entry = spec.entry_point if spec is not None and isinstance(spec.entry_point, str) else ""
    if "mujoco" in entry:
        return "mujoco"
    env = make_env(env_id, wrappers=env_wrappers, **(env_kwargs or {}))  # an unknown id: EnvError
    act_space, obs_space = env.action_space, env.observation_space
    env.close()
    if isinstance(act_space, gym.spaces.Box):
        return "box2d" if "box2d" in entry else "continuous-control"
    try:
        kinds = {part.kind for part in observation_parts(obs_space, env_id)}
    except A3CError:
        return "classic-control"  # a space the networks do not take: building the config says so
    return "toy-text" if kinds <= _DISCRETE_PARTS else "classic-control"


def preset_for(env_id: str, algo: str = "a3c", core: str = "none", env_kwargs: dict[str, Any] | None = None,
               env_wrappers: tuple[str, ...] = ()) -> str:
    """The preset chosen when none is named: by the env's family, the algo and the core."""
    family = env_family(env_id, env_kwargs, env_wrappers)
    if family == "atari" and core == "lstm" and algo == "a3c":
        return "atari-lstm"
    return _A2C_PRESETS.get(family, family) if algo == "a2c" else family


def build_config(env_id: str, /, preset: str | None = None, **overrides: Any) -> Config:
    """Config defaults, then the preset's values, then the caller's; validated.

    target_return, unless given (None included), is the env's registered reward threshold;
    n_envs, unless a preset or the caller sets it, is 8 for A2C's batch and 1 per A3C worker (the
    paper's one env per actor-learner).
    """
    if "env_id" in overrides:  # e.g. from a config file: the positional env_id is the one
        if overrides["env_id"] != env_id:
            raise ConfigError(f"env_id is given twice: {env_id!r} and {overrides['env_id']!r}")
        overrides = {k: v for k, v in overrides.items() if k != "env_id"}
    known = {f.name for f in fields(Config)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ConfigError(f"unknown hyper-parameter(s): {', '.join(unknown)}")
    for key in ("algo", "core", "env_kwargs", "env_wrappers"):  # what choosing a preset reads
        if key in overrides:
            check_field(key, overrides[key])
    name = preset if preset is not None else preset_for(
        env_id, overrides.get("algo", "a3c"), overrides.get("core", "none"),
        overrides.get("env_kwargs"), tuple(overrides.get("env_wrappers", ())))
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
    values = {**PRESETS[name].values, **overrides}
    if values.get("core", "none") != "none" and "shared_torso" not in overrides:
        values["shared_torso"] = True  # the LSTM sits on one torso: --core lstm composes with any preset
    if values.get("vec_env") == "ale" and env_family(env_id) != "atari":
        raise ConfigError(f"vec_env ale steps Atari games (ale-py's AtariVectorEnv); {env_id!r} is not "
                          "one: use vec_env sync or async")
    values.setdefault("n_envs", 8 if values.get("algo", "a3c") == "a2c" else 1)
    if "target_return" not in overrides:
        values["target_return"] = reward_threshold(env_id)
    return Config(env_id=env_id, preset=name, **values).validated()
