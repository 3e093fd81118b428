"""The public API, shaped like Stable-Baselines3: A3C(env, ...).learn(...).save(path); A3C.load(path).

A3C and A2C share everything here but how a network is placed and which driver runs it;
``load(path)`` returns whichever of the two a checkpoint holds.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import gymnasium as gym
import numpy as np
import torch

from a3c.config import Config
from a3c.core.networks import ActorCritic, NetworkSpec
from a3c.core.optim import load_optimizer_tensors, make_optimizer
from a3c.core.torsos import ConvTorso, cpu_has_native_bfloat16
from a3c.drivers.a2c import A2CDriver, resolve_device
from a3c.drivers.base import Driver, RunPosition
from a3c.drivers.hogwild import HogwildDriver
from a3c.drivers.processes import prestart_workers
from a3c.envs.make import make_config_env, modules_named
from a3c.errors import A3CWarning, CheckpointError, ConfigError
from a3c.presets import PRESETS, build_config
from a3c.references import check_trusted, reference_of
from a3c.run.callbacks import Callback, as_callback
from a3c.run.checkpoint import Checkpoint, latest_checkpoint, load_checkpoint, save_checkpoint
from a3c.run.evaluation import EvalResult, evaluate, make_eval_env, make_eval_envs, to_env_action
from a3c.run.export import export_policy
from a3c.run.supervisor import Supervisor, TrainResult

EnvLike = str | Callable[..., gym.Env] | gym.Env  # an id, a function that builds one env, or an env

# What may change when a run resumes: how long and how it runs, not what it learns.
RESUME_OPTIONS = (
    "total_steps", "max_seconds", "target_return", "workers", "device", "eval_interval",
    "eval_episodes", "final_eval_episodes", "checkpoint_interval", "keep_checkpoints", "log_interval",
    "max_restarts", "max_skipped_updates",
)


# The Config fields that describe the network (NetworkSpec.from_spaces's options).
NETWORK_OPTIONS = (
    "hidden_sizes", "activation", "shared_torso", "torso", "torso_kwargs", "conv_hidden", "conv_activation",
    "core", "core_size", "policy_sizes", "value_sizes", "head_activation", "obs_norm", "use_sde",
    "log_std_init", "reward_norm", "conv_precision",
)


def torso_reference(cls: type) -> str:
    """'module:Class' of a user's torso class, by which workers and checkpoints find it again."""
    if not issubclass(cls, torch.nn.Module):
        raise ConfigError(f"torso {cls!r} is not an nn.Module class")
    reference = reference_of(cls)
    if reference is None:
        raise ConfigError(
            f"torso class {cls.__qualname__} cannot be named as module:Class, and worker processes and "
            "checkpoints find it by that name: define it at the top level of a module you can import "
            "(not in __main__, a notebook or a function)")
    return reference


def env_options(env: EnvLike, wrappers: Iterable[Any] | None = None) -> dict[str, Any]:
    """The config fields that describe how to make `env` in every worker and again after loading:
    env_id (and env_kwargs for an env instance, env_wrappers for wrappers given as classes).

    An env instance is taken by its registration (id and kwargs), as each worker makes its own
    envs; a function or wrapper class must be importable by name, 'module:function'.
    """
    options: dict[str, Any] = {}
    if isinstance(env, str):
        options["env_id"] = env
    elif isinstance(env, gym.Env):
        spec = env.spec
        if spec is None or not spec.id:
            raise ConfigError(
                f"the env instance {env!r} has no registration (env.spec), so its workers cannot make "
                "their own copies: pass its id, or a function that builds one env (module:function)")
        kwargs = {k: v for k, v in spec.kwargs.items() if k != "render_mode"}
        registered = gym.spec(spec.id) if spec.id in gym.registry else None
        if registered is not None and spec.max_episode_steps != registered.max_episode_steps:
            kwargs["max_episode_steps"] = spec.max_episode_steps
        options["env_id"], options["env_kwargs"] = spec.id, kwargs
    elif callable(env):
        options["env_id"] = _named(env, "the env function")
    else:
        raise ConfigError(f"env must be an id, a function that builds one env, or a gymnasium.Env; "
                          f"got {env!r}")
    if wrappers is not None:
        options["env_wrappers"] = tuple(w if isinstance(w, str) else _named(w, "an env wrapper")
                                        for w in wrappers)
    return options


def _named(obj: Any, what: str) -> str:
    reference = reference_of(obj, allow_main=True)
    if reference is None:
        raise ConfigError(f"{what} {obj!r} cannot be named: each worker process makes its own envs, "
                          "so it must be a function or class defined at the top level of a module "
                          "(not a lambda or a function inside another)")
    return reference


