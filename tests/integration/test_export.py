"""Exported policies (ONNX in onnxruntime, TorchScript in torch.jit) give exactly predict's greedy
actions on observations recorded from the real envs: vectors, images, a Dict, a recurrent policy and
each kind of action."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime
import pytest
import torch

import a3c
from a3c import A2C
from a3c.cli import main
from a3c.envs.make import make_env
from a3c.errors import A3CWarning
from a3c.spaces import split_observation


def recorded(env_id: str, steps: int = 48, seed: int = 0) -> list:
    """Observations of the real env under random actions, as the env gives them, episodes and all."""
    env = make_env(env_id)
    env.action_space.seed(seed)
    obs, _ = env.reset(seed=seed)
    seen = []
    for _ in range(steps):
        seen.append(obs)
        obs, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            obs, _ = env.reset()
    env.close()
    return seen


def batch_of(observations: list, model) -> list[np.ndarray]:
    """The recorded observations as the exported file's inputs, in its input order."""
    parts = model.policy.spec.obs_parts
    split = [split_observation(o, parts) for o in observations]
    if len(parts) == 1 and parts[0].key == "":
        return [np.stack(split).astype(parts[0].dtype)]
    return [np.stack([s[p.key] for s in split]).astype(p.dtype) for p in parts]


def widened(model):
    """An untrained policy head's logits differ in the third decimal; scaled up 100 times, no float
    rounding can flip the greedy choice between two files, so any difference is a real one."""
    with torch.no_grad():
        model.policy.policy.linear.weight.mul_(100)
    return model


def run_onnx(path, inputs, state=None):
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    meta = json.loads(session.get_modelmeta().custom_metadata_map["a3c"])
    assert [i.name for i in session.get_inputs()] == meta["inputs"]
    return session, meta


