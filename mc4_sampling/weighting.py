"""Keep probabilities: how likely a document with perplexity ``x`` is to be kept.

A document is kept when a uniform draw ``u`` in [0, 1) (:mod:`mc4_sampling.draw`) is below its
keep probability ``p(x)``; ``p >= 1`` means "always kept". The functions here are pure and
vectorised: they take scalars or NumPy arrays and return the same shape. :class:`SamplingRule`
is one weighting with its parameters, as applied to a split.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .errors import invalid_choice

METHODS = ("none", "random", "stepwise", "gaussian")

#: BERTIN's defaults for ``sampling_factor`` per method.
DEFAULT_FACTORS = {"random": 0.5, "stepwise": 1.5e5, "gaussian": 0.78}
#: BERTIN's default gaussian width (the ``width`` in ``exp(-(1/width) * r**2)``).
DEFAULT_WIDTH = 9 / 2
#: BERTIN's Spanish quartiles: CCNet's ``es.arpa.bin`` (``edugp/kenlm``, ``wikipedia``) in ``raw`` mode.
BERTIN_ES_BOUNDARIES = (536394.99320948, 662247.50212365, 919250.87225178)


def random_keep_probability(x, factor: float):
    """``p(x) = factor`` whatever the perplexity."""
    return np.broadcast_to(np.float64(factor), np.shape(x)).astype(np.float64)


def stepwise_keep_probability(x, factor: float, boundaries: Sequence[float]):
    """Piecewise-constant weighting over the quartiles ``(b1, b2, b3)``::

        x <= b1       : p = factor / b1
        b1 < x < b2   : p = factor / (b2 - b1)
        b2 <= x < b3  : p = factor / (b3 - b2)
        x >= b3       : p = factor / (10 * b3)

    Every ``x`` falls in exactly one branch (a perplexity equal to a boundary included).
    ``p`` may exceed 1, which means "always kept".
    """
    b1, b2, b3 = boundaries
    x = np.asarray(x, dtype=np.float64)
    return np.select(
        [x <= b1, x < b2, x < b3],
        [factor / b1, factor / (b2 - b1), factor / (b3 - b2)],
        default=factor / (10 * b3),
    )


def gaussian_keep_probability(x, factor: float, width: float, median: float):
    """``p(x) = factor * exp(-(1 / width) * ((x - m) / m) ** 2)`` with ``m`` the median perplexity."""
    x = np.asarray(x, dtype=np.float64)
    return factor * np.exp(-(1.0 / width) * ((x - median) / median) ** 2)


def keep_probability(x, method: str, factor: float, boundaries=None, width: float = DEFAULT_WIDTH):
    """Dispatch to the weighting named by ``method`` (``none`` keeps everything: ``p = 1``)."""
    if method == "none":
        return np.ones(np.shape(x))
    if method == "random":
        return random_keep_probability(x, factor)
    if method == "stepwise":
        return stepwise_keep_probability(x, factor, boundaries)
    if method == "gaussian":
        return gaussian_keep_probability(x, factor, width, boundaries[1])
    raise invalid_choice("sampling_method", method, METHODS)


def max_keep_probability(method: str, factor: float, boundaries=None) -> float:
    """The largest ``p(x)`` the weighting can give, capped at 1.

    ``min(1, factor)`` for random and gaussian (which peaks at ``x = m``);
    ``min(1, factor * max(1 / b1, 1 / (b2 - b1), 1 / (b3 - b2), 1 / (10 b3)))`` for stepwise.
    A draw ``u`` at or above it rejects the document whatever its perplexity, so the document
    need not be scored.
    """
    if method == "none":
        return 1.0
    if method in ("random", "gaussian"):
        return min(1.0, float(factor))
    if method == "stepwise":
        b1, b2, b3 = boundaries
        return min(1.0, float(factor) * max(1 / b1, 1 / (b2 - b1), 1 / (b3 - b2), 1 / (10 * b3)))
    raise invalid_choice("sampling_method", method, METHODS)


def are_quartiles(values: Sequence[float]) -> bool:
    """True for three finite perplexities with ``0 < b1 < b2 < b3`` (stepwise divides by their gaps)."""
    return len(values) == 3 and all(math.isfinite(v) for v in values) and 0 < values[0] < values[1] < values[2]


@dataclass(frozen=True)
class SamplingRule:
    """The weighting applied to one split (``method="none"`` keeps every document)."""

    method: str
    factor: float = 1.0
    boundaries: tuple[float, float, float] | None = None
    width: float = DEFAULT_WIDTH

    def probability(self, perplexities):
        return keep_probability(perplexities, self.method, self.factor, self.boundaries, self.width)

    @property
    def needs_perplexity(self) -> bool:
        return self.method in ("stepwise", "gaussian")

    @property
    def max_probability(self) -> float:
        return max_keep_probability(self.method, self.factor, self.boundaries)
