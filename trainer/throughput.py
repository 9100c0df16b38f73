"""Training throughput between two readings: tokens/s, MFU, and the time spent waiting for batches."""

from __future__ import annotations

import time
from typing import Callable, Iterator, Optional, TypeVar

import jax

T = TypeVar("T")


class Throughput:
    """A clock over the training steps, started at the end of the first (compiling) step.

    :meth:`read` returns the figures since the previous reading and starts a new interval:
    ``tokens_per_second = tokens_per_step * steps / elapsed``, ``mfu = mfu_of(tokens_per_second)``
    (left out when None: unknown peak), ``input_wait_fraction = waiting for batches / elapsed``.
    """

    def __init__(self, tokens_per_step: int, mfu_of: Callable[[float], Optional[float]] = lambda tps: None):
        self.tokens_per_step = tokens_per_step
        self.mfu_of = mfu_of
        self._start: Optional[float] = None  # None until the first step has finished
        self._steps = 0
        self._wait = 0.0

    def next_batch(self, batches: Iterator[T]) -> T:
        """``next(batches)``, counting the time it takes as input wait."""
        t0 = time.perf_counter()
        batch = next(batches)
        self._wait += time.perf_counter() - t0
        return batch

    def stepped(self, metrics) -> None:
        """Count a step; the first one (compilation) waits for its result and starts the clock."""
        self._steps += 1
        if self._start is None:
            jax.block_until_ready(metrics)
            self._restart(time.perf_counter())

    def read(self) -> dict:
        """The figures of the steps since the last reading (none before any timed step); restarts."""
        now = time.perf_counter()
        out: dict = {}
        if self._steps:
            elapsed = now - self._start
            tps = self.tokens_per_step * self._steps / elapsed
            out["tokens_per_second"] = tps
            util = self.mfu_of(tps)
            if util is not None:
                out["mfu"] = util
            out["input_wait_fraction"] = self._wait / elapsed
        self._restart(now)
        return out

    def _restart(self, now: float) -> None:
        self._start, self._steps, self._wait = now, 0, 0.0
