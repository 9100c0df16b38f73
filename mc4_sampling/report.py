"""Sampling report: what a run kept, against what its weighting should keep.

Given the score of every scored document (KenLM perplexity or any scorer's) and whether it was
kept, the report compares

* the observed keep rate with the expected one, ``mean(min(1, p(x_i)))`` over the scored
  documents. Conditional on the scores the number kept is a sum of independent
  Bernoulli draws (a Poisson-binomial count), so its standard deviation is exact:
  ``sqrt(sum q_i (1 - q_i))`` with ``q_i`` the probability that document ``i`` is kept;
* the score distribution of the kept documents with the expected one, the scored
  distribution weighted by ``min(1, p)``, with a two-sample Kolmogorov-Smirnov statistic
  (kept sample against the weighted sample of all scored documents) and SciPy's
  ``kstwo`` p-value for ``n = number kept``;
* optionally a target rate (from a calibration file) with a Wilson score interval of the
  observed rate.

If the sampler scores only the documents whose draw ``u`` is below the largest keep probability
``s = max p`` (the rest cannot be kept whatever their perplexity), the scored documents are an
unbiased ``s``-thinning of all documents read; pass ``score_probability=s`` and
``documents_read``. The expected distribution is unchanged; each scored document is then kept
with probability ``min(1, p) / s``.

With upsampling (:mod:`mc4_sampling.upsampling`) the keep rate is that of the first copy (whether a
document is kept at all) and ``run.upsampling`` states the duplication the run produced: kept
documents, copies, mean and most copies of a document, the histogram, and their words.

SciPy and Matplotlib are imported only when a report is built (``calibrate`` extra).
"""

from __future__ import annotations

import json
import logging
import math

import numpy as np

from .common.outputs import atomic_path, make_output_dir
from .errors import ConfigError
from .plan import SamplingPlan
from .upsampling import duplication
from .weightings import DEFAULT_WIDTH, get_weighting, keep_probability

logger = logging.getLogger(__name__)

#: Two-sided confidence of the intervals in the report.
DEFAULT_CONFIDENCE = 0.999


def _z(confidence: float) -> float:
    from statistics import NormalDist

    return NormalDist().inv_cdf(0.5 + confidence / 2)


def wilson_interval(successes: int, trials: int, confidence: float = DEFAULT_CONFIDENCE):
    """Wilson score interval of a binomial proportion."""
    if trials <= 0:
        return (0.0, 1.0)
    z = _z(confidence)
    phat = successes / trials
    denom = 1 + z * z / trials
    center = (phat + z * z / (2 * trials)) / denom
    half = z * math.sqrt(phat * (1 - phat) / trials + z * z / (4 * trials * trials)) / denom
    return (max(0.0, center - half), min(1.0, center + half))


def weighted_ks_statistic(x, kept, weights) -> float:
    """``sup_t |F_kept(t) - F_w(t)|``: the KS distance between the kept documents' empirical
    distribution and the ``weights``-weighted empirical distribution of all ``x``.

    Both are step functions jumping only at values of ``x``, so the supremum is reached at one of
    them (ties grouped).
    """
    x = np.asarray(x, dtype=np.float64)
    kept = np.asarray(kept, dtype=bool)
    w = np.asarray(weights, dtype=np.float64)
    if kept.sum() == 0 or w.sum() <= 0:
        return float("nan")
    order = np.argsort(x, kind="stable")
    xs = x[order]
    last_of_group = np.r_[xs[1:] != xs[:-1], True]
    f_kept = np.cumsum(kept[order])[last_of_group] / kept.sum()
    f_w = np.cumsum(w[order])[last_of_group] / w.sum()
    return float(np.max(np.abs(f_kept - f_w)))


