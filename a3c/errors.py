"""Typed exceptions: every problem a user can cause or meet has one, with a message that names it."""


class A3CError(Exception):
    """Base class of every error this library raises on purpose."""


class ConfigError(A3CError, ValueError):
    """A hyper-parameter, option or preset is invalid."""


class EnvError(A3CError, ValueError):
    """The environment id is unknown, or its spaces are not supported."""


class EnvFactoryError(EnvError):
    """The user's env function (or wrapper) raised; its traceback is kept to show once."""

    def __init__(self, message: str, traceback: str):
        super().__init__(message)
        self.traceback = traceback


class CheckpointError(A3CError):
    """A checkpoint is missing, malformed, foreign, or does not fit the network."""


class TrainingError(A3CError, RuntimeError):
    """The run could not go on; what was learned until then is in its final checkpoint."""


class WorkerError(TrainingError):
    """A worker process failed (more often than max_restarts allows) and the run could not go on."""


class NonFiniteError(TrainingError):
    """Updates were skipped max_skipped_updates times in a row: the loss or gradient was NaN or inf."""


class UntrustedCodeError(A3CError):
    """A file (a checkpoint, a config) names code to import, and the caller did not allow it."""


class PlotError(A3CError, ValueError):
    """A run directory to plot has no readable episode log."""


class A3CWarning(UserWarning):
    """Something the library did differently from what was asked, and says so (e.g. obs_norm
    skipping the parts of an observation that are not Box vectors)."""
