"""User-facing errors of the trainer.

Every mistake a user can make (a bad config value, a dataset without the text column, a
checkpoint from another model shape...) raises a subclass of :class:`TrainerError` with a message
that names the problem and how to fix it. :class:`TrainerError` is a
:class:`~mc4_sampling.common.errors.UserError`, so the command line (the common console policy) prints
that message and exits with status 2 instead of showing a traceback.
"""

from __future__ import annotations

from mc4_sampling.common.errors import UserError


class TrainerError(UserError):
    """Base class of the errors caused by the user's input (not by a bug)."""


class ConfigError(TrainerError, ValueError):
    """Unknown config key, wrong type, inconsistent values."""


class DataError(TrainerError):
    """The dataset cannot be loaded or lacks what the trainer needs."""


class CheckpointError(TrainerError):
    """No checkpoint where one is expected, or one that does not fit the model."""


class ExportError(TrainerError):
    """A model folder cannot be written, read or uploaded."""


class NonFiniteError(TrainerError):
    """The loss or the gradient norm became NaN or infinite (``training.on_nonfinite: stop``)."""


class StoppedBySignal(Exception):
    """Training stopped cleanly on SIGTERM/SIGINT after checkpointing; ``exit_status`` is 128 + signal."""

    def __init__(self, message: str, exit_status: int):
        super().__init__(message)
        self.exit_status = exit_status
