"""``gaussian``: BERTIN's bell around the median score."""

from __future__ import annotations

import numpy as np

from .base import Weighting, register_weighting

#: BERTIN's default gaussian width (the ``width`` in ``exp(-(1/width) * r**2)``).
DEFAULT_WIDTH = 9 / 2


def gaussian_keep_probability(x, factor: float, width: float, median: float):
    """``p(x) = factor * exp(-(1 / width) * ((x - m) / m) ** 2)`` with ``m`` the median perplexity."""
    x = np.asarray(x, dtype=np.float64)
    return factor * np.exp(-(1.0 / width) * ((x - median) / median) ** 2)


class GaussianWeighting(Weighting):
    name = "gaussian"
    formula = "`p = factor * exp(-(1 / width) * ((x - b2) / b2) ** 2)`"
    uses_boundaries = True
    uses_width = True
    default_factor = 0.78
    color = "#D55E00"

    def probability(self, x, rule):
        """See :func:`gaussian_keep_probability` (``m = b2``); peaks at ``factor``."""
        return gaussian_keep_probability(x, rule.factor, rule.width, rule.boundaries[1])

    def fit(self, scores, target, *, boundaries=None, width=DEFAULT_WIDTH, fit_width=False, gaussian_factor=1.0,
            **options):
        from ..calibration.fit import fit_gaussian

        return fit_gaussian(scores, boundaries, target, width=width, fit_width=fit_width, factor=gaussian_factor)


register_weighting(GaussianWeighting())
