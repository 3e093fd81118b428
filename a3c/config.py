"""One typed configuration for every driver, validated once; the CLI is generated from it."""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field, fields
from typing import Any

from a3c.errors import ConfigError
from a3c.references import is_reference

ALGOS = ("a3c", "a2c")
OPTIMIZERS = ("adam", "rmsprop", "rmsprop-torch")
ACTIVATIONS = ("tanh", "relu", "elu", "gelu", "silu", "leaky_relu")
CONV_PRECISIONS = ("float32", "bfloat16")
LR_SCHEDULES = ("constant", "linear")
ENTROPY_SCHEDULES = ("constant", "linear")
VEC_ENVS = ("sync", "async", "ale")
DEVICES = ("cpu", "cuda", "auto")
BACKENDS = ("local", "ray")
TORSOS = ("auto", "mlp", "a3c-conv", "nature-conv")
CORES = ("none", "lstm")
# Widest layer a config accepts: a 16,384 x 16,384 float32 layer is 1 GiB before the optimizer's
# state, so anything wider is a typing slip, and building it would fail with a bare allocation
# error deep inside torch.
MAX_WIDTH = 16_384
# Most workers and envs per learner a config accepts: far beyond one machine's cores or a cluster's
# usual actors, and small enough that every env seed, seed + rank * n_envs + i with seed < 2**31,
# stays below numpy's 2**32.
MAX_WORKERS = 4_096
MAX_ENVS = 4_096


