"""``random``: every document kept with the same probability (BERTIN's ``random``)."""

from __future__ import annotations

import numpy as np

from .base import Weighting, register_weighting


def random_keep_probability(x, factor: float):
    """``p(x) = factor`` whatever the perplexity."""
    return np.broadcast_to(np.float64(factor), np.shape(x)).astype(np.float64)


class RandomWeighting(Weighting):
    name = "random"
    formula = "`p = factor`"
    needs_scores = False
    default_factor = 0.5
    color = "#009E73"

    def probability(self, x, rule):
        """``p(x) = factor``."""
        return random_keep_probability(x, rule.factor)

    def fit(self, scores, target, **options):
        """``factor = target``."""
        from ..calibration.fit import fit_random

        return fit_random(target)


register_weighting(RandomWeighting())
