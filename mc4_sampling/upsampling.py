"""Weighted upsampling: a keep probability turned into an expected number of copies of a document.

With upsampling, the keep probability ``p(x)`` of any weighting becomes an expected number of
copies::

    c(x) = min(N, p(x) * g(m(x)))

where ``m(x)`` is a metadata column of the document (``upsample_column``, by default FineWeb-2's
``minhash_cluster_size``: the size of the MinHash cluster the document was kept from), ``g`` a
named function of it (``upsample``: :data:`UPSAMPLE_FUNCTIONS`) and ``N`` the cap
(``max_copies``). Copy ``k`` (``k = 0 .. N-1``) is written when::

    u_k < clip(c(x) - k, 0, 1)

with ``u_0`` the document's own draw (the one that decides it without upsampling) and ``u_k`` the
same counter-based draw under the key :func:`~mc4_sampling.draw.copy_key` ``(key, k)``, so that
``E[copies] = sum_k clip(c - k, 0, 1) = c(x)`` and the copies are a pure function of the seed and
the document, whatever the workers (:func:`copies_from_draws`). With ``N = 1`` and ``g = 1`` (the
defaults) ``c = min(1, p)`` and the decision is today's ``u_0 < p``, bit for bit.

The functions ``g`` of ``m`` (a finite number >= 0; anything else makes the document a bad record):

* ``none``: 1 (only a factor that makes ``p > 1`` gives copies);
* ``linear``: ``m`` (every document of the cluster back: full "rehydration");
* ``sqrt``: ``sqrt(m)``; ``log1p``: ``log(1 + m)``;
* ``rehydration``: FineWeb-2's authors' weights (``huggingface/fineweb-2`` README, "Deduplication"):
  1 for ``m < 2``, ``m`` for 2 and 3, 3 for 4, 5 for 5 to 99, 8 for 100 to 999 and 1 from 1000 on
  (very large clusters assumed to be of lower quality). Use ``max_copies >= 8`` to reproduce them.

A function is registered by name (:func:`register_upsample_function`): it appears in the
``upsample`` option's choices everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .draw import copy_key, uniform_draws

#: ``name -> g``: ``g(m)`` of a float64 array of finite values >= 0, elementwise
UPSAMPLE_FUNCTIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {}
#: the function that gives one copy whatever the metadata (no column read)
NO_UPSAMPLING = "none"
#: FineWeb-2's cluster size column, the default ``upsample_column``
DEFAULT_COLUMN = "minhash_cluster_size"


def register_upsample_function(name: str, function: Callable[[np.ndarray], np.ndarray]) -> None:
    """Register ``g`` under ``name`` (the ``upsample`` option's value)."""
    UPSAMPLE_FUNCTIONS[name] = function


def rehydration_weights(m: np.ndarray) -> np.ndarray:
    """FineWeb-2's rehydration weights of cluster sizes ``m``: 1 (m < 2), m (2 <= m < 4, so 2 or 3),
    3 (4 <= m < 5), 5 (5 <= m < 100), 8 (100 <= m < 1000), 1 (m >= 1000)."""
    m = np.asarray(m, dtype=np.float64)
    edges = np.array([2.0, 3.0, 4.0, 5.0, 100.0, 1000.0])
    weights = np.array([1.0, 2.0, 3.0, 3.0, 5.0, 8.0, 1.0])
    return weights[np.searchsorted(edges, m, side="right")]


register_upsample_function(NO_UPSAMPLING, lambda m: np.ones_like(m))
register_upsample_function("linear", lambda m: m)
register_upsample_function("sqrt", np.sqrt)
register_upsample_function("log1p", np.log1p)
register_upsample_function("rehydration", rehydration_weights)


def metadata_values(values) -> np.ndarray:
    """The metadata values ``m`` as float64, NaN for what is not a finite number >= 0 (None, text, a
    negative number, a bool): such documents are bad records."""
    if all(type(v) in (int, float) for v in values):  # the usual column: no test per value
        out = np.asarray(values, dtype=np.float64).reshape(len(values))
        return np.where(np.isfinite(out) & (out >= 0), out, np.nan)
    out = np.full(len(values), np.nan)
    for i, v in enumerate(values):
        if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_)):
            v = float(v)
            if np.isfinite(v) and v >= 0:
                out[i] = v
    return out


