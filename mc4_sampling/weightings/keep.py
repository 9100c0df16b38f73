"""Keep probabilities by weighting name: how likely a document with score ``x`` is to be kept.

A document is kept when a uniform draw ``u`` in [0, 1) (:mod:`mc4_sampling.draw`) is below its
keep probability ``p(x)``; ``p >= 1`` means "always kept". The functions here look the weighting up
by name (:data:`~.base.WEIGHTINGS`, formulas in each weighting's module) and are pure and
vectorised: they take scalars or NumPy arrays and return the same shape.
"""

from __future__ import annotations

import math
from typing import Sequence

from .base import DEFAULT_WIDTH, SamplingRule, get_weighting


def keep_probability(x, method: str, factor: float, boundaries=None, width: float = DEFAULT_WIDTH, params=()):
    """``p(x)`` of the weighting named by ``method`` (``none`` keeps everything: ``p = 1``)."""
    weighting = get_weighting(method)
    return weighting.probability(x, SamplingRule(method, factor, _tuple(boundaries), width, _params(params)))


def max_keep_probability(method: str, factor: float, boundaries=None, params=()) -> float:
    """The largest ``p(x)`` the weighting can give, capped at 1.

    ``min(1, factor)`` for random and gaussian (which peaks at ``x = m``);
    ``min(1, factor * max(1 / b1, 1 / (b2 - b1), 1 / (b3 - b2), 1 / (10 b3)))`` for stepwise.
    A draw ``u`` at or above it rejects the document whatever its score, so the document
    need not be scored.
    """
    return get_weighting(method).max_probability(SamplingRule(method, factor, _tuple(boundaries), DEFAULT_WIDTH,
                                                              _params(params)))


def are_quartiles(values: Sequence[float], positive: bool = True) -> bool:
    """True for three finite scores with ``b1 < b2 < b3`` (and ``0 < b1`` when ``positive``: stepwise
    divides by them and gaussian by ``b2``)."""
    return (len(values) == 3 and all(math.isfinite(v) for v in values) and values[0] < values[1] < values[2]
            and (not positive or values[0] > 0))


def _tuple(boundaries):
    return None if boundaries is None else tuple(boundaries)


def _params(params) -> tuple:
    items = params.items() if isinstance(params, dict) else params
    return tuple(sorted((str(k), None if v is None else float(v)) for k, v in items))