def check_named_code(config: Config, source: object, trust_code: bool) -> None:
    """A checkpoint's config may name modules (its env's, its wrappers'): refuse to import them
    unless trust_code; refuse outright what only the script that trained it could name."""
    for module in modules_named(config.env_id, config.env_wrappers):
        if module == "__main__":
            raise CheckpointError(
                f"{source}: its env was made by code of the script that trained it ({config.env_id}, "
                f"wrappers {list(config.env_wrappers)}), which this process cannot name: pass env= "
                "(a3c eval: train and evaluate with an env in a module)")
        check_trusted(module, f"{source}'s env", trust_code)


def _computes_in_bfloat16(net: ActorCritic) -> bool:
    return any(isinstance(m, ConvTorso) and m.dtype == torch.bfloat16 for m in net.modules())


def default_run_dir(config: Config) -> Path:
    name = config.env_id.replace("/", "_").replace(":", "_")
    return Path("runs") / f"{name}-{config.algo}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"


_Model = TypeVar("_Model", bound="ActorCriticAlgorithm")


class ActorCriticAlgorithm:
    """What A3C and A2C share: config, network, optimizer, learn/predict/evaluate/save/load.

    A subclass names its algo, how the global network is placed (shared CPU memory, or a device)
    and the driver that runs a learn() call.
    """

    algo: str = ""

    def __init__(self, env: EnvLike, *, preset: str | None = None, verbose: int = 1,
                 config: Config | None = None, wrappers: Iterable[Any] | None = None, **hparams: Any):
        """env: an id, a function that builds one env, or an env instance (taken by its id and kwargs);
        wrappers: classes or 'module:Class' references applied to each env, innermost first;
        hparams: any Config field (env_kwargs={...} among them), over the preset's values."""
        name = type(self).__name__
        new_model = config is None  # not loaded, nor the caller's own config: built to learn
        if config is None:
            if isinstance(hparams.get("torso"), type):
                hparams["torso"] = torso_reference(hparams["torso"])
            options = env_options(env, wrappers)
            if "env_kwargs" in options and "env_kwargs" in hparams:
                raise ConfigError("env_kwargs is given twice: by the env instance and by the caller")
            hparams.update({k: v for k, v in options.items() if k != "env_id"})
            env = options["env_id"]
            hparams.setdefault("algo", self.algo)
            if hparams["algo"] != self.algo:
                raise ConfigError(f"{name} trains algo {self.algo!r}, not {hparams['algo']!r}")
            config = build_config(env, preset, **hparams)
        config = config.validated()
        if config.algo != self.algo:
            raise ConfigError(f"{name} trains algo {self.algo!r}, but the config says {config.algo!r}")
        self.config = config
        if new_model:
            self._prestart()
        self.device = self._device()
        probe = make_config_env(self.config)
        self.observation_space, self.action_space = probe.observation_space, probe.action_space
        probe.close()
        preset_normalises = config.preset in PRESETS and PRESETS[config.preset].values.get("obs_norm", False)
        spec = NetworkSpec.from_spaces(self.observation_space, self.action_space,
                                       explain_obs_norm=not preset_normalises,
                                       **{name: getattr(config, name) for name in NETWORK_OPTIONS})
        torch.manual_seed(self.config.seed)
        # A torso the config names was named by the caller, or allowed by trust_code on loading.
        network = ActorCritic(spec, trust_code=True)
        if not config.ortho_init:
            network.torch_default_init()
        self.policy = self._place(network)
        self.optimizer = make_optimizer(self.config, self.policy.parameters(), shared=self._shared())
        self.verbose = verbose
        self.num_steps = 0
        self.num_updates = 0
        self.last_result: TrainResult | None = None
        self._position: RunPosition | None = None  # set by resume(): where the next learn() goes on
        self._resumed_from: Path | None = None

    def _prestart(self) -> None:
        """Start now what learn() needs and takes seconds to start, so that it starts while the
        envs, the network and the optimizer are built."""

    def _device(self) -> torch.device:
        return torch.device("cpu")

    def _place(self, net: ActorCritic) -> ActorCritic:
        return net

    def _shared(self) -> bool:
        return False

    def _driver(self, config: Config, position: RunPosition | None) -> Driver:
        raise NotImplementedError

    def learn(self: _Model, total_steps: int | None = None, *, total_timesteps: int | None = None,
              callback: Callback | Iterable[Callback] | None = None, max_seconds: float | None = None,
              target_return: float | None = None, run_dir: str | os.PathLike | None = None) -> _Model:
        """Train until total_steps more env steps, max_seconds, the target evaluation return, or a
        callback (a3c.callbacks) returning False.

        total_timesteps is Stable-Baselines3's name for total_steps. After resume(), total_steps
        defaults to the steps the resumed run had left.
        """
        if total_timesteps is not None:
            if total_steps is not None and total_steps != total_timesteps:
                raise ConfigError(f"total_steps ({total_steps}) and total_timesteps ({total_timesteps}) "
                                  "are the same option: give one")
            total_steps = total_timesteps
        callbacks = as_callback(callback)
        changes: dict[str, Any] = {}
        position = self._position
        if total_steps is not None:
            changes["total_steps"] = total_steps
        elif position is not None:
            changes["total_steps"] = self.steps_left()
        if max_seconds is not None:
            changes["max_seconds"] = max_seconds
        if target_return is not None:
            changes["target_return"] = target_return
        if run_dir is not None:
            changes["run_dir"] = str(run_dir)
        config = self.config.replace(**changes).validated()
        if self.device.type == "cpu" and _computes_in_bfloat16(self.policy) and not cpu_has_native_bfloat16():
            warnings.warn("conv_precision bfloat16 on a CPU without AVX-512 BF16 or AMX: its bfloat16 "
                          "convolutions are emulated, several times slower than float32's "
                          "(benchmarks/results/conv_precision.md); float32 is the faster choice here",
                          A3CWarning, stacklevel=2)
        directory = Path(config.run_dir) if config.run_dir else default_run_dir(config)
        supervisor = Supervisor(config, self.policy, self.optimizer, directory, self.num_steps,
                                self.verbose, position, self._resumed_from, callbacks, model=self)
        driver = self._driver(config, position)
        self._position = self._resumed_from = None
        self.last_result = supervisor.run(driver)
        self.num_steps, self.num_updates = self.last_result.steps, self.last_result.updates
        return self

    def steps_left(self) -> int:
        """Env steps the next learn() takes when not told: what a resumed run had left to go, else
        config.total_steps. A ConfigError if a resumed run had already reached its end."""
        position = self._position
        if position is None:
            return self.config.total_steps
        left = position.target_steps - self.num_steps
        if left <= 0:
            raise ConfigError(f"{self.config.run_dir} already reached its {position.target_steps:,} "
                              "steps: pass total_steps (--total-steps) to train that many more")
        return left

    def predict(self, observation: Any, state: Any = None, episode_start: Any = None,
                deterministic: bool = False) -> tuple[np.ndarray, Any]:
        """Action(s) for one observation or a batch, as NumPy arrays; (action, None) like
        Stable-Baselines3 (one observation gives one action: a 0-d array for a Discrete space).

        observation: as the env gives it (an array, an int, a dict or a tuple of parts), or a batch
        as a vector env gives it; actions come in the action space's shape and dtype.

        A recurrent (LSTM) policy returns (action, state): pass the state back with the next
        observation, and episode_start (a bool per observation) True where an episode begins.
        """
        batch, single = self.policy.observation_batch(observation)
        n = len(next(iter(batch.values())) if isinstance(batch, dict) else batch)
        with torch.no_grad():
            if not deterministic:
                self.policy.resample_noise(n)  # gSDE: each call draws its own noise
            if state is None:
                state = self.policy.initial_state(n)
            elif episode_start is not None:
                state = self.policy.reset_state(state, np.asarray(episode_start, dtype=bool).reshape(-1))
            actions, _, state = self.policy.act(batch, state, deterministic)
        actions = np.stack([np.asarray(to_env_action(a, self.action_space)) for a in actions.cpu()])
        return (np.asarray(actions[0]) if single else actions), state

    def evaluate(self, episodes: int = 10, deterministic: bool = True, seed: int = 0,
                 video_dir: str | os.PathLike | None = None, render: bool = False) -> EvalResult:
        """Whole episodes of the real env; video_dir records each to an MP4, render shows them."""
        if video_dir is None and not render:  # several episodes at once, in one batch
            envs = make_eval_envs(self.config, episodes)
        else:  # one env, whose episodes are recorded or shown one after another
            envs = [make_eval_env(self.config, video_dir, render)]
        try:
            return evaluate(self.policy, envs, episodes, deterministic, seed)
        finally:
            for env in envs:
                env.close()

    def export(self, path: str | os.PathLike, format: str = "onnx") -> Path:
        """The greedy policy as one file for deployment, 'onnx' or 'torchscript' (docs/export.md):
        the observation as the env gives it in, with a batch axis, the action predict(obs,
        deterministic=True) gives out; a recurrent policy's state in and out beside them."""
        return export_policy(self.policy, self.action_space, path, format,
                             about={"env_id": self.config.env_id, "algo": self.config.algo,
                                    "steps": self.num_steps})

    def save(self, path: str | os.PathLike) -> Path:
        counters = {"steps": self.num_steps, "updates": self.num_updates}
        return save_checkpoint(path, self.policy, self.config, counters, self.optimizer)

    @classmethod
    def load(cls: type[_Model], path: str | os.PathLike, env: EnvLike | None = None,
             device: str | None = None, verbose: int = 1, trust_code: bool = False) -> _Model:
        """The model a checkpoint holds, on the env it was trained on, or on `env` if given.

        device (A2C) overrides the stored one, e.g. cpu for a GPU run. A checkpoint that names code
        (its env's module, its wrappers) is loaded only with trust_code=True, or with env= given:
        loading a file never imports what it names by itself. A network with a user's torso
        ('module:Class') needs trust_code=True in either case.
        """
        ckpt = load_checkpoint(path, trust_code)
        if ckpt.config.algo != cls.algo:
            right = ALGORITHMS[ckpt.config.algo].__name__
            raise CheckpointError(
                f"{path} holds an {right} model, not {cls.__name__}; load it with {right}.load "
                "or a3c.load, which picks the class from the checkpoint")
        return cls._from_checkpoint(ckpt, path, verbose, device, env=env, trust_code=trust_code)

    @classmethod
    def resume(cls: type[_Model], run_dir: str | os.PathLike, /, verbose: int = 1,
               trust_code: bool = False, **overrides: Any) -> _Model:
        """The model of a run directory's newest checkpoint, whose next learn() continues that run.

        It goes on with the checkpoint's network, optimizer, counters, learning-rate schedule and
        observation statistics, in the same directory, its logs appended; exactly where the
        checkpoint holds its learner's RNG and envs (A2C on the CPU with classic-control envs, see
        a3c.envs.state). overrides: only RESUME_OPTIONS; total_steps means that many more steps.
        trust_code: as for load.
        """
        path = latest_checkpoint(run_dir)
        ckpt = load_checkpoint(path, trust_code)
        if ckpt.config.algo != cls.algo:
            right = ALGORITHMS[ckpt.config.algo].__name__
            raise CheckpointError(f"{run_dir} holds an {right} run, not {cls.__name__}; resume it with "
                                  f"{right}.resume or a3c.resume")
        return cls._resume(ckpt, path, run_dir, verbose, overrides, trust_code)

    @classmethod
    def _resume(cls: type[_Model], ckpt: Checkpoint, path: Path, run_dir: str | os.PathLike,
                verbose: int, overrides: dict[str, Any], trust_code: bool) -> _Model:
        fixed = sorted(set(overrides) - set(RESUME_OPTIONS))
        if fixed:
            raise ConfigError(f"{', '.join(fixed)} cannot change when a run resumes: the checkpoint fixes "
                              "what it learns; start a new run to change it")
        config = ckpt.config.replace(run_dir=str(run_dir), **overrides)
        model = cls._from_checkpoint(ckpt, path, verbose, None, config, trust_code=trust_code)
        position = ckpt.position()
        if "total_steps" in overrides:
            position.target_steps = model.num_steps + model.config.total_steps
        model._position, model._resumed_from = position, path
        return model

    @classmethod
    def _from_checkpoint(cls: type[_Model], ckpt: Checkpoint, path: str | os.PathLike, verbose: int,
                         device: str | None, config: Config | None = None, env: EnvLike | None = None,
                         trust_code: bool = False) -> _Model:
        config = config or ckpt.config
        if device is not None:
            config = config.replace(device=device)
        if env is not None:  # the caller's env replaces the recorded one, wrappers and all
            config = config.replace(env_kwargs={}, env_wrappers=(), **env_options(env)).validated()
        else:
            check_named_code(config, path, trust_code)
        if ckpt.spec.user_torso:
            check_trusted(ckpt.spec.torso.partition(":")[0], f"{path}'s network torso {ckpt.spec.torso!r}",
                          trust_code)
        with warnings.catch_warnings():  # what obs_norm skips was said when the network was trained
            warnings.simplefilter("ignore", A3CWarning)
            model = cls(config.env_id, config=config, verbose=verbose)
        if model.policy.spec != ckpt.spec:
            raise CheckpointError(f"{path}: the env's spaces do not match the network it stores")
        net = ckpt.build_network()
        with torch.no_grad():
            # state_dict: the parameters and the observation statistics (buffers), in place
            for dst, src in zip(model.policy.state_dict().values(), net.state_dict().values(),
                                strict=True):
                dst.copy_(src)
        if ckpt.optimizer_state:
            load_optimizer_tensors(model.optimizer, model.policy, ckpt.optimizer_state)
        model.num_steps = int(ckpt.counters.get("steps", 0))
        model.num_updates = int(ckpt.counters.get("updates", 0))
        return model


