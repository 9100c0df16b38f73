"""Scorers and weightings as plug-ins: fastText, transformers, a score column and a callable, with
random/stepwise/gaussian/threshold/pareto, through the builder, sample_dataset, calibration and reports."""

from __future__ import annotations

import importlib.util
import math

import datasets
import numpy as np
import pytest
from datasets.distributed import split_dataset_by_node
from scorer_models import build_causal_lm, build_classifier, sample_docs, train_fasttext

import mc4_sampling
from mc4_sampling import BadRecordError, ConfigError, ModelNotFoundError, sample_dataset
from mc4_sampling.builder import Mc4Sampling
from mc4_sampling.calibration import build_calibration, save_calibration
from mc4_sampling.draw import document_key, hashes64, uniform_draws
from mc4_sampling.plan import SamplingPlan
from mc4_sampling.sampler import SamplingStats, decide_block
from mc4_sampling.scoring import Scorer, make_scorer
from mc4_sampling.weightings import (
    WEIGHTINGS,
    SamplingRule,
    Weighting,
    keep_probability,
    max_keep_probability,
    register_weighting,
)
from mc4_sampling.weightings.pareto import pareto_keep_probability
from mc4_sampling.weightings.threshold import threshold_keep_probability


@pytest.fixture(scope="module")
def docs():
    return sample_docs(400)


def fineweb_edu(docs):
    """Rows with a FineWeb-Edu-like ``score`` (0-5) and an ``id``."""
    rng = np.random.default_rng(0)
    return [{"text": d["text"], "id": f"doc-{i}", "score": float(np.clip(rng.normal(2.5, 1.0), 0, 5))}
            for i, d in enumerate(docs)]


def plain(docs):
    """Rows with a text and an id only."""
    return [{"text": d["text"], "id": f"doc-{i}"} for i, d in enumerate(docs)]


def text_length(texts):
    """A plain callable scorer: log length."""
    return [math.log1p(len(t)) for t in texts]


@pytest.fixture(scope="module")
def fasttext_model(tmp_path_factory):
    pytest.importorskip("fasttext")
    return train_fasttext(tmp_path_factory.mktemp("ft"))


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    pytest.importorskip("torch")
    return build_classifier(tmp_path_factory.mktemp("clf") / "model")


@pytest.fixture(scope="module")
def causal_lm(tmp_path_factory):
    pytest.importorskip("torch")
    return build_causal_lm(tmp_path_factory.mktemp("lm") / "model")


# --- weightings ------------------------------------------------------------------------------------


def test_threshold_and_pareto_formulas():
    x = np.array([-1.0, 0.0, 0.5, 1.0, 3.0])
    np.testing.assert_array_equal(threshold_keep_probability(x, 1.0, 0.0, 1.0), [0, 1, 1, 0, 0])
    np.testing.assert_array_equal(threshold_keep_probability(x, 0.5, low=0.5), [0, 0, 0.5, 0.5, 0.5])
    np.testing.assert_allclose(pareto_keep_probability(x, 1.0, 3.0), [3.0 ** -3, 2.0 ** -3, 1.5 ** -3, 1, 1])
    # GPT-3: keep when np.random.pareto(alpha) > 1 - score; same law as u < (2 - score) ** -alpha
    rng = np.random.default_rng(0)
    draws = rng.pareto(3.0, 200_000)
    assert abs((draws > 1 - 0.5).mean() - 1.5 ** -3) < 0.004
    assert max_keep_probability("pareto", 0.7) == 0.7 and max_keep_probability("threshold", 2.0) == 1.0


@pytest.mark.parametrize("method,params", [("threshold", {"low": 0.6}), ("threshold", {"low": 0.2, "high": 0.5}),
                                           ("pareto", {"alpha": 3.0}), ("gaussian", {}), ("random", {})])
def test_keep_rate_matches_the_formula(method, params):
    """Observed keep counts of the hashed draw inside binomial bounds of mean(min(1, p))."""
    x = np.random.default_rng(1).uniform(0.01, 1.0, 40_000)
    rule = SamplingRule(method, 0.9, (0.25, 0.5, 0.75), 2.0, tuple(sorted(params.items())))
    keys = np.arange(x.size, dtype=np.uint64)
    d = decide_block(rule, document_key(7, "es"), keys, lambda idx: x[idx])
    p = np.minimum(1, keep_probability(x, method, 0.9, (0.25, 0.5, 0.75), 2.0, params))
    sd = math.sqrt((p * (1 - p)).sum())
    assert abs(d.keep.sum() - p.sum()) < 5 * sd + 1
    # binned: the keep rate of each decile of x against the formula
    for lo in np.arange(0, 1, 0.1):
        sel = (x >= lo) & (x < lo + 0.1)
        q = p[sel]
        assert abs(d.keep[sel].sum() - q.sum()) < 5 * math.sqrt((q * (1 - q)).sum()) + 1


