"""``threshold``: keep the scores in a range (FineWeb-Edu's ``score >= 3``), or a fraction of the
documents by the percentiles of a calibration file: ``top``/``bottom`` fractions (DCLM's top 10 %:
``{"top": 0.1}``; reference-model pruning's lower-perplexity half: ``{"bottom": 0.5}``) and CCNet's
``band`` (``head``, ``middle``, ``tail``: the best 30 %, the next 30 %, the other 40 %, by the
scorer's direction). ``mc4-sampling calibrate --methods threshold`` also fits the best fraction
that meets a target keep rate."""

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


#: CCNet's buckets (Wenzek et al. 2020): head below the 30th perplexity percentile, middle below the 60th
BAND_CUTS = (0.3, 0.6)
BANDS = ("head", "middle", "tail")


def band_fractions(band: str, higher_is_better: bool) -> dict:
    """CCNet's ``band`` as ``top``/``bottom`` fractions: ``head`` the best 30 %, ``middle`` the next
    30 %, ``tail`` the other 40 % (``top=f``: the highest ``f`` of the scores, ``bottom=f``: the
    lowest; both: their intersection). For perplexity (lower is better) head is ``bottom=0.3``,
    middle ``top=0.7`` and ``bottom=0.6``, tail ``top=0.4``; mirrored for scores where higher is better."""
    a, b = BAND_CUTS
    if higher_is_better:
        return {"head": {"top": a}, "middle": {"top": b, "bottom": 1 - a}, "tail": {"bottom": 1 - b}}[band]
    return {"head": {"bottom": a}, "middle": {"top": 1 - a, "bottom": b}, "tail": {"top": 1 - b}}[band]


def quantile_of(percentiles, q: float, key: str) -> float | None:
    """The ``q`` quantile of the scores from their percentiles 1..99 (linear between them); None
    (no bound) for ``q`` 0 or 1. A ``q`` outside [0.01, 0.99] is finer than the percentiles: refused."""
    if q <= 0 or q >= 1:
        return None
    if not 0.01 - 1e-12 <= q <= 0.99 + 1e-12:
        raise ConfigError(f"weighting_options.{key}: the {q:g} quantile is outside the calibration file's "
                          "percentiles (1 to 99); give a fraction between 0.01 and 0.99, or 1")
    return float(np.interp(q * 100, np.arange(1, len(percentiles) + 1), percentiles))


class ThresholdWeighting(Weighting):
    name = "threshold"
    formula = "`p = factor` for `low <= x < high`, else 0"
    parameters = {"low": None, "high": None, "top": None, "bottom": None}
    selectors = ("band",)
    quantile_keys = ("top", "bottom", "band")
    color = "#CC79A7"
    default_fit = {"high": 1}

    def probability(self, x, rule):
        """See :func:`threshold_keep_probability`."""
        return threshold_keep_probability(x, rule.factor, rule.param("low"), rule.param("high"))

    def check_parameters(self, params) -> None:
        super().check_parameters(params)
        low, high = params.get("low"), params.get("high")
        if low is not None and high is not None and not low < high:
            raise ConfigError(f"weighting_options low={low!r} and high={high!r} are not valid; low must be < high")
        for key in ("top", "bottom"):
            value = params.get(key)
            if value is not None and not 0 < value <= 1:
                raise ConfigError(f"weighting_options.{key}={value!r} is out of range: it is a fraction of the "
                                  "documents, in (0, 1]")
        band = params.get("band")
        if band is not None and band not in BANDS:
            raise ConfigError(f"weighting_options.band={band!r} is not valid; choose one of {', '.join(BANDS)}")
        picked = [k for k in ("top", "bottom", "band") if params.get(k) is not None]
        if "band" in picked and len(picked) > 1:
            raise ConfigError(f"weighting_options band and {picked[0]} both choose the documents kept; give one")
        bounds = [k for k in ("low", "high") if params.get(k) is not None]
        if picked and bounds:
            raise ConfigError(f"weighting_options {bounds[0]} and {picked[0]} both set a bound (a score and a "
                              "fraction); give one")

    def resolve_parameters(self, given, calibrated, *, higher_is_better=False, percentiles=None) -> dict:
        """``low``/``high`` as given or calibrated; or from ``top``/``bottom``/``band`` fractions,
        ``low = Q(1 - top)`` and ``high = Q(bottom)`` with ``Q`` the quantile function of the
        calibration file's percentiles."""
        fractions = {k: float(given[k]) for k in ("top", "bottom") if given.get(k) is not None}
        band = given.get("band")
        if band is not None:
            fractions = band_fractions(band, higher_is_better)
        if not fractions:
            return super().resolve_parameters(given, calibrated)
        key = "band" if band is not None else next(iter(fractions))
        if not percentiles:
            raise ConfigError(f"weighting_options.{key} keeps a fraction of the documents, which needs the scores' "
                              "percentiles: pass calibration= (a file from `mc4-sampling calibrate` with this scorer)")
        top, bottom = fractions.get("top"), fractions.get("bottom")
        low = quantile_of(percentiles, 1 - top, key) if top is not None else None
        high = quantile_of(percentiles, bottom, key) if bottom is not None else None
        if low is not None and high is not None and not low < high:
            raise ConfigError(f"weighting_options top={top:g} and bottom={bottom:g} keep no document "
                              f"(score >= {low:g} and < {high:g}); their sum must exceed 1")
        return {"low": low, "high": high, "top": top, "bottom": bottom}

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
