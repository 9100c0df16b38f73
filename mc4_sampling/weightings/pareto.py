"""``pareto``: GPT-3's noisy keep of a classifier's probability (NeMo Curator's, with ``alpha=3``).

GPT-3 kept a document when ``np.random.pareto(alpha) > 1 - score``. ``np.random.pareto`` draws a
Lomax variable ``L`` with ``P(L > t) = (1 + t) ** -alpha`` for ``t >= 0``, so that rule keeps with
probability ``(2 - score) ** -alpha`` (1 for ``score >= 1``); here the draw is the sampler's hashed
``u`` against that probability, times ``factor``.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from .base import Weighting, register_weighting
from .fitting import MethodFit, check_target_rate, solve_factor

#: GPT-3's alpha (Brown et al. 2020, appendix A); NeMo Curator uses 3
DEFAULT_ALPHA = 9.0


def pareto_keep_probability(x, factor: float, alpha: float = DEFAULT_ALPHA):
    """``p(x) = factor * (2 - min(x, 1)) ** -alpha``: ``factor`` at ``x >= 1``, ``factor * 2 ** -alpha`` at 0."""
    x = np.asarray(x, dtype=np.float64)
    return factor * (2.0 - np.minimum(x, 1.0)) ** -alpha


class ParetoWeighting(Weighting):
    name = "pareto"
    formula = "`p = factor * (2 - min(x, 1)) ** -alpha`"
    parameters = {"alpha": DEFAULT_ALPHA}
    favours = "high"
    color = "#56B4E9"
    default_fit = {"high": 2}

    def probability(self, x, rule):
        """See :func:`pareto_keep_probability`."""
        return pareto_keep_probability(x, rule.factor, rule.param("alpha", DEFAULT_ALPHA))

    def check_parameters(self, params) -> None:
        super().check_parameters(params)
        alpha = params.get("alpha")
        if alpha is not None and not alpha > 0:
            raise ConfigError(f"weighting_options.alpha={alpha!r} is out of range: it must be > 0")

    def fit(self, scores, target, *, alpha: float | None = None, **options):
        """``factor`` solved exactly at the given ``alpha`` (the rate is linear in ``factor`` until saturation)."""
        target = check_target_rate(target, "target")
        alpha = DEFAULT_ALPHA if alpha is None else float(alpha)
        x = np.asarray(scores, dtype=np.float64)
        factor = solve_factor(pareto_keep_probability(x, 1.0, alpha), target)
        rate = float(np.minimum(pareto_keep_probability(x, factor, alpha), 1.0).mean())
        return MethodFit("pareto", factor=factor, expected_rate=rate, extra={"alpha": alpha})


register_weighting(ParetoWeighting())