class A3C(ActorCriticAlgorithm):
    """Asynchronous advantage actor-critic: Hogwild workers sharing one network and optimizer.

    >>> model = A3C("CartPole-v1", workers=2, seed=0)
    >>> model.learn(total_steps=200_000)
    >>> model.save("cartpole.safetensors")
    """

    algo = "a3c"

    def _prestart(self) -> None:
        if self.config.backend == "local":
            prestart_workers()  # its imports run on another core meanwhile

    def _place(self, net: ActorCritic) -> ActorCritic:
        return net.share_memory()

    def _shared(self) -> bool:
        return True

    def _driver(self, config: Config, position: RunPosition | None) -> Driver:
        # A3C resumes with freshly seeded workers: their envs were in processes that are gone.
        if config.backend == "ray":
            from a3c.drivers.ray import RayDriver  # says what to install when Ray is missing

            return RayDriver(self.policy, self.optimizer, self.num_steps, self.num_updates)
        return HogwildDriver(self.policy, self.optimizer, self.num_steps, self.num_updates)


class A2C(ActorCriticAlgorithm):
    """Synchronous advantage actor-critic: one process, a batch of envs, one update per batch.

    The network and its update run on config.device (cpu, cuda, auto); the envs on the CPU.

    >>> model = A2C("CartPole-v1", n_envs=8, seed=0)
    >>> model.learn(total_steps=200_000)
    """

    algo = "a2c"

    def _device(self) -> torch.device:
        return resolve_device(self.config.device)

    def _place(self, net: ActorCritic) -> ActorCritic:
        return net.to(self.device)

    def _driver(self, config: Config, position: RunPosition | None) -> Driver:
        return A2CDriver(self.policy, self.optimizer, self.num_steps, self.num_updates, position)


