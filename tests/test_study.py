"""`trainer study`: matching, content hold-out across arms, a micro study end to end and its resume,
Welch statistics against SciPy, bad input (one line each), the Ray engine (marked ``ray``)."""

from __future__ import annotations

import gzip
import json
import math
import os

import numpy as np
import pytest

from trainer.errors import ConfigError, DataError, StoppedBySignal
from trainer.statistics import welch as stats
from trainer.study import sampling
from trainer.study.config import ArmConfig, load_study_config
from trainer.study.corpus import content_hash

#: a micro study: the tiny model made smaller, 10 steps, 2 arms, 1 seed, a part of the bundled sample
MICRO = {
    "name": "micro",
    "corpus": {"data_dir": "SAMPLE_DATA_DIR", "labels": "SAMPLE_DATA_DIR/kinds.tsv.gz", "max_documents": 600},
    "eval": {"split": "validation", "max_documents": 120, "curve_documents": 40,
             "subsets": {"clean": ["prose", "prose_nav"],
                         "junk": ["boilerplate", "word_salad", "repeated", "short", "english", "spam", "ui_strings"]}},
    "tokenizer": {"vocab_size": 600},
    "trainer": {"config": "tiny-cpu", "set": [
        "model.hidden_size=32", "model.num_layers=1", "model.num_heads=2", "model.intermediate_size=64",
        "model.max_position_embeddings=34", "data.max_seq_length=32", "training.global_batch_size=8",
        "training.eval_batch_size=16", "schedule.warmup_steps=2", "training.eval_every_steps=5",
        "checkpoint.every_steps=5", "logging.every_steps=5", "data.shuffle_buffer=200"]},
    "arms": [{"name": "gaussian", "sampling_method": "gaussian"},
             {"name": "random", "sampling_method": "random", "match": "gaussian"}],
    "seeds": {"count": 1},
    "budget_tokens": 2560,  # 10 steps of 8 x 32
    "downstream": [{"name": "kind", "labels": ["prose", "english", "ui_strings", "spam"], "min_examples": 40,
                    "max_length": 32, "batch_size": 8, "epochs": 1, "seeds": 1, "max_reruns": 0}],
}


def write_config(tmp_path, data: dict, name: str = "study.yaml") -> str:
    import yaml

    path = tmp_path / name
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return str(path)


def micro(tmp_path, **changes) -> dict:
    data = json.loads(json.dumps(MICRO))
    data["output_dir"] = str(tmp_path / "out")
    data.update(changes)
    return data


# --- statistics against SciPy ------------------------------------------------------------------------

def test_welch_and_intervals_match_scipy():
    scipy_stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(18)
    for n_a, n_b, shift, scale in [(3, 3, 0.04, 0.01), (3, 5, 0.0, 0.2), (2, 2, 1.0, 1.0), (8, 4, -0.3, 3.0)]:
        a = rng.normal(6.5 + shift, scale, n_a)
        b = rng.normal(6.5, scale * rng.uniform(0.3, 3.0), n_b)
        w = stats.welch_test(a, b)
        ref = scipy_stats.ttest_ind(a, b, equal_var=False)
        assert w.t == pytest.approx(ref.statistic, rel=1e-10)
        assert w.p == pytest.approx(ref.pvalue, rel=1e-7, abs=1e-12)
        assert w.df == pytest.approx(ref.df, rel=1e-10)
        lo, hi = ref.confidence_interval(0.95)
        assert (w.ci_low, w.ci_high) == pytest.approx((lo, hi), rel=1e-7)
        s = stats.summarize(a, 0.9)
        ref_lo, ref_hi = scipy_stats.t.interval(0.9, n_a - 1, loc=np.mean(a), scale=scipy_stats.sem(a))
        assert (s.mean, s.sd) == pytest.approx((np.mean(a), np.std(a, ddof=1)), rel=1e-12)
        assert (s.ci_low, s.ci_high) == pytest.approx((ref_lo, ref_hi), rel=1e-9)
    for df in (1, 2.5, 7, 40):
        for q in (0.6, 0.975, 0.999):
            assert stats.t_ppf(q, df) == pytest.approx(scipy_stats.t.ppf(q, df), rel=1e-8)
        assert stats.t_cdf(-1.7, df) == pytest.approx(scipy_stats.t.cdf(-1.7, df), rel=1e-9)
    one = stats.welch_test([1.0], [2.0, 3.0])
    assert one.difference == -1.5 and np.isnan(one.p)


