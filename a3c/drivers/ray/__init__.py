"""The Ray backend of A3C: a parameter-server actor and worker actors on a Ray cluster.

The workers run the very loop of the local backend (a3c.drivers.actor_learner.ActorLearner); only
pull and push differ: they go to the parameter server through Ray instead of to shared memory.
Ray is an optional dependency, imported only when this backend is used (``pip install "a3c[ray]"``).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from a3c.errors import ConfigError

INSTALL_HINT = 'pip install "a3c[ray]"'


def require_ray() -> ModuleType:
    """The ray module, or a ConfigError that says what to install."""
    try:
        import ray
    except ImportError:
        raise ConfigError(f"backend ray needs Ray, which is not installed: {INSTALL_HINT}") from None
    return ray


def __getattr__(name: str) -> Any:
    if name == "RayDriver":  # imports ray: only on use, and with the install hint when it is missing
        require_ray()
        from a3c.drivers.ray.driver import RayDriver

        return RayDriver
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
