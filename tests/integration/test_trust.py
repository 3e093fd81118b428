"""A checkpoint that names code never makes it run, through any entry point, unless the caller says so.

The checkpoints here are real ones whose config was edited to name a module that would write a file
the moment it is imported: as its env id's module ('evilmod:CartPole-v1'), or as an env wrapper.
The module lies in the working directory and on PYTHONPATH, where an import would find it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from safetensors import safe_open
from safetensors.torch import save_file

import a3c
from a3c import A3C
from a3c.errors import UntrustedCodeError
from tests.conftest import REPO_ROOT

CARTPOLE = REPO_ROOT / "tests" / "data" / "d632ed2" / "cartpole-a3c.safetensors"  # an A3C checkpoint


@pytest.fixture
def evil(tmp_path, monkeypatch):
    """A module that writes `marker` on import, and run directories whose checkpoints name it."""
    name = f"evilmod_{uuid.uuid4().hex[:8]}"
    marker = tmp_path / "IMPORTED"
    (tmp_path / f"{name}.py").write_text(
        "import pathlib, gymnasium\n"
        f"pathlib.Path({str(marker)!r}).write_text('ran')\n"
        "class Wrapper(gymnasium.Wrapper):\n    pass\n")
    runs = {}
    for kind, change in (("env", {"env_id": f"{name}:CartPole-v1"}),
                         ("wrapper", {"env_wrappers": [f"{name}:Wrapper"]})):
        run = tmp_path / f"run-{kind}"
        run.mkdir()
        with safe_open(str(CARTPOLE), "pt") as f:
            meta = json.loads(f.metadata()["a3c"])
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        meta["config"].update(change)
        save_file(tensors, str(run / "model.safetensors"), metadata={"a3c": json.dumps(meta)})
        (run / "episodes.csv").write_text("wall_time,global_step,worker,episode_return,episode_length\n"
                                          "0.1,20,0,20.0,20\n")
        runs[kind] = run
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    return name, marker, runs


def run_cli(module: str, *args: object, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(cwd), str(REPO_ROOT)])}
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=120)


@pytest.mark.parametrize("kind", ["env", "wrapper"])
def test_no_entry_point_imports_the_module_a_checkpoint_names(evil, kind, tmp_path):
    name, marker, runs = evil
    run = runs[kind]
    entry_points = [("a3c.cli", ("eval", run / "model.safetensors"))]
    if kind == "env":  # every command that reads a checkpoint, once
        entry_points += [("a3c", ("eval", run, "--json")),
                         ("a3c.cli", ("train", "--resume", run, "--total-steps", "100"))]
    for module, args in entry_points:
        result = run_cli(module, *args, cwd=tmp_path)
        assert result.returncode == 2, (args, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and name in lines[0] and "--trust-code" in lines[0], result.stderr
        assert not marker.exists(), f"python -m {module} {args} imported {name}"
    for load in (lambda: a3c.load(run), lambda: A3C.load(run),
                 lambda: a3c.resume(run), lambda: A3C.resume(run)):
        with pytest.raises(UntrustedCodeError, match=name):
            load()
        assert not marker.exists()
    plot = run_cli("a3c.cli", "plot", run, "-o", tmp_path / "curves.png", cwd=tmp_path)
    assert plot.returncode == 0 and not marker.exists()  # plotting reads the logs, never the code


def test_the_caller_may_allow_it_and_then_the_module_is_imported(evil, tmp_path):
    name, marker, runs = evil
    result = run_cli("a3c.cli", "eval", runs["env"], "--episodes", "1", "--trust-code", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert marker.read_text() == "ran"  # so the refusals above were real


def test_an_env_given_to_load_replaces_the_named_one_and_nothing_is_imported(evil):
    _, marker, runs = evil
    model = A3C.load(runs["env"], env="CartPole-v1", verbose=0)
    assert model.config.env_id == "CartPole-v1" and model.evaluate(episodes=1).lengths[0] > 0
    assert not marker.exists()
