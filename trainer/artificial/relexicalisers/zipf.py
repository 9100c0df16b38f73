"""PCFG+Zipf: each tag's tokens drawn from a Zipf law within its block.

Tag ``r`` owns ``n_r`` tokens (:func:`~.base.allocate_vocabulary`); the token of rank ``k`` (``k = 1..n_r``,
id ``o_r + k - 1``) has probability ``p(k) = k^{-s} / H_{n_r,s}``, ``H_{n,s} = Σ_{j=1..n} j^{-s}``
(:func:`zipf_probabilities`). A sentence draws one uniform ``u`` per tag, in order, after its tree, and takes the
first rank whose cumulative probability exceeds ``u`` (:func:`~.base.draw_in_blocks`, inlined).
"""

from __future__ import annotations

import numpy as np

from .base import Relexicaliser, block_cumulative, register_relexicaliser


def zipf_probabilities(n: int, s: float) -> np.ndarray:
    """``p(k) = k^{-s} / Σ_{j=1..n} j^{-s}`` for ``k = 1..n``."""
    w = np.arange(1, n + 1, dtype=np.float64) ** -float(s)
    return w / w.sum()


@register_relexicaliser
class Zipf(Relexicaliser):
    name = "zipf"
    summary = "each relation's tokens Zipf-distributed (exponent --zipf-exponent)"

    def __init__(self, vocabulary, options, lexicon_rng):
        super().__init__(vocabulary, options, lexicon_rng)
        weights = np.concatenate([zipf_probabilities(n, options.zipf_exponent) for n in vocabulary.sizes])
        self._cumulative = block_cumulative(weights, vocabulary)
        self._block = {t: j for j, t in enumerate(vocabulary.tags)}
        self._ends = vocabulary.ends

    def draw(self, tags, rng):
        u = rng.random(len(tags))
        blocks = np.fromiter((self._block[t] for t in tags), dtype=np.int64, count=len(tags))
        ids = np.searchsorted(self._cumulative, blocks + u, side="right")
        return np.minimum(ids, self._ends[blocks])  # u · total rounding at a block's very end

    def parameters(self) -> dict:
        return {"zipf_exponent": self.options.zipf_exponent}
