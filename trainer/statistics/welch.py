"""Statistics for few seeds: mean, sample standard deviation, Student-t confidence interval, and Welch's
unequal-variance t-test of the difference of two arms (the Multi-Bootstrap is :mod:`.bootstrap`). Pure functions
(no SciPy; tested against it)."""

from __future__ import annotations

import math
from typing import NamedTuple, Sequence


def _betacf(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function (modified Lentz, Numerical Recipes 6.4)."""
    tiny, eps = 1e-300, 1e-15
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 10_000):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < eps:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function ``I_x(a, b)``."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    ln_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(ln_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(ln_front) * _betacf(b, a, 1.0 - x) / b


def t_two_sided(t: float, df: float) -> float:
    """The two-sided tail of Student's t, ``P(|T| >= |t|) = I_{df/(df+t^2)}(df/2, 1/2)``, computed from the tail
    itself (not ``2 (1 - cdf)``, which is 0.0 once the cdf rounds to 1: a p-value of 1e-24 stays 1e-24)."""
    if math.isinf(t):
        return 0.0
    return min(1.0, betainc(df / 2.0, 0.5, df / (df + t * t)))


def t_cdf(t: float, df: float) -> float:
    """Student's t distribution function: ``1 - I_{df/(df+t^2)}(df/2, 1/2) / 2`` for ``t >= 0`` (symmetric)."""
    if math.isinf(t):
        return 1.0 if t > 0 else 0.0
    tail = 0.5 * betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def t_ppf(q: float, df: float) -> float:
    """The ``q`` quantile of Student's t with ``df`` degrees of freedom (bisection on :func:`t_cdf`)."""
    if not 0 < q < 1:
        raise ValueError(f"q must be in (0, 1), got {q}")
    if q < 0.5:
        return -t_ppf(1 - q, df)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < q:
        hi *= 2.0
    for _ in range(200):
        mid = (lo + hi) / 2
        if t_cdf(mid, df) < q:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12 * max(1.0, hi):
            break
    return (lo + hi) / 2


class Summary(NamedTuple):
    n: int
    mean: float
    sd: float  # sample standard deviation (ddof 1); nan for one value (no spread is measured: "n/a", not 0)
    ci_low: float  # mean -/+ t_{(1+c)/2, n-1} sd / sqrt(n); nan for one value
    ci_high: float


def summarize(values: Sequence[float], confidence: float = 0.95) -> Summary:
    """Mean, sample sd ``sqrt(sum (x - mean)^2 / (n - 1))`` and the Student-t confidence interval of the mean
    ``mean -/+ t_{(1+c)/2, n-1} sd / sqrt(n)``; with one value the sd and the interval are nan (shown "n/a")."""
    x = [float(v) for v in values]
    n = len(x)
    if n == 0:
        nan = float("nan")
        return Summary(0, nan, nan, nan, nan)
    mean = sum(x) / n
    if n == 1:
        return Summary(1, mean, float("nan"), float("nan"), float("nan"))
    sd = math.sqrt(sum((v - mean) ** 2 for v in x) / (n - 1))
    half = t_ppf((1 + confidence) / 2, n - 1) * sd / math.sqrt(n)
    return Summary(n, mean, sd, mean - half, mean + half)


class Welch(NamedTuple):
    difference: float  # mean(a) - mean(b)
    t: float
    df: float
    p: float  # two-sided
    ci_low: float  # of the difference, with the Welch-Satterthwaite df
    ci_high: float


def welch_test(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> Welch:
    """Welch's t-test of ``mean(a) - mean(b)``: ``t = d / sqrt(s_a^2/n_a + s_b^2/n_b)``, degrees of freedom
    ``(v_a + v_b)^2 / (v_a^2/(n_a-1) + v_b^2/(n_b-1))`` with ``v = s^2/n`` (Welch-Satterthwaite), two-sided
    ``p = I_{df/(df+t^2)}(df/2, 1/2)`` (:func:`t_two_sided`, the tail itself). Needs two values per arm (else
    every field but the difference is nan)."""
    sa, sb = summarize(a), summarize(b)
    d = sa.mean - sb.mean
    nan = float("nan")
    if sa.n < 2 or sb.n < 2:
        return Welch(d, nan, nan, nan, nan, nan)
    va, vb = sa.sd ** 2 / sa.n, sb.sd ** 2 / sb.n
    se = math.sqrt(va + vb)
    if se == 0.0:
        return Welch(d, math.copysign(math.inf, d) if d else nan, nan, 0.0 if d else 1.0, d, d)
    t = d / se
    df = (va + vb) ** 2 / (va ** 2 / (sa.n - 1) + vb ** 2 / (sb.n - 1))
    half = t_ppf((1 + confidence) / 2, df) * se
    return Welch(d, t, df, t_two_sided(t, df), d - half, d + half)