def usable_cores() -> int:
    """Cores this process may run on (respects taskset/cgroup affinity)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


_TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,), "float": (int, float), "str": (str,), "bool": (bool,),
    "float | None": (int, float, type(None)), "str | None": (str, type(None)),
}


def _json_value(value: Any, depth: int = 0) -> bool:
    """JSON data of bounded depth: what a checkpoint's header can hold and give back unchanged."""
    if depth > 8:
        return False
    if value is None or isinstance(value, str | bool | int):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list | tuple):
        return all(_json_value(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _json_value(v, depth + 1) for k, v in value.items())
    return False


def _nones_from_text(data: dict[str, Any]) -> dict[str, Any]:
    """"none" as None for the optional numbers (target_return = "none"), as the command line reads
    --target-return none: TOML, which config and sweep files may be written in, has no null."""
    optional = {f.name for f in fields(Config) if f.type == "float | None"}
    return {k: None if k in optional and isinstance(v, str) and v.lower() == "none" else v
            for k, v in data.items()}


def _check_type(name: str, annotation: str, value: Any) -> None:
    if annotation == "dict[str, Any]":
        if not (isinstance(value, dict) and _json_value(value)):
            raise ConfigError(f"{name} must be a JSON object (string keys; strings, numbers, booleans, "
                              f"null, lists and objects as values), got {value!r}")
        return
    if annotation == "tuple[int, ...]":
        ok = isinstance(value, tuple) and all(
            isinstance(v, int) and not isinstance(v, bool) for v in value)
    elif annotation == "tuple[str, ...]":
        ok = isinstance(value, tuple) and all(isinstance(v, str) for v in value)
    else:
        allowed = _TYPES[annotation]
        ok = isinstance(value, allowed) and (bool in allowed or not isinstance(value, bool))
    if not ok:
        raise ConfigError(f"{name} must be {annotation}, got {value!r}")


def check_field(name: str, value: Any) -> None:
    """ConfigError unless value has the type of Config's field `name` (ranges are checked later,
    with the whole config)."""
    types = {f.name: f.type for f in fields(Config)}
    if name not in types:
        raise ConfigError(f"unknown config key {name!r}")
    _check_type(name, types[name], value)


def _opt(help: str, choices: tuple[str, ...] | None = None, **kw: Any) -> Any:
    metadata: dict[str, Any] = {"help": help}
    if choices is not None:
        metadata["choices"] = choices
    return field(metadata=metadata, **kw)


@dataclass
class Config:
    """Everything a run needs. Field docs (``help``) double as the CLI's help text."""

    env_id: str = _opt(
        "Gymnasium id (CartPole-v1), 'module:EnvName-v0' to import a module that registers it, or "
        "'module:function' naming a function that builds one env", default="")
    env_kwargs: dict[str, Any] = _opt(
        "keyword arguments for gym.make or the env function, a JSON object, e.g. "
        "'{\"continuous\": true}'", default_factory=dict)
    env_wrappers: tuple[str, ...] = _opt(
        "wrappers applied to each env, innermost first, as 'module:Class' references "
        "(comma-separated), each called as Wrapper(env)", default=())
    algo: str = _opt(
        "training driver: a3c (asynchronous Hogwild workers) or a2c (one process, a batch of envs)",
        choices=ALGOS, default="a3c")
    preset: str | None = _opt("named hyper-parameter set (default: chosen from the env id)", default=None)
    # --- run ---
    workers: int = _opt("A3C: worker processes (0: one per usable core)", default=0)
    backend: str = _opt(
        "A3C: where the workers run: local (processes sharing the network's memory) or ray (actors "
        "on a Ray cluster around a parameter server; pip install \"a3c[ray]\", see docs/distributed.md)",
        choices=BACKENDS, default="local")
    ray_address: str | None = _opt(
        "backend ray: the cluster to join, 'auto' or HOST:PORT (none: start a local Ray instance)",
        default=None)
    max_inflight_pushes: int = _opt(
        "backend ray: gradients a worker may have sent and not yet seen applied; one more waits "
        "(back-pressure from a busy parameter server)", default=2)
    gradients_per_push: int = _opt(
        "backend ray: the most gradients a worker sends in one call, each still its own update; it "
        "sends sooner when its updates are slow next to a call's cost (1: every update at once)",
        default=8)
    n_envs: int = _opt(
        "environments stepped as one batch: A2C's whole batch, or each A3C worker's", default=1)
    vec_env: str = _opt(
        "how a learner's n_envs envs are stepped: in its process (sync), one subprocess each "
        "(async, A2C), or Atari games in ale-py's C++ vector env (ale; the Atari presets' choice)",
        choices=VEC_ENVS, default="sync")
    device: str = _opt(
        "where the network and the update run: cpu, cuda, or auto (cuda if available); "
        "envs always step on the CPU. A2C only: A3C's Hogwild workers run on the CPU",
        choices=DEVICES, default="cpu")
    seed: int = _opt(
        "base seed: A3C worker w's envs take seed + w * n_envs, + 1, ...; A2C's envs seed, seed + 1, "
        "...; a restarted worker and every worker of a resumed run draw fresh seeds from it", default=0)
    total_steps: int = _opt("stop after this many env steps over all workers", default=1_000_000)
    max_seconds: float | None = _opt("stop after this much wall time", default=None)
    target_return: float | None = _opt(
        "stop when the greedy evaluation mean reaches this (default: the env's reward threshold)",
        default=None,
    )
    run_dir: str | None = _opt("where logs and checkpoints go (default: runs/ENV-ALGO-TIME)", default=None)
    # --- algorithm ---
    n_steps: int = _opt("rollout length T between updates", default=20)
    gamma: float = _opt("discount factor", default=0.99)
    gae_lambda: float = _opt("GAE lambda; 1.0 gives the plain n-step returns", default=1.0)
    reward_scale: float = _opt(
        "multiply rewards by this in the loss (episode logs and evaluations keep the real ones)",
        default=1.0)
    entropy_coef: float = _opt("entropy bonus weight c_e", default=0.01)
    entropy_schedule: str = _opt(
        "constant, or linear: the entropy weight goes from entropy_coef to entropy_coef_final over "
        "total_steps", choices=ENTROPY_SCHEDULES, default="constant")
    entropy_coef_final: float = _opt("entropy_schedule linear: the weight at total_steps", default=0.0)
    normalize_advantage: bool = _opt(
        "scale each rollout's advantages to mean 0 and standard deviation 1 before the policy loss",
        default=False)
    value_coef: float = _opt("value loss weight c_v", default=0.5)
    max_grad_norm: float = _opt("clip the gradient's global norm to this (0: no clipping)", default=0.5)
    optimizer: str = _opt(
        "shared optimizer: adam, rmsprop (the A3C paper's: theta -= lr * grad / sqrt(g + eps)) or "
        "rmsprop-torch (torch's and Stable-Baselines3's: grad / (sqrt(g) + eps))", choices=OPTIMIZERS,
        default="adam")
    lr: float = _opt("learning rate", default=1e-3)
    lr_schedule: str = _opt("constant, or linear annealing to zero over total_steps", default="constant")
    adam_eps: float = _opt("Adam epsilon", default=1e-5)
    rms_alpha: float = _opt("RMSProp decay of the squared-gradient average", default=0.99)
    rms_eps: float = _opt("RMSProp epsilon", default=1e-5)
    # --- network ---
    hidden_sizes: tuple[int, ...] = _opt(
        "MLP torso layer widths (for every observation part that is not an image the conv torso takes)",
        default=(64, 64))
    activation: str = _opt(f"MLP torso activation: {', '.join(ACTIVATIONS)}", default="tanh")
    shared_torso: bool = _opt("policy and value share the torso (else one torso each)", default=True)
    torso: str = _opt(
        "feature extractor: mlp (vectors; images flattened), a3c-conv (the A3C paper's 16-32 conv, "
        "256 hidden), nature-conv (Nature DQN's 32-64-64 conv, 512 hidden), auto (a3c-conv for the "
        "images it takes, mlp for the rest), or your own nn.Module class as module:Class "
        "(docs/custom-networks.md)", default="auto")
    torso_kwargs: dict[str, Any] = _opt(
        "keyword arguments of your own torso class, a JSON object, e.g. '{\"width\": 128}'",
        default_factory=dict)
    conv_hidden: int = _opt(
        "conv torsos: width of the hidden layer after the convolutions (0: the torso's own, 256 for "
        "a3c-conv, 512 for nature-conv)", default=0)
    conv_activation: str = _opt(f"conv torsos' activation: {', '.join(ACTIVATIONS)}", default="relu")
    conv_precision: str = _opt(
        "what conv torsos compute in: float32, or bfloat16 (the weights, the optimizer and the heads "
        "stay float32; 1.3x-1.5x less CPU time for the torso where the CPU has AVX-512 BF16 or AMX, "
        "several times more where it has neither and bfloat16 is emulated: training then warns; "
        "benchmarks/results/conv_precision.md)", choices=CONV_PRECISIONS, default="float32")
    policy_sizes: tuple[int, ...] = _opt(
        "widths of layers between the torso (or LSTM) and the policy head (none: the head is linear)",
        default=())
    value_sizes: tuple[int, ...] = _opt(
        "widths of layers between the torso (or LSTM) and the value head (none: the head is linear)",
        default=())
    head_activation: str = _opt(f"activation of policy_sizes and value_sizes layers: "
                                f"{', '.join(ACTIVATIONS)}", default="tanh")
    ortho_init: bool = _opt(
        "orthogonal initial weights with OpenAI Baselines' gains: sqrt(2) in the torso and hidden "
        "layers, 0.01 for the policy head, 1 for the value head, biases 0 (else PyTorch's default "
        "init; a torso of your own keeps its own either way)", default=True)
    core: str = _opt("between torso and heads: none (feed-forward) or lstm (the A3C LSTM agent)",
                     choices=CORES, default="none")
    core_size: int = _opt("LSTM cells", default=256)
    obs_norm: bool = _opt(
        "normalise vector observations by running mean and variance (shared by the workers, "
        "saved in the checkpoint)", default=False)
    reward_norm: bool = _opt(
        "divide rewards in the loss by a running estimate of the discounted return's standard "
        "deviation, clipped to +-10 (VecNormalize's norm_reward; shared by the workers, saved in the "
        "checkpoint; episode logs and evaluations keep the real rewards)", default=False)
    use_sde: bool = _opt(
        "continuous actions: state-dependent exploration (gSDE), noise that is a function of the "
        "state, drawn once per rollout, instead of independent noise at every step", default=False)
    log_std_init: float = _opt("use_sde: initial log standard deviation of the noise weights",
                               default=-2.0)
    sde_sample_freq: int = _opt(
        "use_sde: env steps between fresh draws of the noise, carried across rollouts, as "
        "Stable-Baselines3's sde_sample_freq (0: a fresh draw at the start of every rollout)",
        default=0)
    # --- evaluation, checkpoints, logging ---
    eval_interval: int = _opt(
        "evaluate the global network every this many env steps (0: never)", default=25_000)
    eval_episodes: int = _opt("episodes per evaluation", default=10)
    final_eval_episodes: int = _opt("episodes in the evaluation at the end of training", default=20)
    checkpoint_interval: int = _opt(
        "checkpoint every this many env steps (0: only at the end)", default=200_000)
    log_interval: float = _opt("seconds between progress lines and metric flushes", default=1.0)
    keep_checkpoints: int = _opt(
        "periodic checkpoints kept in RUN_DIR/checkpoints: the newest this many", default=3)
    # --- faults ---
    max_restarts: int = _opt(
        "A3C: a worker that dies (an exception, a signal) is restarted from the current global "
        "network, this many times in all; one more failure stops the run with an error and a "
        "final checkpoint (0: the first failure stops it)", default=3)
    max_skipped_updates: int = _opt(
        "an update whose loss or gradient is not finite (NaN, inf) is skipped, never applied, and "
        "counted in updates.csv; this many skipped in a row by one learner stop the run with an "
        "error", default=100)

    def resolved_workers(self) -> int:
        return self.workers or usable_cores()

    def replace(self, **changes: Any) -> Config:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON data: tuples as lists."""
        d = dataclasses.asdict(self)
        for name in _TUPLE_FIELDS:
            d[name] = list(d[name])
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Config:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown config keys: {', '.join(unknown)}")
        return cls(**_tuples_from_lists(_nones_from_text(data))).validated()

    def validated(self) -> Config:
        """Return self after checking every field; raise ConfigError naming the first bad one."""
        def need(ok: bool, message: str) -> None:
            if not ok:
                raise ConfigError(message)

        for f in fields(self):
            value = getattr(self, f.name)
            _check_type(f.name, f.type, value)
            if isinstance(value, float) and not math.isfinite(value):
                raise ConfigError(f"{f.name} must be a finite number, got {value}")
        need(bool(self.env_id), "env_id is required")
        for wrapper in self.env_wrappers:
            need(is_reference(wrapper), f"env_wrappers: {wrapper!r} is not a 'module:Class' reference")
        need(self.algo in ALGOS, f"unknown algo {self.algo!r}; choose from {', '.join(ALGOS)}")
        need(0 <= self.workers <= MAX_WORKERS,
             f"workers must be in [1, {MAX_WORKERS}] (or 0 for one per core), got {self.workers}")
        need(self.backend in BACKENDS,
             f"unknown backend {self.backend!r}; choose from {', '.join(BACKENDS)}")
        need(self.backend == "local" or self.algo == "a3c",
             f"backend {self.backend} runs A3C's workers; algo {self.algo} has none (use backend local)")
        need(self.ray_address is None or self.backend == "ray",
             "ray_address is set but backend is local: add --backend ray, or drop --ray-address")
        need(self.ray_address is None or self.ray_address.strip() != "",
             "ray_address must be 'auto' or HOST:PORT (or none), got an empty string")
        need(self.max_inflight_pushes > 0,
             f"max_inflight_pushes must be positive, got {self.max_inflight_pushes}")
        need(self.gradients_per_push > 0,
             f"gradients_per_push must be positive, got {self.gradients_per_push}")
        need(0 < self.n_envs <= MAX_ENVS, f"n_envs must be in [1, {MAX_ENVS}], got {self.n_envs}")
        need(self.vec_env in VEC_ENVS,
             f"unknown vec_env {self.vec_env!r}; choose from {', '.join(VEC_ENVS)}")
        need(self.device in DEVICES, f"unknown device {self.device!r}; choose from {', '.join(DEVICES)}")
        need(self.algo != "a3c" or self.device != "cuda",
             "device cuda: A3C's Hogwild workers share the network in CPU memory and run on the CPU "
             "only; use algo a2c for a GPU")
        # numpy and gymnasium refuse negative seeds and numpy those of 2**32 or more; workers add their rank
        need(0 <= self.seed < 2**31, f"seed must be in [0, 2**31), got {self.seed}")
        need(self.total_steps > 0, f"total_steps must be positive, got {self.total_steps}")
        need(self.max_seconds is None or self.max_seconds > 0,
             f"max_seconds must be positive, got {self.max_seconds}")
        need(self.n_steps > 0, f"n_steps must be positive, got {self.n_steps}")
        need(0.0 <= self.gamma <= 1.0, f"gamma must be in [0, 1], got {self.gamma}")
        need(0.0 <= self.gae_lambda <= 1.0, f"gae_lambda must be in [0, 1], got {self.gae_lambda}")
        need(self.reward_scale > 0, f"reward_scale must be positive, got {self.reward_scale}")
        need(self.entropy_coef >= 0, f"entropy_coef must be >= 0, got {self.entropy_coef}")
        need(self.value_coef >= 0, f"value_coef must be >= 0, got {self.value_coef}")
        need(self.entropy_schedule in ENTROPY_SCHEDULES,
             f"unknown entropy_schedule {self.entropy_schedule!r}; choose from "
             f"{', '.join(ENTROPY_SCHEDULES)}")
        need(self.entropy_coef_final >= 0, f"entropy_coef_final must be >= 0, got {self.entropy_coef_final}")
        need(self.max_grad_norm >= 0, f"max_grad_norm must be >= 0, got {self.max_grad_norm}")
        need(self.optimizer in OPTIMIZERS,
             f"unknown optimizer {self.optimizer!r}; choose from {', '.join(OPTIMIZERS)}")
        need(self.lr > 0, f"lr must be positive, got {self.lr}")
        need(self.lr_schedule in LR_SCHEDULES,
             f"unknown lr_schedule {self.lr_schedule!r}; choose from {', '.join(LR_SCHEDULES)}")
        need(self.adam_eps > 0, f"adam_eps must be positive, got {self.adam_eps}")
        need(0.0 <= self.rms_alpha < 1.0, f"rms_alpha must be in [0, 1), got {self.rms_alpha}")
        need(self.rms_eps > 0, f"rms_eps must be positive, got {self.rms_eps}")
        need(len(self.hidden_sizes) > 0, "hidden_sizes must name at least one layer width")
        for name in ("hidden_sizes", "policy_sizes", "value_sizes"):
            need(all(0 < h <= MAX_WIDTH for h in getattr(self, name)),
                 f"{name} must be widths in [1, {MAX_WIDTH}], got {getattr(self, name)}")
        need(self.torso in TORSOS or is_reference(self.torso),
             f"unknown torso {self.torso!r}; choose from {', '.join(TORSOS)}, or name your own "
             "nn.Module class as module:Class")
        need(not self.torso_kwargs or is_reference(self.torso),
             f"torso_kwargs are the arguments of your own torso class; torso {self.torso} is built in "
             "(its options: hidden_sizes, activation, conv_hidden, conv_activation)")
        need(0 <= self.conv_hidden <= MAX_WIDTH,
             f"conv_hidden must be in [0, {MAX_WIDTH}], got {self.conv_hidden}")
        for name in ("conv_activation", "head_activation"):
            need(getattr(self, name) in ACTIVATIONS,
                 f"unknown {name} {getattr(self, name)!r}; choose from {', '.join(ACTIVATIONS)}")
        need(self.conv_precision in CONV_PRECISIONS,
             f"unknown conv_precision {self.conv_precision!r}; choose from {', '.join(CONV_PRECISIONS)}")
        need(self.sde_sample_freq >= 0, f"sde_sample_freq must be >= 0, got {self.sde_sample_freq}")
        need(self.sde_sample_freq == 0 or self.use_sde,
             "sde_sample_freq sets how often state-dependent exploration draws its noise: set use_sde true")
        need(self.core in CORES, f"unknown core {self.core!r}; choose from {', '.join(CORES)}")
        need(0 < self.core_size <= MAX_WIDTH,
             f"core_size must be in [1, {MAX_WIDTH}], got {self.core_size}")
        need(self.core == "none" or self.shared_torso,
             "core lstm sits between one shared torso and the heads: set shared_torso true")
        need(self.activation in ACTIVATIONS,
             f"unknown activation {self.activation!r}; choose from {', '.join(ACTIVATIONS)}")
        need(self.eval_interval >= 0, f"eval_interval must be >= 0, got {self.eval_interval}")
        need(self.eval_episodes > 0, f"eval_episodes must be positive, got {self.eval_episodes}")
        need(self.final_eval_episodes >= 0,
             f"final_eval_episodes must be >= 0, got {self.final_eval_episodes}")
        need(self.checkpoint_interval >= 0,
             f"checkpoint_interval must be >= 0, got {self.checkpoint_interval}")
        need(self.log_interval > 0, f"log_interval must be positive, got {self.log_interval}")
        need(self.keep_checkpoints > 0, f"keep_checkpoints must be positive, got {self.keep_checkpoints}")
        need(self.max_restarts >= 0, f"max_restarts must be >= 0, got {self.max_restarts}")
        need(self.max_skipped_updates > 0,
             f"max_skipped_updates must be positive, got {self.max_skipped_updates}")
        need(self.run_dir is None or self.run_dir.strip() != "",
             "run_dir must name a directory (or be none), got an empty string")
        return self


_TUPLE_FIELDS = tuple(f.name for f in fields(Config) if f.type.startswith("tuple["))


def _tuples_from_lists(data: dict[str, Any]) -> dict[str, Any]:
    """JSON's lists back into the tuples that tuple-typed fields hold (the type check comes after)."""
    return {k: tuple(v) if k in _TUPLE_FIELDS and isinstance(v, list) else v for k, v in data.items()}


def read_config_file(path: str | os.PathLike) -> dict[str, Any]:
    """Config fields from a JSON (.json) or TOML (.toml) file, type-checked, as build_config's overrides.

    Files are data, never code: JSON and TOML parsers only. Unknown keys, values of the wrong type
    and duplicate keys are ConfigErrors naming the file; ranges are checked with the whole config.
    """
    name = os.fspath(path)
    data = read_data_file(path)
    types = {f.name: f.type for f in fields(Config)}
    unknown = sorted(map(repr, set(data) - set(types)))
    if unknown:
        raise ConfigError(f"config file {name}: unknown option(s) {', '.join(unknown)}; "
                          "the keys are Config's fields, e.g. total_steps, lr")
    values = _tuples_from_lists(_nones_from_text(data))
    for key, value in values.items():
        try:
            _check_type(key, types[key], value)
            if isinstance(value, float) and not math.isfinite(value):
                raise ConfigError(f"{key} must be a finite number, got {value}")
        except ConfigError as exc:
            raise ConfigError(f"config file {name}: {exc}") from None
    return values


def read_data_file(path: str | os.PathLike, what: str = "config file") -> dict[str, Any]:
    """The table a JSON (.json) or TOML (.toml) file holds, parsed as data (never run as code);
    duplicate keys and anything but a table at the top are ConfigErrors naming the file."""
    import json

    name = os.fspath(path)
    suffix = os.path.splitext(name)[1].lower()
    if suffix not in (".json", ".toml"):
        raise ConfigError(f"{what} {name}: expected a .json or .toml file")
    try:
        with open(name, "rb") as f:
            raw = f.read()
        text = raw.decode("utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {name}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{what} {name} is not UTF-8 text") from None
    try:
        if suffix == ".json":
            def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
                keys = [k for k, _ in pairs]
                twice = sorted({k for k in keys if keys.count(k) > 1})
                if twice:
                    raise ValueError(f"duplicate key(s) {', '.join(twice)}")
                return dict(pairs)
            data = json.loads(text, object_pairs_hook=no_duplicates)
        else:
            data = _toml_loads(text)
    except ConfigError:
        raise
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and TOMLDecodeError are ValueErrors
        detail = " ".join(str(exc).split())
        raise ConfigError(f"{what} {name} is not valid {suffix[1:].upper()}: {detail}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{what} {name} must hold a table of options, got {type(data).__name__}")
    return data


def _toml_loads(text: str) -> Any:
    try:
        import tomllib  # Python 3.11+
    except ModuleNotFoundError:  # pragma: no cover - Python 3.10
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ModuleNotFoundError:
            raise ConfigError("TOML config files need Python 3.11 or the tomli package; "
                              "use a .json file") from None
    return tomllib.loads(text)
