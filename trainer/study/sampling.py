"""The one adapter between a study and the sampler (``mc4_sampling``): keep decisions, draws, exact matching.

Only the sampler's public API is used: :func:`mc4_sampling.sample_dataset` (options ``sampling_method``,
``sampling_factor``, ``width``, ``boundaries``, ``perplexity_model``, ``perplexity_mode``,
``calibration``, ``seed``, ``language``, ``id_column``) and the draw of :mod:`mc4_sampling.draw`.
Documents are keyed by their study id (``split/shard/position`` or ``file/line``), so a document's
decision depends on the document and the seed alone.

Exact matching ("keep exactly N documents"): a random arm keeps a document when its draw
``u = uniform_draws(document_key(seed, language), hash64(id))`` is below ``factor``; with the draws of
the corpus sorted, ``u_(1) <= ... <= u_(M)``, any factor in ``(u_(N), u_(N+1)]`` keeps exactly ``N``
(:func:`factor_keeping`). The result is checked against the sampler itself (:func:`keep_mask`), so a
sampler whose random rule changed fails loudly instead of silently keeping another count.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import ConfigError


def sampler_options(arm) -> dict:
    """The ``sample_dataset`` keyword arguments of an arm (its unset options left to the sampler)."""
    from .config import resolve_path

    opts = {"sampling_method": arm.method}
    for key, name in (("factor", "sampling_factor"), ("width", "width"), ("perplexity_mode", "perplexity_mode"),
                      ("calibration", "calibration")):
        value = getattr(arm, key)
        if value is not None:
            opts[name] = resolve_path(value) if key == "calibration" else value
    if arm.boundaries is not None:
        opts["boundaries"] = tuple(arm.boundaries)
    if arm.perplexity_model is not None:
        model = arm.perplexity_model
        opts["perplexity_model"] = resolve_path(model) if isinstance(model, str) else model
    return opts


def keep_mask(arm, texts: Sequence[str], ids: Sequence[str], seed: int, language: str,
              factor: float | None = None) -> np.ndarray:
    """The sampler's keep decision of every document (``none``: all kept); ``factor`` overrides the arm's."""
    if arm.method == "none":
        return np.ones(len(texts), dtype=bool)
    import datasets

    from mc4_sampling import Mc4SamplingError, sample_dataset

    opts = sampler_options(arm)
    if factor is not None:
        opts["sampling_factor"] = float(factor)
    ds = datasets.Dataset.from_dict({"text": list(texts), "id": list(ids), "row": list(range(len(texts)))})
    was_enabled = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        kept = sample_dataset(ds, text_column="text", id_column="id", seed=seed, language=language, **opts)
        rows = kept["row"]
    except Mc4SamplingError as e:
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


def random_draws(ids: Sequence[str], seed: int, language: str) -> np.ndarray:
    """The draw ``u`` in [0, 1) the sampler compares with a random arm's factor, for each document id."""
    from mc4_sampling.draw import document_key, hashes64, uniform_draws

    return uniform_draws(document_key(seed, language), hashes64(list(ids)))


def factor_keeping(u: np.ndarray, n: int) -> float:
    """The factor of a random arm that keeps exactly ``n`` of the documents with draws ``u``:
    the midpoint of ``u_(n)`` and ``u_(n+1)`` (sorted draws; 1.0 when ``n`` is all of them).

    ``keep = u < factor``, so the count kept is ``#{u_i < factor} = n`` for ``u_(n) < factor <= u_(n+1)``.
    """
    s = np.sort(np.asarray(u, np.float64))
    if not 0 < n <= len(s):
        raise ConfigError(f"cannot keep exactly {n} of {len(s)} documents (1 <= n <= {len(s)})")
    if n == len(s):
        return 1.0
    lo, hi = s[n - 1], s[n]
    if not lo < hi:
        raise ConfigError(f"two documents share the draw {lo}: no factor keeps exactly {n}")
    return float((lo + hi) / 2)


def factor_keeping_tokens(u: np.ndarray, tokens: np.ndarray, target: int) -> tuple[float, int]:
    """``(factor, n)``: the random factor keeping the fewest documents (in draw order) whose tokens reach
    ``target``, and that number of documents."""
    order = np.argsort(u, kind="stable")
    cum = np.cumsum(np.asarray(tokens, np.int64)[order])
    n = int(np.searchsorted(cum, target, side="left")) + 1
    n = min(n, len(u))
    return factor_keeping(u, n), n