def test_welch_p_value_is_the_tail_itself_for_huge_t():
    """``2 (1 - cdf)`` rounds to 0.0 once the cdf is 1 in double precision; the tail from the incomplete beta
    function keeps the tiny p-value scipy gives (relative agreement, not just both "small")."""
    scipy_stats = pytest.importorskip("scipy.stats")
    cases = [([10.0, 10.0001, 10.0002, 10.00005, 10.00015], [1, 1.0001, 1.0002, 1.00005, 1.00015]),
             ([5, 5.0000001, 5.0000002], [1, 1.0000001, 1.0000002]),
             ([0.91, 0.912, 0.913, 0.911], [0.5, 0.502, 0.501, 0.503]),
             ([0.5, 0.51, 0.52], [0.505, 0.515, 0.49])]  # and an ordinary p near 1
    for a, b in cases:
        w, ref = stats.welch_test(a, b), scipy_stats.ttest_ind(a, b, equal_var=False)
        assert w.p > 0.0
        assert w.p == pytest.approx(ref.pvalue, rel=1e-9)
        assert stats.t_two_sided(-w.t, w.df) == w.p  # symmetric
    assert scipy_stats.ttest_ind(*cases[1], equal_var=False).pvalue < 1e-25  # the case the issue measured


def test_one_seed_has_no_sd():
    s = stats.summarize([0.8125])
    assert s.mean == 0.8125 and math.isnan(s.sd) and math.isnan(s.ci_low)


# --- matching ------------------------------------------------------------------------------------------

def _synthetic_report(confidence: float = 0.95) -> dict:
    """Two arms and a baseline, three seeds: one loss difference with p < 0.05, one with 0.05 < p < 0.1."""
    from trainer.study.report import TEST

    vals = {"base": {"mlm.clean.loss": [6.836, 6.849, 6.862], "kind.accuracy": [0.2, 0.5, 0.8]},
            "near": {"mlm.clean.loss": [6.79, 6.815, 6.84], "kind.accuracy": [0.05, 0.1, 0.3]},
            "far": {"mlm.clean.loss": [6.766, 6.767, 6.768], "kind.accuracy": [0.6, 0.65, 0.7]}}
    metrics = ["mlm.clean.loss", "kind.accuracy"]
    arms = {a: {"metrics": {m: {**stats.summarize(v[m], confidence)._asdict(), "values": v[m]} for m in metrics}}
            for a, v in vals.items()}
    for a in ("near", "far"):
        arms[a]["vs_baseline"] = {m: stats.welch_test(vals[a][m], vals["base"][m], confidence)._asdict()
                                  for m in metrics}
    return {"study": "s", "confidence": confidence, "baseline": "base", "test": TEST, "metrics": metrics,
            "arms": {a: {"method": a, "match": None, "documents": stats.summarize([10, 10])._asdict(),
                         "tokens": stats.summarize([100, 100])._asdict(), "factors": [None], "composition": {},
                         **arms[a]} for a in arms},
            "units_done": 6, "units_total": 6, "units": [],
            "data": {"train_documents": 10, "train_tokens": 100, "held_out_duplicates": 0, "eval_documents": 5,
                     "eval_subsets": {"all": 5}}}


def test_report_shows_significance_only_where_p_is_below_alpha():
    from trainer.study.report import markdown

    report = _synthetic_report()
    near = report["arms"]["near"]["vs_baseline"]["mlm.clean.loss"]["p"]
    far = report["arms"]["far"]["vs_baseline"]["mlm.clean.loss"]["p"]
    assert 0.05 < near < 0.2 and far < 0.05
    row = next(line for line in markdown(report).splitlines() if line.startswith("| mlm.clean.loss | "))
    near_cell, far_cell = row.rstrip(" |").split(" | ")[1:3]
    assert not near_cell.startswith("**") and far_cell.startswith("**") and far_cell.endswith("**")
    assert "Bold: p < 0.05 (significant at the report's 95 % level)" in markdown(report)
    # at 99.9 %, alpha = 0.001: nothing is bold any more (p 0.008)
    strict = markdown(_synthetic_report(0.999))
    assert "**" not in strict and "Bold: p < 0.001 (significant at the report's 99.9 % level)" in strict


