"""``stepwise``: BERTIN's piecewise-constant weighting over the score quartiles."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .base import Weighting, register_weighting
from .fitting import MethodFit, UnreachableTargetError, check_target_rate, max_rate, solve_factor


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


def _quartile_labels():
    return ("x <= Q1", "Q1 < x < Q2", "Q2 <= x < Q3", "x >= Q3")


def fit_stepwise(perplexities, boundaries: Sequence[float], target: float) -> MethodFit:
    """Solve the stepwise ``factor`` so that the expected keep rate equals ``target``."""
    target = check_target_rate(target, "target")
    x = np.asarray(perplexities, dtype=np.float64)
    b = tuple(float(v) for v in boundaries)
    w = stepwise_keep_probability(x, 1.0, b)
    reach = max_rate(w)
    if target >= reach:
        raise UnreachableTargetError(
            "stepwise", target, reach,
            "it needs a factor at which every quartile saturates at probability 1, so every "
            "document would be kept and the weighting would have no effect; choose a lower target",
        )
    factor = solve_factor(w, target)
    bin_p = factor * np.array([1 / b[0], 1 / (b[1] - b[0]), 1 / (b[2] - b[1]), 1 / (10 * b[2])])
    saturated = [lab for lab, p in zip(_quartile_labels(), bin_p) if p >= 1]
    fit = MethodFit(
        "stepwise", factor=factor,
        expected_rate=float(np.minimum(stepwise_keep_probability(x, factor, b), 1.0).mean()),
        extra={"keep_probability_per_quartile": [float(v) for v in bin_p],
               "saturated_quartiles": saturated},
    )
    if saturated:
        fit.notes.append(
            "saturated at probability 1 (always kept): " + ", ".join(saturated)
        )
    return fit


class StepwiseWeighting(Weighting):
    name = "stepwise"
    formula = ("`factor / b1` (x <= b1), `factor / (b2 - b1)` (b1 < x < b2), `factor / (b3 - b2)` (b2 <= x < b3), "
               "`factor / (10 b3)` (x >= b3)")
    uses_boundaries = True
    default_factor = 1.5e5
    factor_depends_on_boundaries = True
    #: the top quartile gets ``factor / (10 b3)``: high scores are dropped (perplexity: lower is better)
    favours = "low"
    color = "#0072B2"
    default_fit = {"low": 1}

    def probability(self, x, rule):
        """See :func:`stepwise_keep_probability`."""
        return stepwise_keep_probability(x, rule.factor, rule.boundaries)

    def max_probability(self, rule) -> float:
        """``min(1, factor * max(1 / b1, 1 / (b2 - b1), 1 / (b3 - b2), 1 / (10 b3)))``."""
        b1, b2, b3 = rule.boundaries
        return min(1.0, float(rule.factor) * max(1 / b1, 1 / (b2 - b1), 1 / (b3 - b2), 1 / (10 * b3)))

    def fit(self, scores, target, *, boundaries=None, **options):
        return fit_stepwise(scores, boundaries, target)


register_weighting(StepwiseWeighting())
