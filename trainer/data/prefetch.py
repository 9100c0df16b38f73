"""Run an iterator ahead in a background thread (host work overlaps device work)."""

from __future__ import annotations

import queue
import threading
from typing import Iterator, TypeVar

T = TypeVar("T")
_END = object()


class Prefetcher(Iterator[T]):
    """Iterate ``source`` in a daemon thread, keeping up to ``size`` items ready.

    Exceptions raised by ``source`` are re-raised in the consumer; :meth:`close` stops the thread.
    Tokenisation in the fast tokenizer and NumPy packing release the GIL for most of their work.
    """

    def __init__(self, source: Iterator[T], size: int = 4, name: str = "prefetch"):
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, size))
        self._stop = threading.Event()
        self._source = source
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self):
        try:
            for item in self._source:
                if not self._put(item):
                    return
            self._put(_END)
        except BaseException as e:  # forwarded to the consumer
            self._put(e)

    def __next__(self) -> T:
        item = self._queue.get()
        if item is _END:
            self._queue.put(_END)
            raise StopIteration
        if isinstance(item, BaseException):
            raise item
        return item

    def close(self):
        self._stop.set()
        self._thread.join(timeout=5)
        close = getattr(self._source, "close", None)
        if close is not None and not self._thread.is_alive():
            close()
