"""Fitting the weightings to a target keep rate, on the scores of a subset (any scorer's): the
target, the quartiles and percentiles, and :func:`fit_methods`, which asks each weighting for its
own fit (:meth:`~mc4_sampling.weightings.Weighting.fit`). Pure NumPy, exact.

The expected keep rate of a weighting over a scored subset of documents is::

    rate = mean_i min(1, p(x_i))

where ``p`` is the weighting's keep probability (:mod:`mc4_sampling.weightings`; a draw ``u`` in
[0, 1) keeps a document when ``u < p``, so ``p >= 1`` means "always kept"). Every weighting is
linear in its ``factor``: ``p(x) = factor * w(x)`` with ``w`` the weighting at ``factor = 1``. The
rate is therefore a continuous, non-decreasing, piecewise-linear function of ``factor`` whose slope
drops each time one more document saturates at ``p = 1``; :func:`solve_factor` inverts it exactly.
Which weightings are fitted when none are named is each weighting's say
(:attr:`~mc4_sampling.weightings.Weighting.default_fit`): BERTIN's three for perplexities.

Reachability of BERTIN's three (see docs/calibration.md, "How the parameters are fitted"; the
others' in their modules):

* ``random``: any rate in (0, 1] (``factor = rate``).
* ``stepwise``: any rate below 1. A rate of 1 needs a factor at which every quartile saturates
  at ``p = 1``: every document would be kept and the weighting would do nothing, so it is refused.
* ``gaussian`` (solving ``factor``): any rate below the fraction of documents whose weight
  ``exp(-(1/width) * ((x - m) / m) ** 2)`` is not zero in floating point, and below 1 (same reason
  as stepwise). A factor above 1 is allowed but flagged: documents near the median are then always
  kept and the bell has a flat top.
* ``gaussian`` with ``fit_width``: ``factor`` is held (default 1: the peak at the median is kept
  with probability 1) and ``width`` is solved: the narrowest bell of that height that reaches the
  target. The rate tends to ``min(1, factor)`` as ``width`` grows, so the target must be below it.
"""

from __future__ import annotations

import logging
from typing import Iterable, Sequence

import numpy as np

from ..errors import ConfigError, invalid_choice, out_of_range
from ..weightings import DEFAULT_WIDTH, WEIGHTINGS, fitted_by_default, get_weighting, keep_probability
from ..weightings.fitting import (  # noqa: F401 - re-exported: they were defined here
    MethodFit,
    UnreachableTargetError,
    _finite_number,
    check_positive,
    check_target_rate,
    max_rate,
    solve_factor,
)
from ..weightings.gaussian import fit_gaussian  # noqa: F401 - re-exported
from ..weightings.random import fit_random  # noqa: F401 - re-exported
from ..weightings.stepwise import fit_stepwise  # noqa: F401 - re-exported

logger = logging.getLogger(__name__)

#: Fewest scored documents from which quartiles are estimated at all.
MIN_DOCUMENTS = 20


def calibratable_methods() -> tuple[str, ...]:
    """Every registered weighting a calibration can fit."""
    return tuple(name for name, w in WEIGHTINGS.items() if w.calibratable)


def default_methods(higher_is_better: bool = False) -> tuple[str, ...]:
    """The methods fitted when none are named, as the weightings declare
    (:func:`~mc4_sampling.weightings.fitted_by_default`): BERTIN's three for perplexities, else
    those that favour high scores (or neither)."""
    return fitted_by_default(higher_is_better)


# --- target ---------------------------------------------------------------------------------


def resolve_target(target_rate=None, target_docs=None, total_docs=None) -> float:
    """The target keep rate from either ``target_rate`` or ``target_docs / total_docs``.

    ``target_docs`` and ``total_docs`` are document counts (floats such as ``50e6`` accepted);
    ``0 < target_docs <= total_docs`` is required.
    """
    by_docs = target_docs is not None or total_docs is not None
    if target_rate is not None and by_docs:
        raise ConfigError(
            "give either target_rate, or target_docs together with total_docs, not both"
        )
    if target_rate is not None:
        return check_target_rate(target_rate)
    if not by_docs:
        raise ConfigError(
            "no target: give target_rate in (0, 1], or target_docs together with total_docs"
        )
    if target_docs is None or total_docs is None:
        missing = "total_docs" if total_docs is None else "target_docs"
        raise ConfigError(f"target_docs and total_docs go together: {missing} is missing")
    n = _finite_number("target_docs", target_docs)
    m = _finite_number("total_docs", total_docs)
    if m <= 0:
        raise out_of_range("total_docs", total_docs, "it must be > 0")
    if n <= 0:
        raise out_of_range("target_docs", target_docs, "it must be > 0")
    if n > m:
        raise out_of_range("target_docs", target_docs, f"it must be <= total_docs={total_docs!r}")
    return n / m