def test_final_metrics_picture_is_honest():
    """Points with intervals (no bars on a truncated axis), rates within [0, 1], readable titles."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    from trainer.study.plots import final_figure, metric_title

    assert metric_title("mlm.clean.loss") == "Masked-LM loss, eval subset 'clean' (lower is better)"
    assert metric_title("mlm.all.accuracy") == "Masked-LM accuracy, whole eval set"
    assert metric_title("kind.macro_f1") == "kind: macro F1"
    fig = final_figure(_synthetic_report())
    loss, acc = fig.axes[:2]
    assert [loss.get_title(), acc.get_title()] == [metric_title("mlm.clean.loss"), "kind: accuracy"]
    assert not [p for ax in fig.axes for p in ax.patches if isinstance(p, Rectangle)]  # no bars
    lo, hi = acc.get_ylim()
    assert 0 <= lo and hi <= 1  # the interval of "base" (0.5 ± 0.75) is clipped, not the axis stretched below 0
    plt.close(fig)


@pytest.mark.parametrize("method", ["random", "gaussian", "stepwise"])
def test_any_weighting_keeps_exactly_n_documents_and_tokens(method):
    """Exact matching for every weighting: the factor computed from the thresholds ``u / w(x)`` makes the
    sampler itself (``sample_dataset``) keep exactly ``n`` documents, and exactly those with ``t < factor``."""
    from mc4_sampling.draw import hashes64

    rng = np.random.default_rng(0)
    words = "la casa del perro come pan y el gato duerme en la mesa xq zzv wkr".split()
    texts = [" ".join(rng.choice(words, 5 + i % 30)) for i in range(400)]
    ids = [f"train/0/{i}" for i in range(400)]
    arm = ArmConfig(name=method, sampling_method=method)
    key = sampling.scorer_key(arm)
    scores = sampling.score_texts(sampling.scorers([arm])[key], texts, "es") if key else None
    own, t = sampling.thresholds(arm, scores, hashes64(ids), 7, "es")
    assert np.array_equal(sampling.keep_mask(arm, texts, ids, 7, "es"), t < own)  # the arm's own sample
    finite = int(np.isfinite(t).sum())
    for n in (1, 57, 233, finite - 1, finite):
        factor = sampling.factor_keeping(t, n)
        mask = sampling.keep_mask(arm, texts, ids, 7, "es", factor=factor)  # the sampler's own decision
        assert int(mask.sum()) == n
        assert np.array_equal(mask, t < factor)
    tokens = np.arange(400) % 13 + 1
    factor, n = sampling.factor_keeping_tokens(t, tokens, 1000)
    kept = sampling.keep_mask(arm, texts, ids, 7, "es", factor=factor)
    assert int(kept.sum()) == n and tokens[kept].sum() >= 1000 > tokens[kept].sum() - tokens[kept].max()
    with pytest.raises(ConfigError):
        sampling.factor_keeping(t, 0)
    with pytest.raises(ConfigError, match="can keep 1 to"):
        sampling.factor_keeping(np.array([0.1, np.inf]), 2)


# --- hold-out by content, bad input, Ctrl-C (no training) ----------------------------------------------

def _mc4_corpus(tmp_path) -> str:
    """An mC4-layout folder whose train shard repeats 12 validation documents (with other whitespace)."""
    rng = np.random.default_rng(3)
    words = "la casa perro gato libro mesa ventana ciudad río montaña sol luna".split()
    doc = lambda i: " ".join(rng.choice(words, 12)) + f" {i}"  # noqa: E731
    val = [doc(i) for i in range(40)]
    train = [doc(100 + i) for i in range(300)] + [t.replace(" ", "  \n", 2) for t in val[:12]]
    folder = tmp_path / "mc4" / "multilingual"
    folder.mkdir(parents=True)
    for name, texts in (("c4-es.tfrecord-00000-of-02048.json.gz", train),
                        ("c4-es-validation.tfrecord-00000-of-00016.json.gz", val)):
        with gzip.open(folder / name, "wt", encoding="utf-8") as f:
            f.writelines(json.dumps({"text": t, "timestamp": "", "url": ""}) + "\n" for t in texts)
    return str(tmp_path / "mc4")


def _sample_texts(unit) -> list[str]:
    """The documents of a unit's token shards, decoded (independently of how the study wrote them)."""
    from trainer.data.token_shards import TokenSplit
    from trainer.data.tokenizer import load_tokenizer

    tok = load_tokenizer(os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(unit.folder))), "shared",
                                      "tokenizer"))
    manifest = json.load(open(os.path.join(unit.shards_dir, "manifest.json")))
    split = TokenSplit(os.path.join(unit.shards_dir, "train"), np.dtype(manifest["dtype"]))
    return [tok.decode(d[:-1].tolist()) for d in split.documents()]


