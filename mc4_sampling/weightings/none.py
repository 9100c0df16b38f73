"""``none``: every document kept, nothing scored."""

from __future__ import annotations

import numpy as np

from .base import SamplingRule, Weighting, register_weighting


class NoWeighting(Weighting):
    name = "none"
    formula = "1 (every document kept)"
    needs_scores = False
    calibratable = False
    keeps_all = True

    def probability(self, x, rule):
        """``p(x) = 1``."""
        return np.ones(np.shape(x))

    def max_probability(self, rule) -> float:
        return 1.0


register_weighting(NoWeighting())

#: the rule of a split that is not sampled (BERTIN's validation split): every document kept
KEEP_ALL = SamplingRule(NoWeighting.name)
