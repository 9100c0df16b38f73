"""Console conventions of the trainer's commands: log format, and user errors as one line.

A :class:`~trainer.errors.TrainerError` (a user mistake) is printed as ``error: <message>`` and
the command exits with status 2; any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import logging
import sys
from typing import Callable

from .errors import StoppedBySignal, TrainerError

#: Libraries that log routine events at INFO (or warnings that are not the user's concern).
QUIET_LOGGERS = ("absl", "jax._src", "orbax", "httpx", "urllib3", "datasets", "huggingface_hub", "filelock")


def configure_logging(level: int = logging.INFO) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    for noisy in QUIET_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.WARNING)


def run_guarded(fn: Callable[[], int]) -> int:
    """``fn()``'s exit status; 2 after printing a TrainerError, 130 on Ctrl-C, 128 + N after signal N
    stopped training (:class:`~trainer.errors.StoppedBySignal`)."""
    try:
        return fn()
    except StoppedBySignal as e:  # preempted: checkpoint saved, one line, 128 + signal number
        print(str(e), file=sys.stderr)
        return e.exit_status
    except TrainerError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