def test_eval_set_is_held_out_of_every_arm_by_content(tmp_path):
    from trainer.study.runner import check_study, prepare_shared, write_samples

    data = micro(tmp_path, corpus={"data_dir": _mc4_corpus(tmp_path), "labels": None},
                 eval={"split": "validation"}, downstream=[],
                 arms=[{"name": "none", "sampling_method": "none"},
                       {"name": "random", "sampling_method": "random", "sampling_factor": 0.5},
                       {"name": "matched", "sampling_method": "random", "match": "random", "match_by": "tokens"},
                       {"name": "gaussian", "sampling_method": "gaussian", "match": "random"}],
                 seeds={"count": 2})
    cfg = load_study_config(write_config(tmp_path, data))
    p = check_study(cfg)
    eval_hashes = {content_hash(t) for t in p.evals.texts}
    tok, eval_file, index = prepare_shared(p, lambda s: None)
    assert index.held_out == 12 and len(index) == 300
    write_samples(p, p.units, index, tok)
    with open(eval_file, encoding="utf-8") as f:
        assert [json.loads(line)["text"] for line in f] == p.evals.texts  # one eval file for every arm
    kept, texts = {}, {}
    for unit in p.units:
        texts[unit.name] = _sample_texts(unit)
        assert texts[unit.name] and not eval_hashes & {content_hash(t) for t in texts[unit.name]}
        kept[unit.name] = json.load(open(os.path.join(unit.folder, "unit.json")))["sample"]
        assert kept[unit.name]["documents"] == len(texts[unit.name])
    assert kept["none/seed0"]["documents"] == 300
    for k in (0, 1):  # the matched arm reaches the tokens of its target with the fewest documents
        assert kept[f"matched/seed{k}"]["tokens"] >= kept[f"random/seed{k}"]["tokens"]
        assert kept[f"gaussian/seed{k}"]["documents"] == kept[f"random/seed{k}"]["documents"]  # matched exactly
    assert texts["random/seed0"] != texts["gaussian/seed0"]
    assert kept["random/seed0"]["sampling_seed"] != kept["random/seed1"]["sampling_seed"]

    def interrupted(payload):
        raise KeyboardInterrupt

    from trainer.study.runner import run_study

    with pytest.raises(StoppedBySignal, match="rerun the same command") as e:
        run_study(cfg, unit_fn=interrupted, progress=lambda s: None)
    assert e.value.exit_status == 130 and "\n" not in str(e.value)


def test_eval_fraction_by_content_keeps_duplicates_together(tmp_path):
    from trainer.study.runner import check_study, prepare_shared

    docs = [f"texto {i} " * 5 for i in range(200)]
    path = tmp_path / "c.jsonl"
    path.write_text("".join(json.dumps({"text": t, "kind": "x"}) + "\n" for t in docs + [d + "  " for d in docs[:50]]))
    cfg = load_study_config(write_config(tmp_path, micro(tmp_path, corpus={"data_dir": None, "files": [str(path)],
                                                                           "labels": "kind"},
                                                         eval={"split": None, "fraction": 0.25}, downstream=[])))
    p = check_study(cfg)
    _tok, _eval, index = prepare_shared(p, lambda s: None)
    assert 20 < len(p.evals) < 100 and len(index) == 250 - index.held_out
    eval_texts = set(p.evals.texts)  # every copy of an eval document is held out, the others all indexed
    assert index.held_out == len(p.evals) + sum(d in eval_texts for d in docs[:50])
    assert len({content_hash(t) for t in p.evals.texts}) == len(p.evals)  # distinct contents


