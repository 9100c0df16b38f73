"""The token-budget math, pure NumPy: the expected tokens of a sample as a function of the weighting's
factor, its exact inverse, and each calibrated method's factor for a budget (``calibrate --token-budget``).

Every weighting is linear in its factor (``p(x) = f * w(x)``), so with upsampling
(:mod:`mc4_sampling.upsampling`) a document's expected number of copies is
``c(x) = min(N, f * w(x) * g(m(x)))`` and the expected tokens of the sample are::

    T(f) = sum_x len(x) * min(N, f * a(x)),    a(x) = w(x) * g(m(x))

(without upsampling ``N = 1`` and ``g = 1``: the expected tokens of the kept documents).
``T`` is continuous, non-decreasing and piecewise linear in ``f``, with a breakpoint where one more
document saturates at ``N`` copies; :func:`solve_token_factor` inverts it exactly. Over a subset of
``n`` documents of a corpus of ``total_docs``, the budget is scaled to the subset: ``budget * n / total_docs``.
:mod:`.budget` fits the factor on a ``datasets`` corpus (:func:`~.budget.fit_token_budget`).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import ConfigError


def expected_tokens(factor: float, weights, lengths, max_copies: int = 1) -> float:
    """``T(f) = sum_i lengths_i * min(N, f * weights_i)``: the expected tokens at factor ``f``, with
    ``weights`` ``a = w * g`` (the expected copies at factor 1, before the cap ``N = max_copies``)."""
    a = np.asarray(weights, dtype=np.float64)
    return float(np.sum(np.asarray(lengths, dtype=np.float64) * np.minimum(float(max_copies), factor * a)))


def solve_token_factor(weights, lengths, budget: float, max_copies: int = 1) -> float:
    """The smallest ``f`` with :func:`expected_tokens` ``(f) == budget`` (exact, saturation at
    ``N = max_copies`` included).

    With the documents sorted by ``a`` decreasing, between the breakpoints ``N / a_{j-1}`` and
    ``N / a_j`` the first ``j`` are saturated: ``T(f) = N * sum_{i<j} L_i + f * sum_{i>=j} a_i L_i``,
    solved for ``f``. A budget above ``N * sum L_i`` (over documents with ``a > 0``) cannot be
    reached: :class:`ConfigError` saying the most.
    """
    a = np.asarray(weights, dtype=np.float64).ravel()
    lengths = np.asarray(lengths, dtype=np.float64).ravel()
    if a.shape != lengths.shape:
        raise ConfigError("weights and lengths differ in length")
    if not (np.all(np.isfinite(a)) and np.all(a >= 0) and np.all(np.isfinite(lengths)) and np.all(lengths >= 0)):
        raise ConfigError("weights and lengths must be finite and non-negative")
    if not (isinstance(budget, (int, float)) and not isinstance(budget, bool) and np.isfinite(budget) and budget > 0):
        raise ConfigError(f"token_budget={budget!r} is not valid; it must be a finite number of tokens > 0")
    useful = (a > 0) & (lengths > 0)
    a, lengths = a[useful], lengths[useful]
    n = float(max_copies)
    most = n * float(lengths.sum())
    if budget > most * (1 + 1e-12):
        raise ConfigError(f"token_budget={budget:.6g} cannot be reached: at most {most:.6g} tokens, every "
                          f"document that can be kept at max_copies={max_copies} copies; lower the budget or "
                          "raise max_copies")
    order = np.argsort(-a, kind="stable")
    a, lengths = a[order], lengths[order]
    saturated_before = np.concatenate([[0.0], np.cumsum(lengths)])  # sum_{i<j} L_i
    tail = np.concatenate([np.cumsum((a * lengths)[::-1])[::-1], [0.0]])  # sum_{i>=j} a_i L_i
    k = np.arange(a.size)
    at_breakpoint = n * saturated_before[k + 1] + (n / a) * tail[k + 1]  # T(N / a_k)
    j = min(int(np.searchsorted(at_breakpoint, budget, side="left")), a.size - 1)
    f = (budget - n * saturated_before[j]) / tail[j]
    lo = n / a[j - 1] if j > 0 else 0.0
    return float(min(max(f, lo), n / a[j]))


def check_token_budget(token_budget, option: str = "token_budget") -> float:
    """``token_budget`` as a float unless it is not a finite number > 0 (:class:`ConfigError` naming ``option``)."""
    if not (isinstance(token_budget, (int, float)) and not isinstance(token_budget, bool)
            and np.isfinite(token_budget) and token_budget > 0):
        raise ConfigError(f"{option} {token_budget!r} is not valid; it must be a finite number of tokens > 0 "
                          "(whitespace words, e.g. 2e9)")
    return float(token_budget)


def word_count(text: str) -> int:
    """The default length of a document: its whitespace-separated words."""
    return len(text.split())


def provisional_rate(budget_here: float, lengths) -> float:
    """The keep rate a calibration fits the weightings' other parameters to before their factors are
    solved for a token budget: the budget's share of the subset's words, in [0.01, 0.5]."""
    words = float(np.sum(np.asarray(lengths, dtype=np.float64)))
    return float(min(0.5, max(0.01, budget_here / words if words > 0 else 0.5)))


def budget_methods(methods: dict, scores, lengths, token_budget: float, total_docs: float, *,
                   boundaries=None, copy_weights=None, max_copies: int = 1,
                   budget_flag: str = "--token-budget") -> dict:
    """Each calibrated method's parameters with its ``factor`` solved for ``token_budget`` tokens over a
    corpus of ``total_docs`` documents, from a subset of ``n`` of them (``scores``, ``lengths`` and
    ``copy_weights`` ``g(m)``, NaN for a document that cannot be kept): over the subset the budget is
    ``token_budget * n / total_docs``, and :func:`solve_token_factor` gives ``f`` with
    ``sum_i L_i * min(N, f * w(x_i) * g_i)`` equal to it (``w``: the weighting at factor 1 with the
    method's other parameters). Adds ``expected_rate`` (``mean min(1, c_i)``), ``expected_copies``
    (``mean c_i``) and ``expected_words`` (over the corpus). An unreachable budget is a
    :class:`ConfigError` naming ``budget_flag`` and the most the method reaches."""
    from ..weightings import DEFAULT_WIDTH, WEIGHTINGS, keep_probability

    x = np.asarray(scores, dtype=np.float64)
    lengths = np.asarray(lengths, dtype=np.float64)
    g = np.ones(x.shape) if copy_weights is None else np.asarray(copy_weights, dtype=np.float64)
    n = x.size
    scale = n / float(total_docs)
    here = float(token_budget) * scale
    out = {}
    for method, params in methods.items():
        weighting = WEIGHTINGS[method]
        extra = {k: params[k] for k in weighting.parameters if params.get(k) is not None}
        with np.errstate(all="ignore"):
            w = np.asarray(keep_probability(x, method, 1.0, boundaries, params.get("width", DEFAULT_WIDTH), extra),
                           dtype=np.float64) * np.ones(x.shape)
        a = np.where(np.isfinite(x) & np.isfinite(w) & (w > 0) & np.isfinite(g), w * np.nan_to_num(g), 0.0)
        most = max_copies * float(lengths[a > 0].sum()) / scale
        if here > max_copies * float(lengths[a > 0].sum()) * (1 + 1e-12):
            raise ConfigError(f"{budget_flag} {token_budget:.6g} cannot be reached by {method}: at most {most:.6g} "
                              f"words expected over the {total_docs:.6g} documents assumed, every document it can "
                              f"keep at --max-copies {max_copies}; lower the budget or raise --max-copies")
        f = solve_token_factor(a, lengths, here, max_copies)
        c = np.minimum(float(max_copies), f * a)
        kept = {k: v for k, v in params.items() if k != "notes"}  # the notes were about the provisional factor
        out[method] = {**kept, "factor": f, "expected_rate": float(np.minimum(1.0, c).mean()),
                       "expected_copies": float(c.mean()), "expected_words": float(np.sum(c * lengths)) / scale}
    return out


__all__: Sequence[str] = ("budget_methods", "check_token_budget", "expected_tokens", "provisional_rate",
                          "solve_token_factor", "word_count")