def test_a_new_weighting_is_one_class_and_one_registration(tmp_path):
    """Registered, a weighting is an option of the CLI, calibration (fit, file, pictures), the report,
    publish and its card, with its own default factor, colour and fit: no other module names it."""
    from mc4_sampling.calibration import load_calibration, write_plots
    from mc4_sampling.cli import build_parser
    from mc4_sampling.publish import PublishResult, SplitStats, method_configs, render_card
    from mc4_sampling.report import build_report
    from mc4_sampling.weightings.fitting import MethodFit, solve_factor

    class Linear(Weighting):
        name = "linear-test"
        formula = "`p = factor * x`"
        favours = "high"
        default_factor = 0.03
        color = "#123456"
        default_fit = {"high": 9}

        def probability(self, x, rule):
            """``p(x) = factor * x``."""
            return rule.factor * np.asarray(x, dtype=np.float64)

        def fit(self, scores, target, **options):
            """``factor`` solved exactly (the rate is linear in it until saturation)."""
            factor = solve_factor(self.probability(scores, SamplingRule(self.name)), target)
            return MethodFit(self.name, factor=factor,
                             expected_rate=float(np.minimum(factor * np.asarray(scores), 1).mean()))

    register_weighting(Linear())
    try:
        rows = fineweb_edu(sample_docs(100))
        ds = datasets.Dataset.from_list(rows)
        kept = sample_dataset(ds, "linear-test", score_column="score", sampling_factor=0.2)
        assert 0 < len(kept) < 100
        # its own default factor
        assert SamplingPlan.resolve(mc4_sampling.options.SamplingOptions(
            sampling_method="linear-test", score_column="score"), "es").train.factor == 0.03
        # the command line offers it
        commands = build_parser()._subparsers._group_actions[0].choices
        for command, dest in (("sample", "sampling_method"), ("publish", "sampling_method"), ("calibrate", "methods")):
            action = next(a for a in commands[command]._actions if a.dest == dest)
            assert "linear-test" in action.choices, command
        # calibration fits it by default for its direction, writes it, reads it back, draws it in its colour
        scores = np.array([r["score"] for r in rows])
        cal = build_calibration(scores, 0.2, model_id="column:score", mode=None, scorer="column",
                                higher_is_better=True)
        assert list(cal.methods)[-1] == "linear-test"
        assert cal.methods["linear-test"]["expected_rate"] == pytest.approx(0.2)
        path = save_calibration(cal, tmp_path / "calibration.json")
        assert load_calibration(str(path)).methods["linear-test"]["factor"] == cal.methods["linear-test"]["factor"]
        if importlib.util.find_spec("matplotlib") is not None:
            assert write_plots(cal, scores, tmp_path / "plots")
        calibrated = sample_dataset(ds, "linear-test", score_column="score", calibration=str(path))
        assert abs(len(calibrated) - 20) < 5 * math.sqrt(20)
        # the report
        factor = cal.methods["linear-test"]["factor"]
        p = np.minimum(1, keep_probability(scores, "linear-test", factor))
        report = build_report(scores, np.random.default_rng(0).random(100) < p, "linear-test", factor)
        assert report["method"] == "linear-test" and report["parameters"]["width"] is None
        # publish and its card
        config = Mc4Sampling(config_name="es", data_dir=mc4_sampling.SAMPLE_DATA_DIR, scorer=text_length).config
        configs = method_configs(config, ["linear-test"])
        stats = {"linear-test": {"train": SplitStats(read=10, scored=10, kept=3)}}
        card = render_card(configs, PublishResult(str(tmp_path), ["linear-test"], ["train"], stats, True, 1, 1),
                           "someone/sampled")
        assert "| `linear-test` | `linear-test` | `p = factor * x` | 0.03 | - |" in card
    finally:
        del WEIGHTINGS["linear-test"]


# --- the column scorer (FineWeb-Edu style) ------------------------------------------------------------


