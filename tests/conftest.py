"""Shared helpers: run the real `a3c` command, in a fresh interpreter, from the repository root."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

# Hypothesis keeps its example database outside the repository.
os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY",
                      str(Path(tempfile.gettempdir()) / "a3c-tests-hypothesis"))


def run_a3c(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    """`python -m a3c.cli ARGS`, able to import tests.toy_envs, with its output captured."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "a3c.cli", *map(str, args)],
        capture_output=True, text=True, timeout=timeout, cwd=REPO_ROOT, env=env,
    )


@pytest.fixture
def a3c_cli():
    return run_a3c
