"""The Multi-Bootstrap (Sellam et al. 2022, "The MultiBERTs: BERT Reproductions for Robustness Analysis",
section 3): a non-parametric test of the difference of two arms that resamples seeds and test examples jointly.

Each arm is a list of *seeds* (pre-training seeds in a study, fine-tuning seeds in ``trainer compare``); a
seed holds one or more *example tables* (one per fine-tuning run whose metric the seed averages). A table is
a matrix of per-example numbers (``rows[i]``: example ``i``) with named columns, and a metric is a formula of
the column sums weighted by how often each example is drawn (:data:`FORMULAS`): an accuracy is
``sum w correct / sum w count``, seqeval's micro F1 ``2 sum w tp / (sum w pred + sum w gold)``, a macro F1
is recomputed per class from (gold, prediction) pairs, a masked-LM loss ``sum w loss_sum / sum w count``,
a Pearson correlation from ``sum w``, ``sum w x``, ``sum w y``, ``sum w x^2``, ``sum w y^2``, ``sum w xy``.
So metrics that are not means over examples (entity F1, macro F1, token-weighted losses, correlations) are
recomputed exactly on every resample of the examples. A metric that is no function of weighted sums
(Spearman's rho: ranks) has a formula with a ``resample`` function of the examples and their weights instead.

One bootstrap sample ``b``: example multiplicities ``w ~ Multinomial(n, 1/n)`` (shared by both arms when
they were evaluated on the same examples, *paired*; drawn for each arm on its own examples otherwise),
then for each arm its seeds drawn with replacement (as many as it has), and
``theta_arm = mean over the drawn seeds s of metric_s(w)``; the statistic is
``delta_b = theta_A - theta_B``. Reported: the point estimate (all examples, all seeds), the percentile
interval ``[q_{(1-c)/2}, q_{(1+c)/2}]`` of ``delta`` and ``P(A better) = #{b: delta_b > 0} / B``
(``< 0`` where lower is better), with ``B`` and the seed. Pure NumPy; one seed, one result.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Callable, NamedTuple, Optional, Sequence

import numpy as np

# -- metrics as formulas of weighted column sums -----------------------------------------------------------


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den``, 0 where ``den`` is 0 (as seqeval and the kinds' own metrics do)."""
    num, den = np.asarray(num, np.float64), np.asarray(den, np.float64)
    return np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)


def ratio_expand(cols: dict, args: list) -> np.ndarray:
    """``ratio(num, den)``: the columns ``[num, den]``."""
    return np.stack([cols[args[0]], cols[args[1]]], axis=1)


def ratio_combine(sums: np.ndarray, args: list) -> np.ndarray:
    """``ratio(num, den) = sum w num / sum w den`` (an accuracy, a token-weighted loss)."""
    return _safe_div(sums[..., 0], sums[..., 1])


def f1_expand(cols: dict, args: list) -> np.ndarray:
    """``f1(tp, pred, gold)``: the columns of true positives, predicted and gold entities."""
    return np.stack([cols[a] for a in args], axis=1)


def f1_combine(sums: np.ndarray, args: list) -> np.ndarray:
    """``f1(tp, pred, gold) = 2 sum w tp / (sum w pred + sum w gold)`` (micro F1, seqeval's default), 0 when
    there is no entity at all."""
    return _safe_div(2.0 * sums[..., 0], sums[..., 1] + sums[..., 2])


def accuracy_expand(cols: dict, args: list) -> np.ndarray:
    """``accuracy(gold, pred)``: the columns ``[gold == pred, 1]``."""
    g, p = cols[args[0]], cols[args[1]]
    return np.stack([(g == p).astype(np.float64), np.ones_like(g, np.float64)], axis=1)


def macro_f1_expand(cols: dict, args: list) -> np.ndarray:
    """``macro_f1(gold, pred, C)``: per class ``c < C`` the indicator columns of tp, fp and fn."""
    g, p, classes = cols[args[0]], cols[args[1]], int(args[2])
    out = []
    for c in range(classes):
        out += [(p == c) & (g == c), (p == c) & (g != c), (p != c) & (g == c)]
    return np.stack(out, axis=1).astype(np.float64)


def macro_f1_combine(sums: np.ndarray, args: list) -> np.ndarray:
    """``macro_f1 = mean_c 2 tp_c / (2 tp_c + fp_c + fn_c)`` over all ``C`` classes (0 for a class never
    predicted nor gold), as :class:`trainer.finetune.kinds.sequence.SequenceKind` computes it."""
    classes = sums.shape[-1] // 3
    s = sums.reshape(sums.shape[:-1] + (classes, 3))
    return _safe_div(2 * s[..., 0], 2 * s[..., 0] + s[..., 1] + s[..., 2]).mean(axis=-1)


