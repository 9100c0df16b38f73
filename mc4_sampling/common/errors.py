"""The one base class of user errors, and the errors the common layer raises.

A :class:`UserError` is a mistake in what the user supplied or a fault of the environment (an option,
a file, a path that cannot be written, an unreachable Hub), never a bug: the console policy
(:func:`~mc4_sampling.common.console.run_guarded`) prints its message as one ``error:`` line, exit
status 2. The sampler's :class:`~mc4_sampling.errors.Mc4SamplingError` and the trainer's
:class:`~trainer.errors.TrainerError` derive from it; so do the errors below, raised by the common
layer for both packages (each also a :class:`ValueError`, as the sampler's errors are).
"""

from __future__ import annotations

import errno


class UserError(Exception):
    """Base class: what the user supplied (or the environment) is not usable; the message says what to do."""


class OutputError(UserError, ValueError, OSError):
    """An output file or folder cannot be created or written (missing folder, a folder where a file
    is expected, no permission, a full disk); the message names the path. Also an :class:`OSError`."""


#: The real cause of each environment fault and what to do, appended to the system's words: the one
#: table from which every message about an OSError is made (:func:`os_error_reason`).
CAUSES = {
    errno.ENOSPC: "disk full: free some space or write elsewhere",
    errno.EDQUOT: "disk quota exceeded: free some space or write elsewhere",
    errno.EROFS: "errno EROFS: the file system is mounted read-only; write elsewhere",
    errno.EACCES: "check its permissions",
    errno.EPERM: "check its permissions",
    errno.ENOENT: "check the path",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EISDIR: "it is a folder; give a file name",
}


def os_error_reason(error: OSError) -> str:
    """``<the system's words> (<the real cause and what to do>)`` for an OSError, from :data:`CAUSES`:
    ``No space left on device (disk full: free some space or write elsewhere)``."""
    reason = error.strerror or str(error) or type(error).__name__
    cause = CAUSES.get(error.errno)
    return f"{reason} ({cause})" if cause else reason


def output_error(path, error: OSError) -> OutputError:
    """``cannot write <path>: <reason>`` from the OSError raised while creating or writing ``path``."""
    return OutputError(f"cannot write {str(path)!r}: {os_error_reason(error)}")


class HubError(UserError, ValueError):
    """A Hub operation failed (an upload, a download); the message names what and where."""


class HubUnreachableError(UserError, ValueError, ConnectionError):
    """The Hub (or ``HF_ENDPOINT``) cannot be reached; the message names what was looked up."""
