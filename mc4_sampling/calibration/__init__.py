"""Calibration of the sampler for a language, a scorer (KenLM perplexity or any other) and a target keep rate.

:func:`run_calibration` is the whole run: draw a random subset of documents
(:mod:`~mc4_sampling.calibration.subset`), score it, fit every method's parameters
(:mod:`~mc4_sampling.calibration.fit`, :func:`build_calibration`) and write ``calibration.json``
(:mod:`~mc4_sampling.calibration.file`) with pictures. Importing this package needs neither SciPy
nor Matplotlib (only the pictures do), so :func:`load_calibration` works without the
``calibrate`` extra.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np

from ..errors import ConfigError, out_of_range
from ..scoring import ScorerSource
from ..upsampling import NO_UPSAMPLING
from ..weightings import DEFAULT_WIDTH
from .file import CALIBRATION_FORMAT, CALIBRATION_FORMAT_VERSION, Calibration, load_calibration, save_calibration
from .fit import (
    MIN_DOCUMENTS,
    MethodFit,
    UnreachableTargetError,
    calibratable_methods,
    check_positive,
    check_target_rate,
    clean_perplexities,
    default_methods,
    expected_keep_rate,
    fit_gaussian,
    fit_methods,
    fit_random,
    fit_stepwise,
    max_rate,
    quantiles,
    resolve_target,
    solve_factor,
)
from .subset import (
    DEFAULT_DOCS,
    DEFAULT_SHARDS_TO_READ,
    Subset,
    check_subset,
    draw_corpus_subset,
    draw_subset,
    reservoir_sample,
)
from .tokens import budget_methods, check_token_budget, provisional_rate

__all__ = [
    "CALIBRATION_FILE", "CALIBRATION_FORMAT", "CALIBRATION_FORMAT_VERSION", "Calibration", "DEFAULT_DOCS",
    "DEFAULT_SHARDS_TO_READ", "EXPECTED_FILE", "HISTOGRAM_FILE", "histogram_file", "MIN_DOCUMENTS", "MethodFit",
    "Subset", "UnreachableTargetError", "build_calibration", "calibratable_methods", "check_target_rate",
    "clean_perplexities", "default_methods",
    "draw_corpus_subset", "draw_subset", "expected_keep_rate", "fit_gaussian", "fit_methods", "fit_random",
    "fit_stepwise",
    "load_calibration", "max_rate", "quantiles", "reservoir_sample", "resolve_target", "run_calibration",
    "save_calibration", "score_texts", "solve_factor", "write_plots",
]  # fmt: skip

CALIBRATION_FILE = "calibration.json"
HISTOGRAM_FILE = "perplexity_histogram.png"  # KenLM's; another scorer's is named after its score (histogram_file)
EXPECTED_FILE = "expected_distributions.png"


def histogram_file(calibration: Calibration) -> str:
    """The histogram's file name, after the scorer's score: ``perplexity_histogram.png`` (KenLM),
    ``score_histogram.png`` (fastText, transformers), ``<column>_histogram.png`` (a score column)."""
    name = calibration.extra.get("score_name") or ("perplexity" if calibration.scorer == "kenlm" else "score")
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(name)).strip("._") or "score"
    return f"{name}_histogram.png"


def build_calibration(perplexities, target_rate: float, *, model_id: str, mode: str | None,
                      model_spec=None, language=None, split="train", seed=None,
                      methods: Iterable[str] | None = None, width: float = DEFAULT_WIDTH,
                      fit_width: bool = False, gaussian_factor: float = 1.0,
                      extra: Mapping | None = None, scorer: str = "kenlm", higher_is_better: bool = False,
                      alpha: float | None = None) -> Calibration:
    """Quantiles + per-method fits of the scores ``perplexities`` for ``target_rate``, as a
    :class:`Calibration`. ``scorer`` (its kind) and ``higher_is_better`` describe the scores:
    perplexities (``kenlm``) are positive; ``methods`` default to those suited to the direction."""
    target_rate = check_target_rate(target_rate)
    methods = list(default_methods(higher_is_better) if methods is None else methods)
    positive = scorer == "kenlm"
    x = clean_perplexities(perplexities, positive=positive)
    q = quantiles(x, positive=positive, require_distinct=positive)
    fits = fit_methods(x, target_rate, q["boundaries"], methods, width, fit_width, gaussian_factor,
                       higher_is_better=higher_is_better, positive=positive, alpha=alpha,
                       scorer_name=str(model_spec or model_id))
    return Calibration(
        model_id=model_id, mode=mode, boundaries=q["boundaries"], scorer=scorer, higher_is_better=higher_is_better,
        methods={m: f.to_dict() for m, f in fits.items()},
        language=language, split=split,
        model_spec=None if model_spec is None else str(model_spec),
        documents_scored=int(x.size), seed=seed, target_rate=target_rate,
        deciles=q["deciles"], percentiles=q["percentiles"],
        extra={"perplexity_summary": {k: q[k] for k in ("min", "max", "mean")},
               "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               **dict(extra or {})},
    )


def score_texts(model, texts: Sequence[str], batch_size: int = 256,
                progress: Callable[[int], None] | None = None) -> np.ndarray:
    """Scores of ``texts`` (or of a score column's values) in batches (``progress(n)`` after each batch)."""
    out = np.empty(len(texts), dtype=np.float64)
    for start in range(0, len(texts), batch_size):
        batch = texts[start:start + batch_size]
        out[start:start + len(batch)] = model.score(batch)
        if progress is not None:
            progress(len(batch))
    return out


def run_calibration(options, language: str, target_rate: float, *, split: str = "train",
                    docs: int = DEFAULT_DOCS, seed: int = 2021,
                    shards_to_read: int = DEFAULT_SHARDS_TO_READ,
                    max_docs_per_shard: int | None = None,
                    methods: Sequence[str] | None = None, width: float = DEFAULT_WIDTH,
                    fit_width: bool = False, gaussian_factor: float = 1.0,
                    output: str | Path | None = None, plots: bool = True,
                    read_progress=None, score_progress=None,
                    on_subset: Callable[[int], None] | None = None,
                    option_name: Callable[[str], str] = str,
                    corpus=None, text_column: str = "text",
                    corpus_name: str = "corpus", token_budget: float | None = None,
                    total_docs: float | None = None, upsampling=None) -> tuple[Calibration, np.ndarray]:
    """Draw, score and fit; write ``calibration.json`` (and pictures) to ``output`` if given.

    ``options`` are the data source and model options of a validated
    :class:`mc4_sampling.Mc4SamplingConfig` (or any object with those attributes). With a
    ``datasets`` ``corpus`` (named ``corpus_name`` in the file), the documents come from its
    ``text_column`` (:func:`~mc4_sampling.calibration.subset.draw_corpus_subset`) instead of mC4's
    shards, and ``options`` only name the model and ``on_bad_record``.
    Every parameter is checked before anything is read; error messages call a parameter
    ``option_name(parameter)`` (a command line passes its flags). ``read_progress(n)``/``score_progress(n)``
    report documents read and scored; ``on_subset(n)`` is called once the subset of ``n``
    documents is drawn. Returns the calibration and the scored perplexities.

    With ``token_budget`` (``target_rate`` is then ignored) each method's factor is solved so that its
    expected whitespace words, with ``upsampling`` (an :class:`~mc4_sampling.upsampling.Upsampling`,
    or None) included, meet the budget over a corpus of ``total_docs`` documents (default: what the
    subset counted or estimated, :attr:`Subset.total_docs`); see :func:`.budget.budget_methods`.
    The file records the budget under ``token_budget``, and ``target_rate`` is null.
    """
    if token_budget is not None:
        token_budget = check_token_budget(token_budget, option_name("token_budget"))
        if fit_width:
            raise ConfigError(f"{option_name('fit_width')} fits the gaussian width to a keep rate; with "
                              f"{option_name('token_budget')} each factor is fitted: drop one")
        if total_docs is not None and not (isinstance(total_docs, (int, float)) and total_docs > 0):
            raise out_of_range(option_name("total_docs"), total_docs, "it must be > 0")
    else:
        target_rate = check_target_rate(target_rate)
    check_subset(docs, shards_to_read, max_docs_per_shard, option_name)
    check_positive(width, option_name("width"))
    check_positive(gaussian_factor, option_name("gaussian_factor"))
    source = ScorerSource.of(options, language)
    model = source.load()
    if model.input_column is not None and corpus is None:
        raise ConfigError(f"{model.name} reads a column of the data; mC4 has none (text, timestamp, url): "
                          "calibrate a --dataset that holds it")
    columns = getattr(corpus, "column_names", None) if corpus is not None else None
    if model.input_column is not None and columns is not None and model.input_column not in columns:
        raise ConfigError(f"score_column={model.input_column!r} is not a column of {corpus_name!r} "
                          f"(columns: {', '.join(sorted(columns))})")
    if corpus is None:
        subset = draw_subset(options, language, split, docs, seed, shards_to_read, max_docs_per_shard,
                             read_progress)
        where = f"the picked {split} shards of {language!r}"
    else:
        reads = upsampling is not None and upsampling.reads_column and token_budget is not None
        subset = draw_corpus_subset(corpus, docs, seed, text_column=text_column, on_bad_record=options.on_bad_record,
                                    source=corpus_name, progress=read_progress, value_column=model.input_column,
                                    metadata_column=upsampling.column if reads else None)
        where = repr(corpus_name)
    if len(subset.texts) < MIN_DOCUMENTS:
        raise ConfigError(
            f"too few documents to estimate quartiles: {len(subset.texts)} found in {where} "
            f"(need at least {MIN_DOCUMENTS}); point at more data"
        )
    budget = None
    if token_budget is not None:
        total = total_docs if total_docs is not None else subset.total_docs
        if total is None:
            raise ConfigError(f"{option_name('token_budget')} needs the corpus' document count: the subset did not "
                              f"read {where} to its end; give {option_name('total_docs')} N")
        if total < len(subset.texts):
            raise out_of_range(option_name("total_docs"), total, f"it must be at least the {len(subset.texts)} "
                               "documents drawn")
        budget = {"tokens": float(token_budget), "unit": "whitespace words", "total_docs": float(total),
                  "total_docs_from": "given" if total_docs is not None else subset.total_docs_from,
                  "documents": len(subset.texts), "words": int(sum(subset.lengths or ())),
                  "max_copies": upsampling.max_copies if upsampling else 1,
                  "upsample": upsampling.function if upsampling else NO_UPSAMPLING,
                  "upsample_column": upsampling.column if upsampling and upsampling.reads_column else None}
        target_rate = provisional_rate(token_budget * len(subset.texts) / total, subset.lengths)
    if on_subset is not None:
        on_subset(len(subset.texts))
    perplexities = score_texts(model, subset.texts, progress=score_progress)
    if source.kind == "kenlm":
        spec = options.perplexity_model
        spec = (list(spec) if isinstance(spec, (list, tuple)) else spec) or "embedded"
    else:
        spec = getattr(options, "scorer_model", None) or model.name
    alpha = (getattr(options, "weighting_options", None) or {}).get("alpha")
    calibration = build_calibration(
        perplexities, target_rate, model_id=model.model_id, mode=model.mode,
        model_spec=spec if isinstance(spec, (str, list)) else str(spec),
        language=language, split=split, seed=seed, methods=methods, width=width,
        fit_width=fit_width, gaussian_factor=gaussian_factor, scorer=source.kind,
        higher_is_better=model.higher_is_better, alpha=alpha,
        extra={"subset": {"shards_read": subset.shards, "documents_read": subset.documents_read,
                          "bad_records": subset.bad_records,
                          "max_docs_per_shard": max_docs_per_shard, "source": subset.source},
               "model_name": getattr(model, "name", None), "score_name": model.score_name},
    )
    if budget is not None:
        g = upsampling.weights(subset.metadata) if budget["upsample_column"] is not None else None
        calibration.methods = budget_methods(
            calibration.methods, perplexities, subset.lengths, token_budget, budget["total_docs"],
            boundaries=calibration.boundaries, copy_weights=g, max_copies=budget["max_copies"],
            budget_flag=option_name("token_budget"))
        calibration.target_rate = None
        calibration.extra["token_budget"] = budget
    if output is not None:
        out = Path(output)
        save_calibration(calibration, out / CALIBRATION_FILE)
        if plots:
            write_plots(calibration, perplexities, out)
    return calibration, perplexities


def _target(calibration: Calibration) -> str:
    """What a calibration was fitted to: ``a 0.1 keep rate`` or ``a budget of 2e+06 words``."""
    budget = calibration.extra.get("token_budget")
    if isinstance(budget, dict):
        return f"a budget of {budget.get('tokens', float('nan')):.4g} words"
    return f"a {calibration.target_rate:.4g} keep rate"


def write_plots(calibration: Calibration, perplexities, out_dir) -> list[Path]:
    """The perplexity histogram and the expected distributions of each fitted method, as PNG files."""
    from ..plots import plot_expected_distributions, plot_perplexity_histogram

    kenlm = calibration.scorer == "kenlm"
    x = clean_perplexities(perplexities, positive=kenlm)
    out = Path(out_dir)
    who = f"{calibration.language or ''} {calibration.split or ''}".strip()
    what = "Perplexity" if kenlm else "Score"
    how = f"{calibration.mode} mode" if kenlm else calibration.model_spec or calibration.model_id
    return [
        plot_perplexity_histogram(
            x, calibration.boundaries, out / histogram_file(calibration), deciles=calibration.deciles,
            title=f"{what} of {x.size:,} scored documents ({who}, {how}), with quartiles", log_scale=kenlm,
        ),
        plot_expected_distributions(
            x, calibration.boundaries, calibration.methods, out / EXPECTED_FILE,
            title=f"Calibrated for {_target(calibration)} ({who}): "
            f"keep probability by {what.lower()}", log_scale=kenlm,
        ),
    ]
