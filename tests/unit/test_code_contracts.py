"""The package's shape is checked like its behaviour: layers by lint-imports, style by ruff."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT


def _tool(name: str) -> str:
    """The console script installed beside this interpreter (a venv's bin/), else on PATH."""
    beside = Path(sys.executable).with_name(name)
    return str(beside) if beside.exists() else name


def test_no_module_imports_from_a_layer_above_its_own():
    # lint-imports reads the contracts in pyproject.toml: cli > api > presets > run >
    # drivers > core | envs > config | references > errors, and the two modules kept free of torch.
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run([_tool("lint-imports"), "--no-cache"], cwd=REPO_ROOT, capture_output=True,
                            text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_the_code_is_ruff_clean():
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "a3c", "tests", "benchmarks"],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
