"""``random``: every document kept with the same probability (BERTIN's ``random``)."""

from __future__ import annotations

import numpy as np

from .base import Weighting, register_weighting
from .fitting import MethodFit, check_target_rate


def random_keep_probability(x, factor: float):
    """``p(x) = factor`` whatever the perplexity."""
    return np.broadcast_to(np.float64(factor), np.shape(x)).astype(np.float64)


def fit_random(target: float) -> MethodFit:
    """``random`` keeps every document with probability ``factor``: ``factor = target``."""
    target = check_target_rate(target, "target")
    return MethodFit("random", factor=target, expected_rate=target)


class RandomWeighting(Weighting):
    name = "random"
    formula = "`p = factor`"
    needs_scores = False
    default_factor = 0.5
    color = "#009E73"
    default_fit = {"low": 0, "high": 0}

    def probability(self, x, rule):
        """``p(x) = factor``."""
        return random_keep_probability(x, rule.factor)

    def fit(self, scores, target, **options):
        """``factor = target``."""
        return fit_random(target)


register_weighting(RandomWeighting())