def build_report(perplexities, kept, method: str, factor: float, boundaries=None,
                 width: float = DEFAULT_WIDTH, *, documents_read: int | None = None,
                 score_probability: float = 1.0, target_rate: float | None = None,
                 confidence: float = DEFAULT_CONFIDENCE, metadata: dict | None = None,
                 keep_probabilities=None, params=(), score_name: str = "perplexity") -> dict:
    """The report (a JSON-ready dict) for one run; see the module docstring.

    ``keep_probabilities`` (``min(1, p)`` of each scored document) replace the ones computed from
    ``method``/``factor``/``boundaries``/``width``/``params`` when given (e.g. several languages, each
    with its own rule). ``score_name`` names the scores (``perplexity`` for KenLM, else ``score``).
    """
    from scipy import stats

    x = np.asarray(perplexities, dtype=np.float64)
    k = np.asarray(kept, dtype=bool)
    if x.shape != k.shape:
        raise ConfigError("perplexities and kept flags differ in length")
    if x.size == 0:
        raise ConfigError("no scored documents to report on")
    if not 0 < score_probability <= 1:
        raise ConfigError(f"score_probability={score_probability!r} must be in (0, 1]")
    if keep_probabilities is not None:
        keep = np.minimum(1.0, np.asarray(keep_probabilities, dtype=np.float64))
        if keep.shape != x.shape:
            raise ConfigError("perplexities and keep probabilities differ in length")
    else:
        keep = np.minimum(1.0, keep_probability(x, method, factor, boundaries, width, params))
    finite = np.isfinite(x) & np.isfinite(keep)
    if not finite.all():
        logger.warning("report: %d documents without a finite perplexity left out",
                       int((~finite).sum()))
        x, k, keep = x[finite], k[finite], keep[finite]
    n_scored = int(x.size)
    n_kept = int(k.sum())
    n_read = int(documents_read) if documents_read is not None else n_scored
    if n_read < n_scored:
        raise ConfigError(f"documents_read={n_read} is below the {n_scored} documents scored")

    q = np.minimum(1.0, keep / score_probability)  # P(kept | scored)
    expected_kept = float(q.sum())
    sd = math.sqrt(float((q * (1 - q)).sum()))
    z_conf = _z(confidence)
    z = (n_kept - expected_kept) / sd if sd > 0 else (0.0 if n_kept == expected_kept else math.inf)
    expected_rate = float(keep.mean())  # per document read: s * mean(q) = mean(min(1, p))
    observed_rate = n_kept / n_read
    rate_sd = sd / n_read

    ks = weighted_ks_statistic(x, k, keep)
    ks_p = float(stats.kstwo.sf(ks, n_kept)) if n_kept > 0 and math.isfinite(ks) else None

    report = {
        "method": method,
        "parameters": {"factor": float(factor), "width": float(width) if get_weighting(method).uses_width else None,
                       "boundaries": None if boundaries is None else [float(b) for b in boundaries],
                       **{k: v for k, v in (params.items() if isinstance(params, dict) else params)}},
        "score": score_name,
        "documents_read": n_read,
        "documents_scored": n_scored,
        "documents_kept": n_kept,
        "score_probability": float(score_probability),
        "observed_keep_rate": observed_rate,
        "expected_keep_rate": expected_rate,
        "keep_rate_check": {
            "description": f"kept count against its exact Poisson-binomial law given the "
                           f"scored {score_name} values",
            "expected_kept": expected_kept,
            "standard_deviation_of_rate": rate_sd,
            "z_score": z,
            "confidence": confidence,
            "interval": [(expected_kept - z_conf * sd) / n_read, (expected_kept + z_conf * sd) / n_read],
            "observed_within_interval": bool(abs(z) <= z_conf),
        },
        "distribution_check": {
            "statistic": "two-sample Kolmogorov-Smirnov D: kept documents against all scored "
                         "documents weighted by min(1, p)",
            "ks_statistic": ks,
            "ks_pvalue": ks_p,
            "observed_quartiles": [float(v) for v in np.percentile(x[k], [25, 50, 75])] if n_kept else None,
            "expected_quartiles": _weighted_quantiles(x, keep, (0.25, 0.5, 0.75)),
            "scored_quartiles": [float(v) for v in np.percentile(x, [25, 50, 75])],
        },
    }
    if target_rate is not None:
        lo, hi = wilson_interval(n_kept, n_read, confidence)
        report["target_check"] = {
            "target_rate": float(target_rate),
            "observed_rate_wilson_interval": [lo, hi],
            "confidence": confidence,
            "target_within_interval": bool(lo <= target_rate <= hi),
        }
    if metadata:
        report["run"] = dict(metadata)
    return report


def _weighted_quantiles(x, w, probs) -> list[float] | None:
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    if w.sum() <= 0:
        return None
    order = np.argsort(x)
    cw = np.cumsum(w[order]) / w.sum()
    return [float(x[order][min(np.searchsorted(cw, p), x.size - 1)]) for p in probs]


