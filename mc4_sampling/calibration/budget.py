"""A token budget on a ``datasets`` corpus: :func:`fit_token_budget` fits the weighting's factor whose expected
output, upsampling included, is a number of tokens, on the corpus' documents or a sample of them. The math
(``T(f) = sum_x len(x) * min(N, f * a(x))`` and its exact inverse) is :mod:`.tokens`' (re-exported here).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from ..errors import ConfigError
from .tokens import (  # noqa: F401 - re-exported: they were defined here
    budget_methods,
    check_token_budget,
    expected_tokens,
    provisional_rate,
    solve_token_factor,
    word_count,
)


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
