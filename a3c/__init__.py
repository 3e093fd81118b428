"""A3C and A2C: asynchronous and synchronous advantage actor-critic on Gymnasium environments."""

from a3c.algorithms import A2C, A3C, load
from a3c.config import Config
from a3c.errors import A3CError, CheckpointError, ConfigError, EnvError, WorkerError
from a3c.evaluation import EvalResult, evaluate

__all__ = [
    "A2C", "A3C", "load", "Config", "A3CError", "CheckpointError", "ConfigError", "EnvError", "WorkerError",
    "EvalResult", "evaluate",
]
__version__ = "0.1.0"