def test_corpus_index_is_the_same_for_any_number_of_workers(tmp_path):
    """Every file of the bundled sample tokenised and scored by 1 and by 2 processes: the same arrays."""
    from trainer.data.tokenizer import train_tokenizer
    from trainer.study.corpus import load_eval
    from trainer.study.index import build_index

    data = micro(tmp_path)
    data["corpus"] = {"data_dir": "SAMPLE_DATA_DIR", "labels": "SAMPLE_DATA_DIR/kinds.tsv.gz"}
    cfg = load_study_config(write_config(tmp_path, data))
    evals = load_eval(cfg)
    tok = str(tmp_path / "tok")
    train_tokenizer(evals.texts, tok, 600, 2, model_max_length=34)
    one = build_index(cfg, evals, tok, str(tmp_path / "one"), workers=1)
    two = build_index(cfg, evals, tok, str(tmp_path / "two"), workers=2)
    assert len(one.shards) == 4 and len(one) + one.held_out == one.read == 3600
    for name in ("offsets", "keys", "tokens", "labels"):
        assert np.array_equal(getattr(one, name), getattr(two, name)), name
    assert list(one.scores) == list(two.scores) and len(one.scores) == 1
    assert np.array_equal(*[next(iter(i.scores.values())) for i in (one, two)])
    for i in range(4):
        a, b = (open(os.path.join(x.folder, "train", f"{i:05d}.ds"), "rb").read() for x in (one, two))
        assert a == b and len(a) > 0
    lost = os.path.join(two.folder, "train", "00001.ds")  # a lost token file is indexed again on a rerun
    os.remove(lost)
    again = build_index(cfg, evals, tok, two.folder, workers=1)
    assert open(lost, "rb").read() == open(os.path.join(one.folder, "train", "00001.ds"), "rb").read()
    assert np.array_equal(again.keys, one.keys)


BAD = [
    ({"arms": [{"name": "a", "sampling_method": "gaussianx"}]}, "sampling_method"),
    ({"arms": [{"name": "a", "sampling_method": "gaussian", "perplexity_mode": "fancy"}]}, "perplexity_mode"),
    ({"arms": [{"name": "a", "sampling_method": "random"}, {"name": "a", "sampling_method": "none"}]}, "unique"),
    ({"arms": [{"name": "a", "sampling_method": "random", "match": "b"},
               {"name": "b", "sampling_method": "random", "match": "a"}]},
     "cycle"),
    ({"budget_tokens": 0}, "budget_tokens"),
    ({"downstream": [{"name": "kind", "min_examples": 5000}]}, "at least 5000"),
    ({"arms": [{"name": "a", "sampling_method": "gaussian", "match": "a"}]}, "match"),
    ({"arms": [{"name": "a", "sampling_method": "gaussian"}, {"name": "b", "sampling_method": "none", "match": "a"}]},
     "method 'none'"),
    ({"runner": {"index_workers": 0}}, "runner.index_workers"),
    ({"arms": [{"name": "a", "sampling_method": "random", "trainer_set": ["model.hidden_size=64"]}]},
     "arms.a.trainer_set[0]: 'model.hidden_size' is not a key an arm may set"),
    ({"arms": [{"name": "a", "sampling_method": "random", "trainer_set": ["training.mlm_probability=1.5"]}]},
     "arms.a.trainer_set: training.mlm_probability must be a rate in (0, 1)"),
    ({"eval": {**MICRO["eval"], "average_last": 5}}, "eval.average_last: checkpoint.average_last must be 0 (off) or"),
    ({"arms": [{"name": "a", "sampling_method": "random", "max_copies": 3}]},
     "arms.a.max_copies: the study's arms keep or drop each indexed document; upsampling"),
]


