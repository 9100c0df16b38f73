"""Console conventions of the trainer's commands: log format, and user errors as one line.

A :class:`~trainer.errors.TrainerError` (a user mistake), a sampler error surfacing under the trainer,
or an environment fault (full disk, no permission, missing file, the Hub unreachable) is printed as
``error: <message>`` and the command exits with status 2 (130 on Ctrl-C, 143 on SIGTERM: the shared
policy of :mod:`mc4_sampling.common.console`); any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import logging
import sys
from typing import Callable

from mc4_sampling.common import console as console_guard

from .errors import StoppedBySignal

#: Libraries that log routine events at INFO (or warnings that are not the user's concern).
QUIET_LOGGERS = ("absl", "jax._src", "orbax", "httpx", "urllib3", "datasets", "huggingface_hub", "filelock")


def configure_logging(level: int = logging.INFO) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    for noisy in QUIET_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # datasets' builders log a corrupt file as an error, then raise: the raise is reported as one line
    logging.getLogger("datasets.packaged_modules").setLevel(logging.CRITICAL)


def run_guarded(fn: Callable[[], int]) -> int:
    """``fn()``'s exit status; 2 after printing a user-facing error as one line, 130 on Ctrl-C, 143 on
    SIGTERM, 128 + N after signal N stopped training (:class:`~trainer.errors.StoppedBySignal`)."""
    def stopped_by_signal_aware():
        try:
            return fn()
        except StoppedBySignal as e:  # preempted: checkpoint saved, one line, 128 + signal number
            print(str(e), file=sys.stderr)
            return e.exit_status

    return console_guard.run_guarded(stopped_by_signal_aware)
