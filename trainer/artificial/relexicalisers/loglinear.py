"""PCFG+loglinear: tokens that co-occur in a sentence because their random vectors are close.

Every token ``w`` of the vocabulary gets a vector ``v_w ∈ R^d`` with independent ``N(0, 1/√d)`` components
(drawn once from the lexicon's generator, the same in every worker); every sentence draws, after its tree, a
topic ``v_t`` the same way, then one uniform ``u`` per tag in order, and takes for tag ``r`` the first token of
``r``'s block ``S_r`` whose cumulative probability exceeds ``u`` under
``p(w | t, r) = exp(v_w · v_t / τ) / Σ_{s ∈ S_r} exp(v_s · v_t / τ)`` (:func:`loglinear_probabilities`).
With that variance ``v_w · v_t`` has variance 1 whatever ``d``, so ``τ`` alone sets how peaked the choice is.
"""

from __future__ import annotations

import numpy as np

from .base import Relexicaliser, register_relexicaliser


def loglinear_probabilities(vectors: np.ndarray, topic: np.ndarray, temperature: float) -> np.ndarray:
    """``softmax(vectors @ topic / temperature)`` over the rows of ``vectors`` (one tag's block)."""
    z = vectors @ topic / float(temperature)
    z = np.exp(z - z.max())
    return z / z.sum()


def random_vectors(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    """``n`` vectors of ``d`` independent ``N(0, 1/√d)`` components (standard deviation ``d^{-1/4}``)."""
    return rng.standard_normal((n, d)) * d ** -0.25


@register_relexicaliser
class LogLinear(Relexicaliser):
    name = "loglinear"
    summary = ("a topic vector per sentence; p(w|t) ∝ exp(v_w·v_t/τ) within the relation's tokens "
               "(--dimension, --temperature)")

    def __init__(self, vocabulary, options, lexicon_rng):
        super().__init__(vocabulary, options, lexicon_rng)
        self.vectors = random_vectors(lexicon_rng, vocabulary.total, options.dimension)
        self._blocks = {t: (o, self.vectors[o:o + n]) for t, o, n in
                        zip(vocabulary.tags, vocabulary.offsets, vocabulary.sizes)}

    def draw(self, tags, rng):
        topic = random_vectors(rng, 1, self.options.dimension)[0]
        u = rng.random(len(tags))
        out = np.empty(len(tags), dtype=np.int64)
        positions: dict = {}
        for i, t in enumerate(tags):
            positions.setdefault(t, []).append(i)
        for t, where in positions.items():  # only the blocks of the sentence's tags
            offset, vectors = self._blocks[t]
            cum = np.cumsum(loglinear_probabilities(vectors, topic, self.options.temperature))
            k = np.searchsorted(cum, u[where], side="right")
            out[where] = offset + np.minimum(k, len(cum) - 1)  # rounding at the block's very end
        return out

    def parameters(self) -> dict:
        return {"dimension": self.options.dimension, "temperature": self.options.temperature}
