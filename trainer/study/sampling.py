"""The one adapter between a study and the sampler (``mc4_sampling``): scores, keep decisions, exact matching.

Only the sampler's public API is used: :func:`mc4_sampling.sample_dataset` (an arm's options are the
sampler's own, :class:`mc4_sampling.options.SamplingOptions`, plus ``seed``, ``language`` and
``id_column``), :func:`mc4_sampling.score_texts`,
:func:`mc4_sampling.keep_weights` and the draw of :mod:`mc4_sampling.draw`. Documents are keyed by their
study id (``split/shard/position`` or ``file/line``), so a document's decision depends on the document and
the seed alone.

Every weighting is linear in its factor, ``p(x) = factor * w(x)``, and ``sample_dataset`` keeps a document
with draw ``u = uniform_draws(document_key(seed, language), hash64(id))`` when ``u < p(x)``: when its
*threshold* ``t = u / w(x)`` is below ``factor`` (:func:`thresholds`). So an arm's sample is computed from
the scores and ids alone, and exact matching ("keep exactly N documents", any weighting) is a quantile of
the thresholds: with ``t_(1) <= ... <= t_(M)``, any factor in ``(t_(N), t_(N+1)]`` keeps exactly ``N``
(:func:`factor_keeping`). The computed decisions are checked against the sampler itself on the corpus's
first documents (:func:`keep_mask`), so a sampler whose rule changed fails loudly instead of silently
keeping another sample.
"""

from __future__ import annotations

import hashlib
import json
from typing import Optional, Sequence

import numpy as np

from ..errors import ConfigError

#: the options that choose an arm's scorer (arms that agree on them share their scores)
SCORER_OPTIONS = ("perplexity_model", "perplexity_mode", "scorer", "scorer_model", "scorer_options", "score_column")


def sampler_options(arm) -> dict:
    """The ``sample_dataset`` keyword arguments of an arm (its unset options left to the sampler; the
    files' ``SAMPLE_DATA_DIR`` and ``~`` resolved)."""
    from .config import resolve_path

    opts = arm.sampler_values()
    for name in ("calibration", "perplexity_model", "scorer_model"):
        if isinstance(opts.get(name), str):
            opts[name] = resolve_path(opts[name])
    if opts.get("boundaries") is not None:
        opts["boundaries"] = tuple(opts["boundaries"])
    return opts


def keep_mask(arm, texts: Sequence[str], ids: Sequence[str], seed: int, language: str,
              factor: float | None = None) -> np.ndarray:
    """The sampler's keep decision of every document (``none``: all kept); ``factor`` overrides the arm's."""
    from mc4_sampling.weightings import keeps_all

    if keeps_all(arm.sampling_method):
        return np.ones(len(texts), dtype=bool)
    import datasets

    from mc4_sampling import sample_dataset
    from mc4_sampling.common.errors import UserError

    opts = sampler_options(arm)
    if factor is not None:
        opts["sampling_factor"] = float(factor)
    ds = datasets.Dataset.from_dict({"text": list(texts), "id": list(ids), "row": list(range(len(texts)))})
    was_enabled = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        kept = sample_dataset(ds, text_column="text", id_column="id", seed=seed, language=language, **opts)
        rows = kept["row"]
    except UserError as e:
        raise ConfigError(f"arms.{arm.name}: {e}") from None
    finally:
        if was_enabled:
            datasets.enable_progress_bars()
    mask = np.zeros(len(texts), dtype=bool)
    mask[np.asarray(rows, dtype=np.int64)] = True
    return mask


def check_arm(arm, language: str) -> None:
    """Let the sampler check an arm's options (method, scorer, weighting, files) on one document: one line each."""
    keep_mask(arm, ["Un documento de prueba."], ["study/check"], 0, language)


def scorers(arms) -> dict:
    """``{key: scorer options}`` of every scorer the arms' weightings need (arms sharing a scorer share a key)."""
    from mc4_sampling.weightings import get_weighting

    out = {}
    for arm in arms:
        if not get_weighting(arm.sampling_method).needs_scores:  # none, random
            continue
        spec = {k: v for k, v in sampler_options(arm).items() if k in SCORER_OPTIONS}
        key = hashlib.sha1(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:10]
        out[key] = spec
    return out


def scorer_key(arm) -> Optional[str]:
    """The key of the arm's scorer in :func:`scorers` (None when its weighting needs no score)."""
    found = scorers([arm])
    return next(iter(found)) if found else None


def score_texts(spec: dict, texts: Sequence[str], language: str) -> np.ndarray:
    """The scores of ``texts`` by the scorer ``spec`` (:func:`scorers`)."""
    from mc4_sampling import score_texts as score

    return score(list(texts), language, **spec)


def thresholds(arm, scores: Optional[np.ndarray], keys: np.ndarray, seed: int, language: str
               ) -> tuple[Optional[float], np.ndarray]:
    """``(factor, t)``: the arm's own factor and each document's threshold ``t = u / w(x)`` (``inf`` when
    ``w = 0``): ``sample_dataset`` with factor ``f`` keeps exactly the documents with ``t < f``.
    ``none`` keeps everything: ``(None, zeros)``."""
    from mc4_sampling import keep_weights
    from mc4_sampling.common.errors import UserError
    from mc4_sampling.draw import document_key, uniform_draws
    from mc4_sampling.weightings import keeps_all

    if keeps_all(arm.sampling_method):
        return None, np.zeros(len(keys))
    try:
        factor, w = keep_weights(scores if scores is not None else np.zeros(len(keys)), language,
                                 **sampler_options(arm))
    except UserError as e:
        raise ConfigError(f"arms.{arm.name}: {e}") from None
    u = uniform_draws(document_key(seed, language), np.asarray(keys, np.uint64))
    with np.errstate(divide="ignore"):
        t = np.where(w > 0, u / np.where(w > 0, w, 1.0), np.inf)
    return factor, t


def factor_keeping(t: np.ndarray, n: int) -> float:
    """The factor that keeps exactly ``n`` of the documents with thresholds ``t``: the midpoint of
    ``t_(n)`` and ``t_(n+1)`` (sorted; ``max(2 t_(n), 1)`` when ``n`` is all it can keep).

    ``keep = t < factor``, so the count kept is ``#{t_i < factor} = n`` for ``t_(n) < factor <= t_(n+1)``.
    """
    t = np.asarray(t, np.float64)
    finite = np.isfinite(t)
    can = int(finite.sum())
    if not 0 < n <= can:
        raise ConfigError(f"cannot keep exactly {n} of {len(t)} documents: the weighting can keep 1 to {can}")
    if n == can:  # every document it can keep
        return float(max(2 * t[finite].max(), 1.0))
    lo, hi = np.partition(t, (n - 1, n))[[n - 1, n]]  # the n-th and (n+1)-th smallest, in linear time
    if not lo < hi:
        raise ConfigError(f"two documents share the threshold {lo}: no factor keeps exactly {n}")
    return float((lo + hi) / 2)


def factor_keeping_tokens(t: np.ndarray, tokens: np.ndarray, target: int) -> tuple[float, int]:
    """``(factor, n)``: the factor keeping the fewest documents (in threshold order) whose tokens reach
    ``target``, and that number of documents."""
    order = np.argsort(t, kind="stable")
    cum = np.cumsum(np.asarray(tokens, np.int64)[order])
    n = int(np.searchsorted(cum, target, side="left")) + 1
    n = min(n, int(np.isfinite(t).sum()))
    return factor_keeping(t, n), n
