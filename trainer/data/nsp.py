"""Next-sentence-prediction pairs (BERT's ``create_pretraining_data`` recipe), drawn per document.

A document is split into segments (:func:`split_segments`: sentences, or lines where the corpus' unit is
the line) and its tokenised segments are packed into ``[CLS] A [SEP] B [SEP]`` rows of ``seq_len`` tokens
(:func:`document_pairs`, :func:`pair_rows`):

* the target length is ``seq_len - 3`` (with probability ``short_seq_prob`` a uniform length in
  ``[2, seq_len - 3]``, as BERT); consecutive segments are gathered until they reach it;
* A is the first ``a_end`` of the gathered segments (``a_end`` uniform in ``[1, n - 1]``); a fair coin
  decides B: the true continuation (the remaining gathered segments, label 0) or, label 1, the segments of
  another document of the same group from a uniform start until the target is reached (the gathered
  segments not used for A are put back and start the next pair, as BERT);
* the longer of A and B loses a token, from its front or back by a coin, until ``A + B`` fits.

Unlike BERT, a gathering is never a single segment: one segment longer than the target takes the next
one with it, and a single segment left at the end of a document is dropped (counted). So every pair's
coin is drawn under the same conditions and exactly half the pairs, in expectation, are true
continuations. A document with fewer than two segments forms no pair (counted as skipped).

Randomness is counter-based like the rest of the stream: each document draws from
``default_rng([seed, NSP_STREAM, document key])`` (:func:`document_key`: the crc32 of its text), and the
"other document" of a random B is one of the same group (the tokenising chunk, whose composition is a
function of the seed and the data only). The same documents give the same pairs whatever the number of
hosts, and a stream resumed at a chunk boundary rebuilds them exactly.
"""

from __future__ import annotations

import dataclasses
import re
import zlib
from typing import Sequence

import numpy as np

#: the segment units of :func:`split_segments`
SEGMENT_UNITS = ("sentences", "lines")
#: the second word of every NSP generator's seed (the stream's other draws use other words)
NSP_STREAM = 0x4E5350  # "NSP"
#: label of a pair whose B is the true continuation of A (transformers' ``next_sentence_label`` 0)
TRUE_NEXT, RANDOM_NEXT = 0, 1

_SENTENCE_END = re.compile(r"(?<=[.!?\u2026\u3002])\s+")


def split_segments(text: str, unit: str = "sentences") -> list[str]:
    """The non-empty segments of ``text``: its lines (``unit="lines"``) or the sentences of each line
    (``"sentences"``: a break after ``. ! ? …`` followed by white space)."""
    if unit not in SEGMENT_UNITS:
        raise ValueError(f"segment unit {unit!r} (valid: {', '.join(SEGMENT_UNITS)})")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if unit == "lines":
        return lines
    return [s for line in lines for s in (p.strip() for p in _SENTENCE_END.split(line)) if s]


def document_key(text: str) -> int:
    """The document's key in the NSP draws: ``crc32(utf-8 text)``."""
    return zlib.crc32(text.encode("utf-8"))


@dataclasses.dataclass
class PairStats:
    """What :func:`pair_rows` made of a group of documents."""

    documents: int = 0
    pairs: int = 0
    random_next: int = 0
    skipped_documents: int = 0  # fewer than two non-empty segments: no pair
    dropped_segments: int = 0  # a lone segment at the end of a document

    def add(self, other: "PairStats") -> None:
        for f in dataclasses.fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


def _truncate_pair(a: list, b: list, max_tokens: int, rng: np.random.Generator) -> None:
    """BERT's ``truncate_seq_pair``: drop a token of the longer side, at its front or back by a coin."""
    while len(a) + len(b) > max_tokens:
        longer = a if len(a) > len(b) else b
        if rng.random() < 0.5:
            del longer[0]
        else:
            longer.pop()


def document_pairs(segments: Sequence[Sequence[int]], others: Sequence[Sequence[Sequence[int]]], max_tokens: int,
                   rng: np.random.Generator, short_seq_prob: float = 0.1) -> tuple[list, int]:
    """``([(A ids, B ids, label)], dropped segments)`` of one document's tokenised ``segments``.

    ``others``: the other documents' segments (the random B's source; none: every pair is a true next);
    ``max_tokens``: the room for ``A + B`` (``seq_len - 3``). See the module docstring for the recipe.
    """
    segs = [list(s) for s in segments if len(s)]
    donors = [d for d in others if any(len(s) for s in d)]
    pairs, dropped = [], 0
    if len(segs) < 2:
        return pairs, dropped
    target = max_tokens
    if rng.random() < short_seq_prob:
        target = int(rng.integers(2, max_tokens + 1))
    chunk: list[list[int]] = []
    length, i = 0, 0
    while i < len(segs):
        chunk.append(segs[i])
        length += len(segs[i])
        last = i == len(segs) - 1
        if (length >= target and len(chunk) >= 2) or last:
            if len(chunk) < 2:  # a lone final segment: no pair
                dropped += 1
                break
            a_end = int(rng.integers(1, len(chunk)))
            a = [t for s in chunk[:a_end] for t in s]
            if donors and rng.random() < 0.5:
                other = donors[int(rng.integers(len(donors)))]
                other = [list(s) for s in other if len(s)]
                b: list[int] = []
                for s in other[int(rng.integers(len(other))):]:
                    b.extend(s)
                    if len(b) >= target - len(a):
                        break
                label = RANDOM_NEXT
                i -= len(chunk) - a_end  # the unused segments start the next pair
            else:
                b = [t for s in chunk[a_end:] for t in s]
                label = TRUE_NEXT
            _truncate_pair(a, b, max_tokens, rng)
            if a and b:
                pairs.append((a, b, label))
            chunk, length = [], 0
        i += 1
    return pairs, dropped