def test_score_column_threshold_keeps_exactly_the_range(docs):
    rows = fineweb_edu(docs)
    ds = datasets.Dataset.from_list(rows)
    kept = sample_dataset(ds, "threshold", score_column="score", weighting_options={"low": 3.0})
    assert sorted(kept["id"]) == sorted(r["id"] for r in rows if r["score"] >= 3.0)
    assert kept.column_names == ["text", "id", "score"]  # the score column stays, no new column


def test_score_column_calibrated_target_and_determinism(docs, tmp_path):
    rows = fineweb_edu(docs)
    scores = np.array([r["score"] for r in rows])
    cal = build_calibration(scores, 0.2, model_id="column:score", mode=None, scorer="column", higher_is_better=True)
    assert set(cal.methods) == {"random", "threshold", "pareto", "gaussian"}
    assert cal.methods["threshold"]["expected_rate"] == pytest.approx(0.2, abs=1 / len(rows))
    path = save_calibration(cal, tmp_path / "calibration.json")
    stream = datasets.Dataset.from_list(rows).to_iterable_dataset(num_shards=4)
    for method in ("threshold", "pareto", "gaussian"):
        kept = [r["id"] for r in sample_dataset(stream, method, score_column="score", id_column="id",
                                                 calibration=str(path))]
        expected = cal.methods[method]["expected_rate"] * len(rows)
        assert abs(len(kept) - expected) < 5 * math.sqrt(expected) + 1, method
        # the same documents whatever the order, the node split or a restart
        shuffled = sorted(r["id"] for r in sample_dataset(stream.shuffle(seed=3, buffer_size=50), method,
                                                           score_column="score", id_column="id",
                                                           calibration=str(path)))
        nodes = sorted(r["id"] for rank in range(3) for r in split_dataset_by_node(
            sample_dataset(stream, method, score_column="score", id_column="id", calibration=str(path)), rank, 3))
        assert sorted(kept) == shuffled == nodes
    with pytest.raises(ConfigError, match="was made with perplexity model 'column:score'"):
        sample_dataset(stream, "threshold", score_column="other", calibration=str(path)).take(1)


def test_score_column_bad_values(docs):
    rows = fineweb_edu(docs[:50])
    rows[7]["score"], rows[9]["score"], rows[11]["score"] = None, float("nan"), "high"
    ds = datasets.Dataset.from_list([{**r, "score": r["score"] if not isinstance(r["score"], str) else None}
                                     for r in rows])
    with pytest.raises(BadRecordError, match=r"row 7: column 'score' \(score_column\) holds None"):
        sample_dataset(ds, "threshold", score_column="score", weighting_options={"low": 0.0})
    stats = SamplingStats()
    kept = sample_dataset(ds, "threshold", score_column="score", weighting_options={"low": 0.0},
                          on_bad_record="skip", stats=stats)
    assert len(kept) == 47 and stats.bad_records == 3 and stats.read == 47
    # a non-numeric column in a streaming dataset
    text_rows = [{**r, "score": "high"} if i == 11 else {**r, "score": 1.0} for i, r in enumerate(rows)]
    stream = datasets.IterableDataset.from_generator(lambda: iter(text_rows))
    with pytest.raises(BadRecordError, match="holds 'high', not a finite number"):
        list(sample_dataset(stream, "threshold", score_column="score", weighting_options={"low": 0.0}))
    with pytest.raises(ConfigError, match=r"score_column='quality' is not a column of the dataset \(columns: id, "):
        sample_dataset(ds, "threshold", score_column="quality", weighting_options={"low": 0.0})


def test_direction_and_option_errors(docs):
    ds = datasets.Dataset.from_list(fineweb_edu(docs[:20]))
    with pytest.raises(ConfigError, match="'stepwise' keeps more of the low scores, but higher scores of column "):
        sample_dataset(ds, "stepwise", score_column="score", boundaries=(1, 2, 3), sampling_factor=1)
    with pytest.raises(ConfigError, match="'pareto' keeps more of the high scores, but lower scores of embedded"):
        sample_dataset(ds, "pareto")
    with pytest.raises(ConfigError, match="weighting_options.lo is not a parameter of sampling_method='threshold'"):
        sample_dataset(ds, "threshold", score_column="score", weighting_options={"lo": 1})
    with pytest.raises(ConfigError, match="perplexity_model apply to the KenLM scorer only"):
        sample_dataset(ds, "threshold", score_column="score", perplexity_model="x.arpa")
    with pytest.raises(ConfigError, match="scorer='nope' is not valid; choose one of column, kenlm, fasttext, "):
        sample_dataset(ds, "threshold", scorer="nope")


