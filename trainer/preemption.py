"""Stopping a run cleanly: on SIGTERM/SIGINT, and at a step whose loss or gradient norm is not finite.

:class:`StopSignals`: while the loop runs, SIGTERM and SIGINT only set a flag (a second signal stops
at once); after the current step the loop saves it and raises :class:`~trainer.errors.StoppedBySignal`
(exit status 128 + the signal number). With several processes they agree on the signal every
``logging.every_steps`` steps, so that all save the same step together.

:class:`NonFiniteSteps`: the steps' ``nonfinite`` metrics are checked one step late (the device is
not stalled); a non-finite step raises :class:`~trainer.errors.NonFiniteError`, or, with
``training.on_nonfinite=skip``, is counted (its update was dropped by the train step).
"""

from __future__ import annotations

import logging
import signal
import threading
from typing import Callable, NoReturn, Optional

import numpy as np

from .errors import NonFiniteError, StoppedBySignal

log = logging.getLogger(__name__)


class StopSignals:
    """SIGTERM/SIGINT only set a flag; the loop saves after the current step and stops."""

    def __init__(self):
        self.received: Optional[int] = None  # the signal that asks to stop
        self._previous_handlers: dict = {}

    def install(self) -> None:
        """Handle SIGTERM and SIGINT (from the main thread only; elsewhere signals keep their handlers)."""
        self.received = None
        self._previous_handlers = {}
        if threading.current_thread() is not threading.main_thread():
            return

        def on_signal(signum, frame):
            if self.received is not None:  # a second signal: stop at once
                raise KeyboardInterrupt
            self.received = signum

        for sig in (signal.SIGTERM, signal.SIGINT):
            self._previous_handlers[sig] = signal.signal(sig, on_signal)

    def restore(self) -> None:
        """The handlers from before :meth:`install`."""
        for sig, handler in self._previous_handlers.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        self._previous_handlers = {}

    def should_stop(self, step: int, num_processes: int, every_steps: int) -> bool:
        """Whether a signal asks to stop after ``step``. With several processes they agree (the
        first signal number any of them got) every ``every_steps`` steps, so that all
        save the same step together."""
        if num_processes == 1:
            return self.received is not None
        if step % every_steps:
            return False
        from jax.experimental import multihost_utils

        got = np.asarray(multihost_utils.process_allgather(np.asarray([self.received or 0], np.int32)))
        first = int(got[got > 0][0]) if (got > 0).any() else 0
        if first and self.received is None:
            self.received = first
        return first != 0

    def stop(self, step: int, save: Callable[[], None], directory: Callable[[], str]) -> NoReturn:
        """Save ``step`` (``save``: unless a hook just did) and raise StoppedBySignal naming the checkpoint
        folder (``directory()``); the loop's ``finally`` waits for the save."""
        name = signal.Signals(self.received).name
        log.warning("%s received: saving step %d and stopping", name, step)
        save()
        raise StoppedBySignal(f"stopped by {name} at step {step}; checkpoint saved in {directory()}; "
                              "rerun the same command to resume", 128 + self.received)


class NonFiniteSteps:
    """The steps whose finiteness is not checked yet, and the count of skipped updates.

    ``policy``: ``training.on_nonfinite`` (``"stop"`` or ``"skip"``); ``skipped``: updates skipped so
    far (by the runs this one resumes).
    """

    def __init__(self, policy: str, skipped: int = 0):
        self.policy = policy
        self.skipped = skipped
        self._unchecked: list = []  # (step, metrics) whose finiteness is not checked yet

    def add(self, step: int, metrics: dict) -> None:
        self._unchecked.append((step, metrics))

    def check(self, saved_step: Optional[int], directory: Callable[[], str]) -> None:
        """Check the steps not checked yet: stop at a non-finite one, or count it when skipped.
        ``saved_step``: the last checkpoint (None: none), in folder ``directory()`` (named by the error)."""
        pending, self._unchecked = self._unchecked, []
        for step, m in pending:
            if float(m["nonfinite"]) == 0.0:
                continue
            loss, grad_norm = float(m["loss"]), float(m["grad_norm"])
            if self.policy == "skip":
                self.skipped += 1
                log.warning("step %d: loss %s, gradient norm %s: update skipped", step, loss, grad_norm)
                continue
            kept = (f"the last checkpoint, step {saved_step} in {directory()}, is kept"
                    if saved_step is not None else "no checkpoint was saved")
            raise NonFiniteError(
                f"step {step}: the loss ({loss}) or the gradient norm ({grad_norm}) is not finite; training stopped "
                f"and {kept}; lower optimizer.learning_rate, or set training.on_nonfinite=skip to drop such updates")
