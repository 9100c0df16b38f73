"""The one base class of user errors, and the errors the common layer raises.

A :class:`UserError` is a mistake in what the user supplied or a fault of the environment (an option,
a file, a path that cannot be written, an unreachable Hub), never a bug: the console policy
(:func:`~mc4_sampling.common.console.run_guarded`) prints its message as one ``error:`` line, exit
status 2. The sampler's :class:`~mc4_sampling.errors.Mc4SamplingError` and the trainer's
:class:`~trainer.errors.TrainerError` derive from it; so do the errors below, raised by the common
layer for both packages (each also a :class:`ValueError`, as the sampler's errors are).
"""

from __future__ import annotations


class UserError(Exception):
    """Base class: what the user supplied (or the environment) is not usable; the message says what to do."""


class OutputError(UserError, ValueError, OSError):
    """An output file or folder cannot be created or written (missing folder, a folder where a file
    is expected, no permission, a full disk); the message names the path. Also an :class:`OSError`."""


def output_error(path, error: OSError) -> OutputError:
    """``cannot write <path>: <reason>`` from the OSError raised while creating or writing ``path``."""
    reason = error.strerror or str(error)
    return OutputError(f"cannot write {str(path)!r}: {reason}")


class HubError(UserError, ValueError):
    """A Hub operation failed (an upload, a download); the message names what and where."""


class HubUnreachableError(UserError, ValueError, ConnectionError):
    """The Hub (or ``HF_ENDPOINT``) cannot be reached; the message names what was looked up."""