def mean_expand(cols: dict, args: list) -> np.ndarray:
    """``mean(x)``: the columns ``[x, 1]`` (a mean over examples: SQuAD's exact match and F1 per question)."""
    x = np.asarray(cols[args[0]], np.float64)
    return np.stack([x, np.ones_like(x)], axis=1)


def mse_expand(cols: dict, args: list) -> np.ndarray:
    """``mse(pred, gold)``: the columns ``[(pred - gold)^2, 1]``, combined as a ratio."""
    d = np.asarray(cols[args[0]], np.float64) - np.asarray(cols[args[1]], np.float64)
    return np.stack([d * d, np.ones_like(d)], axis=1)


def moments(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The per-example columns ``[1, x, y, x^2, y^2, xy]`` whose weighted sums give :func:`pearson_from_sums`."""
    x, y = np.broadcast_arrays(np.asarray(x, np.float64), np.asarray(y, np.float64))
    return np.stack([np.ones_like(x), x, y, x * x, y * y, x * y], axis=-1)


def pearson_from_sums(sums: np.ndarray) -> np.ndarray:
    """Pearson's ``r`` from ``sums [..., 6] = [n, Sx, Sy, Sxx, Syy, Sxy]`` (weighted sums of :func:`moments`):
    ``r = (n Sxy - Sx Sy) / sqrt((n Sxx - Sx^2)(n Syy - Sy^2))``, the correlation of the sample in which each
    example appears as often as its weight; NaN when ``x`` or ``y`` is constant (a variance term at most
    ``1e-12`` of ``n Sxx``, rounding of a zero: as :func:`trainer.finetune.kinds.regression.pearson`)."""
    n, sx, sy, sxx, syy, sxy = np.moveaxis(np.asarray(sums, np.float64), -1, 0)
    vx, vy = n * sxx - sx * sx, n * syy - sy * sy
    ok = (vx > 1e-12 * n * sxx) & (vy > 1e-12 * n * syy)
    den = np.sqrt(np.where(ok, vx * vy, 1.0))
    return np.where(ok, (n * sxy - sx * sy) / den, np.nan)


def pearson_expand(cols: dict, args: list) -> np.ndarray:
    """``pearson(x, y)``: :func:`moments` of ``x`` and ``y`` each less its mean over all examples (``r`` does not
    change when a constant is subtracted; centred, the sums do not cancel)."""
    x, y = (np.asarray(cols[a], np.float64) for a in args[:2])
    return moments(x - x.mean(), y - y.mean())


def pearson_combine(sums: np.ndarray, args: list) -> np.ndarray:
    """``pearson(x, y)``: :func:`pearson_from_sums`."""
    return pearson_from_sums(sums)


def weighted_ranks(x: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The ranks ``[..., n]`` of ``x [n]`` in the sample where example ``i`` appears ``weights[..., i]`` times,
    ties given the mean of the ranks they span (``scipy.stats.rankdata``'s "average"): the examples with the
    value of a tie group ``g`` hold the ranks ``C_g + 1 .. C_g + W_g`` (``W_g``: the group's total weight,
    ``C_g``: the total weight of the smaller values), so each gets ``C_g + (W_g + 1) / 2``."""
    x, w = np.asarray(x, np.float64), np.asarray(weights, np.float64)
    if not len(x):
        return np.zeros_like(w)
    order = np.argsort(x, kind="mergesort")
    sorted_x = x[order]
    first = np.concatenate([[True], sorted_x[1:] != sorted_x[:-1]])
    group = np.empty(len(x), np.int64)
    group[order] = np.cumsum(first) - 1
    totals = np.add.reduceat(w[..., order], np.flatnonzero(first), axis=-1)  # W_g
    below = np.cumsum(totals, axis=-1) - totals  # C_g
    return (below + (totals + 1) / 2)[..., group]


def spearman_expand(cols: dict, args: list) -> np.ndarray:
    """``spearman(x, y)``: the columns ``[x, y]`` (ranked on each resample by :func:`spearman_resample`)."""
    return np.stack([np.asarray(cols[a], np.float64) for a in args[:2]], axis=1)


def spearman_resample(matrix: np.ndarray, weights: np.ndarray, args: list) -> np.ndarray:
    """Spearman's rho of the sample where example ``i`` appears ``weights[..., i]`` times: the weighted Pearson
    correlation (:func:`pearson_from_sums`) of the :func:`weighted_ranks` of ``x`` and ``y``, each less the mean
    rank ``(sum w + 1) / 2``."""
    w = np.asarray(weights, np.float64)
    centre = (w.sum(axis=-1, keepdims=True) + 1) / 2
    rx, ry = weighted_ranks(matrix[:, 0], w) - centre, weighted_ranks(matrix[:, 1], w) - centre
    return pearson_from_sums(np.sum(w[..., None] * moments(rx, ry), axis=-2))


class Formula(NamedTuple):
    expand: Callable  # (columns, args) -> the per-example matrix whose weighted column sums the metric needs
    combine: Optional[Callable]  # (sums [..., m], args) -> the metric
    #: (matrix [n, m], weights [..., n], args) -> the metric, for one that is no function of weighted sums
    resample: Optional[Callable] = None


#: ``name(arg, ...)`` of an example table's ``metrics`` -> its formula.
FORMULAS = {
    "ratio": Formula(ratio_expand, ratio_combine),
    "mean": Formula(mean_expand, ratio_combine),
    "f1": Formula(f1_expand, f1_combine),
    "accuracy": Formula(accuracy_expand, ratio_combine),
    "macro_f1": Formula(macro_f1_expand, macro_f1_combine),
    "mse": Formula(mse_expand, ratio_combine),
    "pearson": Formula(pearson_expand, pearson_combine),
    "spearman": Formula(spearman_expand, None, spearman_resample),
}


def parse_formula(text: str) -> tuple[Formula, list]:
    """``"ratio(correct, count)"`` -> ``(FORMULAS["ratio"], ["correct", "count"])``."""
    m = re.fullmatch(r"\s*(\w+)\((.*)\)\s*", text)
    if not m or m.group(1) not in FORMULAS:
        raise ValueError(f"unknown example metric formula {text!r} (known: {', '.join(FORMULAS)})")
    return FORMULAS[m.group(1)], [a.strip() for a in m.group(2).split(",")]


def example_table(columns: Sequence[str], rows, metrics: dict, key: str) -> dict:
    """The JSON record of a run's per-example scores: ``rows[i]`` holds example ``i``'s ``columns``;
    ``metrics``: ``{name: formula}``; ``key`` names the examples (two tables with the same key hold the same
    examples in the same order: their comparison is paired)."""
    rows = np.asarray(rows)
    as_int = np.issubdtype(rows.dtype, np.integer) or (rows.size and np.all(rows == np.round(rows)))
    return {"columns": list(columns), "metrics": dict(metrics), "key": key,
            "rows": rows.astype(np.int64 if as_int else np.float64).tolist()}


def content_key(*parts) -> str:
    """A short hash of JSON-able ``parts`` (the identity of an evaluation set)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def table_function(table: dict, metric: str) -> tuple[int, Callable]:
    """``(n, f)``: the number of examples of ``table`` and ``f(w)``, ``metric`` on example weights ``w``
    (``[..., n]``): ``combine(w @ E)`` with ``E`` the formula's expanded matrix, or its ``resample(E, w)``."""
    formula, args = parse_formula(table["metrics"][metric])
    rows = np.asarray(table["rows"], np.float64).reshape(len(table["rows"]), len(table["columns"]))
    cols = {c: rows[:, i] for i, c in enumerate(table["columns"])}
    E = formula.expand(cols, args)
    if formula.resample is not None:
        return len(E), lambda w: formula.resample(E, w, args)
    return len(E), lambda w: formula.combine(w @ E, args)


def table_metric(table: dict, metric: str, weights: Optional[np.ndarray] = None) -> np.ndarray:
    """``metric`` of one table with example weights ``weights`` (``[..., n]``; None: every example once)."""
    n, f = table_function(table, metric)
    return f(np.ones(n) if weights is None else np.asarray(weights, np.float64))


# -- the Multi-Bootstrap ---------------------------------------------------------------------------------------


class MultiBootstrap(NamedTuple):
    difference: float  # theta_A - theta_B on all examples and seeds
    ci_low: float  # percentile interval of the resampled differences
    ci_high: float
    p_better: float  # fraction of resamples where A is better (difference > 0; < 0 when lower is better)
    samples: int  # B
    seed: int
    confidence: float
    paired: bool  # examples shared by the two arms (one draw of multiplicities for both)
    examples: bool  # examples resampled (False: some seed has no per-example scores, seeds only)


#: An arm: its seeds, each a list of example tables (its runs, averaged) or a float (no per-example scores).
Arm = Sequence


def _prepare(seeds: Arm, metric: str) -> list:
    """Each seed as a float (no tables) or the list of its tables' ``(n, f)`` (:func:`table_function`)."""
    return [[table_function(t, metric) for t in s] if isinstance(s, list) else float(s) for s in seeds]


def _seed_values(seeds: list, weights: Optional[np.ndarray]) -> np.ndarray:
    """``[B, S]``: each prepared seed's metric (the mean over its tables) under each row of example weights
    ``weights`` ``[B, n]``; ``[1, S]`` with every example once when ``weights`` is None."""
    out = []
    for seed in seeds:
        if isinstance(seed, float):
            out.append(np.full(1 if weights is None else len(weights), seed))
            continue
        w = [np.ones(n) if weights is None else weights for n, _ in seed]
        out.append(np.mean([np.atleast_1d(f(wi)) for wi, (_, f) in zip(w, seed)], axis=0))
    return np.stack(out, axis=-1)


def _examples(seeds: Arm) -> Optional[tuple[str, int]]:
    """``(key, n)`` of the examples of every table of the arm, or None when a seed has no tables or the
    tables differ (then only the seeds are resampled)."""
    seen = set()
    for seed in seeds:
        if not isinstance(seed, list) or not seed:
            return None
        seen |= {(t["key"], len(t["rows"])) for t in seed}
    return seen.pop() if len(seen) == 1 else None


def lower_is_better(metric: str) -> bool:
    """Whether a smaller ``metric`` is better: a loss (``mlm.clean.loss``) or a mean squared error (``mse``)."""
    return metric.rsplit(".", 1)[-1] in ("loss", "mse")


def multi_bootstrap(a: Arm, b: Arm, metric: str, samples: int = 1000, seed: int = 0, confidence: float = 0.95,
                    lower_is_better: bool = False, chunk: int = 250) -> MultiBootstrap:
    """The Multi-Bootstrap of ``theta_A - theta_B`` for ``metric`` (see the module's docstring). ``a``, ``b``:
    the arms' seeds. Examples are resampled when every table of an arm holds the same examples; shared
    (paired) when both arms' tables have the same key and size. Deterministic in ``seed``: the draws come
    from ``numpy.random.default_rng(seed)`` in chunks of ``chunk`` resamples, in a fixed order."""
    if not a or not b:
        nan = float("nan")
        return MultiBootstrap(nan, nan, nan, nan, samples, seed, confidence, False, False)
    ex_a, ex_b = _examples(a), _examples(b)
    use_examples = ex_a is not None and ex_b is not None
    paired = use_examples and ex_a == ex_b
    pa, pb = _prepare(a, metric), _prepare(b, metric)
    point = float(_seed_values(pa, None).mean() - _seed_values(pb, None).mean())
    rng = np.random.default_rng(seed)
    diffs = []
    for start in range(0, samples, chunk):
        size = min(chunk, samples - start)
        if use_examples:
            w_a = rng.multinomial(ex_a[1], np.full(ex_a[1], 1.0 / ex_a[1]), size=size).astype(np.float64)
            w_b = w_a if paired else rng.multinomial(ex_b[1], np.full(ex_b[1], 1.0 / ex_b[1]),
                                                     size=size).astype(np.float64)
            va, vb = _seed_values(pa, w_a), _seed_values(pb, w_b)
        else:
            va = np.repeat(_seed_values(pa, None), size, axis=0)
            vb = np.repeat(_seed_values(pb, None), size, axis=0)
        ia = rng.integers(0, len(a), size=(size, len(a)))
        ib = rng.integers(0, len(b), size=(size, len(b)))
        diffs.append(np.take_along_axis(va, ia, axis=1).mean(axis=1) - np.take_along_axis(vb, ib, axis=1).mean(axis=1))
    d = np.concatenate(diffs)
    lo, hi = np.quantile(d, [(1 - confidence) / 2, (1 + confidence) / 2])
    better = np.mean(d < 0) if lower_is_better else np.mean(d > 0)
    return MultiBootstrap(point, float(lo), float(hi), float(better), samples, seed, confidence, bool(paired),
                          bool(use_examples))


def describe(samples: int, seed: int, confidence: float) -> str:
    """The one sentence a report says about the Multi-Bootstrap."""
    return (f"Multi-Bootstrap (Sellam et al. 2022): {samples} resamples (seed {seed}) of the seeds of each arm "
            "and of the test examples (shared by both arms when they were scored on the same examples); "
            f"{int(round(100 * confidence))} % percentile interval of the difference of the means over seeds, "
            "and P(better) = the fraction of resamples where the arm is better")
