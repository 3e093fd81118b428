"""A2C: the synchronous driver, with real vector envs, through the API and the CLI."""

from __future__ import annotations

import csv
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

import a3c
from a3c import A2C, A3C
from a3c.cli import main
from a3c.core.torsos import cpu_has_native_bfloat16
from a3c.errors import A3CWarning, CheckpointError, ConfigError, EnvError
from a3c.run.checkpoint import load_checkpoint
from a3c.run.metrics import EPISODE_COLUMNS, UPDATE_COLUMNS

# Small and fast: 4 envs x 5 steps = 20 env steps per update, no evaluations or periodic checkpoints.
FAST = dict(n_envs=4, n_steps=5, eval_interval=0, checkpoint_interval=0, final_eval_episodes=0,
            target_return=None, log_interval=0.05)


class _GrowingObsEnv(gym.Env):
    """Every second instance has a longer observation: sub-envs of a vector env that disagree."""

    instances = 0
    action_space = gym.spaces.Discrete(2)

    def __init__(self):
        dim = 3 + _GrowingObsEnv.instances % 2
        _GrowingObsEnv.instances += 1
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (dim,), dtype=np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(self.observation_space.shape, dtype=np.float32), {}

    def step(self, action):
        return np.zeros(self.observation_space.shape, dtype=np.float32), 0.0, False, False, {}


if "A2CTestGrowingObs-v0" not in gym.registry:
    gym.register("A2CTestGrowingObs-v0", entry_point=_GrowingObsEnv, max_episode_steps=10)


def _train(tmp_path: Path, name: str, updates: int, **overrides) -> A2C:
    model = A2C("CartPole-v1", verbose=0, **{**FAST, **overrides})
    steps = updates * model.config.n_envs * model.config.n_steps
    return model.learn(total_steps=steps, run_dir=tmp_path / name)


def _state(model: A2C) -> dict[str, torch.Tensor]:
    state = {f"model/{k}": v for k, v in model.policy.state_dict().items()}
    for i, group in enumerate(model.optimizer.param_groups):
        for j, p in enumerate(group["params"]):
            for key, value in model.optimizer.state[p].items():
                state[f"optim/{i}/{j}/{key}"] = value
    return state


def _assert_identical(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), f"{key} differs"


def test_same_seed_gives_bit_identical_parameters(tmp_path):
    K = 40
    first = _train(tmp_path, "first", K, seed=3)
    second = _train(tmp_path, "second", K, seed=3)
    assert first.num_updates == second.num_updates == K
    _assert_identical(_state(first), _state(second))
    # ...and it is the learning that is identical, not an untouched network.
    untouched = A2C("CartPole-v1", verbose=0, seed=3, **FAST)
    assert not torch.equal(first.policy.torso.layers[0].weight, untouched.policy.torso.layers[0].weight)
    other_seed = _train(tmp_path, "other", K, seed=4)
    assert not torch.equal(first.policy.torso.layers[0].weight, other_seed.policy.torso.layers[0].weight)


def test_async_vector_env_learns_exactly_as_sync(tmp_path):
    sync = _train(tmp_path, "sync", 15, seed=1, vec_env="sync")
    async_ = _train(tmp_path, "async", 15, seed=1, vec_env="async")
    _assert_identical(_state(sync), _state(async_))


def test_run_directory_and_checkpoint_have_a3c_formats(tmp_path):
    model = _train(tmp_path, "run", 100, seed=0, final_eval_episodes=2, checkpoint_interval=400)
    run = tmp_path / "run"
    result = model.last_result
    assert result is not None and result.stop_reason == "total_steps"
    assert result.steps == model.num_steps == 100 * 20 and result.updates == 100
    assert (result.staleness_mean, result.staleness_max) == (0.0, 0)
    with open(run / "episodes.csv") as f:
        episodes = list(csv.reader(f))
    assert episodes[0] == EPISODE_COLUMNS and len(episodes) > 1
    with open(run / "updates.csv") as f:
        updates = list(csv.DictReader(f))
    assert list(updates[0]) == UPDATE_COLUMNS
    assert sum(int(u["updates"]) for u in updates) == 100
    assert all(float(u["staleness_mean"]) == 0.0 and int(u["staleness_max"]) == 0 for u in updates)
    assert all(u["worker"] == "0" for u in updates)
    kept = sorted(p.name for p in (run / "checkpoints").glob("step_*.safetensors"))
    assert kept == [f"step_{s:012d}.safetensors" for s in (800, 1200, 1600)]  # the last three
    ckpt = load_checkpoint(run)
    assert ckpt.config.algo == "a2c"
    counters = ckpt.counters
    assert (counters["steps"], counters["updates"], counters["target_steps"]) == (2000, 100, 2000)
    assert ckpt.optimizer_state  # RMSprop's square averages travel with the model