# --- a callable -----------------------------------------------------------------------------------


def test_callable_scorer_and_builder_determinism():
    kwargs = dict(sampling_method="gaussian", scorer=text_length, boundaries=(4.0, 6.0, 7.0), sampling_factor=0.8,
                  return_score=True, data_dir=mc4_sampling.SAMPLE_DATA_DIR)
    builder = Mc4Sampling(config_name="es", **kwargs)
    assert "score" in builder.info.features and "perplexity" not in builder.info.features
    stream = builder.as_streaming_dataset(split="train")
    whole = [(d["url"], d["score"]) for d in stream]
    assert whole and all(s == pytest.approx(math.log1p(len(t))) for (_, s), t in
                         zip(whole, [d["text"] for d in stream]))
    nodes = sorted(u for rank in range(2) for u, _ in ((d["url"], 0) for d in split_dataset_by_node(stream, rank, 2)))
    assert nodes == sorted(u for u, _ in whole)


# --- fastText (DCLM style) ------------------------------------------------------------------------------


def test_fasttext_scorer_matches_predict_and_samples(fasttext_model, docs):
    import fasttext

    scorer = make_scorer("fasttext", fasttext_model, {"label": "hq"})
    texts = [d["text"] for d in docs[:50]]
    direct = fasttext.load_model(fasttext_model)
    expected = []
    for t in texts:
        labels, probs = direct.predict(t.replace("\n", " "), k=-1)
        expected.append(dict(zip(labels, probs))["__label__hq"])
    np.testing.assert_allclose(scorer.score(texts), expected, rtol=1e-6)
    assert scorer.higher_is_better and scorer.model_id.startswith("fasttext:quality.bin#")
    ds = datasets.Dataset.from_list(plain(docs))
    x = scorer.score([d["text"] for d in docs])
    cal = build_calibration(x, 0.1, model_id=scorer.model_id, mode=None, scorer="fasttext", higher_is_better=True,
                            methods=["threshold"])
    low = cal.methods["threshold"]["low"]
    kept = sample_dataset(ds, "threshold", scorer="fasttext", scorer_model=fasttext_model,
                          scorer_options={"label": "__label__hq"}, weighting_options={"low": low}, return_score=True)
    assert sorted(kept["id"]) == sorted(r["id"] for r, s in zip(plain(docs), x) if s >= low)
    assert len(kept) == math.ceil(0.1 * len(docs)) and min(kept["score"]) >= low


def test_fasttext_in_the_builder_is_the_same_on_any_split(fasttext_model):
    kwargs = dict(sampling_method="pareto", scorer="fasttext", scorer_model=fasttext_model,
                  scorer_options={"label": "__label__hq"}, weighting_options={"alpha": 3}, sampling_factor=1.0,
                  return_score=True, data_dir=mc4_sampling.SAMPLE_DATA_DIR)
    stream = Mc4Sampling(config_name="es", **kwargs).as_streaming_dataset(split="train")
    whole = [d["url"] for d in stream]
    nodes = sorted(d["url"] for rank in range(3) for d in split_dataset_by_node(stream, rank, 3))
    assert sorted(whole) == nodes
    again = [d["url"] for d in Mc4Sampling(config_name="es", **kwargs).as_streaming_dataset(split="train")]
    assert again == whole


def test_fasttext_errors(fasttext_model, tmp_path):
    with pytest.raises(ConfigError, match=r"scorer_options.label='__label__nope' is not a label of quality.bin; "
                                          "its labels: __label__"):
        make_scorer("fasttext", fasttext_model, {"label": "nope"})
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"not a model at all" * 10)
    with pytest.raises(ModelNotFoundError, match=r"scorer_model='.*junk.bin' is not a fastText model"):
        make_scorer("fasttext", str(junk), {"label": "hq"})
    with pytest.raises(ModelNotFoundError, match="neither an existing path nor a Hub location"):
        make_scorer("fasttext", "./missing.bin", {})


# --- transformers (FineWeb-Edu classifier style, reference-model perplexity) -----------------------------


