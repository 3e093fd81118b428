"""Checkpoints: a round trip keeps everything; every bad file is a CheckpointError that names it."""

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from a3c import A3C, CheckpointError
from a3c.run.checkpoint import load_checkpoint

OBS = np.random.default_rng(0).normal(size=(32, 4)).astype(np.float32)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[A3C, Path]:
    """A CartPole model whose parameters and optimizer moments have moved away from their init."""
    model = A3C("CartPole-v1", workers=1, seed=3, verbose=0, hidden_sizes=(16, 16), lr=1e-2)
    obs = torch.from_numpy(OBS)
    for _ in range(5):
        logits, values, _ = model.policy(obs)
        loss = logits.pow(2).mean() + (values - 1).pow(2).mean()
        model.optimizer.zero_grad()
        loss.backward()
        model.optimizer.step()
    model.num_steps, model.num_updates = 1234, 5
    path = tmp_path_factory.mktemp("ckpt") / "model.safetensors"
    model.save(path)
    return model, path


def read(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    with safe_open(str(path), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, f.metadata()


def test_round_trip_gives_identical_predictions_and_optimizer_state(trained):
    model, path = trained
    loaded = A3C.load(path, verbose=0)
    obs = torch.from_numpy(OBS)
    with torch.no_grad():
        (logits, values, _), (logits2, values2, _) = model.policy(obs), loaded.policy(obs)
    torch.testing.assert_close(logits2, logits, rtol=0, atol=0)
    torch.testing.assert_close(values2, values, rtol=0, atol=0)
    actions, _ = model.predict(OBS, deterministic=True)
    actions2, _ = loaded.predict(OBS, deterministic=True)
    np.testing.assert_array_equal(actions2, actions)
    assert len(set(actions.tolist())) == 2  # both actions appear: the comparison means something

    names = dict(model.policy.named_parameters())
    names2 = dict(loaded.policy.named_parameters())
    for name, p in names.items():
        state, state2 = model.optimizer.state[p], loaded.optimizer.state[names2[name]]
        assert set(state) == set(state2) == {"step", "exp_avg", "exp_avg_sq"}
        for key in state:
            torch.testing.assert_close(state2[key], state[key], rtol=0, atol=0)
            assert torch.count_nonzero(state2[key]) > 0, (name, key)
            assert state2[key].is_shared(), (name, key)  # loaded into the shared tensors, in place
    assert loaded.config == model.config
    assert (loaded.num_steps, loaded.num_updates) == (1234, 5)


def test_a_run_directory_stands_for_its_model_file(trained):
    _, path = trained
    assert load_checkpoint(path.parent).counters == {"steps": 1234, "updates": 5}


def test_save_replaces_atomically_and_leaves_no_temporary_files(trained, tmp_path):
    model, _ = trained
    target = tmp_path / "sub" / "m.safetensors"
    model.save(target)
    model.save(target)
    assert sorted(p.name for p in target.parent.iterdir()) == ["m.safetensors"]


# --- crafted bad files -----------------------------------------------------------------------------

def rewrite(src: Path, dst: Path, tensors=None, meta=None, raw_meta: str | None = None) -> Path:
    """Copy a good checkpoint to dst with tensors and/or the metadata changed."""
    t, m = read(src)
    t = tensors(t) if tensors else t
    header = json.loads(m["a3c"])
    if meta:
        meta(header)
    save_file(t, str(dst), metadata={"a3c": raw_meta if raw_meta is not None else json.dumps(header)})
    return dst


def _set(key, value):
    def change(header):
        header[key] = value
    return change


def _shrink_first_layer(tensors):
    key = "model/torso.layers.0.weight"
    tensors[key] = tensors[key][:, :3].contiguous()  # 4 observation inputs -> 3
    return tensors


def _drop_optimizer_moment(tensors):
    return {k: v for k, v in tensors.items() if not k.endswith("/exp_avg_sq")}


def _spec_hidden(header):
    header["spec"]["hidden_sizes"] = [8, 8]


def _config_lr(header):
    header["config"]["lr"] = -1


def _bad_counters(header):
    header["counters"] = {"steps": "many"}


def _spec_sizes_not_numbers(header):
    header["spec"]["obs_dim"] = "four"


def _spec_negative_width(header):
    header["spec"]["hidden_sizes"] = [-16, 16]


def _spec_missing_field(header):
    del header["spec"]["obs_dim"]


def _env_state(**changes):
    state = {"np_random": np.random.default_rng(0).bit_generator.state, "elapsed_steps": 3,
             "episode": [3.0, 3, 0], "physics": {"state": {"dtype": "float64", "shape": [4],
                                                          "values": [0.0, 0.1, 0.0, -0.1]}}}
    state.update(changes)
    return state


def _resume(envs, version=1):
    def change(header):
        header["resume"] = {"version": version, "envs": envs}
    return change


def _with_resume_tensors(tensors):
    return {**tensors, "resume/torch_rng": torch.get_rng_state(), "resume/obs": torch.zeros(1, 4)}


def _resume_file(src, dst, envs, version=1):
    return rewrite(src, dst, tensors=_with_resume_tensors, meta=_resume(envs, version))


BAD_FILES = {
    "empty": lambda src, dst: dst.write_bytes(b""),
    "random bytes": lambda src, dst: dst.write_bytes(np.random.default_rng(1).bytes(4096)),
    "truncated": lambda src, dst: dst.write_bytes(src.read_bytes()[: src.stat().st_size // 2]),
    "header only": lambda src, dst: dst.write_bytes(src.read_bytes()[:200]),
    "text": lambda src, dst: dst.write_text("model weights, honest\n"),
    "safetensors without our metadata":
        lambda src, dst: save_file({"w": torch.zeros(3)}, str(dst), metadata={"format": "pt"}),
    "safetensors without any metadata": lambda src, dst: save_file({"w": torch.zeros(3)}, str(dst)),
    "wrong format name": lambda src, dst: rewrite(src, dst, meta=_set("format", "sb3-zip")),
    "future version": lambda src, dst: rewrite(src, dst, meta=_set("version", 99)),
    "version not a number": lambda src, dst: rewrite(src, dst, meta=_set("version", "1")),
    "malformed JSON": lambda src, dst: rewrite(src, dst, raw_meta='{"format": "a3c-checkpoint", '),
    "JSON that is not an object": lambda src, dst: rewrite(src, dst, raw_meta="[1, 2, 3]"),
    "config missing": lambda src, dst: rewrite(src, dst, meta=lambda h: h.pop("config")),
    "invalid stored config": lambda src, dst: rewrite(src, dst, meta=_config_lr),
    "spec missing a field": lambda src, dst: rewrite(src, dst, meta=_spec_missing_field),
    "spec with sizes that are not numbers": lambda src, dst: rewrite(src, dst, meta=_spec_sizes_not_numbers),
    "spec with a negative width": lambda src, dst: rewrite(src, dst, meta=_spec_negative_width),
    "spec that does not fit the env's network": lambda src, dst: rewrite(src, dst, meta=_spec_hidden),
    "weights of the wrong shape": lambda src, dst: rewrite(src, dst, tensors=_shrink_first_layer),
    "weights missing": lambda src, dst: rewrite(
        src, dst, tensors=lambda t: {k: v for k, v in t.items() if "value_head" not in k}),
    "optimizer state missing": lambda src, dst: rewrite(src, dst, tensors=_drop_optimizer_moment),
    "counters not numbers": lambda src, dst: rewrite(src, dst, meta=_bad_counters),
    "a negative target step count": lambda src, dst: rewrite(
        src, dst, meta=lambda h: h["counters"].update(target_steps=-1)),
    "a wall time that is not seconds": lambda src, dst: rewrite(
        src, dst, meta=lambda h: h["counters"].update(wall_time="soon")),
    # the resume section: the learner's RNG and env state
    "resume section of a future version": lambda src, dst: _resume_file(src, dst, None, version=99),
    "resume section with envs that are not a list": lambda src, dst: _resume_file(src, dst, {"a": 1}),
    "resume env state with unexpected fields": lambda src, dst: _resume_file(
        src, dst, [_env_state(code="import os")]),
    "resume env state naming a foreign bit generator": lambda src, dst: _resume_file(
        src, dst, [_env_state(np_random={"bit_generator": "os.system", "state": {}})]),
    "resume env state with a malformed RNG state": lambda src, dst: _resume_file(
        src, dst, [_env_state(np_random={"bit_generator": "PCG64", "state": {"state": "x", "inc": 1},
                                         "has_uint32": 0, "uinteger": 0})]),
    "resume env state with physics that are not numbers": lambda src, dst: _resume_file(
        src, dst, [_env_state(physics={"state": {"dtype": "float64", "shape": [1], "values": ["x"]}})]),
    "resume env state with a physics array of the wrong size": lambda src, dst: _resume_file(
        src, dst, [_env_state(physics={"state": {"dtype": "float64", "shape": [3], "values": [1.0]}})]),
    "resume env state with negative step counts": lambda src, dst: _resume_file(
        src, dst, [_env_state(elapsed_steps=-5)]),
    "resume section without its tensors": lambda src, dst: rewrite(
        src, dst, meta=_resume([_env_state()])),
    "resume section with observations for another number of envs": lambda src, dst: _resume_file(
        src, dst, [_env_state(), _env_state()]),
}


@pytest.mark.parametrize("kind", BAD_FILES)
def test_bad_files_give_a_checkpoint_error_naming_the_file(kind, trained, tmp_path):
    _, good = trained
    bad = tmp_path / f"{kind.replace(' ', '_')}.safetensors"
    BAD_FILES[kind](good, bad)
    with pytest.raises(CheckpointError) as info:
        A3C.load(bad, verbose=0)
    assert str(bad) in str(info.value)


def test_missing_file_and_directory_without_a_model(tmp_path):
    missing = tmp_path / "nope.safetensors"
    with pytest.raises(CheckpointError, match="nope.safetensors"):
        A3C.load(missing, verbose=0)
    with pytest.raises(CheckpointError, match=str(tmp_path)):
        A3C.load(tmp_path, verbose=0)


class _RunsCode:
    """Unpickling this creates a marker file: what a malicious pickle checkpoint would do."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.mark.parametrize("writer", ["pickle", "torch.save"])
def test_a_pickle_that_would_run_code_is_refused_without_running_it(writer, tmp_path):
    marker = tmp_path / "pwned"
    bad = tmp_path / "model.safetensors"
    payload = {"model": _RunsCode(marker)}
    if writer == "pickle":
        bad.write_bytes(pickle.dumps(payload))
    else:
        torch.save(payload, bad)
    # the file is a real exploit: plain unpickling does create the marker
    probe = tmp_path / "probe"
    pickle.loads(pickle.dumps({"model": _RunsCode(probe)}))
    assert probe.exists()

    with pytest.raises(CheckpointError, match=str(bad)):
        A3C.load(bad, verbose=0)
    with pytest.raises(CheckpointError):
        A3C.load(tmp_path, verbose=0)  # the run directory form reaches the same file
    assert not marker.exists()