ALGORITHMS: dict[str, type[ActorCriticAlgorithm]] = {"a3c": A3C, "a2c": A2C}


def load(path: str | os.PathLike, env: EnvLike | None = None, device: str | None = None, verbose: int = 1,
         trust_code: bool = False) -> ActorCriticAlgorithm:
    """An A3C or A2C model, whichever the checkpoint (or run directory) holds; see A3C.load."""
    ckpt = load_checkpoint(path, trust_code)
    return ALGORITHMS[ckpt.config.algo]._from_checkpoint(ckpt, path, verbose, device, env=env,
                                                         trust_code=trust_code)


def resume(run_dir: str | os.PathLike, /, verbose: int = 1, trust_code: bool = False,
           **overrides: Any) -> ActorCriticAlgorithm:
    """The A3C or A2C model of a run directory's newest checkpoint; its learn() continues the run.

    >>> model = a3c.resume("runs/CartPole-v1-a2c-...")   # after a crash, Ctrl-C or kill
    >>> model.learn()                                     # on to the run's own total_steps
    """
    path = latest_checkpoint(run_dir)
    ckpt = load_checkpoint(path, trust_code)
    return ALGORITHMS[ckpt.config.algo]._resume(ckpt, path, run_dir, verbose, overrides, trust_code)


def evaluate_policy(model: ActorCriticAlgorithm, env: EnvLike, n_eval_episodes: int = 10,
                    deterministic: bool = True, return_episode_rewards: bool = False, seed: int = 0
                    ) -> tuple[float, float] | tuple[list[float], list[int]]:
    """Stable-Baselines3's evaluate_policy: (mean, std) of whole episodes' returns on env, or
    (returns, lengths) with return_episode_rewards. env: an env instance (used as it is, not
    closed) or what A3C(env) takes (made, then closed)."""
    own = not isinstance(env, gym.Env)
    instance = env if isinstance(env, gym.Env) else make_config_env(
        model.config.replace(env_kwargs={}, env_wrappers=(), **env_options(env)).validated())
    try:
        result = evaluate(model.policy, instance, n_eval_episodes, deterministic, seed)
    finally:
        if own:
            instance.close()
    if return_episode_rewards:
        return result.returns, result.lengths
    return result.mean_return, result.std_return
