"""``threshold``: keep the scores in a range (CCNet's head/middle/tail buckets, FineWeb-Edu's
``score >= 3``), or, calibrated, the best fraction (DCLM's top 10 %)."""

from __future__ import annotations

import math

import numpy as np

from ..errors import ConfigError
from .base import Weighting, register_weighting
from .fitting import MethodFit, check_target_rate


def threshold_keep_probability(x, factor: float, low: float | None = None, high: float | None = None):
    """``p(x) = factor`` for ``low <= x < high``, ``0`` elsewhere (an unset bound is no bound)."""
    x = np.asarray(x, dtype=np.float64)
    inside = np.ones(x.shape, dtype=bool)
    if low is not None:
        inside &= x >= low
    if high is not None:
        inside &= x < high
    return np.where(inside, np.float64(factor), 0.0)


class ThresholdWeighting(Weighting):
    name = "threshold"
    formula = "`p = factor` for `low <= x < high`, else 0"
    parameters = {"low": None, "high": None}
    color = "#CC79A7"

    def probability(self, x, rule):
        """See :func:`threshold_keep_probability`."""
        return threshold_keep_probability(x, rule.factor, rule.param("low"), rule.param("high"))

    def check_parameters(self, params) -> None:
        super().check_parameters(params)
        low, high = params.get("low"), params.get("high")
        if low is not None and high is not None and not low < high:
            raise ConfigError(f"weighting_options low={low!r} and high={high!r} are not valid; low must be < high")

    def fit(self, scores, target, *, higher_is_better: bool = False, **options):
        """The best ``ceil(target * n)`` scores: ``low`` = the k-th highest (higher is better) or
        ``high`` just above the k-th lowest; ties at the bound are all kept, so the rate may exceed
        the target by the tied fraction."""
        target = check_target_rate(target, "target")
        x = np.sort(np.asarray(scores, dtype=np.float64))
        k = max(1, math.ceil(target * x.size - 1e-9))
        if higher_is_better:
            params = {"low": float(x[x.size - k]), "high": None}
        else:
            params = {"low": None, "high": float(np.nextafter(x[k - 1], np.inf))}
        rate = float(threshold_keep_probability(x, 1.0, params["low"], params["high"]).mean())
        fit = MethodFit("threshold", factor=1.0, expected_rate=rate,
                        fitted=("low",) if higher_is_better else ("high",),
                        extra={k: v for k, v in params.items() if v is not None})
        if rate > target * (1 + 1e-9) + 1e-12:
            fit.notes.append(f"{rate - target:.3%} of the documents tie at the threshold and are all kept")
        return fit


register_weighting(ThresholdWeighting())
