"""Next-sentence-prediction pairs (trainer.data.nsp): half true next within binomial bounds, no true pair
crossing a document boundary, rows framed and typed as BERT's, deterministic per document, segments."""

from __future__ import annotations

import math

import numpy as np
import pytest

from trainer.data.nsp import (
    RANDOM_NEXT,
    TRUE_NEXT,
    document_key,
    pair_rows,
    skipped_message,
    split_segments,
    token_types,
)

CLS, SEP, PAD = 2, 3, 0


def _documents(n_docs: int, seed: int = 0):
    """Documents of 1-9 segments of 2-12 tokens; token ``1000 * (d + 1) + 10 * s + k`` names its document d and
    segment s (k < 10), so a row tells where each of its tokens came from."""
    rng = np.random.default_rng(seed)
    docs = []
    for d in range(n_docs):
        docs.append([[1000 * (d + 1) + 10 * s + k for k in range(int(rng.integers(2, 10)))]
                     for s in range(int(rng.integers(1, 10)))])
    return docs


def _origin(token: int) -> tuple[int, int]:
    return token // 1000 - 1, (token % 1000) // 10


def _sides(row: np.ndarray):
    seps = np.flatnonzero(row == SEP)
    return row[1: seps[0]], row[seps[0] + 1: seps[1]]


def test_half_true_next_and_no_true_pair_crosses_a_document():
    docs = _documents(400)
    keys = [document_key(f"doc {d}") for d in range(len(docs))]
    rows, types, labels, stats = pair_rows(docs, keys, 32, CLS, SEP, PAD, seed=7)
    n = len(labels)
    assert n == stats.pairs > 500
    # a fair coin per pair: the random share within 4 standard deviations of a half
    assert abs(stats.random_next - n / 2) <= 4 * math.sqrt(n / 4)
    assert stats.random_next == int((labels == RANDOM_NEXT).sum())
    assert stats.skipped_documents == sum(1 for d in docs if len(d) < 2)
    for row, typ, label in zip(rows, types, labels):
        assert row[0] == CLS and (row == SEP).sum() == 2
        a, b = _sides(row)
        length = 3 + len(a) + len(b)
        assert len(a) and len(b) and length <= 32 and (row[length:] == PAD).all()
        np.testing.assert_array_equal(typ, token_types(row[None], SEP)[0])  # types follow from the ids
        assert typ[: len(a) + 2].sum() == 0 and (typ[len(a) + 2: length] == 1).all()
        a_doc = {_origin(t)[0] for t in a}
        b_doc = {_origin(t)[0] for t in b}
        assert len(a_doc) == 1 and len(b_doc) == 1  # each side from one document
        if label == TRUE_NEXT:
            assert a_doc == b_doc  # never across a document boundary
            # B comes after A in the document; untruncated (A + B below the 29 tokens of room), B is the
            # segment right after A's last, from its first token
            assert _origin(b[0])[1] > _origin(a[-1])[1]
            if len(a) + len(b) < 29:
                assert _origin(b[0])[1] == _origin(a[-1])[1] + 1 and b[0] % 10 == 0
        else:
            assert a_doc != b_doc  # another document of the group


def test_pairs_are_drawn_per_document():
    """The same document gives the same pairs whatever else is in its group when its B is a true next
    (the draws are keyed by seed and document, not by position in the group); another seed, other pairs."""
    docs = _documents(60, seed=1)
    keys = [document_key(f"doc {d}") for d in range(len(docs))]
    first = pair_rows(docs, keys, 32, CLS, SEP, PAD, seed=3)
    again = pair_rows(docs, keys, 32, CLS, SEP, PAD, seed=3)
    assert all(np.array_equal(x, y) for x, y in zip(first[:3], again[:3]))
    other = pair_rows(docs, keys, 32, CLS, SEP, PAD, seed=4)
    assert len(other[2]) != len(first[2]) or not np.array_equal(other[0], first[0])
    # document 5 alone in a group of one: no random B possible, only true pairs
    rows, _, labels, _ = pair_rows(docs[5:6], keys[5:6], 32, CLS, SEP, PAD, seed=3)
    assert (labels == TRUE_NEXT).all()


def test_too_short_documents_are_counted():
    docs = [[[10, 11]], [], [[20, 21], [22]], [[30]]]
    rows, _, labels, stats = pair_rows(docs, [1, 2, 3, 4], 16, CLS, SEP, PAD, seed=0)
    assert (stats.documents, stats.skipped_documents, stats.pairs) == (4, 3, 1)
    assert "3 documents skipped (fewer than 2 sentences" in skipped_message(stats, "sentences")


@pytest.mark.parametrize("unit, expected", [
    ("sentences", ["Uno dos.", "¿Tres?", "Cuatro!", "Cinco", "seis."]),
    ("lines", ["Uno dos. ¿Tres? Cuatro!", "Cinco", "seis."]),
])
def test_split_segments(unit, expected):
    assert split_segments("Uno dos. ¿Tres? Cuatro!\nCinco\n\n  seis.  ", unit) == expected
