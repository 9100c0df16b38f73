"""Packing tokenised documents into full training sequences (RoBERTa "full-sentences").

The token stream is ``doc_1 </s> doc_2 </s> doc_3 </s> ...``; every sequence is ``<s>``
followed by the next ``L - 1`` tokens of that stream, so documents may cross sequence
boundaries and no token is ever thrown away: what does not fill a sequence is carried over
(the *remainder*) and starts the next one.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def token_stream(docs: Sequence[Sequence[int]], eos_id: int) -> np.ndarray:
    """Concatenate ``doc </s>`` for every non-empty document (int32)."""
    parts = []
    for ids in docs:
        if len(ids):
            parts.append(np.asarray(ids, dtype=np.int32))
            parts.append(np.asarray([eos_id], dtype=np.int32))
    return np.concatenate(parts) if parts else np.zeros((0,), np.int32)


def pack(remainder: np.ndarray, docs: Sequence[Sequence[int]], seq_len: int, bos_id: int, eos_id: int):
    """Pack ``remainder ++ token_stream(docs)`` into ``n = len // (L - 1)`` sequences.

    Returns ``(sequences [n, L] int32, new_remainder)``: row ``i`` is
    ``[<s>] + stream[i (L-1) : (i+1)(L-1)]`` and ``new_remainder = stream[n (L-1):]``.
    """
    return pack_stream(remainder, token_stream(docs, eos_id), seq_len, bos_id)


def pack_stream(remainder: np.ndarray, tokens: np.ndarray, seq_len: int, bos_id: int):
    """:func:`pack` of an already built :func:`token_stream` ``tokens`` (what tokenizer workers return)."""
    body = seq_len - 1
    stream = np.concatenate([np.asarray(remainder, np.int32), np.asarray(tokens, np.int32)])
    n = len(stream) // body
    seqs = np.empty((n, seq_len), np.int32)
    seqs[:, 0] = bos_id
    seqs[:, 1:] = stream[: n * body].reshape(n, body)
    return seqs, stream[n * body:].copy()


def unpack(sequences: np.ndarray) -> np.ndarray:
    """Inverse of :func:`pack` for whole sequences: the stream tokens they hold (``<s>`` dropped)."""
    sequences = np.asarray(sequences, np.int32)
    return sequences[:, 1:].reshape(-1) if len(sequences) else np.zeros((0,), np.int32)


def pad_final(remainder: np.ndarray, seq_len: int, bos_id: int, pad_id: int) -> np.ndarray:
    """The last, partial sequence ``[<s>] + remainder`` padded with ``<pad>`` to ``L`` (``[0, L]`` if empty)."""
    if len(remainder) == 0:
        return np.zeros((0, seq_len), np.int32)
    row = np.full((1, seq_len), pad_id, np.int32)
    row[0, 0] = bos_id
    row[0, 1: 1 + len(remainder)] = remainder
    return row
