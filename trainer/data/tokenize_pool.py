"""Tokenisation in worker processes, results in submission order (``data.num_workers``).

The main process reads the documents, shuffles each block and cuts it into chunks of
``data.tokenize_batch_size`` documents exactly as without workers; chunk ``i`` goes to worker
``i mod N`` and its result is read back from that worker's queue in turn, so the results come
back in chunk order whatever the workers' speed. Each worker returns the chunk's token stream
``doc </s> doc </s> ...`` (:func:`trainer.data.packing.token_stream`, one int32 array: cheap to send);
packing stays in the main process. The produced batches are therefore identical to the
in-process ones, and so are the stream positions, exact resume and the eval hold-out.

Workers are started with ``spawn`` (the parent runs JAX threads; forking it is unsafe), build
the tokenizer from its JSON and run one Rust thread each (``TOKENIZERS_PARALLELISM=false``).
"""

from __future__ import annotations

import collections
import multiprocessing as mp
import os
import queue
import signal
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from ..errors import DataError


def _work(tokenizer_json: str, eos_id: int, inq, outq) -> None:  # pragma: no cover - runs in the workers
    # Ctrl-C reaches the whole process group: the trainer alone handles it (saves, stops, closes the pool);
    # a worker dying of it would print a traceback and fail the step being saved
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    from mc4_sampling.common.processes import die_with_parent

    die_with_parent(use_prctl=False)  # never outlive the trainer (the thread that started us may end first)
    from tokenizers import Tokenizer

    from .packing import token_stream

    tok = Tokenizer.from_str(tokenizer_json)
    while True:
        texts = inq.get()
        if texts is None:
            return
        try:
            ids = [e.ids for e in tok.encode_batch(texts, add_special_tokens=False)]
            outq.put(token_stream(ids, eos_id))
        except BaseException as e:  # forwarded, raised in the main process
            outq.put(DataError(f"tokenizer worker failed: {type(e).__name__}: {e}"))


class TokenizerPool:
    """``N`` tokenizer processes; :meth:`map` keeps up to ``lookahead`` chunks in flight."""

    def __init__(self, tokenizer_json: str, eos_id: int, num_workers: int, lookahead: int = 0):
        ctx = mp.get_context("spawn")
        self.n = num_workers
        self.lookahead = lookahead or 2 * num_workers
        self.inq = [ctx.Queue() for _ in range(num_workers)]
        self.outq = [ctx.Queue() for _ in range(num_workers)]
        self.procs = [ctx.Process(target=_work, args=(tokenizer_json, eos_id, i, o), daemon=True,
                                  name=f"tokenizer-{k}") for k, (i, o) in enumerate(zip(self.inq, self.outq))]
        for p in self.procs:
            p.start()

    def _get(self, w: int) -> np.ndarray:
        while True:
            try:
                out = self.outq[w].get(timeout=1.0)
            except queue.Empty:
                if not self.procs[w].is_alive():
                    raise DataError(f"tokenizer worker {w} died (exit code {self.procs[w].exitcode})") from None
                continue
            if isinstance(out, BaseException):
                raise out
            return out

    def map(self, items: Iterable[Any], texts_of: Callable[[Any], list]) -> Iterator[tuple[Any, np.ndarray]]:
        """``(item, token stream of texts_of(item))`` for every item, in order.

        An exception of ``items`` (e.g. a DataError at the end of an epoch) is raised after the
        results of the items before it, as it would be without workers.
        """
        items = iter(items)
        pending: collections.deque = collections.deque()
        submitted, error = 0, None

        def submit() -> bool:
            nonlocal submitted, error
            if error is not None:
                return False
            try:
                item = next(items)
            except StopIteration:
                error = StopIteration()
                return False
            except BaseException as e:
                error = e
                return False
            w = submitted % self.n
            self.inq[w].put(texts_of(item))
            pending.append((item, w))
            submitted += 1
            return True

        while len(pending) < self.lookahead and submit():
            pass
        while pending:
            item, w = pending.popleft()
            tokens = self._get(w)
            submit()
            yield item, tokens
        if error is not None and not isinstance(error, StopIteration):
            raise error

    def close(self) -> None:
        for q in self.inq:
            try:
                q.put(None)
            except Exception:
                pass
        for p in self.procs:
            p.join(timeout=2.0)
            if p.is_alive():
                p.terminate()
                p.join(timeout=2.0)
        for q in self.inq + self.outq:
            q.cancel_join_thread()
            q.close()
