"""Training throughput between two readings: tokens/s, MFU, and the time spent waiting for batches."""

from __future__ import annotations

import contextlib
import time
from typing import Callable, Iterator, Optional, TypeVar

import jax

T = TypeVar("T")


class Throughput:
    """A clock over the training steps, started at the end of the first (compiling) step.

    :meth:`read` returns the figures since the previous reading and starts a new interval:

    * ``tokens_per_second = tokens_per_step * steps / step_time`` and ``mfu = mfu_of(tokens_per_second)``
      (left out when None: unknown peak): the training steps' rate. ``step_time`` is the wall time
      less the time spent in :meth:`paused` sections (evaluation, checkpoints: the hooks that are
      not training steps);
    * ``tokens_per_second_wall`` and ``mfu_wall``: the same over the wall time, pauses included
      (what the run really gets);
    * ``input_wait_fraction = waiting for batches / step_time``.

    ``clock`` (``time.perf_counter``) and ``sync`` (``jax.block_until_ready``) are replaceable for tests.
    """

    def __init__(self, tokens_per_step: int, mfu_of: Callable[[float], Optional[float]] = lambda tps: None,
                 clock: Callable[[], float] = time.perf_counter, sync: Callable = jax.block_until_ready):
        self.tokens_per_step = tokens_per_step
        self.mfu_of = mfu_of
        self.clock = clock
        self.sync = sync
        self._start: Optional[float] = None  # None until the first step has finished
        self._steps = 0
        self._wait = 0.0
        self._paused = 0.0

    def next_batch(self, batches: Iterator[T]) -> T:
        """``next(batches)``, counting the time it takes as input wait."""
        t0 = self.clock()
        batch = next(batches)
        self._wait += self.clock() - t0
        return batch

    def stepped(self, metrics) -> None:
        """Count a step; the first one (compilation) waits for its result and starts the clock."""
        self._steps += 1
        if self._start is None:
            self.sync(metrics)
            self._restart(self.clock())

    @contextlib.contextmanager
    def paused(self, metrics=None):
        """Time spent inside is not step time (an eval or a checkpoint hook).

        ``metrics`` (the last step's) are waited for first, so the steps still running on the
        device when the pause starts are counted as step time, not as pause.
        """
        if self._start is None:  # before the clock starts (compilation) nothing is counted anyway
            yield
            return
        if metrics is not None:
            self.sync(metrics)
        t0 = self.clock()
        try:
            yield
        finally:
            self._paused += self.clock() - t0

    def read(self) -> dict:
        """The figures of the steps since the last reading (none before any timed step); restarts."""
        now = self.clock()
        out: dict = {}
        if self._steps and self._start is not None:
            wall = now - self._start
            elapsed = max(wall - self._paused, 1e-12)
            tps = self.tokens_per_step * self._steps / elapsed
            wall_tps = self.tokens_per_step * self._steps / max(wall, 1e-12)
            out["tokens_per_second"] = tps
            out["tokens_per_second_wall"] = wall_tps
            util = self.mfu_of(tps)
            if util is not None:
                out["mfu"] = util
                out["mfu_wall"] = self.mfu_of(wall_tps)
            out["input_wait_fraction"] = self._wait / elapsed
        self._restart(now)
        return out

    def _restart(self, now: float) -> None:
        self._start, self._steps, self._wait, self._paused = now, 0, 0.0, 0.0
