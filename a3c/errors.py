"""Typed exceptions: every problem a user can cause or meet has one, with a message that names it."""


class A3CError(Exception):
    """Base class of every error this library raises on purpose."""


class ConfigError(A3CError, ValueError):
    """A hyper-parameter, option or preset is invalid."""


class EnvError(A3CError, ValueError):
    """The environment id is unknown, or its spaces are not supported."""


class CheckpointError(A3CError):
    """A checkpoint is missing, malformed, foreign, or does not fit the network."""


class WorkerError(A3CError, RuntimeError):
    """A worker process failed and the run could not go on."""


class PlotError(A3CError, ValueError):
    """A run directory to plot has no readable episode log."""
