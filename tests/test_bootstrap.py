"""The Multi-Bootstrap (trainer/statistics/bootstrap.py) against the exact distribution enumerated by brute force on
small data (paired and unpaired examples), its determinism, and its metric formulas against the task kinds' own
metrics (seqeval's entity F1, macro F1) on the full data."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from trainer.statistics import bootstrap as mb


def _table(rows, key):
    return mb.example_table(["tp", "pred", "gold"], rows, {"f1": "f1(tp, pred, gold)"}, key)


#: two arms of two seeds each, three examples: per example (tp, predicted, gold) entities
ARM_A = [[[1, 1, 2], [2, 2, 2], [0, 1, 1]], [[2, 2, 2], [1, 2, 2], [1, 1, 1]]]
ARM_B = [[[1, 2, 2], [1, 1, 2], [0, 0, 1]], [[0, 1, 2], [2, 2, 2], [1, 2, 1]]]


def _f1(rows, idx):
    s = np.sum([rows[i] for i in idx], axis=0)
    return 2 * s[0] / (s[1] + s[2]) if s[1] + s[2] else 0.0


def _exact(paired: bool) -> np.ndarray:
    """Every equally likely outcome of one resample: example indices (shared, or one draw per arm) and seed
    indices per arm; the difference of the means over the drawn seeds of F1 on the drawn examples."""
    ex = list(itertools.product(range(3), repeat=3))
    seeds = list(itertools.product(range(2), repeat=2))
    out = []
    for ea in ex:
        for eb in ([ea] if paired else ex):
            fa = [_f1(ARM_A[s], ea) for s in range(2)]
            fb = [_f1(ARM_B[s], eb) for s in range(2)]
            for sa in seeds:
                for sb in seeds:
                    out.append(np.mean([fa[i] for i in sa]) - np.mean([fb[i] for i in sb]))
    return np.asarray(out)


@pytest.mark.parametrize("paired", [True, False])
def test_multi_bootstrap_matches_the_enumerated_distribution(paired):
    exact = _exact(paired)
    a = [[_table(s, "same")] for s in ARM_A]
    b = [[_table(s, "same" if paired else "other")] for s in ARM_B]
    B = 20_000
    got = mb.multi_bootstrap(a, b, "f1", samples=B, seed=3, confidence=0.9)
    assert got.paired is paired and got.examples and got.samples == B and got.seed == 3
    point = np.mean([_f1(s, range(3)) for s in ARM_A]) - np.mean([_f1(s, range(3)) for s in ARM_B])
    assert got.difference == pytest.approx(point, abs=1e-12)
    p = np.mean(exact > 0)
    assert abs(got.p_better - p) < 4.5 * np.sqrt(p * (1 - p) / B)  # binomial sd of the estimate
    # the percentile interval: points of the support with the exact tail masses on either side (up to sampling)
    support = np.unique(np.round(exact, 12))
    for bound in (got.ci_low, got.ci_high):
        assert np.min(np.abs(support - bound)) < 1e-9
    tol = 4.5 * np.sqrt(0.05 * 0.95 / B)
    assert np.mean(exact < got.ci_low - 1e-12) <= 0.05 + tol and np.mean(exact <= got.ci_low + 1e-12) >= 0.05 - tol
    assert np.mean(exact > got.ci_high + 1e-12) <= 0.05 + tol and np.mean(exact >= got.ci_high - 1e-12) >= 0.05 - tol


def test_multi_bootstrap_is_deterministic_and_resamples_seeds_only_without_tables():
    a = [[_table(s, "k")] for s in ARM_A]
    b = [[_table(s, "k")] for s in ARM_B]
    one, two = mb.multi_bootstrap(a, b, "f1", 500, seed=7), mb.multi_bootstrap(a, b, "f1", 500, seed=7)
    assert one == two
    assert mb.multi_bootstrap(a, b, "f1", 500, seed=8) != one
    # seeds given as values (no per-example scores): the seeds alone are resampled, exactly enumerable
    va, vb = [0.8, 0.9, 0.7], [0.75, 0.72]
    got = mb.multi_bootstrap(va, vb, "f1", 20_000, seed=1)
    assert not got.examples and not got.paired
    exact = [np.mean([va[i] for i in sa]) - np.mean([vb[i] for i in sb])
             for sa in itertools.product(range(3), repeat=3) for sb in itertools.product(range(2), repeat=2)]
    p = np.mean(np.asarray(exact) > 0)
    assert abs(got.p_better - p) < 4.5 * np.sqrt(p * (1 - p) / 20_000)
    # lower is better (a loss): P(better) counts the negative differences
    low = mb.multi_bootstrap(va, vb, "f1", 20_000, seed=1, lower_is_better=True)
    p_low = np.mean(np.asarray(exact) < 0)
    assert abs(low.p_better - p_low) < 4.5 * np.sqrt(p_low * (1 - p_low) / 20_000)


def test_formulas_give_the_kinds_own_metrics_on_the_full_data():
    pytest.importorskip("seqeval")
    from trainer.finetune.kinds import get_kind
    from trainer.finetune.tasks import Encoded

    rng = np.random.default_rng(5)
    # token classification, IOB tags: random gold and noisy predictions, some positions unlabelled
    labels = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    gold = rng.choice(5, size=(40, 12), p=[0.6, 0.12, 0.08, 0.12, 0.08]).astype(np.int32)
    preds = np.where(rng.random(gold.shape) < 0.8, gold, rng.integers(0, 5, gold.shape)).astype(np.int32)
    weights = (rng.random(gold.shape) < 0.85).astype(np.float32)
    weights[3] = 0.0  # a sentence without a labelled token
    enc = Encoded(np.zeros_like(gold), np.ones_like(gold), gold, weights, 0)
    kind = get_kind("token")
    cols, rows, formulas = kind.example_scores(preds, enc, labels, True)
    table = mb.example_table(cols, rows, formulas, "k")
    ref = kind.metrics(preds, enc, labels, True)
    for m in ("f1", "accuracy"):
        assert float(mb.table_metric(table, m)) == pytest.approx(ref[m], abs=1e-12)
    # POS-like tags (not IOB): seqeval's F1 as run_ner computes it decomposes per sentence too
    pos = ["NOUN", "VERB", "ADJ", "DET", "ADP"]
    cols, rows, formulas = kind.example_scores(preds, enc, pos, False)
    ref = kind.metrics(preds, enc, pos, False)
    assert float(mb.table_metric(mb.example_table(cols, rows, formulas, "k"), "f1")) == pytest.approx(ref["f1"],
                                                                                                     abs=1e-12)
    # sequence classification: accuracy and macro F1 (a class never predicted included)
    g = rng.integers(0, 4, 60).astype(np.int32)
    p = np.where(rng.random(60) < 0.6, g, rng.integers(0, 3, 60)).astype(np.int32)
    w = np.ones(60, np.float32)
    w[:5] = 0.0  # unlabelled examples are left out
    enc = Encoded(np.zeros((60, 4), np.int32), np.ones((60, 4), np.int32), g, w, 0)
    kind = get_kind("sequence")
    table = mb.example_table(*kind.example_scores(p, enc, list("abcd"), False), key="k")
    ref = kind.metrics(p, enc, list("abcd"), False)
    assert len(table["rows"]) == 55
    for m in ("accuracy", "macro_f1"):
        assert float(mb.table_metric(table, m)) == pytest.approx(ref[m], abs=1e-12)
    # a weighted table is the metric of the repeated examples
    counts = rng.integers(0, 3, 55)
    repeated = mb.example_table(["gold", "pred"], np.repeat(np.asarray(table["rows"]), counts, axis=0),
                                table["metrics"], "k")
    assert float(mb.table_metric(table, "macro_f1", counts)) == pytest.approx(
        float(mb.table_metric(repeated, "macro_f1")), abs=1e-12)


def test_compare_models_on_results_with_and_without_per_example_scores():
    """``trainer compare``'s statistics on results files: runs with example tables are resampled paired (same
    key); runs of files written before the tables were kept resample the seeds only and are marked."""
    from trainer.finetune.results import compare_models, comparison_markdown

    def report(seeds, tables: bool):
        runs = []
        for s in seeds:
            table = mb.example_table(["gold", "pred"], s, {"accuracy": "accuracy(gold, pred)"}, "same")
            runs.append({"metrics": {"accuracy": float(mb.table_metric(table, "accuracy"))},
                         **({"examples": table} if tables else {})})
        values = [r["metrics"]["accuracy"] for r in runs]
        return {"metrics": {"accuracy": {"mean": float(np.mean(values)), "std": float(np.std(values, ddof=1)),
                                         "values": values}}, "runs": runs}

    rng = np.random.default_rng(2)
    gold = rng.integers(0, 2, 40)
    seeds = lambda p: [np.stack([gold, np.where(rng.random(40) < p, gold, 1 - gold)], 1) for _ in range(3)]  # noqa
    good, bad = seeds(0.9), seeds(0.6)
    new = {"models": {"base": {"t": report(bad, True)}, "better": {"t": report(good, True)}}}
    c = compare_models(new, samples=2000, seed=4)["tasks"]["t"]["better"]["accuracy"]
    assert c["bootstrap"]["paired"] and c["bootstrap"]["examples"] and c["bootstrap"]["p_better"] > 0.99
    assert c["bootstrap"]["difference"] == pytest.approx(c["welch"]["difference"], abs=1e-12)
    old = {"models": {"base": {"t": report(bad, False)}, "better": {"t": report(good, False)}}}
    comparison = compare_models(old, samples=2000, seed=4)
    assert not comparison["tasks"]["t"]["better"]["accuracy"]["bootstrap"]["examples"]
    assert "† no per-example scores" in comparison_markdown(comparison) and "2000 resamples (seed 4)" in \
        comparison_markdown(comparison)


def _repeated_equals_weighted(table: dict, metric: str, counts: np.ndarray) -> None:
    """The metric on example weights ``counts`` is the metric of the table whose rows are repeated that often."""
    repeated = mb.example_table(table["columns"], np.repeat(np.asarray(table["rows"], np.float64), counts, axis=0),
                                table["metrics"], "k")
    assert float(mb.table_metric(table, metric, counts)) == pytest.approx(
        float(mb.table_metric(repeated, metric)), abs=1e-9)


def test_regression_formulas_give_scipy_and_the_kind_on_full_and_repeated_samples():
    from scipy import stats

    from trainer.finetune.kinds import get_kind
    from trainer.finetune.tasks import Encoded

    rng = np.random.default_rng(11)
    n = 80
    gold = rng.integers(0, 11, n) / 2.0  # STS-like 0..5 in halves: many ties
    preds = np.round(gold + rng.normal(0, 1.2, n), 1).astype(np.float32)  # ties among the predictions too
    w = np.ones(n, np.float32)
    w[:4] = 0.0  # unlabelled examples are left out
    enc = Encoded(np.zeros((n, 4), np.int32), np.ones((n, 4), np.int32), gold.astype(np.float32), w, 0)
    kind = get_kind("regression")
    table = mb.example_table(*kind.example_scores(preds, enc, ["score"], False), key="k")
    ref = kind.metrics(preds, enc, ["score"], False)
    p, g = preds[4:].astype(np.float64), gold[4:].astype(np.float64)
    assert len(table["rows"]) == n - 4
    for m, want in (("pearson", stats.pearsonr(p, g)[0]), ("spearman", stats.spearmanr(p, g)[0]),
                    ("mse", np.mean((p - g) ** 2))):
        assert float(mb.table_metric(table, m)) == pytest.approx(ref[m], abs=1e-9)
        assert float(mb.table_metric(table, m)) == pytest.approx(want, abs=1e-9)
    # multiplicities of a resample (zeros, repeats, ties across repeats): the metric of the repeated sample, and
    # many resamples at once ([B, n] weights) give each one's own
    counts = rng.multinomial(n - 4, np.full(n - 4, 1 / (n - 4)), size=5)
    for m in ("pearson", "spearman", "mse"):
        for c in counts:
            _repeated_equals_weighted(table, m, c)
        at_once = mb.table_metric(table, m, counts)
        np.testing.assert_allclose(at_once, [float(mb.table_metric(table, m, c)) for c in counts], atol=1e-12)
    rp, rg = np.repeat(p, counts[0]), np.repeat(g, counts[0])
    assert float(mb.table_metric(table, "spearman", counts[0])) == pytest.approx(stats.spearmanr(rp, rg)[0],
                                                                                 abs=1e-9)
    assert float(mb.table_metric(table, "pearson", counts[0])) == pytest.approx(stats.pearsonr(rp, rg)[0],
                                                                                abs=1e-9)
    # the weighted ranks are the ranks of each example's copies in the repeated sample (scipy's "average")
    copies = np.repeat(np.arange(n - 4), counts[0])
    drawn = np.flatnonzero(counts[0])
    np.testing.assert_allclose(mb.weighted_ranks(p, counts[0])[drawn],
                               [stats.rankdata(rp)[copies == i][0] for i in drawn], atol=1e-12)
    # a resample whose drawn predictions are all equal (their gold scores not): undefined (NaN), as the kind says
    # for constant predictions
    i, j = next((i, j) for i in range(n - 4) for j in range(i) if p[i] == p[j] and g[i] != g[j])
    one = np.zeros(n - 4)
    one[[i, j]] = [2, 3]
    for m in ("pearson", "spearman"):
        assert np.isnan(float(mb.table_metric(table, m, one)))
    assert np.isnan(kind.metrics(np.full(n, 0.1, np.float32), enc, ["score"], False)["pearson"])


def test_multiple_choice_and_span_formulas_give_the_kinds_metrics():
    from trainer.finetune.kinds import get_kind
    from trainer.finetune.tasks import Encoded

    rng = np.random.default_rng(12)
    # multiple choice: accuracy from (right choice, predicted choice)
    gold = rng.integers(0, 4, 50).astype(np.int32)
    preds = np.where(rng.random(50) < 0.5, gold, rng.integers(0, 4, 50)).astype(np.int32)
    enc = Encoded(np.zeros((50, 4, 6), np.int32), np.ones((50, 4, 6), np.int32), gold, np.ones(50, np.float32), 0)
    kind = get_kind("multiple-choice")
    table = mb.example_table(*kind.example_scores(preds, enc, ["choice"], False), key="k")
    assert float(mb.table_metric(table, "accuracy")) == pytest.approx(
        kind.metrics(preds, enc, ["choice"], False)["accuracy"], abs=1e-12)
    _repeated_equals_weighted(table, "accuracy", rng.integers(0, 3, 50))

    # span: 30 questions, some cut into two windows; random logits, a boost on the gold span for some questions,
    # so the answers are right, partly right or wrong; several gold answers for some, none for one
    words = "ana vive en la casa de madrid con su familia y el perro".split()
    contexts, answers, examples, offsets, logits = [], [], [], [], []
    width = 12
    for q in range(30):
        ctx_words = list(rng.choice(words, size=int(rng.integers(6, 14))))
        context = " ".join(ctx_words)
        starts = np.cumsum([0] + [len(t) + 1 for t in ctx_words[:-1]])
        spans = [(int(s), int(s) + len(t)) for s, t in zip(starts, ctx_words)]
        a = int(rng.integers(0, len(ctx_words) - 2))
        gold_answers = [] if q == 7 else [" ".join(ctx_words[a:a + 2])] + (
            [ctx_words[a + 1]] if q % 3 == 0 else [])
        contexts.append(context)
        answers.append(gold_answers)
        for part in ([spans[:8], spans[5:]] if len(spans) > 9 else [spans]):
            window = [None] + [tuple(s) for s in part] + [None] * (width - 1 - len(part))
            lg = rng.normal(0, 1, (width, 2))
            if q % 2 == 0 and gold_answers:
                for j, o in enumerate(window):
                    if o == spans[a]:
                        lg[j, 0] += 8
                    if o == spans[a + 1]:
                        lg[j, 1] += 8
            examples.append(q)
            offsets.append(window)
            logits.append(lg)
    extra = {"examples": np.asarray(examples), "offsets": offsets, "contexts": contexts, "answers": answers,
             "n_best": 20, "max_answer_length": 30}
    nw = len(examples)
    assert nw > 30
    enc = Encoded(np.zeros((nw, width), np.int32), np.ones((nw, width), np.int32), np.zeros((nw, 2), np.int32),
                  np.ones(nw, np.float32), 0, extra)
    preds = np.asarray(logits, np.float32)
    kind = get_kind("span")
    table = mb.example_table(*kind.example_scores(preds, enc, ["start", "end"], False), key="k")
    ref = kind.metrics(preds, enc, ["start", "end"], False)
    assert len(table["rows"]) == 30  # one row per question, not per window
    assert 0 < ref["exact_match"] < ref["f1"] < 1
    for m in ("exact_match", "f1"):
        assert float(mb.table_metric(table, m)) == pytest.approx(ref[m], abs=1e-12)
        _repeated_equals_weighted(table, m, rng.integers(0, 3, 30))