# --- scored subset --------------------------------------------------------------------------


def clean_perplexities(perplexities, min_documents: int = MIN_DOCUMENTS, positive: bool = True) -> np.ndarray:
    """The finite (and, with ``positive``, as perplexities are, positive) scores as a float64 array;
    too few of them is an error."""
    x = np.asarray(perplexities, dtype=np.float64).ravel()
    ok = np.isfinite(x) & (x > 0) if positive else np.isfinite(x)
    dropped = int(x.size - ok.sum())
    if dropped:
        logger.warning("ignoring %d documents without a finite%s score", dropped, " positive" if positive else "")
    x = x[ok]
    if x.size < min_documents:
        raise ConfigError(
            f"too few documents to estimate quartiles: {x.size} scored "
            f"(need at least {min_documents}); raise docs or point at more data"
        )
    return x


def quantiles(perplexities, positive: bool = True, require_distinct: bool = True) -> dict:
    """Quartiles (``boundaries``), deciles and percentiles 1..99 of the scored perplexities.

    Raises :class:`ConfigError` when the quartiles are not strictly increasing (the stepwise
    weighting divides by their differences), unless ``require_distinct=False`` (then
    ``boundaries`` is None).
    """
    x = clean_perplexities(perplexities, positive=positive)
    percentiles = np.percentile(x, np.arange(1, 100))
    boundaries = tuple(float(v) for v in percentiles[[24, 49, 74]])
    if not require_distinct and not boundaries[0] < boundaries[1] < boundaries[2]:
        boundaries = None
    elif not boundaries[0] < boundaries[1] < boundaries[2]:
        raise ConfigError(
            f"the quartiles of the scored perplexities are not distinct ({boundaries}); "
            "score more (or more varied) documents"
        )
    return {
        "boundaries": boundaries,
        "deciles": [float(v) for v in percentiles[9::10]],
        "percentiles": [float(v) for v in percentiles],
        "min": float(x.min()),
        "max": float(x.max()),
        "mean": float(x.mean()),
    }


# --- fitting --------------------------------------------------------------------------------


def expected_keep_rate(perplexities, method: str, factor: float, boundaries=None,
                       width: float = DEFAULT_WIDTH) -> float:
    """``mean(min(1, p(x_i)))``: the expected fraction of the scored documents kept."""
    p = keep_probability(np.asarray(perplexities, dtype=np.float64), method, factor, boundaries, width)
    return float(np.minimum(p, 1.0).mean())


def fit_methods(perplexities, target: float, boundaries: Sequence[float] | None = None,
                methods: Iterable[str] | None = None, width: float = DEFAULT_WIDTH,
                fit_width: bool = False, gaussian_factor: float = 1.0, *, higher_is_better: bool = False,
                positive: bool = True, alpha: float | None = None,
                scorer_name: str = "the scorer") -> dict[str, MethodFit]:
    """Fit each of ``methods`` (registered weightings, :meth:`Weighting.fit`) to ``target``; raise on
    the first one that cannot reach it, or that favours the scores ``higher_is_better`` says are worse.

    ``methods`` default to :func:`default_methods`; ``boundaries`` to the quartiles of ``perplexities``.
    """
    target = check_target_rate(target, "target_rate")
    x = clean_perplexities(perplexities, positive=positive)
    methods = list(default_methods(higher_is_better) if methods is None else methods)
    for method in methods:
        if method not in calibratable_methods():
            raise invalid_choice("method", method, calibratable_methods())
    if boundaries is None and any(WEIGHTINGS[m].uses_boundaries for m in methods):
        boundaries = quantiles(x, positive=positive)["boundaries"]
    fits = {}
    for method in methods:
        weighting = get_weighting(method)
        weighting.check_direction(scorer_name, higher_is_better, {})
        if weighting.uses_boundaries and (boundaries is None or not boundaries[0] > 0):
            raise ConfigError(f"{method} needs three increasing positive quartiles of the scores, got {boundaries}; "
                              "fit threshold or pareto for such scores (--methods)")
        fits[method] = weighting.fit(x, target, boundaries=boundaries, width=width, fit_width=fit_width,
                                     gaussian_factor=gaussian_factor, higher_is_better=higher_is_better, alpha=alpha)
    return fits