@pytest.mark.parametrize("change,needle", BAD, ids=[b[1] for b in BAD])
def test_bad_input_is_one_line_before_training(tmp_path, capsys, change, needle):
    from trainer.cli import main

    path = write_config(tmp_path, micro(tmp_path, **change))
    assert main(["study", path]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and needle in err[0], err
    assert not os.path.exists(tmp_path / "out" / "units")


def test_foreign_and_other_config_folders_are_refused(tmp_path, capsys):
    from trainer.cli import main
    from trainer.study.units import claim_folder

    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("mine")
    path = write_config(tmp_path, micro(tmp_path))
    assert main(["study", path]) == 2
    assert "not made by `trainer study`" in capsys.readouterr().err
    os.remove(tmp_path / "out" / "notes.txt")
    claim_folder(load_study_config(path))
    other = write_config(tmp_path, micro(tmp_path, budget_tokens=5120), "other.yaml")
    assert main(["study", other]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "another config (first difference: budget_tokens)" in err[0]


# --- the micro study end to end, then a resume -----------------------------------------------------------

@pytest.fixture(scope="module")
def micro_study(tmp_path_factory):
    from trainer.study import run_study

    tmp = tmp_path_factory.mktemp("micro")
    path = write_config(tmp, micro(tmp))
    lines: list[str] = []
    report = run_study(path, progress=lines.append)
    return path, tmp / "out", report, lines


def test_micro_study_end_to_end(micro_study):
    _path, out, report, lines = micro_study
    assert report["units_done"] == report["units_total"] == 2
    arms = report["arms"]
    assert arms["random"]["documents"]["mean"] == arms["gaussian"]["documents"]["mean"]  # matched exactly
    assert arms["random"]["factors"][0] is not None and 0 < arms["random"]["factors"][0] < 1
    assert set(arms["gaussian"]["composition"]) >= {"prose", "spam"}
    for m in ("mlm.all.loss", "mlm.clean.loss", "mlm.junk.accuracy", "kind.accuracy", "kind.macro_f1"):
        assert np.isfinite(arms["gaussian"]["metrics"][m]["mean"])
    assert "mlm.all.loss" in arms["gaussian"]["vs_baseline"]
    for name in ("report.md", "report.json", "eval_loss_curves.png", "final_metrics.png"):
        assert (out / name).stat().st_size > 0
    assert "| `random` | random (matched to `gaussian`)" in (out / "report.md").read_text()
    unit = json.loads((out / "units" / "gaussian" / "seed0" / "result.json").read_text())
    assert unit["steps"] == 10 and [c["step"] for c in unit["curve"]] == [5, 10]
    assert any(line.startswith("[2/2] random/seed0 done") for line in lines)
    # the masks of the eval set follow eval.mask_seed, not the training seed: the same masked tokens in every unit
    other = json.loads((out / "units" / "random" / "seed0" / "result.json").read_text())
    assert {k: v["masked_tokens"] for k, v in unit["mlm"].items()} == \
        {k: v["masked_tokens"] for k, v in other["mlm"].items()}
    # the per-example scores: each packed eval sequence's sums, adding up to the subset's metric; paired arms
    for subset, m in unit["mlm"].items():
        rows = np.asarray(m["examples"]["rows"])
        assert rows[:, 1].sum() == m["masked_tokens"]
        assert m["examples"]["key"] == other["mlm"][subset]["examples"]["key"]
        assert rows[:, 0].sum() / rows[:, 1].sum() == pytest.approx(m["loss"], rel=1e-5)
    # one seed per arm: no sd ("n/a"), Welch n/a; the Multi-Bootstrap resamples the (shared) eval examples
    text = (out / "report.md").read_text()
    assert "± n/a" in text and "± 0.0000" not in text
    assert "Multi-Bootstrap" in text and "1000 resamples (seed 0)" in text
    for m in ("mlm.all.loss", "kind.accuracy"):
        b = arms["gaussian"]["bootstrap_vs_baseline"][m]
        assert b["examples"] and b["paired"] and b["samples"] == 1000
        assert b["difference"] == pytest.approx(arms["gaussian"]["vs_baseline"][m]["difference"], abs=1e-6)
        assert b["ci_low"] <= b["difference"] <= b["ci_high"] and 0 <= b["p_better"] <= 1


def test_rerun_runs_only_missing_units_with_the_same_results(micro_study):
    import shutil

    from trainer.study import run_study

    path, out, report, _ = micro_study
    kept = out / "units" / "gaussian" / "seed0" / "result.json"
    before = kept.stat().st_mtime_ns
    lines: list[str] = []
    assert run_study(path, progress=lines.append)["units_done"] == 2
    assert "0 to run" in lines[0] and kept.stat().st_mtime_ns == before
    redo = out / "units" / "random" / "seed0"
    old = json.loads((redo / "result.json").read_text())
    shutil.rmtree(redo)
    lines.clear()
    again = run_study(path, progress=lines.append)
    assert "1 done, 1 to run" in lines[0] and kept.stat().st_mtime_ns == before
    new = json.loads((redo / "result.json").read_text())
    assert new["mlm"] == old["mlm"] and new["downstream"]["kind"]["metrics"] == old["downstream"]["kind"]["metrics"]
    means = lambda r: {m: v["mean"] for m, v in r["arms"]["random"]["metrics"].items()}  # noqa: E731
    assert means(again) == means(report)


# --- Ray engine ------------------------------------------------------------------------------------------

@pytest.mark.ray
def test_ray_engine_trains_a_unit_as_the_local_engine(micro_study, tmp_path):
    """A unit of the micro study trained again as a Ray task (``run_ray``, what ``--engine ray`` runs): the same
    sample and metrics as the local engine's."""
    pytest.importorskip("ray")
    import ray

    from trainer.study.runner import Progress, check_study, prepare_shared, run_ray, unit_payload, write_samples

    path, out, _report, _ = micro_study
    cfg = load_study_config(path)
    cfg.output_dir = str(tmp_path / "ray")
    p = check_study(cfg)
    tok, eval_file, index = prepare_shared(p, lambda s: None)
    unit = next(u for u in p.units if u.arm == "random")
    write_samples(p, [unit], index, tok)
    lines: list[str] = []
    try:
        payload = {**unit_payload(p, unit, tok, eval_file), "xla_cache": str(out / "shared" / "xla-cache")}
        got = run_ray([(unit, payload)], Progress(1, 0, lines.append), cfg)  # compiled steps reused
    finally:
        ray.shutdown()
    assert lines[0].startswith("[1/1] random/seed0 done")
    local = json.loads((out / "units" / "random" / "seed0" / "result.json").read_text())
    remote = got[unit.name]
    assert remote == json.loads(open(unit.result_path).read())
    assert remote["sample"] == local["sample"] and remote["steps"] == local["steps"]
    for subset, m in local["mlm"].items():
        assert remote["mlm"][subset]["masked_tokens"] == m["masked_tokens"]
        assert remote["mlm"][subset]["loss"] == pytest.approx(m["loss"], rel=1e-6)


def test_sample_kinds_sidecar_matches_the_sample():
    import mc4_sampling

    path = os.path.join(mc4_sampling.SAMPLE_DATA_DIR, "kinds.tsv.gz")
    with gzip.open(path, "rt") as f:
        rows = [line.rstrip("\n").split("\t") for line in f][1:]
    assert len(rows) == 4000
    val = [r[3] for r in rows if r[0] == "validation"]
    assert len(val) == 400 and val.count("prose") == 202 and val.count("english") == 28  # the sample's README
    name = "c4-es-validation.tfrecord-00000-of-00016.json.gz"
    with gzip.open(os.path.join(mc4_sampling.SAMPLE_DATA_DIR, "multilingual", name), "rt") as f:
        texts = [json.loads(line)["text"] for line in f]
    english = [t for t, k in zip(texts, val) if k == "english"]
    assert all(" the " in t for t in english)  # English prose is where the sidecar says


def test_study_tiny_config_is_valid():
    cfg = load_study_config("study-tiny")
    assert [a.name for a in cfg.arms] == ["none", "gaussian", "random", "stepwise"] and cfg.seeds.count == 3
    with pytest.raises(DataError):
        from trainer.study.corpus import training_shards

        cfg.corpus.data_dir = "/nonexistent"
        training_shards(cfg)


def test_trainer_eval_files_masks_follow_eval_seed_not_training_seed(micro_study):
    from trainer.config_loading import load_config
    from trainer.data.batches import BatchStream
    from trainer.data.tokenizer import TokenizerFns, load_tokenizer
    from trainer.evaluation import build_eval_set
    from trainer.masking import masking_rule
    from trainer.steps import run_keys

    _path, out, _report, _ = micro_study
    shared = out / "shared"

    def eval_set(seed, eval_seed):
        cfg = load_config("tiny-cpu", [f"data.eval_files=[{json.dumps(str(shared / 'eval.jsonl'))}]",
                                       f"data.tokenizer={json.dumps(str(shared / 'tokenizer'))}",
                                       f"training.seed={seed}", f"training.eval_seed={eval_seed}"])
        # only the eval set is built, as the Trainer does (no data stream, no compilation of the model)
        tok = TokenizerFns(load_tokenizer(cfg.data.tokenizer))
        stream = BatchStream(cfg.data, tok, 8, seed)  # packs the eval documents; never opened
        return build_eval_set(cfg, stream, tok.pad_id, masking_rule(cfg, tok), run_keys(seed))[0]

    a, b, c = eval_set(1, 7), eval_set(2, 7), eval_set(2, "null")
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[0], c[0])
    assert int(a[2].sum()) > 0


def test_bertin_size_config_prepares_with_the_same_command(tmp_path):
    """``study-bertin`` as shipped (RoBERTa-base, its arms, matching, 50 M cap, three BERTIN presets), pointed
    at the bundled sample (a small mirror in the same layout): every check passes and the index and each unit's
    sample are built (no training)."""
    from trainer.study.runner import check_study, prepare_shared, write_samples

    cfg = load_study_config("study-bertin", ["corpus.data_dir=SAMPLE_DATA_DIR", "corpus.max_documents=1200",
                                             f"output_dir={tmp_path / 'bertin'}", "tokenizer.vocab_size=600"])
    assert cfg.runner.index_workers == 64 and [a.name for a in cfg.arms] == ["gaussian", "random", "stepwise"]
    p = check_study(cfg)
    assert p.max_steps == 250_000 and len(p.units) == 9
    tok, _eval, index = prepare_shared(p, lambda s: None)
    first = [u for u in p.units if u.index == 0]
    write_samples(p, first, index, tok)
    sizes = {u.arm: json.load(open(os.path.join(u.folder, "unit.json")))["sample"]["documents"] for u in first}
    assert sizes["random"] == sizes["gaussian"] > 0 and sizes["stepwise"] > 0
    assert all(len(_sample_texts(u)) == sizes[u.arm] for u in first)


def test_a_damaged_corpus_file_is_one_line_naming_it(tmp_path, capsys):
    from trainer.cli import main

    bad = tmp_path / "c.jsonl"
    bad.write_text(json.dumps({"text": "hola mundo", "kind": "x"}) + "\n{not json\n")
    data = micro(tmp_path, corpus={"data_dir": None, "files": [str(bad)], "labels": "kind"},
                 eval={"split": None, "fraction": 0.5}, downstream=[])
    assert main(["study", write_config(tmp_path, data)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"line 2 of {bad} is not a JSON object" in err[0], err
    gz = tmp_path / "m" / "multilingual"
    gz.mkdir(parents=True)
    (gz / "c4-es.tfrecord-00000-of-02048.json.gz").write_bytes(b"\x1f\x8b\x08\x00broken")
    data = micro(tmp_path, corpus={"data_dir": str(tmp_path / "m"), "labels": None}, eval={"split": None},
                 downstream=[])
    assert main(["study", write_config(tmp_path, data)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot read" in err[0] and "download it again" in err[0], err


def test_a_fineweb2_folder_is_a_study_corpus(tmp_path, fineweb2_folder):
    """corpus.files may list Parquet files (a FineWeb-2 folder's data/<lang>/train/*.parquet): read by the corpus
    sources' Parquet reader, ids <file>/<row>, labels from a column, the eval set by content hash."""
    from trainer.study.corpus import load_eval, read_shard, training_shards

    files = sorted(str(p) for p in (fineweb2_folder / "data" / "spa_Latn" / "train").glob("*.parquet"))[:2]
    cfg = load_study_config(write_config(tmp_path, micro(tmp_path, corpus={"data_dir": None, "files": files,
                                                                           "labels": "dump"},
                                                         eval={"split": None, "fraction": 0.1}, downstream=[])))
    docs = read_shard(cfg, training_shards(cfg)[1], None)
    assert len(docs) == 900 and docs.ids[:2] == ["000_00001.parquet/0", "000_00001.parquet/1"]
    assert set(docs.labels) == {"CC-MAIN-2020-05"}
    assert 100 < len(load_eval(cfg)) < 260
