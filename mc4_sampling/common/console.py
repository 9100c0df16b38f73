"""One console policy for ``mc4-sampling`` and ``trainer``: every user mistake or environment fault is
one ``error:`` line, exit status 2; Ctrl-C is 130, SIGTERM 143; a bug keeps its traceback.

:func:`error_message` recognises the user-facing errors of both packages by their one base class,
:class:`~.errors.UserError` (and connection faults), wherever they surface (a sampler error raised
under the trainer, one wrapped by ``datasets`` in a ``DatasetGenerationError``, a full disk deep
inside a library...): the error itself, or the first such error in its chain of causes.
:func:`run_guarded` applies it. :func:`datasets_without_torch` keeps a command's start-up free of PyTorch.
"""

from __future__ import annotations

import errno
import os
import signal
import sys
import threading
from contextlib import contextmanager
from typing import Callable, Optional

from .errors import UserError
from .outputs import os_error_message

#: Environment faults reported as one line (anything else from the OS is a bug).
ENVIRONMENT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOENT,
                                errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.ENAMETOOLONG})

#: Python spellings in library messages and the command-line flags meaning the same.
CLI_SPELLINGS = {"on_bad_record='skip'": "--on-bad-record skip", "on_bad_record": "--on-bad-record",
                 "data_dir=": "--data-dir ", "base_url=": "--base-url "}

#: Library exceptions that wrap the real cause (reported by it).
WRAPPERS = frozenset({"DatasetGenerationError"})

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143  # 128 + SIGTERM


class Terminated(BaseException):
    """SIGTERM arrived (raised in the main thread by :func:`run_guarded`'s handler)."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C met by a command that knows what it kept: its message (``interrupted: 24 of 64 shards
    finished and kept in OUT; run the same command again to resume``) is the line shown."""


#: What is reported as one line: the user errors of both packages, and connection faults.
USER_ERRORS = (UserError, ConnectionError, TimeoutError)


def _chain(error: BaseException):
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def error_message(error: BaseException) -> Optional[str]:
    """The one line for a user mistake or environment fault, or None for a bug (keep the traceback)."""
    for e in _chain(error):
        if isinstance(e, USER_ERRORS):
            return str(e).splitlines()[0] if str(e) else type(e).__name__
        if isinstance(e, OSError) and e.errno in ENVIRONMENT_ERRNOS:
            return os_error_message(e)
        if isinstance(e, MemoryError):
            return "out of memory; lower the batch size or the number of workers"
    if any(type(e).__name__ in WRAPPERS for e in _chain(error)):  # e.g. a corrupt JSON-lines file
        return f"the dataset files cannot be read: {root_cause(error)}"
    return None


def root_cause(error: BaseException) -> str:
    """``<type>: <first line>`` of the innermost exception of ``error``'s chain (what a wrapper hides)."""
    root = list(_chain(error))[-1]
    first = str(root).splitlines()[0] if str(root) else ""
    return f"{type(root).__name__}: {first}"


def in_cli_spelling(message: str) -> str:
    """``message`` with the Python option spellings of :data:`CLI_SPELLINGS` replaced by the flags."""
    for python, flag in CLI_SPELLINGS.items():
        message = message.replace(python, flag)
    return message


def _quiet_thread_faults(args) -> None:
    """A background thread ended by an environment fault (a library's writer on a full disk) prints
    nothing: the main thread meets the same fault and reports it as one line. Bugs keep the traceback."""
    if args.exc_value is not None and error_message(args.exc_value) is not None:
        return
    threading.__excepthook__(args)


def _on_sigterm(signum, frame):
    raise Terminated()


@contextmanager
def datasets_without_torch():
    """While a command runs: ``datasets`` does not import PyTorch (3-4 s) for every streaming dataset it opens
    (with torch installed, ``IterableDataset`` keeps its epoch in a shared torch tensor and subclasses torch's
    ``IterableDataset``). No command hands ``datasets``' output to PyTorch; the scorers, exports and checks that
    use PyTorch import it themselves. ``datasets``' setting is restored afterwards (a command called in-process
    leaves its caller's datasets as they were); ``USE_TORCH=1`` in the environment keeps ``datasets``' own choice."""
    import datasets.config

    previous = datasets.config.TORCH_AVAILABLE
    if os.environ.get("USE_TORCH", "").upper() not in ("1", "ON", "YES", "TRUE"):
        datasets.config.TORCH_AVAILABLE = False
    try:
        yield
    finally:
        datasets.config.TORCH_AVAILABLE = previous


def run_guarded(fn: Callable[[], Optional[int]], prefix: str = "error", cli_spelling: bool = False,
                interrupted: str = "interrupted", label: str = "") -> int:
    """``fn()``'s exit status (None is 0); ``<prefix>: <message>`` and 2 for a user-facing error,
    ``<interrupted>`` (``<label><message>`` of an :class:`Interrupted`) and 130 on Ctrl-C, 143 on
    SIGTERM. Other exceptions propagate (bugs)."""
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    previous_hook = threading.excepthook
    threading.excepthook = _quiet_thread_faults
    try:
        try:
            return fn() or 0
        except BrokenPipeError:  # `... | head`: the reader is gone, nothing to say
            return 0
        except KeyboardInterrupt as e:
            print(f"{label}{e}" if isinstance(e, Interrupted) else interrupted, file=sys.stderr)
            return EXIT_INTERRUPTED
        except Terminated:
            print(interrupted.replace("interrupted", "terminated", 1), file=sys.stderr)
            return EXIT_TERMINATED
        except Exception as e:
            message = error_message(e)
            if message is None:
                raise
            print(f"{prefix}: {in_cli_spelling(message) if cli_spelling else message}", file=sys.stderr)
            return EXIT_USER_ERROR
    finally:
        threading.excepthook = previous_hook
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def version_string(prog: str) -> str:
    """``<prog> <version>`` of the installed distribution (``mc4-sampling``), else of this source tree."""
    try:
        from importlib.metadata import version

        v = version("mc4-sampling")
    except Exception:
        v = "unknown"
    return f"{prog} {v}"


def add_version_argument(parser) -> None:
    """``--version``: print ``<prog> <version>`` and exit 0."""
    parser.add_argument("--version", action="version", version=version_string(parser.prog))
