"""A user's torso (an nn.Module class) from the API and the command line: trained through its own
forward, saved by reference plus kwargs, and loaded again only when the caller trusts the file."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import a3c
from a3c import A2C, A3C
from a3c.errors import CheckpointError, ConfigError, UntrustedCodeError
from a3c.run.checkpoint import load_checkpoint
from tests.custom_torsos import CueAndFrame, ResidualMLP


def test_a_torso_class_trains_through_its_own_forward_and_loads_back_only_with_trust(tmp_path):
    model = A2C("tests.toy_envs:ToyIdentity-v0", torso=ResidualMLP, torso_kwargs={"width": 32}, seed=0,
                verbose=0, gamma=0.0, optimizer="adam", lr=1e-3, entropy_coef=0.01, eval_interval=1000,
                eval_episodes=5, final_eval_episodes=10, checkpoint_interval=0)
    assert model.config.torso == "tests.custom_torsos:ResidualMLP"
    assert isinstance(model.policy.torso.net, ResidualMLP) and model.policy.torso.net.inp.out_features == 32
    calls = []
    model.policy.torso.net.register_forward_hook(lambda *_: calls.append(1))  # nn.Module.__call__ runs
    model.learn(total_steps=10_000, target_return=19.5, run_dir=tmp_path)
    assert calls and model.last_result.stop_reason == "target_return"  # learned, not only run
    path = model.save(tmp_path / "custom.safetensors")

    env = "tests.toy_envs:ToyIdentity-v0"  # given by the caller, so only the torso needs trust
    with pytest.raises(UntrustedCodeError) as info:
        a3c.load(path, env=env, verbose=0)
    assert "tests.custom_torsos" in str(info.value) and "trust_code=True" in str(info.value)
    unbuilt = load_checkpoint(path)  # read and checked as data; nothing it names is imported
    with pytest.raises(UntrustedCodeError):
        unbuilt.build_network()
    loaded = a3c.load(path, verbose=0, trust_code=True)
    assert loaded.policy.spec.torso_kwargs == {"width": 32}
    obs = np.eye(4, dtype=np.float32)
    np.testing.assert_array_equal(loaded.predict(obs, deterministic=True)[0],
                                  model.predict(obs, deterministic=True)[0])


def test_a3c_workers_and_a_dict_observation_take_a_torso_class_too(tmp_path):
    model = A3C("tests.toy_envs:ToyDictObs-v0", torso=CueAndFrame, workers=2, seed=0, verbose=0,
                eval_interval=0, final_eval_episodes=2, checkpoint_interval=0)
    assert model.policy.torso.out_dim == 32 + 2  # the frame's 32 features and the cue's one-hot
    model.learn(total_steps=2000, run_dir=tmp_path)
    assert model.last_result.steps >= 2000 and model.last_result.worker_restarts == 0


def test_the_command_line_names_a_torso_and_its_kwargs(a3c_cli, tmp_path):
    run = tmp_path / "run"
    result = a3c_cli("train", "CartPole-v1", "--algo", "a2c", "--torso", "tests.custom_torsos:ResidualMLP",
                     "--torso-kwargs", '{"width": 16}', "--total-steps", "1000", "--eval-interval", "0",
                     "--final-eval-episodes", "1", "--run-dir", run, "--quiet")
    assert result.returncode == 0, result.stderr
    spec = load_checkpoint(run / "model.safetensors", trust_code=True).spec
    assert (spec.torso, spec.torso_kwargs) == ("tests.custom_torsos:ResidualMLP", {"width": 16})


def _local_torso_class():
    class Inner(torch.nn.Module):
        def __init__(self, obs_shape):
            super().__init__()

    return Inner


@pytest.mark.parametrize("options, words", [
    (dict(torso=_local_torso_class()), ["cannot be named as module:Class", "top level of a module"]),
    (dict(torso="tests.custom_torsos:NotATensor"), ["must return float features [batch, F]"]),
    (dict(torso="tests.custom_torsos:ResidualMLP", torso_kwargs={"depth": 3}),
     ["ResidualMLP((4,), **{'depth': 3}) failed", "unexpected keyword argument 'depth'"]),
    (dict(torso="tests.custom_torsos:NoSuchTorso"), ["has no attribute 'NoSuchTorso'"]),
    (dict(torso="mlp", torso_kwargs={"width": 3}), ["torso_kwargs are the arguments of your own torso"]),
    (dict(torso=int), ["is not an nn.Module class"]),
])
def test_a_torso_that_cannot_be_used_is_a_config_error_that_says_why(options, words):
    with pytest.raises(ConfigError) as info:
        A2C("CartPole-v1", verbose=0, **options)
    for word in words:
        assert word in str(info.value)


def test_a_checkpoint_whose_torso_no_longer_builds_is_a_checkpoint_error(tmp_path):
    model = A2C("CartPole-v1", torso=ResidualMLP, verbose=0)
    path = model.save(tmp_path / "m.safetensors")
    import json

    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(path), framework="pt") as f:
        meta, tensors = json.loads(f.metadata()["a3c"]), {k: f.get_tensor(k) for k in f.keys()}
    meta["spec"]["torso_kwargs"] = {"width": "wide"}
    save_file(tensors, str(tmp_path / "bad.safetensors"), metadata={"a3c": json.dumps(meta)})
    with pytest.raises(CheckpointError, match="cannot be built"):
        load_checkpoint(tmp_path / "bad.safetensors", trust_code=True)
