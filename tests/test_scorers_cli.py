"""The scorers end to end through the command line and publish: ``sample``/``calibrate`` with
``--score-column``, ``--scorer fasttext`` and ``--weighting-option``; ``sample --report`` for a
fastText score; ``publish`` with configs of several scorers (each document scored once per scorer,
``perplexity`` column for KenLM, ``score`` otherwise) and its card."""

from __future__ import annotations

import json
import os

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml
from datasets import load_dataset
from scorer_models import build_causal_lm, sample_docs, train_fasttext

import mc4_sampling
from mc4_sampling.builder import Mc4Sampling
from mc4_sampling.cli import main
from mc4_sampling.plan import SamplingPlan
from mc4_sampling.scoring import make_scorer

SAMPLE = mc4_sampling.SAMPLE_DATA_DIR


@pytest.fixture(scope="module")
def fasttext_model(tmp_path_factory):
    pytest.importorskip("fasttext")
    return train_fasttext(tmp_path_factory.mktemp("ft"))


@pytest.fixture(scope="module")
def fineweb_edu(tmp_path_factory):
    """A JSON-lines corpus with a FineWeb-Edu-like ``score`` column (0-5) and an ``id``."""
    rng = np.random.default_rng(0)
    rows = [{"text": d["text"], "id": f"doc-{i}", "score": round(float(np.clip(rng.normal(2.5, 1.0), 0, 5)), 3)}
            for i, d in enumerate(sample_docs(300))]
    path = tmp_path_factory.mktemp("fwe") / "fwe.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return str(path), rows


def read_jsonl(path):
    return [json.loads(line) for line in open(path, encoding="utf-8")]