def expected_copies(p: np.ndarray, g: np.ndarray, max_copies: int) -> np.ndarray:
    """``c = min(N, p * g)``: the expected number of copies of documents with keep probability ``p``
    and upsampling weight ``g`` under the cap ``N = max_copies`` (NaN where ``p * g`` is)."""
    return np.minimum(float(max_copies), np.asarray(p, dtype=np.float64) * np.asarray(g, dtype=np.float64))


def copies_from_draws(c: np.ndarray, key: int, positions, u0: np.ndarray, max_copies: int) -> np.ndarray:
    """The number of copies of each document: ``sum_k [u_k < clip(c - k, 0, 1)]`` for ``k < N``.

    ``u0`` are the documents' own draws (copy 0), ``u_k = uniform_draws(copy_key(key, k), positions)``
    the further ones, drawn only for the documents whose ``c > k``. A NaN ``c`` gives 0 copies.
    """
    c = np.where(np.isfinite(c), c, 0.0)
    copies = (u0 < np.clip(c, 0.0, 1.0)).astype(np.int64)
    positions = np.asarray(positions, dtype=np.uint64)
    for k in range(1, int(max_copies)):
        more = np.flatnonzero(c > k)
        if len(more) == 0:
            break
        u = uniform_draws(copy_key(key, k), positions[more])
        copies[more] += u < np.clip(c[more] - k, 0.0, 1.0)
    return copies


@dataclass(frozen=True)
class Upsampling:
    """The upsampling of a config: the cap ``max_copies``, the ``function`` g and the ``column`` m."""

    max_copies: int = 1
    function: str = NO_UPSAMPLING
    column: str = DEFAULT_COLUMN

    @classmethod
    def of(cls, options) -> "Upsampling | None":
        """The upsampling that validated sampling options ask for, or None (the defaults: none)."""
        max_copies = getattr(options, "max_copies", 1)
        function = getattr(options, "upsample", NO_UPSAMPLING)
        if max_copies == 1 and function == NO_UPSAMPLING:
            return None
        return cls(int(max_copies), function, getattr(options, "upsample_column", DEFAULT_COLUMN))

    @property
    def reads_column(self) -> bool:
        """Whether the decision reads :attr:`column` (every function but ``none``)."""
        return self.function != NO_UPSAMPLING

    def weights(self, values) -> np.ndarray:
        """``g(m)`` of the column's values (NaN for a value that is not a finite number >= 0)."""
        m = metadata_values(values)
        g = np.full(len(m), np.nan)
        ok = np.isfinite(m)
        g[ok] = UPSAMPLE_FUNCTIONS[self.function](m[ok])
        return g


def duplication(documents: int, copies: int, histogram: dict, kept_words: int = 0, copy_words: int = 0) -> dict:
    """What an upsampled run produced: kept ``documents``, ``copies`` written, their mean and the most
    copies of one document (from ``histogram``: copies -> documents), and the whitespace words of the
    kept documents and of the copies."""
    return {"documents": int(documents), "copies": int(copies),
            "mean_copies": copies / documents if documents else 0.0,
            "most_copies": max((int(k) for k, v in histogram.items() if v), default=0),
            "words": int(kept_words), "copy_words": int(copy_words),
            "histogram": {int(k): int(v) for k, v in sorted(histogram.items(), key=lambda kv: int(kv[0]))}}


def duplication_line(d: dict) -> str:
    """One line of :func:`duplication`: ``upsampling: 1,234 documents -> 3,456 copies (mean 2.80, max 8);
    120,000 -> 340,000 words``."""
    return (f"upsampling: {d['documents']:,} documents -> {d['copies']:,} copies (mean {d['mean_copies']:.2f}, "
            f"max {d['most_copies']}); {d['words']:,} -> {d['copy_words']:,} words")