def test_transformers_regression_and_causal_lm(classifier, causal_lm, docs):
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

    texts = [d["text"] for d in docs[:20]]
    scorer = make_scorer("transformers", classifier, {"batch_size": 8, "max_length": 64, "device": "cpu"})
    tok = AutoTokenizer.from_pretrained(classifier)
    direct = AutoModelForSequenceClassification.from_pretrained(classifier).eval()
    with torch.inference_mode():
        expected = [direct(**tok(t, truncation=True, max_length=64, return_tensors="pt")).logits[0, 0].item()
                    for t in texts]
    np.testing.assert_allclose(scorer.score(texts), expected, rtol=1e-4, atol=1e-5)
    lm = make_scorer("transformers", causal_lm, {"task": "causal_lm", "max_length": 64, "device": "cpu"})
    assert not lm.higher_is_better
    ltok = AutoTokenizer.from_pretrained(causal_lm)
    ldirect = AutoModelForCausalLM.from_pretrained(causal_lm).eval()
    with torch.inference_mode():
        enc = ltok(texts[0], truncation=True, max_length=64, return_tensors="pt")
        ppl = math.exp(ldirect(**enc, labels=enc["input_ids"]).loss.item())
    assert lm.score(texts[:4])[0] == pytest.approx(ppl, rel=1e-4)
    # reference-model pruning: keep the lower-perplexity half, calibrated
    ds = datasets.Dataset.from_list(plain(docs[:120]))
    x = lm.score(ds["text"])
    cal = build_calibration(x, 0.5, model_id=lm.model_id, mode=None, scorer="transformers", higher_is_better=False,
                            methods=["threshold"])
    kept = sample_dataset(ds, "threshold", scorer="transformers", scorer_model=causal_lm,
                          scorer_options={"task": "causal_lm", "max_length": 64, "device": "cpu"},
                          weighting_options={"high": cal.methods["threshold"]["high"]})
    assert len(kept) == 60


def test_transformers_errors(classifier, tmp_path):
    with pytest.raises(ModelNotFoundError, match="is not a transformers model folder"):
        make_scorer("transformers", str(tmp_path), {})
    with pytest.raises(ConfigError, match="has one \\(regression\\) output, no labels"):
        make_scorer("transformers", classifier, {"label": "L3", "device": "cpu"})
    two = build_classifier(tmp_path / "two", num_labels=2)
    with pytest.raises(ConfigError, match="scorer_options.label='L7' is not a label of two; its labels: L0, L1"):
        make_scorer("transformers", two, {"label": "L7", "device": "cpu"})
    assert make_scorer("transformers", two, {"label": "L1", "device": "cpu"}).score(["hola mundo"])[0] < 1


# --- KenLM is unchanged, through the new plumbing ------------------------------------------------------


def test_kenlm_is_the_default_scorer_with_its_perplexity_column():
    plan = SamplingPlan.resolve(mc4_sampling.Mc4SamplingConfig(name="es", sampling_method="gaussian").validate(), "es")
    assert isinstance(plan.model, Scorer) and plan.model.kind == "kenlm" and plan.score_name == "perplexity"
    assert not plan.model.higher_is_better and plan.model.score(["hola"])[0] == plan.model.perplexity("hola")
    u = uniform_draws(document_key(1, "es"), hashes64(["a", "b"]))
    assert u.shape == (2,)


# --- threshold by fractions: DCLM's top-k, CCNet's head/middle/tail -----------------------------------


