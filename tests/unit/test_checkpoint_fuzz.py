"""The checkpoint loader, fuzzed: whatever the bytes, only CheckpointError comes out, and no module the
file could name is imported."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import save as safetensors_bytes

from a3c.errors import CheckpointError
from a3c.run.checkpoint import load_checkpoint

VALID = Path(__file__).resolve().parent.parent / "data" / "d632ed2" / "cartpole-a3c.safetensors"
VALID_BYTES = VALID.read_bytes()
FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
# What loading may import on first use; a module a file names would show up outside these.
EXPECTED_IMPORTS = ("torch", "safetensors", "numpy", "gymnasium", "a3c", "json", "encodings", "_")

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children,
                                                                         max_size=4),
    max_leaves=12)


def load_or_checkpoint_error(path: Path) -> None:
    before = set(sys.modules)
    try:
        load_checkpoint(path)
    except CheckpointError:
        pass
    new = {m for m in set(sys.modules) - before if not m.startswith(EXPECTED_IMPORTS)}
    assert not new, f"loading imported {sorted(new)}"


def valid_meta() -> dict:
    from safetensors import safe_open

    with safe_open(str(VALID), "pt") as f:
        return json.loads(f.metadata()["a3c"])


def valid_tensors() -> dict[str, torch.Tensor]:
    from safetensors import safe_open

    with safe_open(str(VALID), "pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}


META, TENSORS = valid_meta(), valid_tensors()
load_checkpoint(VALID)  # torch imports some of its own modules on first use: not the file's doing


@FUZZ
@given(st.binary(max_size=2048))
def test_random_bytes(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("fuzz") / "x.safetensors"
    path.write_bytes(data)
    load_or_checkpoint_error(path)


@FUZZ
@given(st.integers(0, len(VALID_BYTES) - 1))
def test_truncated_files(tmp_path_factory, length):
    path = tmp_path_factory.mktemp("fuzz") / "x.safetensors"
    path.write_bytes(VALID_BYTES[:length])
    with pytest.raises(CheckpointError):
        load_checkpoint(path)


@FUZZ
@given(st.one_of(json_values, st.text(max_size=40)))
def test_random_headers(tmp_path_factory, header):
    path = tmp_path_factory.mktemp("fuzz") / "x.safetensors"
    text = header if isinstance(header, str) else json.dumps(header)
    path.write_bytes(safetensors_bytes(TENSORS, metadata={"a3c": text}))
    load_or_checkpoint_error(path)


@FUZZ
@given(st.sampled_from(["spec", "config", "counters", "resume", "version", "format"]),
       st.text(max_size=12), json_values)
def test_a_valid_header_with_one_field_replaced(tmp_path_factory, section, key, value):
    meta = json.loads(json.dumps(META))
    if isinstance(meta.get(section), dict) and key:
        meta[section][key] = value
    else:
        meta[section] = value
    if section == "config" and isinstance(meta["config"], dict):
        meta["config"]["env_id"] = "some_module_that_would_run:Env-v0"
    path = tmp_path_factory.mktemp("fuzz") / "x.safetensors"
    path.write_bytes(safetensors_bytes(TENSORS, metadata={"a3c": json.dumps(meta)}))
    load_or_checkpoint_error(path)


@FUZZ
@given(st.dictionaries(
    st.sampled_from(sorted(TENSORS)) | st.text(min_size=1, max_size=20),
    st.tuples(st.sampled_from([torch.float32, torch.float64, torch.int64, torch.uint8]),
              st.lists(st.integers(0, 5), max_size=3)),
    max_size=6))
def test_random_tensor_tables(tmp_path_factory, table):
    tensors = dict(TENSORS)
    for name, (dtype, shape) in table.items():
        tensors[name] = torch.zeros(shape, dtype=dtype)
    path = tmp_path_factory.mktemp("fuzz") / "x.safetensors"
    path.write_bytes(safetensors_bytes(tensors, metadata={"a3c": json.dumps(META)}))
    load_or_checkpoint_error(path)
