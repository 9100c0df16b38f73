"""A token budget: the weighting's factor whose expected output, upsampling included, is a number of tokens.

Every weighting is linear in its factor (``p(x) = f * w(x)``, :func:`~mc4_sampling.corpus.keep_weights`),
so with upsampling (:mod:`mc4_sampling.upsampling`) a document's expected number of copies is
``c(x) = min(N, f * w(x) * g(m(x)))`` and the expected tokens of the sample are::

    T(f) = sum_x len(x) * min(N, f * a(x)),    a(x) = w(x) * g(m(x))

(without upsampling ``N = 1`` and ``g = 1``: the expected tokens of the kept documents).
``T`` is continuous, non-decreasing and piecewise linear in ``f``, with a breakpoint where one more
document saturates at ``N`` copies; :func:`solve_token_factor` inverts it exactly. Over a subset of
``n`` documents of a corpus of ``total_docs``, the budget is scaled to the subset: ``budget * n / total_docs``.
:func:`fit_token_budget` does the whole fit on a ``datasets`` corpus (its documents or a sample of them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

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


@dataclass(frozen=True)
class BudgetFit:
    """A factor fitted to a token budget, and what it gives on the documents it was fitted on."""

    #: the weighting's factor (``sampling_factor``)
    factor: float
    #: the budget over the corpus, and over the documents read (scaled by ``documents / total_docs``)
    budget: float
    budget_here: float
    #: documents read, their tokens, and the expected tokens, copies and kept documents at ``factor``
    documents: int
    tokens: int
    expected_tokens: float
    expected_copies: float
    expected_documents: float


def fit_token_budget(ds, token_budget: float, *, language: str = "es", text_column: str = "text",
                     id_column: str | None = None, total_docs: float | None = None, max_docs: int | None = None,
                     length: Callable[[str], int] = word_count, options=None, **option_values) -> BudgetFit:
    """The factor of the weighting of ``sample_dataset``'s options (upsampling included) whose expected
    tokens over the corpus are ``token_budget``: ``sample_dataset(ds, ..., sampling_factor=fit.factor)``.

    ``ds`` (a ``Dataset`` or ``IterableDataset``; its first ``max_docs`` documents when given) is the
    corpus, or a sample of one of ``total_docs`` documents. ``length(text)``: a document's tokens
    (default: whitespace words; give a tokenizer's count for subword tokens). Scores come from the
    options' scorer (or score column), ``m`` from ``upsample_column``; documents without a usable
    score or ``m`` count as never kept. ``id_column`` is taken (and not needed: ids key the draws, not
    their expectation) so that ``sample_dataset``'s keywords serve both.
    """
    from ..corpus import corpus_options, keep_weights
    from ..plan import SamplingPlan
    from ..upsampling import Upsampling

    opts = corpus_options(options, **option_values)
    plan = SamplingPlan.resolve(opts, language)
    if plan.train.weighting.keeps_all:
        raise ConfigError(f"token_budget fits the weighting's factor: sampling_method={opts.sampling_method!r} has "
                          "none; choose a weighting with a factor (random, gaussian, ...)")
    if max_docs is not None and not (isinstance(max_docs, int) and max_docs > 0):
        raise ConfigError(f"max_docs={max_docs!r} is not valid; it must be an integer > 0")
    upsampling = Upsampling.of(opts)
    score_column = plan.model.input_column if plan.train.needs_scores else None
    columns = [text_column] + [c for c in (score_column, upsampling and upsampling.reads_column
                                           and upsampling.column) if c]
    rows: dict[str, list] = {c: [] for c in columns}
    for i, row in enumerate(ds):
        if max_docs is not None and i >= max_docs:
            break
        for c in columns:
            if c not in row:
                raise ConfigError(f"{c!r} is not a column of the dataset (columns: {', '.join(sorted(row))})")
            rows[c].append(row[c])
    texts = rows[text_column]
    if not texts:
        raise ConfigError("no documents to fit the token budget on")
    good = np.fromiter((isinstance(t, str) for t in texts), dtype=bool, count=len(texts))
    lengths = np.array([length(t) if ok else 0 for t, ok in zip(texts, good)], dtype=np.float64)
    if plan.train.needs_scores:
        values = rows[score_column] if score_column else texts
        scores = np.full(len(texts), np.nan)
        idx = np.flatnonzero(good)
        for start in range(0, len(idx), 256):
            part = idx[start:start + 256]
            scores[part] = plan.model.score([values[i] for i in part.tolist()])
    else:
        scores = np.zeros(len(texts))
    factor, w = keep_weights(scores, language, options=opts)
    g = upsampling.weights(rows[upsampling.column]) if upsampling and upsampling.reads_column else np.ones(len(w))
    a = np.where(good & np.isfinite(g), w * np.where(np.isfinite(g), g, 0.0), 0.0)
    n_max = upsampling.max_copies if upsampling else 1
    n_docs = len(texts)
    if total_docs is not None and not (isinstance(total_docs, (int, float)) and total_docs >= n_docs):
        raise ConfigError(f"total_docs={total_docs!r} is not valid; it must be at least the {n_docs} documents read")
    scale = n_docs / total_docs if total_docs is not None else 1.0
    if not (isinstance(token_budget, (int, float)) and not isinstance(token_budget, bool)
            and np.isfinite(token_budget) and token_budget > 0):
        raise ConfigError(f"token_budget={token_budget!r} is not valid; it must be a finite number of tokens > 0")
    here = float(token_budget) * scale
    most = n_max * float(lengths[a > 0].sum())
    if here > most * (1 + 1e-12):
        raise ConfigError(f"token_budget={token_budget:.6g} cannot be reached: at most {most / scale:.6g} tokens "
                          f"expected, every document that can be kept at max_copies={n_max} copies; lower the "
                          "budget or raise max_copies")
    f = solve_token_factor(a, lengths, here, n_max)
    c = np.minimum(float(n_max), f * a)
    return BudgetFit(f, float(token_budget), float(here), n_docs, int(lengths.sum()), float(np.sum(c * lengths)),
                     float(c.sum()), float(np.sum(np.minimum(1.0, c))))


__all__: Sequence[str] = ("BudgetFit", "budget_methods", "check_token_budget", "expected_tokens", "fit_token_budget",
                          "provisional_rate", "solve_token_factor", "word_count")
