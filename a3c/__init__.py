"""A3C and A2C: asynchronous and synchronous advantage actor-critic on Gymnasium environments.

The public names are imported on first use, so `import a3c.cli` does not pay for torch before the
command line has been read (the CLI starts its worker processes' imports first).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "A2C": "a3c.api", "A3C": "a3c.api", "load": "a3c.api", "resume": "a3c.api",
    "Config": "a3c.config", "A3CError": "a3c.errors", "CheckpointError": "a3c.errors",
    "ConfigError": "a3c.errors", "EnvError": "a3c.errors", "WorkerError": "a3c.errors",
    "TrainingError": "a3c.errors", "NonFiniteError": "a3c.errors",
    "EvalResult": "a3c.run.evaluation", "evaluate": "a3c.run.evaluation",
    "evaluate_policy": "a3c.api", "UntrustedCodeError": "a3c.errors", "A3CWarning": "a3c.errors",
    "EnvFactoryError": "a3c.errors",
    **{name: "a3c.run.callbacks" for name in (
        "Callback", "CallbackList", "EvalCallback", "CheckpointCallback",
        "StopTrainingOnRewardThreshold", "StopTrainingOnNoModelImprovement")},
}
__all__ = list(_EXPORTS)
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'a3c' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
