"""What fitting a weighting to a target keep rate needs, whatever the weighting: the target's
checks, :func:`solve_factor` (the exact inverse of ``mean_i min(1, factor * w(x_i))``), :class:`MethodFit`
and :class:`UnreachableTargetError`. Each weighting's own fit lives in its module
(:meth:`Weighting.fit`); the calibration (:mod:`mc4_sampling.calibration`) calls them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import ConfigError, option_value, out_of_range


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