def test_save_load_round_trip_and_generic_load(tmp_path):
    model = _train(tmp_path, "run", 10, seed=2)
    path = model.save(tmp_path / "a2c.safetensors")
    loaded = a3c.load(path, verbose=0)
    assert isinstance(loaded, A2C)
    _assert_identical(_state(model), _state(loaded))
    assert (loaded.num_steps, loaded.num_updates) == (model.num_steps, model.num_updates)
    obs = np.random.default_rng(0).uniform(-0.05, 0.05, (16, 4)).astype(np.float32)
    assert np.array_equal(model.predict(obs, deterministic=True)[0],
                          loaded.predict(obs, deterministic=True)[0])
    assert isinstance(A2C.load(path, verbose=0), A2C)
    with pytest.raises(CheckpointError, match="A2C model, not A3C"):
        A3C.load(path, verbose=0)


def test_learn_again_continues_counters_and_checkpoint_resumes(tmp_path):
    model = _train(tmp_path, "a", 5, seed=0)
    model.learn(total_steps=100, run_dir=tmp_path / "b")
    assert (model.num_steps, model.num_updates) == (200, 10)
    resumed = A2C.load(model.save(tmp_path / "m.safetensors"), verbose=0)
    resumed.learn(total_steps=100, run_dir=tmp_path / "c")
    assert (resumed.num_steps, resumed.num_updates) == (300, 15)


def test_cli_trains_a2c_and_eval_loads_either_algorithm(tmp_path, capsys):
    run = tmp_path / "cli"
    code = main(["train", "CartPole-v1", "--algo", "a2c", "--n-envs", "2", "--total-steps", "400",
                 "--eval-interval", "0", "--final-eval-episodes", "1", "--run-dir", str(run), "--quiet"])
    out = capsys.readouterr()
    assert code == 0
    assert "A2C, 2 sync envs on cpu" in out.err and "staleness mean 0.00, max 0" in out.out
    assert main(["eval", str(run), "--episodes", "2", "--json"]) == 0
    assert '"episodes": 2' in capsys.readouterr().out
    a3c_model = A3C("CartPole-v1", verbose=0)
    a3c_path = a3c_model.save(tmp_path / "a3c.safetensors")
    assert isinstance(a3c.load(a3c_path, verbose=0), A3C)
    assert main(["eval", str(a3c_path), "--episodes", "1"]) == 0


def _one_line_error(capsys) -> str:
    """The error on stderr: one line (after the banner a started training prints, if any)."""
    err = capsys.readouterr().err.strip()
    errors = [line for line in err.splitlines() if line.startswith("a3c: error:")]
    assert len(errors) == 1 and err.endswith(errors[0]), err
    return errors[0]


def test_cli_unknown_algo_is_one_line_and_status_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "CartPole-v1", "--algo", "ppo"])
    assert exc.value.code == 2
    assert "ppo" in _one_line_error(capsys)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a CUDA GPU")
def test_cli_device_cuda_without_gpu_is_one_line_and_status_2(tmp_path, capsys):
    code = main(["train", "CartPole-v1", "--algo", "a2c", "--device", "cuda",
                 "--run-dir", str(tmp_path / "r")])
    assert code == 2
    assert "no CUDA GPU" in _one_line_error(capsys)
    assert not (tmp_path / "r").exists()


