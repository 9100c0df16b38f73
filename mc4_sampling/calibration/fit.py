"""Fitting the weightings to a target keep rate: pure NumPy, exact.

The expected keep rate of a weighting over a scored subset of documents is::

    rate = mean_i min(1, p(x_i))

where ``p`` is the keep probability of :mod:`mc4_sampling.weighting` (a draw ``u`` in [0, 1) keeps
a document when ``u < p``, so ``p >= 1`` means "always kept"). All three weightings are linear in
their ``factor``: ``p(x) = factor * w(x)`` with ``w`` the weighting at ``factor = 1``. The rate is
therefore a continuous, non-decreasing, piecewise-linear function of ``factor`` whose slope drops
each time one more document saturates at ``p = 1``; :func:`solve_factor` inverts it exactly.

Reachability (see the README, "How the parameters are fitted"):

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
import math
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

from ..errors import ConfigError, invalid_choice, option_value, out_of_range
from ..weighting import DEFAULT_WIDTH, gaussian_keep_probability, keep_probability, stepwise_keep_probability
from ..weightings import WEIGHTINGS, get_weighting

logger = logging.getLogger(__name__)

#: Fewest scored documents from which quartiles are estimated at all.
MIN_DOCUMENTS = 20
#: BERTIN's methods: what a calibration fits by default for a scorer whose lower scores are better.
FIT_METHODS = ("random", "stepwise", "gaussian")
#: what it fits by default for a scorer whose higher scores are better
FIT_METHODS_HIGHER = ("random", "threshold", "pareto", "gaussian")


def calibratable_methods() -> tuple[str, ...]:
    """Every registered weighting a calibration can fit."""
    return tuple(name for name, w in WEIGHTINGS.items() if w.calibratable)


def default_methods(higher_is_better: bool = False) -> tuple[str, ...]:
    """The methods fitted when none are named: BERTIN's three for perplexities, else those that
    favour high scores (or neither)."""
    return FIT_METHODS_HIGHER if higher_is_better else FIT_METHODS


class UnreachableTargetError(ConfigError):
    """The target keep rate cannot be reached by a weighting (the message says the highest rate)."""

    def __init__(self, method: str, target: float, max_rate: float, reason: str):
        super().__init__(
            f"{method}: target keep rate {target:.6g} cannot be reached: {reason} "
            f"(highest reachable rate: {max_rate:.6g})"
        )
        self.method = method
        self.target = target
        self.max_rate = max_rate


# --- target ---------------------------------------------------------------------------------


def _finite_number(name: str, value) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{option_value(name, value)} is not a number") from None
    if not math.isfinite(v):
        raise ConfigError(f"{option_value(name, value)} must be a finite number")
    return v


def check_positive(value, name: str) -> float:
    """Return ``value`` as a float, or raise :class:`ConfigError` unless it is finite and > 0."""
    v = _finite_number(name, value)
    if v <= 0:
        raise out_of_range(name, v, "it must be > 0")
    return v


def check_target_rate(rate, name: str = "target_rate") -> float:
    """Return ``rate`` as a float, or raise :class:`ConfigError` unless it lies in (0, 1]."""
    r = _finite_number(name, rate)
    if not 0.0 < r <= 1.0:
        raise out_of_range(name, rate, "a keep rate must be in (0, 1]")
    return r


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


def max_rate(weights) -> float:
    """The supremum of ``mean(min(1, f * w))`` over ``f``: the fraction of positive weights."""
    w = np.asarray(weights, dtype=np.float64)
    return float((w > 0).mean())


def solve_factor(weights, target: float) -> float:
    """The smallest ``f`` with ``mean(min(1, f * w_i)) == target`` (exact, saturation included).

    ``weights`` are the keep probabilities at ``factor = 1`` (non-negative). Raises
    :class:`ConfigError` when ``target`` exceeds :func:`max_rate`.
    """
    target = check_target_rate(target, "target")
    w = np.sort(np.asarray(weights, dtype=np.float64).ravel())[::-1]
    if w.size == 0:
        raise ConfigError("no documents to fit on")
    if np.any(w < 0) or not np.all(np.isfinite(w)):
        raise ConfigError("keep-probability weights must be finite and non-negative")
    n = w.size
    reach = max_rate(w)
    if target > reach * (1 + 1e-12):
        raise ConfigError(f"target {target:.6g} is above the highest reachable rate {reach:.6g}")
    w = w[w > 0]
    # tail[k] = sum of w[k:], the weights not saturated when the k largest are.
    tail = np.concatenate([np.cumsum(w[::-1])[::-1], [0.0]])
    # rate at the breakpoint f = 1 / w[k] (0-based), where documents 0..k are saturated:
    k = np.arange(w.size)
    rate_at = (k + 1 + tail[k + 1] / w) / n
    j = int(np.searchsorted(rate_at, target, side="left"))  # first breakpoint reaching it
    j = min(j, w.size - 1)
    # Between breakpoints j-1 and j exactly j documents (0..j-1) are saturated:
    #   rate = (j + f * tail[j]) / n  for f in [1 / w[j-1], 1 / w[j]].
    f = (target * n - j) / tail[j]
    lo = 1.0 / w[j - 1] if j > 0 else 0.0
    return float(min(max(f, lo), 1.0 / w[j]))


@dataclass
class MethodFit:
    """Fitted parameters of one weighting and the keep rate they give on the scored subset."""

    method: str
    factor: float
    expected_rate: float
    width: float | None = None
    fitted: tuple[str, ...] = ("factor",)
    notes: list[str] = field(default_factory=list)
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = {"factor": self.factor}
        if self.width is not None:
            d["width"] = self.width
        d["expected_rate"] = self.expected_rate
        d["fitted"] = list(self.fitted)
        d.update(self.extra)
        if self.notes:
            d["notes"] = list(self.notes)
        return d


def fit_random(target: float) -> MethodFit:
    """``random`` keeps every document with probability ``factor``: ``factor = target``."""
    target = check_target_rate(target, "target")
    return MethodFit("random", factor=target, expected_rate=target)


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
        expected_rate=expected_keep_rate(x, "stepwise", factor, b),
        extra={"keep_probability_per_quartile": [float(v) for v in bin_p],
               "saturated_quartiles": saturated},
    )
    if saturated:
        fit.notes.append(
            "saturated at probability 1 (always kept): " + ", ".join(saturated)
        )
    return fit


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
                    expected_rate=expected_keep_rate(x, "gaussian", f, boundaries, width),
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


def fit_methods(perplexities, target: float, boundaries: Sequence[float] | None = None,
                methods: Iterable[str] = FIT_METHODS, width: float = DEFAULT_WIDTH,
                fit_width: bool = False, gaussian_factor: float = 1.0, *, higher_is_better: bool = False,
                positive: bool = True, alpha: float | None = None,
                scorer_name: str = "the scorer") -> dict[str, MethodFit]:
    """Fit each of ``methods`` (registered weightings, :meth:`Weighting.fit`) to ``target``; raise on
    the first one that cannot reach it, or that favours the scores ``higher_is_better`` says are worse.

    ``boundaries`` default to the quartiles of ``perplexities``.
    """
    target = check_target_rate(target, "target_rate")
    x = clean_perplexities(perplexities, positive=positive)
    methods = list(methods)
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