CASES = {
    "vector": ("CartPole-v1", {}),
    "image": ("tests.toy_envs:ToyImageObsLast-v0", {}),  # uint8 [H, W, C], transposed inside
    "dict": ("tests.toy_envs:ToyDictObs-v0", {"obs_norm": True}),  # image + Discrete + Box parts
    "discrete observations": ("tests.toy_envs:ToyDiscreteObs-v0", {}),
    "multi-discrete actions": ("tests.toy_envs:ToyMultiDiscreteAction-v0", {}),
    "multi-binary actions": ("tests.toy_envs:ToyMultiBinaryAction-v0", {}),
    "box actions": ("tests.toy_envs:ToyBoxAction-v0", {"preset": "continuous-control"}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_onnx_and_torchscript_files_give_predicts_greedy_actions(tmp_path, case):
    env_id, options = CASES[case]
    with pytest.warns(A3CWarning) if options.get("obs_norm") else _nothing():
        model = A2C(env_id, seed=0, verbose=0, **options)
    if hasattr(model.policy.policy, "linear"):
        widened(model)
    if model.policy.normalizer is not None:  # statistics of their own, so that normalising shows
        seen = batch_of(recorded(env_id, 64, seed=1), model)
        keys = [p.key for p in model.policy.spec.obs_parts]
        model.policy.observe({k: v[None] for k, v in zip(keys, seen, strict=True)} if len(seen) > 1
                             else seen[0][None])
    observations = recorded(env_id)
    expected = np.stack([np.asarray(model.predict(o, deterministic=True)[0]) for o in observations])
    inputs = batch_of(observations, model)

    onnx_path = model.export(tmp_path / "policy.onnx", "onnx")
    session, meta = run_onnx(onnx_path, inputs)
    (actions,) = session.run(["action"], dict(zip(meta["inputs"], inputs, strict=True)))
    assert actions.dtype == model.action_space.dtype and actions.shape == expected.shape
    same(actions, expected)
    assert meta["env_id"] == env_id and not meta["recurrent"]

    script_path = model.export(tmp_path / "policy.pt", "torchscript")
    extra = {"a3c.json": ""}
    script = torch.jit.load(str(script_path), _extra_files=extra)
    assert json.loads(extra["a3c.json"])["inputs"] == meta["inputs"]
    actions = script(*(torch.from_numpy(x) for x in inputs)).numpy()
    same(actions, expected)


def same(actions: np.ndarray, expected: np.ndarray) -> None:
    """Discrete choices exactly; Box actions to float32 rounding, as a batch's matrix products (here
    of 48 observations) and a single observation's (predict's) add their terms in other orders."""
    if np.issubdtype(expected.dtype, np.floating):
        np.testing.assert_allclose(actions, expected, rtol=1e-5, atol=1e-7)
    else:
        np.testing.assert_array_equal(actions, expected)


def test_a_policy_trained_in_bfloat16_is_exported_computing_in_float32(tmp_path):
    env_id = "tests.toy_envs:ToyImageObsLast-v0"
    model = widened(A2C(env_id, seed=0, verbose=0, conv_precision="bfloat16"))
    exact = A2C(env_id, seed=0, verbose=0)  # the same weights, computing in float32
    exact.policy.load_state_dict(model.policy.state_dict())
    observations = recorded(env_id)
    expected = np.stack([np.asarray(exact.predict(o, deterministic=True)[0]) for o in observations])
    inputs = batch_of(observations, model)
    session, meta = run_onnx(model.export(tmp_path / "policy.onnx", "onnx"), inputs)
    (actions,) = session.run(["action"], dict(zip(meta["inputs"], inputs, strict=True)))
    same(actions, expected)
    script = torch.jit.load(str(model.export(tmp_path / "policy.pt", "torchscript")))
    same(script(*(torch.from_numpy(x) for x in inputs)).numpy(), expected)
    assert model.policy.torso.dtype == torch.bfloat16  # the model itself goes on training as it did


def test_a_recurrent_policy_takes_its_state_in_and_gives_the_next_out(tmp_path):
    env_id = "a3c/CueMemory-v0"
    model = widened(A2C(env_id, seed=0, verbose=0, core="lstm", core_size=16, hidden_sizes=(16,),
                           shared_torso=True))
    observations = recorded(env_id, steps=30)
    state, expected, starts = None, [], []
    for i, obs in enumerate(observations):
        start = i == 0 or observations[i - 1][2] == 1.0  # the step after a last step begins an episode
        starts.append(start)
        action, state = model.predict(obs, state=state, episode_start=[start], deterministic=True)
        expected.append(action)
    session, meta = run_onnx(model.export(tmp_path / "lstm.onnx"), None)
    assert meta["inputs"] == ["obs", "lstm_h", "lstm_c"] and meta["recurrent"]
    script = torch.jit.load(str(model.export(tmp_path / "lstm.pt", "torchscript")))
    h = c = np.zeros((1, 16), np.float32)
    th = tc = torch.zeros(1, 16)
    for obs, start, want in zip(observations, starts, expected, strict=True):
        if start:
            h = c = np.zeros((1, 16), np.float32)
            th = tc = torch.zeros(1, 16)
        action, h, c = session.run(None, {"obs": obs[None], "lstm_h": h, "lstm_c": c})
        assert action[0] == want
        action, th, tc = script(torch.from_numpy(obs[None]), th, tc)
        assert action[0].item() == want
        np.testing.assert_allclose(th.numpy(), h, atol=1e-5)


def test_a3c_export_writes_either_file_from_a_run_directory(a3c_cli, tmp_path):
    run = tmp_path / "run"
    A2C("CartPole-v1", seed=0, verbose=0, eval_interval=0, final_eval_episodes=0, checkpoint_interval=0
        ).learn(total_steps=500, run_dir=run)
    model = a3c.load(run, verbose=0)
    obs = np.stack(recorded("CartPole-v1", 32)).astype(np.float32)
    expected = model.predict(obs, deterministic=True)[0]
    result = a3c_cli("export", run, "--format", "onnx", "-o", tmp_path / "cartpole.onnx")
    assert result.returncode == 0, result.stderr
    assert result.stderr == "" and f"wrote {tmp_path / 'cartpole.onnx'}" in result.stdout
    assert main(["export", str(run), "--format", "torchscript", "-o", str(tmp_path / "cartpole.pt")]) == 0
    session = onnxruntime.InferenceSession(str(tmp_path / "cartpole.onnx"))
    np.testing.assert_array_equal(session.run(None, {"obs": obs})[0], expected)
    script = torch.jit.load(str(tmp_path / "cartpole.pt"))
    np.testing.assert_array_equal(script(torch.from_numpy(obs)).numpy(), expected)
    with pytest.raises(SystemExit) as bad:
        main(["export", str(run), "--format", "tflite", "-o", str(tmp_path / "x")])
    assert bad.value.code == 2


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