def write_report(report: dict, perplexities, kept, out_dir, keep_probabilities=None) -> dict:
    """Write ``report.json`` and ``observed_vs_expected.png`` to ``out_dir``; return the paths."""
    from .plots import plot_observed_vs_expected

    out = make_output_dir(out_dir)
    params = report["parameters"]
    x = np.asarray(perplexities, dtype=np.float64)
    k = np.asarray(kept, dtype=bool)
    if keep_probabilities is not None:
        weights = np.minimum(1.0, np.asarray(keep_probabilities, dtype=np.float64))
    else:
        width = params["width"] if params["width"] is not None else DEFAULT_WIDTH
        extra = {n: v for n, v in params.items() if n not in ("factor", "width", "boundaries")}
        weights = np.minimum(1.0, keep_probability(x, report["method"], params["factor"],
                                                   params["boundaries"], width, extra))
    finite = np.isfinite(x) & np.isfinite(weights)
    x, k, weights = x[finite], k[finite], weights[finite]
    png = plot_observed_vs_expected(
        x, k, weights, out / "observed_vs_expected.png", boundaries=params["boundaries"],
        ks_statistic=report["distribution_check"]["ks_statistic"],
        ks_pvalue=report["distribution_check"]["ks_pvalue"],
        observed_rate=report["observed_keep_rate"], expected_rate=report["expected_keep_rate"],
        title=f"{report['method']} sampling: kept documents, observed against expected",
        log_scale=report.get("score", "perplexity") == "perplexity",
    )
    report = dict(report, files={"png": png.name})
    path = out / "report.json"
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    logger.info("wrote %s", path)
    return {"json": path, "png": png}


def write_sampling_report(out_dir, stats, options, split: str = "train",
                          confidence: float = DEFAULT_CONFIDENCE) -> dict:
    """The report of a ``mc4-sampling sample --report DIR`` run.

    ``stats`` is the run's :class:`mc4_sampling.sampler.SamplingStats`, filled with
    ``score_all=True`` so that ``stats.scored_documents`` holds ``(perplexity, min(1, p), kept)``
    for every document read; ``options`` the run's :class:`Mc4SamplingConfig`, whose
    :class:`~mc4_sampling.plan.SamplingPlan` of each language gives the rules. With a calibration
    file its target rate is checked too. Writes ``report.json`` and ``observed_vs_expected.png``.
    """
    if not stats.scored_documents:
        raise ConfigError("the run scored no documents: nothing to report")
    x, p, k = (np.asarray(c) for c in zip(*stats.scored_documents))
    plans = {lang: SamplingPlan.resolve(options, lang) for lang in options.languages}
    rules = {lang: plan.rule(split) for lang, plan in plans.items()}
    rule = rules[options.languages[0]]
    target = None
    cal = plans[options.languages[0]].calibration
    if cal is not None and not rule.weighting.keeps_all:
        # the calibrated rate holds for the calibrated parameters only (not for a validation factor)
        params = cal.methods.get(rule.method, {})
        if split == cal.split and params.get("factor") == rule.factor:
            target = cal.target_rate
    metadata = {
        "languages": list(options.languages),
        "split": split,
        "seed": options.seed,
        "calibration": options.calibration,
        "rules": {lang: {"method": r.method, "factor": r.factor,
                         "boundaries": list(r.boundaries) if r.boundaries else None,
                         "width": r.width, **dict(r.params)} for lang, r in rules.items()},
    }
    if stats.bad_records:
        metadata["bad_records"] = stats.bad_records
    upsampling = plans[options.languages[0]].upsampling_of(split)
    if upsampling is not None:  # the copies written: the keep rate above is that of copy 0 (kept at all)
        metadata["upsampling"] = {"max_copies": upsampling.max_copies, "upsample": upsampling.function,
                                  "upsample_column": upsampling.column if upsampling.reads_column else None,
                                  **duplication(stats.kept, stats.copies, stats.copy_histogram, stats.kept_words,
                                                stats.copy_words)}
    report = build_report(
        x.astype(np.float64), k.astype(bool), rule.method, rule.factor, rule.boundaries, rule.width,
        documents_read=stats.read, target_rate=target, confidence=confidence, metadata=metadata,
        keep_probabilities=p.astype(np.float64), params=rule.params,
        score_name=plans[options.languages[0]].score_name,
    )
    return write_report(report, x, k, out_dir, keep_probabilities=p.astype(np.float64))
