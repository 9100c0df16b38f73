"""``gaussian``: BERTIN's bell around the median score."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from .base import DEFAULT_WIDTH, Weighting, register_weighting
from .fitting import MethodFit, UnreachableTargetError, check_positive, check_target_rate, max_rate, solve_factor


def gaussian_keep_probability(x, factor: float, width: float, median: float):
    """``p(x) = factor * exp(-(1 / width) * ((x - m) / m) ** 2)`` with ``m`` the median perplexity."""
    x = np.asarray(x, dtype=np.float64)
    return factor * np.exp(-(1.0 / width) * ((x - median) / median) ** 2)


def fit_gaussian(perplexities, boundaries: Sequence[float], target: float,
                 width: float = DEFAULT_WIDTH, fit_width: bool = False,
                 factor: float = 1.0) -> MethodFit:
    """Solve the gaussian ``factor`` for ``target`` at a fixed ``width``.

    With ``fit_width=True``, ``factor`` is held at the given value (default 1: the median is always
    kept) and ``width`` is solved instead: the narrowest bell of that height reaching ``target``.
    """
    target = check_target_rate(target, "target")
    x = np.asarray(perplexities, dtype=np.float64)
    median = float(boundaries[1])
    if fit_width:
        return _fit_gaussian_width(x, median, target, factor)
    width = check_positive(width, "width")
    w = gaussian_keep_probability(x, 1.0, width, median)
    reach = max_rate(w)
    if target >= reach:
        why = ("every document would have to be kept (the whole bell saturated at probability 1), "
               "so the weighting would have no effect" if reach == 1.0 else
               f"with width {width:g} the weight of {1 - reach:.3%} of the documents underflows "
               "to 0; use a larger width or fit_width")
        raise UnreachableTargetError("gaussian", target, reach, why)
    f = solve_factor(w, target)
    fit = MethodFit("gaussian", factor=f, width=width,
                    expected_rate=float(np.minimum(gaussian_keep_probability(x, f, width, median), 1.0).mean()),
                    extra={"median": median})
    if f > 1:
        # p >= 1 where ((x - m) / m) ** 2 <= width * ln(f)
        r = math.sqrt(width * math.log(f))
        fit.extra["saturated_interval"] = [median * max(0.0, 1 - r), median * (1 + r)]
        fit.notes.append(
            f"factor {f:.4g} > 1: documents with perplexity in "
            f"[{median * max(0.0, 1 - r):.4g}, {median * (1 + r):.4g}] are always kept "
            "(the bell has a flat top); consider fit_width"
        )
    return fit


def _fit_gaussian_width(x: np.ndarray, median: float, target: float, factor: float) -> MethodFit:
    factor = check_positive(factor, "gaussian_factor")
    reach = min(1.0, factor)
    if target >= reach:
        raise UnreachableTargetError(
            "gaussian", target, reach,
            f"with the factor held at {factor:g} the keep rate stays below {reach:g} however wide "
            "the bell; lower the target or raise the gaussian factor",
        )
    r2 = ((x - median) / median) ** 2

    def rate(width: float) -> float:
        return float(np.minimum(factor * np.exp(-r2 / width), 1.0).mean())

    lo, hi = 1e-12, 1.0
    while rate(hi) < target:
        hi *= 4.0
        if hi > 1e300:  # pragma: no cover - rate -> min(1, factor) > target, so this ends
            raise UnreachableTargetError("gaussian", target, reach, "no width reaches it")
    if rate(lo) >= target:
        raise UnreachableTargetError(
            "gaussian", target, rate(lo),
            "even the narrowest bell keeps more (many documents sit exactly at the median)",
        )
    for _ in range(200):  # bisection on log(width)
        mid = math.sqrt(lo * hi)
        if rate(mid) < target:
            lo = mid
        else:
            hi = mid
        if hi / lo - 1 < 1e-13:
            break
    width = hi
    fit = MethodFit("gaussian", factor=factor, width=width, expected_rate=rate(width),
                    fitted=("width",), extra={"median": median})
    return fit


class GaussianWeighting(Weighting):
    name = "gaussian"
    formula = "`p = factor * exp(-(1 / width) * ((x - b2) / b2) ** 2)`"
    uses_boundaries = True
    uses_width = True
    default_factor = 0.78
    color = "#D55E00"
    default_fit = {"low": 2, "high": 3}

    def probability(self, x, rule):
        """See :func:`gaussian_keep_probability` (``m = b2``); peaks at ``factor``."""
        return gaussian_keep_probability(x, rule.factor, rule.width, rule.boundaries[1])

    def fit(self, scores, target, *, boundaries=None, width=DEFAULT_WIDTH, fit_width=False, gaussian_factor=1.0,
            **options):
        return fit_gaussian(scores, boundaries, target, width=width, fit_width=fit_width, factor=gaussian_factor)


register_weighting(GaussianWeighting())