def pair_rows(documents: Sequence[Sequence[Sequence[int]]], keys: Sequence[int], seq_len: int, cls_id: int,
              sep_id: int, pad_id: int, seed: int, short_seq_prob: float = 0.1):
    """The NSP rows of a group of tokenised documents (each a list of segments' ids; ``keys``: their
    :func:`document_key`): ``(ids [n, seq_len], token types [n, seq_len], labels [n], PairStats)``, in
    document order. Row: ``[CLS] A [SEP] B [SEP]`` then ``[PAD]``; types 0 up to the first ``[SEP]``,
    1 for ``B [SEP]``, 0 on padding; labels :data:`TRUE_NEXT` / :data:`RANDOM_NEXT`."""
    stats = PairStats(documents=len(documents))
    rows, types, labels = [], [], []
    for d, (segments, key) in enumerate(zip(documents, keys)):
        rng = np.random.default_rng([seed, NSP_STREAM, key])
        others = [documents[j] for j in range(len(documents)) if j != d]
        pairs, dropped = document_pairs(segments, others, seq_len - 3, rng, short_seq_prob)
        stats.dropped_segments += dropped
        if sum(1 for s in segments if len(s)) < 2:
            stats.skipped_documents += 1
        for a, b, label in pairs:
            row = np.full(seq_len, pad_id, np.int32)
            typ = np.zeros(seq_len, np.int32)
            ids = [cls_id, *a, sep_id, *b, sep_id]
            row[: len(ids)] = ids
            typ[len(a) + 2: len(ids)] = 1
            rows.append(row)
            types.append(typ)
            labels.append(label)
            stats.pairs += 1
            stats.random_next += label == RANDOM_NEXT
    if not rows:
        empty = np.zeros((0, seq_len), np.int32)
        return empty, empty.copy(), np.zeros((0,), np.int32), stats
    return np.stack(rows), np.stack(types), np.asarray(labels, np.int32), stats


def token_types(rows, sep_id: int):
    """Token types of ``[CLS] A [SEP] B [SEP] [PAD]...`` rows from the ids alone (numpy or jax arrays):
    1 where one ``[SEP]`` precedes the position or the position is the second ``[SEP]``, else 0."""
    if isinstance(rows, np.ndarray):
        xp = np
    else:
        import jax.numpy as xp
    is_sep = (rows == sep_id).astype(np.int32)
    before = xp.cumsum(is_sep, axis=-1) - is_sep  # [SEP]s strictly before each position
    return (before == 1).astype(np.int32)


def skipped_message(stats: PairStats, unit: str) -> str:
    """One line on the documents and segments that formed no pair, and why."""
    return (f"next-sentence pairs: {stats.pairs} from {stats.documents} documents; {stats.skipped_documents} "
            f"documents skipped (fewer than 2 {unit}: no pair can be formed), {stats.dropped_segments} lone final "
            f"{unit[:-1]}s dropped; {stats.random_next} pairs with a random B")


def labelled_rows(texts: Sequence[str], tok, seq_len: int, seed: int, unit: str = "sentences",
                  short_seq_prob: float = 0.1):
    """The NSP rows of a group of documents as the batch stream carries them: ``[n, seq_len + 1]`` int32, each
    row's ids followed by its label (the token types follow from the ids, :func:`token_types`), and the
    :class:`PairStats`. ``tok``: a :class:`~trainer.data.tokenizer.TokenizerFns` (``bos_id`` is ``[CLS]``,
    ``eos_id`` ``[SEP]``)."""
    segments = [split_segments(t, unit) for t in texts]
    flat = tok.encode([s for segs in segments for s in segs]) if any(segments) else []
    documents, k = [], 0
    for segs in segments:
        documents.append(flat[k: k + len(segs)])
        k += len(segs)
    rows, _, labels, stats = pair_rows(documents, [document_key(t) for t in texts], seq_len, tok.bos_id, tok.eos_id,
                                       tok.pad_id, seed, short_seq_prob)
    return np.concatenate([rows, labels[:, None]], axis=1).astype(np.int32), stats
