"""Fit the sampling parameters to a target keep rate, and read/write calibration files.

Everything here is pure NumPy (no SciPy, no Matplotlib), so the builder can import
:func:`load_calibration` without the ``calibrate`` extra.

The expected keep rate of a weighting over a scored subset of documents is::

    rate = mean_i min(1, p(x_i))

where ``p`` is the keep probability of :mod:`mc4_sampling.sampling` (a draw ``u`` in [0, 1) keeps a
document when ``u < p``, so ``p >= 1`` means "always kept"). All three weightings are linear in
their ``factor``: ``p(x) = factor * w(x)`` with ``w`` the weighting at ``factor = 1``. The rate is
therefore a continuous, non-decreasing, piecewise-linear function of ``factor`` whose slope drops
each time one more document saturates at ``p = 1``; :func:`solve_factor` inverts it exactly.

Reachability (see ``docs/calibration.md``):

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

import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from .errors import ConfigError
from .sampling import (
    DEFAULT_WIDTH,
    gaussian_keep_probability,
    keep_probability,
    stepwise_keep_probability,
)

logger = logging.getLogger(__name__)

#: Value of the ``format`` field of a calibration file.
CALIBRATION_FORMAT = "mc4-sampling-calibration"
#: Version of the calibration file layout; bumped on incompatible changes.
CALIBRATION_FORMAT_VERSION = 1
#: Fewest scored documents from which quartiles are estimated at all.
MIN_DOCUMENTS = 20
#: Methods a calibration can fit, in the order they are reported.
FIT_METHODS = ("random", "stepwise", "gaussian")


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
        raise ConfigError(f"{name}={value!r} is not a number") from None
    if not math.isfinite(v):
        raise ConfigError(f"{name}={value!r} must be a finite number")
    return v


def check_target_rate(rate, name: str = "target_rate") -> float:
    """Return ``rate`` as a float, or raise :class:`ConfigError` unless it lies in (0, 1]."""
    r = _finite_number(name, rate)
    if not 0.0 < r <= 1.0:
        raise ConfigError(f"{name}={rate!r} is out of range: a keep rate must be in (0, 1]")
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
        raise ConfigError(f"total_docs={total_docs!r} is out of range: it must be > 0")
    if n <= 0:
        raise ConfigError(f"target_docs={target_docs!r} is out of range: it must be > 0")
    if n > m:
        raise ConfigError(
            f"target_docs={target_docs!r} is out of range: it must be <= total_docs={total_docs!r}"
        )
    return n / m


# --- scored subset --------------------------------------------------------------------------


def clean_perplexities(perplexities, min_documents: int = MIN_DOCUMENTS) -> np.ndarray:
    """The finite, positive perplexities as a float64 array; too few of them is an error."""
    x = np.asarray(perplexities, dtype=np.float64).ravel()
    ok = np.isfinite(x) & (x > 0)
    dropped = int(x.size - ok.sum())
    if dropped:
        logger.warning("ignoring %d documents without a finite positive perplexity", dropped)
    x = x[ok]
    if x.size < min_documents:
        raise ConfigError(
            f"too few documents to estimate quartiles: {x.size} scored "
            f"(need at least {min_documents}); raise docs or point at more data"
        )
    return x


def quantiles(perplexities) -> dict:
    """Quartiles (``boundaries``), deciles and percentiles 1..99 of the scored perplexities.

    Raises :class:`ConfigError` when the quartiles are not strictly increasing (the stepwise
    weighting divides by their differences).
    """
    x = clean_perplexities(perplexities)
    percentiles = np.percentile(x, np.arange(1, 100))
    boundaries = tuple(float(v) for v in percentiles[[24, 49, 74]])
    if not boundaries[0] < boundaries[1] < boundaries[2]:
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
    width = _finite_number("width", width)
    if width <= 0:
        raise ConfigError(f"width={width!r} is out of range: it must be > 0")
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
    factor = _finite_number("gaussian_factor", factor)
    if factor <= 0:
        raise ConfigError(f"gaussian_factor={factor!r} is out of range: it must be > 0")
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
                fit_width: bool = False, gaussian_factor: float = 1.0) -> dict[str, MethodFit]:
    """Fit each of ``methods`` to ``target``; raise on the first one that cannot reach it.

    ``boundaries`` default to the quartiles of ``perplexities``.
    """
    target = check_target_rate(target, "target_rate")
    x = clean_perplexities(perplexities)
    if boundaries is None:
        boundaries = quantiles(x)["boundaries"]
    fits = {}
    for method in methods:
        if method == "random":
            fits[method] = fit_random(target)
        elif method == "stepwise":
            fits[method] = fit_stepwise(x, boundaries, target)
        elif method == "gaussian":
            fits[method] = fit_gaussian(x, boundaries, target, width=width, fit_width=fit_width,
                                        factor=gaussian_factor)
        else:
            raise ConfigError(
                f"method={method!r} cannot be calibrated; choose among {', '.join(FIT_METHODS)}"
            )
    return fits


# --- calibration file -----------------------------------------------------------------------


@dataclass
class Calibration:
    """A calibration file: the model it was scored with, the quartiles and per-method parameters."""

    model_id: str
    mode: str
    boundaries: tuple[float, float, float]
    methods: dict[str, dict]
    language: str | None = None
    split: str | None = None
    model_spec: str | None = None
    documents_scored: int | None = None
    seed: int | None = None
    target_rate: float | None = None
    deciles: list[float] = field(default_factory=list)
    percentiles: list[float] = field(default_factory=list)
    extra: dict = field(default_factory=dict)
    path: str | None = None

    def check_model(self, model_id: str, mode: str) -> None:
        """Raise :class:`ConfigError` unless the calibration was made with this model and mode."""
        where = f"calibration file {self.path}" if self.path else "calibration"
        if model_id != self.model_id:
            raise ConfigError(
                f"{where} was made with perplexity model {self.model_id!r}, but the model in use "
                f"is {model_id!r}; perplexities of different models are not comparable: "
                "run `mc4-sampling calibrate` with this model"
            )
        if mode != self.mode:
            raise ConfigError(
                f"{where} was made in perplexity mode {self.mode!r}, but the mode in use is "
                f"{mode!r}; use perplexity_mode={self.mode!r} or recalibrate"
            )

    def parameters(self, method: str) -> dict:
        """``{"factor": .., "width": ..?}`` for ``method``; :class:`ConfigError` if not calibrated."""
        if method not in self.methods:
            raise ConfigError(
                f"sampling_method={method!r} is not in the calibration file "
                f"{self.path or ''} (it holds: {', '.join(self.methods) or 'none'})"
            )
        return dict(self.methods[method])

    def factor(self, method: str) -> float:
        return float(self.parameters(method)["factor"])

    def width(self, default: float = DEFAULT_WIDTH) -> float:
        return float(self.methods.get("gaussian", {}).get("width", default))

    def to_dict(self) -> dict:
        d = {
            "format": CALIBRATION_FORMAT,
            "format_version": CALIBRATION_FORMAT_VERSION,
            "model": {"model_id": self.model_id, "mode": self.mode, "spec": self.model_spec},
            "language": self.language,
            "split": self.split,
            "documents_scored": self.documents_scored,
            "seed": self.seed,
            "target_rate": self.target_rate,
            "boundaries": list(self.boundaries),
            "deciles": list(self.deciles),
            "percentiles": list(self.percentiles),
            "methods": self.methods,
        }
        d.update(self.extra)
        return d


def build_calibration(perplexities, target_rate: float, *, model_id: str, mode: str,
                      model_spec=None, language=None, split="train", seed=None,
                      methods: Iterable[str] = FIT_METHODS, width: float = DEFAULT_WIDTH,
                      fit_width: bool = False, gaussian_factor: float = 1.0,
                      extra: Mapping | None = None) -> Calibration:
    """Quantiles + per-method fits of ``perplexities`` for ``target_rate``, as a :class:`Calibration`."""
    target_rate = check_target_rate(target_rate)
    x = clean_perplexities(perplexities)
    q = quantiles(x)
    fits = fit_methods(x, target_rate, q["boundaries"], methods, width, fit_width, gaussian_factor)
    return Calibration(
        model_id=model_id, mode=mode, boundaries=q["boundaries"],
        methods={m: f.to_dict() for m, f in fits.items()},
        language=language, split=split,
        model_spec=None if model_spec is None else str(model_spec),
        documents_scored=int(x.size), seed=seed, target_rate=target_rate,
        deciles=q["deciles"], percentiles=q["percentiles"],
        extra={"perplexity_summary": {k: q[k] for k in ("min", "max", "mean")},
               "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               **dict(extra or {})},
    )


def save_calibration(calibration: Calibration, path) -> Path:
    """Write ``calibration`` as indented JSON to ``path`` (parents created); return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(calibration.to_dict(), indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    calibration.path = str(path)
    return path


def _bad(path, what: str) -> ConfigError:
    return ConfigError(f"calibration={str(path)!r} is not a valid calibration file: {what}")


def load_calibration(path) -> Calibration:
    """Read and validate a calibration file written by ``mc4-sampling calibrate``.

    Raises :class:`ConfigError` naming the file when it is missing, not JSON, of another format
    version, or holds invalid boundaries or parameters.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"calibration={str(path)!r}: file not found") from None
    except OSError as e:
        raise ConfigError(f"calibration={str(path)!r}: cannot be read ({e})") from None
    try:
        d = json.loads(text)
    except json.JSONDecodeError as e:
        raise _bad(path, f"not JSON ({e})") from None
    if not isinstance(d, dict) or d.get("format") != CALIBRATION_FORMAT:
        raise _bad(path, f"the field format is not {CALIBRATION_FORMAT!r}")
    version = d.get("format_version")
    if version != CALIBRATION_FORMAT_VERSION:
        raise _bad(path, f"format_version {version!r} is not supported "
                         f"(this version reads {CALIBRATION_FORMAT_VERSION}); recalibrate")
    model = d.get("model")
    if not isinstance(model, dict) or not isinstance(model.get("model_id"), str) \
            or model.get("mode") not in ("raw", "ccnet"):
        raise _bad(path, "model must hold a model_id string and a mode 'raw' or 'ccnet'")
    b = d.get("boundaries")
    try:
        boundaries = tuple(float(v) for v in b)
    except (TypeError, ValueError):
        raise _bad(path, "boundaries must be three numbers") from None
    if len(boundaries) != 3 or not all(math.isfinite(v) for v in boundaries) \
            or not 0 < boundaries[0] < boundaries[1] < boundaries[2]:
        raise _bad(path, f"boundaries must be three increasing positive numbers, got {b!r}")
    methods = d.get("methods")
    if not isinstance(methods, dict):
        raise _bad(path, "methods must be an object")
    for name, params in methods.items():
        if name not in FIT_METHODS or not isinstance(params, dict):
            raise _bad(path, f"methods.{name} is not a calibrated method")
        for key in ("factor",) + (("width",) if name == "gaussian" else ()):
            v = params.get(key)
            if not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
                raise _bad(path, f"methods.{name}.{key} must be a positive number, got {v!r}")
    known = {"format", "format_version", "model", "language", "split", "documents_scored",
             "seed", "target_rate", "boundaries", "deciles", "percentiles", "methods"}
    return Calibration(
        model_id=model["model_id"], mode=model["mode"], boundaries=boundaries,
        methods={k: dict(v) for k, v in methods.items()},
        language=d.get("language"), split=d.get("split"), model_spec=model.get("spec"),
        documents_scored=d.get("documents_scored"), seed=d.get("seed"),
        target_rate=d.get("target_rate"), deciles=list(d.get("deciles") or []),
        percentiles=list(d.get("percentiles") or []),
        extra={k: v for k, v in d.items() if k not in known}, path=str(p),
    )