def test_score_column_calibrate_then_sample(fineweb_edu, tmp_path, capsys):
    path, rows = fineweb_edu
    cal = tmp_path / "cal"
    assert main(["calibrate", "--dataset", path, "--score-column", "score", "--target-rate", "0.2", "--docs", "300",
                 "--methods", "threshold", "gaussian", "-o", str(cal)]) == 0
    out = capsys.readouterr().out
    assert "model: column:score (column, higher is better)" in out and "threshold factor 1  low " in out
    calibration = json.loads((cal / "calibration.json").read_text())
    low = calibration["methods"]["threshold"]["low"]
    assert (cal / "expected_distributions.png").exists()
    # the histogram is named after the score (the column), not "perplexity"
    assert sorted(os.listdir(cal)) == ["calibration.json", "expected_distributions.png", "score_histogram.png"]
    assert f"wrote {cal / 'score_histogram.png'}, " in out
    kept = tmp_path / "kept.jsonl"
    assert main(["sample", "--dataset", path, "--score-column", "score", "--id-column", "id", "--method", "threshold",
                 "--calibration", str(cal / "calibration.json"), "-o", str(kept)]) == 0
    ids = [r["id"] for r in read_jsonl(kept)]
    assert sorted(ids) == sorted(r["id"] for r in rows if r["score"] >= low)
    assert len(ids) == pytest.approx(0.2 * len(rows), abs=3)  # ties at the threshold only
    # --weighting-option: the range given by hand; kept rows keep their columns, no new one
    assert main(["sample", "--dataset", path, "--score-column", "score", "--method", "threshold",
                 "--weighting-option", "low=2", "--weighting-option", "high=3", "-o", str(kept)]) == 0
    docs = read_jsonl(kept)
    assert [d["id"] for d in docs] == [r["id"] for r in rows if 2 <= r["score"] < 3]
    assert all(set(d) == {"text", "id", "score"} for d in docs)
    capsys.readouterr()
    # mistakes: one line naming the option
    for argv, message in [
        (["--score-column", "quality", "--method", "threshold"], "score_column='quality' is not a column"),
        (["--score-column", "score", "--method", "threshold", "--weighting-option", "lo=1"],
         "weighting_options.lo is not a parameter of sampling_method='threshold'; valid keys: low, high, top, "),
        (["--score-column", "score", "--method", "stepwise", "--boundaries", "1", "2", "3", "--factor", "1"],
         "'stepwise' keeps more of the low scores, but higher scores of column 'score' are better"),
        (["--score-column", "score", "--method", "threshold", "--weighting-option", "low"],
         "--weighting-option 'low' is not valid; write KEY=VALUE"),
    ]:
        assert main(["sample", "--dataset", path, *argv, "-o", str(tmp_path / "x.jsonl")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1].startswith("mc4-sampling sample: error: ") and message in err[-1], err[-1]
    assert main(["calibrate", "--dataset", path, "--score-column", "quality", "--target-rate", "0.2", "-o",
                 str(tmp_path / "c2")]) == 2
    assert "score_column='quality' is not a column of" in capsys.readouterr().err


def test_fasttext_sample_with_report_matches_the_builder(fasttext_model, tmp_path, capsys):
    cal = tmp_path / "cal"
    scorer = ["--scorer", "fasttext", "--scorer-model", fasttext_model, "--scorer-option", "label=hq"]
    assert main(["calibrate", "--data-dir", SAMPLE, *scorer, "--target-rate", "0.1", "--docs", "600",
                 "--methods", "threshold", "pareto", "-o", str(cal)]) == 0
    assert "(fasttext, higher is better)" in capsys.readouterr().out
    assert (cal / "score_histogram.png").exists() and not (cal / "perplexity_histogram.png").exists()
    calibration = str(cal / "calibration.json")
    out, report = tmp_path / "kept.jsonl", tmp_path / "report"
    assert main(["sample", "--data-dir", SAMPLE, *scorer, "--method", "pareto", "--calibration", calibration,
                 "--return-score", "--report", str(report), "-o", str(out)]) == 0
    err = capsys.readouterr().err
    docs = read_jsonl(out)
    assert docs and all(set(d) == {"text", "timestamp", "url", "score"} for d in docs)
    assert "score of kept documents: Q1 0." in err
    same = load_dataset("mc4-sampling", "es", data_dir=SAMPLE, sampling_method="pareto", scorer="fasttext",
                        scorer_model=fasttext_model, scorer_options={"label": "hq"}, calibration=calibration,
                        return_score=True, streaming=True, split="train")
    assert [(d["url"], d["score"]) for d in docs] == [(d["url"], d["score"]) for d in same]
    rep = json.loads((report / "report.json").read_text())
    assert rep["score"] == "score" and rep["method"] == "pareto" and rep["documents_read"] == 3600
    assert rep["keep_rate_check"]["observed_within_interval"] and rep["target_check"]["target_within_interval"]
    assert rep["distribution_check"]["ks_pvalue"] > 1e-3
    assert (report / "observed_vs_expected.png").stat().st_size > 10_000


def test_publish_configs_of_several_scorers(fasttext_model, tmp_path):
    """KenLM, fastText (two weightings sharing its scores) and a causal LM's perplexity, on the
    validation split; each document scored at most once per scorer, each config with its column."""
    from mc4_sampling.publish import publish

    lm = build_causal_lm(tmp_path / "lm")
    lm_options = {"task": "causal_lm", "max_length": 64, "device": "cpu"}
    validation = [d["text"] for d in load_dataset("mc4-sampling", "es", data_dir=SAMPLE, streaming=True,
                                                   split="validation")]
    lm_median = float(np.median(make_scorer("transformers", lm, lm_options).score(validation)))
    common = dict(data_dir=SAMPLE, validation_sampling_factor=None, return_perplexity=True)

    def config(method, **options):
        return Mc4Sampling(config_name="es", sampling_method=method, **common, **options).config

    fasttext = dict(scorer="fasttext", scorer_model=fasttext_model, scorer_options={"label": "hq"})
    configs = {
        "kenlm-gaussian": config("gaussian"),
        "dclm-top": config("threshold", weighting_options={"low": 0.53}, **fasttext),
        "gpt3-pareto": config("pareto", weighting_options={"alpha": 3}, sampling_factor=0.5, **fasttext),
        "lm-bottom": config("threshold", weighting_options={"high": lm_median}, scorer="transformers",
                            scorer_model=lm, scorer_options=lm_options),
    }
    # the validation split is sampled with the train rule here, so that every config keeps a share
    for c in configs.values():
        c.validation_sampling_factor = SamplingPlan.resolve(c, "es").train.factor
    out = tmp_path / "out"
    result = publish(configs, str(out), splits=["validation"], workers=1, repo_id="someone/mc4-es-quality")
    assert result.complete
    for name, column in [("kenlm-gaussian", "perplexity"), ("dclm-top", "score"), ("gpt3-pareto", "score"),
                         ("lm-bottom", "score")]:
        table = pq.read_table(out / "data" / name / "validation-00000-of-00001.parquet")
        assert table.column_names == ["text", "timestamp", "url", column]
        assert 0 < table.num_rows < 400, name
    rows = pq.read_table(out / "data" / "dclm-top" / "validation-00000-of-00001.parquet").to_pylist()
    expected = list(load_dataset("mc4-sampling", "es", data_dir=SAMPLE, sampling_method="threshold",
                                 weighting_options={"low": 0.53}, validation_sampling_factor=1.0,
                                 return_score=True, streaming=True, split="validation", **fasttext))
    assert rows == expected and all(r["score"] >= 0.53 for r in rows)
    # scored once per scorer: fastText's 400 documents shared by its two configs
    stats = {s["name"]: s["stats"] for s in json.loads((out / ".mc4-sampling" / "logs" / "stats.json").read_text())}
    step = stats["🔻 - FILTER: score sampling"]
    total = lambda key: step[key]["total"] if isinstance(step[key], dict) else step[key]  # noqa: E731
    assert total("dclm-top/scored") == total("lm-bottom/scored") == 400 > total("gpt3-pareto/scored")
    assert total("scored") == total("kenlm-gaussian/scored") + 400 + 400
    # the card: each scorer's identity (fingerprint) and direction, each weighting's formula, the columns
    card = (out / "README.md").read_text()
    meta = yaml.safe_load(card.split("---")[1])
    features = {i["config_name"]: [f["name"] for f in i["features"]] for i in meta["dataset_info"]}
    assert features["kenlm-gaussian"][-1] == "perplexity" and features["dclm-top"][-1] == "score"
    models = {name: SamplingPlan.resolve(c, "es").model for name, c in configs.items()}
    assert models["dclm-top"].model_id.startswith("fasttext:quality.bin#")
    for name in ("kenlm-gaussian", "dclm-top", "lm-bottom"):
        assert f"`{models[name].model_id}`" in card
    assert "| scorer (configs `dclm-top`, `gpt3-pareto`) | `fasttext`: quality.bin (higher scores are better" in card
    assert "| scorer (configs `lm-bottom`) | `transformers`: lm (lower scores are better" in card
    assert "`p = factor` for `low <= x < high`, else 0; low = 0.53" in card
    assert "`p = factor * (2 - min(x, 1)) ** -alpha`; alpha = 3" in card
    assert "quality-sampling" in card and "perplexity mode (configs `kenlm-gaussian`) | `" in card
    row = next(line for line in card.splitlines() if line.startswith("| `dclm-top` | validation |"))
    quartiles = [float(v) for v in row.rstrip(" |").rsplit("|", 1)[1].split("/")]
    assert 0.53 <= quartiles[0] <= quartiles[1] <= quartiles[2] < 1  # 4 significant digits, not 0.5 / 0.5 / 0.5
    assert "| score of kept documents (Q1 / median / Q3) |" in card


def test_publish_cli_shares_weighting_options_between_methods(fasttext_model, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["publish", str(out), "--data-dir", SAMPLE, "--splits", "validation", "--workers", "1",
            "--scorer", "fasttext", "--scorer-model", fasttext_model, "--scorer-option", "label=hq",
            "--method", "threshold", "pareto", "--validation-factor", "0.9",
            "--weighting-option", "low=0.5", "--weighting-option", "alpha=3"]
    assert main(argv) == 0
    options = json.loads((out / ".mc4-sampling" / "options.json").read_text())["configs"]
    assert options["threshold"]["weighting_options"] == {"low": 0.5}
    assert options["pareto"]["weighting_options"] == {"alpha": 3}
    assert options["pareto"]["scorer"] == "fasttext" and options["pareto"]["scorer_options"] == {"label": "hq"}
    card = (out / "README.md").read_text()
    assert "| scorer | `fasttext`: quality.bin (higher scores are better; column `score`) |" in card
    assert "fasttext score sampling (threshold, pareto)" in card
    capsys.readouterr()
    assert main([*argv[:-2], "--weighting-option", "beta=3", "--overwrite"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == ("mc4-sampling publish: error: weighting_options.beta is not a parameter of sampling_method "
                   "threshold, pareto (valid keys: threshold: low, high, top, bottom, band; pareto: alpha)")


def test_score_prints_the_scores_of_the_scorer_asked_for(fasttext_model, capsys):
    texts = [d["text"][:300] for d in sample_docs(4)]
    argv = ["--scorer", "fasttext", "--scorer-model", fasttext_model, "--scorer-option", "label=hq"]
    assert main(["score", *argv, *texts]) == 0
    out, err = capsys.readouterr()
    expected = make_scorer("fasttext", fasttext_model, {"label": "hq"}).score(texts)
    lines = out.splitlines()
    assert [float(line.split("\t")[0]) for line in lines] == pytest.approx(expected, rel=1e-5)
    assert all(0 <= float(line.split("\t")[0]) <= 1 for line in lines)  # a probability, not a perplexity
    assert err.splitlines()[0].startswith("score\t")  # the scorer's name for its column
    assert main(["score", *texts[:1]]) == 0  # KenLM by default: a perplexity, named so
    out, err = capsys.readouterr()
    assert float(out.split("\t")[0]) > 1 and err.startswith("perplexity\t")
    assert main(["score", "--score-column", "score", "hola"]) == 2
    assert "--score-column" in capsys.readouterr().err