def test_a3c_refuses_cuda_with_a_clear_error(capsys):
    assert main(["train", "CartPole-v1", "--device", "cuda"]) == 2
    error = _one_line_error(capsys)
    assert "A3C" in error and "a2c" in error
    with pytest.raises(ConfigError, match="CPU only"):
        A3C("CartPole-v1", device="cuda", verbose=0)
    assert A3C("CartPole-v1", device="auto", verbose=0).device == torch.device("cpu")


def test_sub_envs_that_disagree_on_spaces_are_one_line_and_status_2(tmp_path, capsys):
    with pytest.raises(EnvError, match="disagree on their spaces"):
        A2C("A2CTestGrowingObs-v0", verbose=0, **FAST).learn(total_steps=40, run_dir=tmp_path / "api")
    code = main(["train", "A2CTestGrowingObs-v0", "--algo", "a2c", "--total-steps", "40",
                 "--run-dir", str(tmp_path / "cli"), "--quiet"])
    assert code == 2
    assert "disagree on their spaces" in _one_line_error(capsys)


@pytest.mark.parametrize("bad, message", [
    (dict(n_envs=0), "n_envs must be in"),
    (dict(vec_env="threads"), "unknown vec_env"),
    (dict(device="tpu"), "unknown device"),
    (dict(algo="a3c"), "A2C trains algo 'a2c'"),
])
def test_bad_a2c_options_are_config_errors(bad, message):
    with pytest.raises(ConfigError, match=message):
        A2C("CartPole-v1", verbose=0, **bad)


def test_a2c_gets_its_own_preset():
    assert A2C("CartPole-v1", verbose=0).config.preset == "classic-control-a2c"
    assert A3C("CartPole-v1", verbose=0).config.preset == "classic-control"


def test_device_transfer_path_learns_exactly_as_the_cpu_fast_path(tmp_path, monkeypatch):
    """The network's acting pass copying to its device and back (taken on a GPU), checked here on
    the CPU against the same pass without copies."""
    import a3c.core.acting

    monkeypatch.setattr(a3c.core.acting, "packed_mlp", lambda net, batch: None)  # through the network
    fast = _train(tmp_path, "fast", 10, seed=5)

    def always_copy(device):
        return (lambda a: torch.from_numpy(a).to(device, copy=True)), (lambda t: t.cpu().clone().numpy())

    monkeypatch.setattr(a3c.core.acting, "_converters", always_copy)
    copied = _train(tmp_path, "copied", 10, seed=5)
    _assert_identical(_state(fast), _state(copied))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_runs_network_and_update_on_the_gpu_and_loads_on_cpu(tmp_path):
    model = _train(tmp_path, "gpu", 20, seed=0, device="cuda", final_eval_episodes=1)
    assert all(p.device.type == "cuda" for p in model.policy.parameters())
    assert model.num_updates == 20
    cpu = a3c.load(model.save(tmp_path / "gpu.safetensors"), verbose=0, device="cpu")
    assert all(p.device.type == "cpu" for p in cpu.policy.parameters())
    for a, b in zip(model.policy.parameters(), cpu.policy.parameters(), strict=True):
        assert torch.equal(a.cpu(), b)


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_bfloat16_on_a_cpu_that_emulates_it_is_warned_of_when_training_starts(tmp_path, precision):
    """Emulated bfloat16 convolutions cost several times float32's: the warning says so where the
    CPU has neither AVX-512 BF16 nor AMX, and only there; float32 never warns."""
    model = A2C("tests.toy_envs:ToyImageObsLast-v0", seed=0, verbose=0, conv_precision=precision, **FAST)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.learn(40, run_dir=tmp_path / "run")
    warned = [w for w in caught if issubclass(w.category, A3CWarning) and "bfloat16" in str(w.message)]
    expected = precision == "bfloat16" and not cpu_has_native_bfloat16()
    assert len(warned) == int(expected), [str(w.message) for w in caught]
    assert model.num_steps == 40


def test_learn_leaves_torch_s_threads_as_it_found_them_and_a_seed_repeats_in_one_process(tmp_path):
    """The learner computes on one thread and gives the caller's count back: later models in the
    same process (a notebook's next cell) build and learn as the first did."""
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        runs = [_train(tmp_path, f"run{i}", 3, seed=5) for i in range(3)]
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    for later in runs[1:]:
        _assert_identical(_state(runs[0]), _state(later))