def test_threshold_fractions_and_ccnet_bands(docs, tmp_path):
    from mc4_sampling.scoring import CallableScorer
    from mc4_sampling.weightings.threshold import band_fractions

    rows = fineweb_edu(docs)
    scores = np.array([r["score"] for r in rows])
    cal = save_calibration(build_calibration(scores, 0.1, model_id="column:score", mode=None, scorer="column",
                                             higher_is_better=True), tmp_path / "fwe.json")
    ds = datasets.Dataset.from_list(rows)

    def kept(**options):
        return set(sample_dataset(ds, "threshold", score_column="score", calibration=str(cal), **options)["id"])

    p = np.percentile(scores, np.arange(1, 100))
    top = kept(weighting_options={"top": 0.1})  # DCLM: the best 10 % by the calibrated percentiles
    assert top == {r["id"] for r in rows if r["score"] >= np.interp(90, np.arange(1, 100), p)}
    assert abs(len(top) - 0.1 * len(rows)) <= 2
    assert kept(weighting_options={"top": 0.25, "bottom": 0.9}) == {
        r["id"] for r in rows if p[74] <= r["score"] < p[89]}
    # CCNet's bands partition the documents: best 30 %, next 30 %, other 40 % (here higher is better)
    bands = {b: kept(weighting_options={"band": b}) for b in ("head", "middle", "tail")}
    assert set().union(*bands.values()) == {r["id"] for r in rows} and sum(map(len, bands.values())) == len(rows)
    for b, share in (("head", 0.3), ("middle", 0.3), ("tail", 0.4)):
        assert abs(len(bands[b]) - share * len(rows)) <= 2, b
    assert min(r["score"] for r in rows if r["id"] in bands["head"]) >= max(
        r["score"] for r in rows if r["id"] in bands["middle"])
    # lower is better (perplexity-like): the head is the lowest 30 %, as CCNet's (perplexity < 30th percentile)
    assert band_fractions("head", higher_is_better=False) == {"bottom": 0.3}
    assert band_fractions("tail", higher_is_better=False) == {"top": 0.4}
    shortest = CallableScorer(text_length, higher_is_better=False)
    lengths = np.array(text_length([r["text"] for r in rows]))
    cal2 = save_calibration(build_calibration(lengths, 0.3, model_id=shortest.model_id, mode=None, scorer="callable",
                                              higher_is_better=False), tmp_path / "len.json")
    head = sample_dataset(ds, "threshold", scorer=shortest, calibration=str(cal2), weighting_options={"band": "head"})
    assert max(text_length(head["text"])) < np.percentile(lengths, 30) and abs(len(head) - 0.3 * len(rows)) <= 2
    # mistakes
    for options, message in [
        ({"band": "top"}, "weighting_options.band='top' is not valid; choose one of head, middle, tail"),
        ({"top": 0}, r"weighting_options.top=0 is out of range: it is a fraction of the documents, in \(0, 1\]"),
        ({"top": 0.1, "low": 2}, "weighting_options low and top both set a bound"),
        ({"band": "head", "top": 0.2}, "weighting_options band and top both choose the documents kept"),
        ({"top": 0.005}, "outside the calibration file's percentiles"),
        ({"top": 0.2, "bottom": 0.2}, "keep no document"),
    ]:
        with pytest.raises(ConfigError, match=message):
            kept(weighting_options=options)
    with pytest.raises(ConfigError, match="weighting_options.top keeps a fraction of the documents, which needs"):
        sample_dataset(ds, "threshold", score_column="score", weighting_options={"top": 0.1})
    with pytest.raises(ConfigError, match="replaces weighting_options"):  # a score bound still clashes with the file
        kept(weighting_options={"low": 2.0})


# --- keep weights: every weighting is factor * w(x) -------------------------------------------------------

WEIGHTED = [
    ("random", {}),
    ("gaussian", {"boundaries": (4.0, 6.0, 7.0)}),
    ("stepwise", {"boundaries": (4.0, 6.0, 7.0), "sampling_factor": 2.0,
                  "scorer_options": {"higher_is_better": False}}),
    ("threshold", {"weighting_options": {"low": 5.0, "high": 6.5}, "sampling_factor": 0.9}),
    ("pareto", {"scorer_options": {"higher_is_better": True}}),
]


@pytest.mark.parametrize("method,options", WEIGHTED, ids=[w[0] for w in WEIGHTED])
def test_keep_weights_give_the_samplers_decisions_at_any_factor(method, options):
    """``sample_dataset(factor=f)`` keeps exactly the documents with ``u / w(x) < f`` (``keep_weights``, with the
    draws of ``mc4_sampling.draw`` and the scores of ``score_texts``), at the rule's own factor and at others."""
    from mc4_sampling import keep_weights, score_texts
    from mc4_sampling.draw import document_key, hashes64, uniform_draws

    rng = np.random.default_rng(1)
    texts = ["x" * int(n) for n in rng.integers(1, 2000, 500)]
    ids = [f"doc-{i}" for i in range(500)]
    opts = dict(sampling_method=method, scorer=text_length, **options)
    scores = score_texts(texts, "es", **opts)
    assert np.allclose(scores, [math.log1p(len(t)) for t in texts])
    factor, w = keep_weights(scores, "es", **opts)
    t = np.where(w > 0, uniform_draws(document_key(5, "es"), hashes64(ids)) / np.where(w > 0, w, 1), np.inf)
    ds = datasets.Dataset.from_dict({"text": texts, "id": ids, "row": list(range(500))})
    for f in (factor, factor / 3, factor * 2):
        kept = sample_dataset(ds, id_column="id", seed=5, **{**opts, "sampling_factor": f})["row"]
        assert 0 < len(kept) and sorted(kept) == np.flatnonzero(t < f).tolist()
    assert keep_weights(scores, "es", sampling_method="none")[1].min() == 1.0
    with pytest.raises(ConfigError, match="not a sampling option"):
        keep_weights(scores, "es", sampling_methd="gaussian")
