"""Calibration: fitting math, calibration files, the `calibrate` command, end to end on the sample."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import mc4_sampling
from mc4_sampling import Mc4Sampling
from mc4_sampling.calibration import (
    MIN_DOCUMENTS,
    UnreachableTargetError,
    build_calibration,
    clean_perplexities,
    draw_subset,
    expected_keep_rate,
    fit_gaussian,
    fit_methods,
    fit_random,
    fit_stepwise,
    load_calibration,
    quantiles,
    reservoir_sample,
    resolve_target,
    save_calibration,
    solve_factor,
)
from mc4_sampling.cli import build_parser, main
from mc4_sampling.errors import ConfigError
from mc4_sampling.plan import SamplingPlan
from mc4_sampling.shards import shard_refs_for
from mc4_sampling.weightings import gaussian_keep_probability, stepwise_keep_probability

SAMPLE = mc4_sampling.SAMPLE_DATA_DIR


@pytest.fixture(scope="module")
def lognormal():
    """Synthetic perplexities shaped like BERTIN's (median about 6.6e5)."""
    rng = np.random.default_rng(7)
    return np.exp(rng.normal(np.log(662247.5), 0.45, 20_000))


def _rate(factor, weights):
    """The expected keep rate computed independently of the library."""
    return float(np.mean(np.minimum(1.0, factor * np.asarray(weights))))


# --- fitting math -----------------------------------------------------------------------------


@pytest.mark.parametrize("target", [1e-4, 0.01, 0.12, 0.5, 0.9, 0.999])
def test_stepwise_factor_hits_target(lognormal, target):
    b = quantiles(lognormal)["boundaries"]
    fit = fit_stepwise(lognormal, b, target)
    w = stepwise_keep_probability(lognormal, 1.0, b)
    assert _rate(fit.factor, w) == pytest.approx(target, rel=1e-9)
    assert fit.expected_rate == pytest.approx(target, rel=1e-9)
    # the smallest such factor: a hair less misses the target
    assert _rate(fit.factor * (1 - 1e-6), w) < target


@pytest.mark.parametrize("target", [1e-4, 0.01, 0.12, 0.5, 0.9, 0.999])
def test_gaussian_factor_hits_target(lognormal, target):
    b = quantiles(lognormal)["boundaries"]
    fit = fit_gaussian(lognormal, b, target, width=4.5)
    assert fit.width == 4.5 and fit.fitted == ("factor",)
    w = gaussian_keep_probability(lognormal, 1.0, 4.5, b[1])
    assert _rate(fit.factor, w) == pytest.approx(target, rel=1e-9)
    assert expected_keep_rate(lognormal, "gaussian", fit.factor, b, 4.5) == pytest.approx(target, rel=1e-9)


def test_gaussian_factor_above_one_is_flagged(lognormal):
    b = quantiles(lognormal)["boundaries"]
    fit = fit_gaussian(lognormal, b, 0.999)
    assert fit.factor > 1
    lo, hi = fit.extra["saturated_interval"]
    assert lo < b[1] < hi
    assert "always kept" in fit.notes[0]
    # inside the interval p >= 1, just outside p < 1
    p = gaussian_keep_probability(np.array([hi * 0.999, hi * 1.001]), fit.factor, 4.5, b[1])
    assert p[0] >= 1 > p[1]


@pytest.mark.parametrize("target", [0.01, 0.12, 0.5, 0.95])
def test_gaussian_width_fit_is_the_narrowest_bell(lognormal, target):
    b = quantiles(lognormal)["boundaries"]
    fit = fit_gaussian(lognormal, b, target, fit_width=True)
    assert fit.factor == 1.0 and fit.fitted == ("width",)
    w = gaussian_keep_probability(lognormal, 1.0, fit.width, b[1])
    assert _rate(1.0, w) == pytest.approx(target, rel=1e-8)
    narrower = gaussian_keep_probability(lognormal, 1.0, fit.width * (1 - 1e-4), b[1])
    assert _rate(1.0, narrower) < target


def test_gaussian_width_fit_with_held_factor(lognormal):
    b = quantiles(lognormal)["boundaries"]
    fit = fit_gaussian(lognormal, b, 0.3, fit_width=True, factor=0.78)
    assert fit.factor == 0.78
    assert _rate(0.78, gaussian_keep_probability(lognormal, 1.0, fit.width, b[1])) == pytest.approx(0.3, rel=1e-8)
    with pytest.raises(UnreachableTargetError, match=r"highest reachable rate: 0\.78"):
        fit_gaussian(lognormal, b, 0.8, fit_width=True, factor=0.78)


def test_random_factor_is_the_rate():
    assert fit_random(0.12).factor == 0.12
    assert fit_random(1.0).expected_rate == 1.0


def test_solve_factor_exact_with_saturation():
    w = np.array([1.0, 0.5, 0.25, 0.125])
    # f = 2: min(1, [2, 1, .5, .25]) -> mean 0.6875
    assert solve_factor(w, 0.6875) == pytest.approx(2.0)
    assert solve_factor(w, 0.1171875) == pytest.approx(0.25)  # nothing saturated
    assert solve_factor(w, 1.0) == pytest.approx(8.0)
    with pytest.raises(ConfigError, match="above the highest reachable rate 0.75"):
        solve_factor(np.array([1.0, 0.5, 0.2, 0.0]), 0.8)


def test_stepwise_reports_saturated_quartiles(lognormal):
    b = quantiles(lognormal)["boundaries"]
    fit = fit_stepwise(lognormal, b, 0.9)
    per_q = fit.extra["keep_probability_per_quartile"]
    assert sorted(fit.extra["saturated_quartiles"]) == sorted(
        lab for lab, p in zip(("x <= Q1", "Q1 < x < Q2", "Q2 <= x < Q3", "x >= Q3"), per_q) if p >= 1
    )
    assert fit.extra["saturated_quartiles"] and "saturated" in fit.notes[0]


def test_unreachable_targets(lognormal):
    b = quantiles(lognormal)["boundaries"]
    with pytest.raises(UnreachableTargetError, match="every quartile saturates at probability 1"):
        fit_stepwise(lognormal, b, 1.0)
    with pytest.raises(UnreachableTargetError, match="no effect"):
        fit_gaussian(lognormal, b, 1.0)
    with pytest.raises(UnreachableTargetError, match="however wide"):
        fit_gaussian(lognormal, b, 1.0, fit_width=True)
    # weights that underflow to 0: a perplexity 1e4 times the median with a narrow bell
    x = np.concatenate([lognormal[:1000], np.full(100, 1e10)])
    with pytest.raises(UnreachableTargetError, match=r"underflows to 0.*highest reachable rate: 0\.909"):
        fit_gaussian(x, quantiles(x)["boundaries"], 0.95, width=0.5)
    # fit_methods stops at the unreachable one and names it
    with pytest.raises(UnreachableTargetError, match="^stepwise"):
        fit_methods(lognormal, 1.0)


# --- targets and other bad input ---------------------------------------------------------------


def test_resolve_target_from_docs():
    assert resolve_target(target_docs=50e6, total_docs=416e6) == pytest.approx(50 / 416)
    assert resolve_target(target_rate=1) == 1.0
    assert resolve_target(target_docs=5, total_docs=5) == 1.0


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(target_rate=0), r"target_rate=0 is out of range.*\(0, 1\]"),
        (dict(target_rate=-0.1), r"target_rate=-0.1 is out of range"),
        (dict(target_rate=1.5), r"target_rate=1.5 is out of range.*\(0, 1\]"),
        (dict(target_rate=float("nan")), "target_rate=nan must be a finite number"),
        (dict(target_rate="abc"), "target_rate='abc' is not a number"),
        (dict(target_docs=10, total_docs=5), r"target_docs=10 is out of range: it must be <= total_docs=5"),
        (dict(target_docs=0, total_docs=5), r"target_docs=0 is out of range: it must be > 0"),
        (dict(target_docs=1, total_docs=0), r"total_docs=0 is out of range"),
        (dict(target_docs=10), "total_docs is missing"),
        (dict(total_docs=10), "target_docs is missing"),
        (dict(target_rate=0.1, target_docs=1, total_docs=10), "not both"),
        (dict(), "no target"),
    ],
)
def test_bad_targets(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        resolve_target(**kwargs)


def test_too_few_documents():
    with pytest.raises(ConfigError, match=f"too few documents.*19 scored.*at least {MIN_DOCUMENTS}"):
        clean_perplexities(np.arange(1, 20, dtype=float))
    # non-finite perplexities do not count
    with pytest.raises(ConfigError, match="too few documents"):
        build_calibration([np.nan] * 5 + list(range(1, 16)), 0.1, model_id="m", mode="raw")
    with pytest.raises(ConfigError, match="quartiles .* are not distinct"):
        quantiles([100.0] * 30 + [200.0])


# --- calibration files -------------------------------------------------------------------------


def test_calibration_file_round_trip(lognormal, tmp_path):
    cal = build_calibration(lognormal, 0.12, model_id="es.arpa.bin#abc", mode="raw", model_spec="/x/es.arpa.bin",
                            language="es", seed=3, fit_width=True)
    path = save_calibration(cal, tmp_path / "sub" / "calibration.json")
    raw = json.loads(path.read_text())
    assert raw["format_version"] == 1
    assert raw["model"] == {"model_id": "es.arpa.bin#abc", "mode": "raw", "spec": "/x/es.arpa.bin"}
    assert raw["documents_scored"] == 20_000 and raw["seed"] == 3
    assert len(raw["deciles"]) == 9 and len(raw["percentiles"]) == 99
    assert raw["boundaries"] == [raw["percentiles"][24], raw["percentiles"][49], raw["percentiles"][74]]
    loaded = load_calibration(path)
    assert loaded.boundaries == cal.boundaries and loaded.methods == json.loads(json.dumps(cal.methods))
    assert loaded.target_rate == 0.12 and loaded.path == str(path)
    assert loaded.parameters("gaussian")["factor"] == 1.0
    for method, params in loaded.methods.items():
        assert expected_keep_rate(lognormal, method, params["factor"], loaded.boundaries,
                                  params.get("width", 4.5)) == pytest.approx(0.12, rel=1e-7)
    loaded.check_model("es.arpa.bin#abc", "raw")
    with pytest.raises(ConfigError, match="made with perplexity model 'es.arpa.bin#abc'.*'other#1'.*"
                       "the model it was made with .*perplexity_model= /x/es.arpa.bin. or run"):
        loaded.check_model("other#1", "raw")
    with pytest.raises(ConfigError, match="made in perplexity mode 'raw'.*'ccnet'"):
        loaded.check_model("es.arpa.bin#abc", "ccnet")


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: "{not json", "not JSON"),
        (lambda d: {**d, "format_version": 99}, "format_version 99 is not supported"),
        (lambda d: {**d, "format": "x"}, "the field format"),
        (lambda d: {**d, "boundaries": [3, 2, 1]}, "three increasing positive numbers"),
        (lambda d: {**d, "boundaries": [1, 2]}, "three increasing positive numbers"),
        (lambda d: {**d, "model": {"model_id": "m", "mode": "bad"}}, "mode 'raw' or 'ccnet'"),
        (lambda d: {**d, "methods": {"stepwise": {"factor": -1}}}, "methods.stepwise.factor must be a positive number"),
        (lambda d: {**d, "methods": {"gaussian": {"factor": 1}}}, "methods.gaussian.width"),
        (lambda d: {**d, "methods": {"magic": {"factor": 1}}}, "methods.magic is not a calibrated method"),
    ],
)
def test_bad_calibration_files(lognormal, tmp_path, edit, message):
    cal = build_calibration(lognormal, 0.12, model_id="m", mode="raw")
    d = edit(cal.to_dict())
    path = tmp_path / "c.json"
    path.write_text(d if isinstance(d, str) else json.dumps(d))
    with pytest.raises(ConfigError, match=message) as e:
        load_calibration(path)
    assert str(path) in str(e.value)


def test_missing_calibration_file(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_calibration(tmp_path / "nope.json")


def test_builder_refuses_a_calibration_of_another_model_or_mode(lognormal, tmp_path):
    embedded = mc4_sampling.load_perplexity_model(None, "es")
    for model_id, mode, message in [("other.bin#0", embedded.mode, "made with perplexity model"),
                                    (embedded.model_id, "raw", "made in perplexity mode")]:
        calibration = build_calibration(lognormal, 0.1, model_id=model_id, mode=mode)
        path = save_calibration(calibration, tmp_path / f"{mode}.json")
        config = Mc4Sampling(config_name="es", sampling_method="gaussian", data_dir=SAMPLE,
                             calibration=str(path)).config
        with pytest.raises(ConfigError, match=message):
            SamplingPlan.resolve(config, "es")


# --- subset selection ---------------------------------------------------------------------------


def test_reservoir_sample_is_uniform():
    rng = np.random.default_rng(0)
    counts = np.zeros(20)
    for _ in range(4000):
        sample, seen = reservoir_sample(range(20), 5, rng)
        assert seen == 20 and len(set(sample)) == 5
        counts[sample] += 1
    expected = 4000 * 5 / 20
    assert np.all(np.abs(counts - expected) < 5 * math.sqrt(expected))  # no position favoured


def test_subset_spans_random_shards_and_follows_the_seed():
    config = Mc4Sampling(config_name="es", data_dir=SAMPLE).config
    a = draw_subset(config, "es", "train", 300, seed=1, shards_to_read=3)
    again = draw_subset(config, "es", "train", 300, seed=1, shards_to_read=3)
    b = draw_subset(config, "es", "train", 300, seed=2, shards_to_read=3)
    assert len(a.shards) == 3 and a.documents_read == 2700 and len(a.texts) == 300
    assert a.texts == again.texts and a.shards == again.shards
    assert a.texts != b.texts
    from mc4_sampling.reader import iter_records

    refs = {r.index: r.path for r in shard_refs_for(config, "train")}
    by_shard = {i: {rec["text"] for _, rec in iter_records(refs[i])} for i in a.shards}
    hits = [sum(t in by_shard[i] for t in a.texts) for i in a.shards]
    assert all(h > 50 for h in hits), hits  # drawn from every picked shard, not just the first
    first = [rec["text"] for _, rec in iter_records(refs[a.shards[0]])][:300]
    assert a.texts != first


# --- the command ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, message",
    [
        (["--target-rate", "1.5"], r"target_rate=1.5 is out of range.*\(0, 1\]"),
        (["--target-rate", "0"], "target_rate=0.0 is out of range"),
        (["--target-docs", "50e6", "--total-docs", "4e6"], "target_docs=50000000.0 is out of range"),
        (["--target-docs", "50e6"], "total_docs is missing"),
        ([], "no target"),
        (["--target-rate", "0.1", "--docs", "5"], "--docs 5 is out of range: at least 20"),
        (["--target-rate", "0.1", "--lang", "es", "ca"], "one language at a time"),
        (["--target-rate", "0.1", "--width", "-1"], "--width -1.0 is out of range"),
        (["--target-rate", "1", "--docs", "200", "--no-plots"],
         "stepwise: target keep rate 1 cannot be reached: .*every quartile saturates"),
    ],
)
def test_calibrate_command_bad_input(tmp_path, capsys, args, message):
    rc = main(["calibrate", "--data-dir", SAMPLE, "-o", str(tmp_path / "out"), *args])
    assert rc == 2
    err = capsys.readouterr().err
    assert "mc4-sampling calibrate: error:" in err
    import re

    assert re.search(message, err), err
    assert not (tmp_path / "out" / "calibration.json").exists()


def test_calibrate_command_too_few_documents(tmp_path, capsys):
    # the validation split of the sample has 400 documents; read 15 of them only
    rc = main(["calibrate", "--data-dir", SAMPLE, "--split", "validation", "--target-rate", "0.2",
               "--max-docs-per-shard", "15", "-o", str(tmp_path)])
    assert rc == 2
    assert "too few documents to estimate quartiles: 15 found" in capsys.readouterr().err


def test_calibrate_help_documents_every_option(capsys):
    with pytest.raises(SystemExit):
        main(["calibrate", "--help"])
    text = capsys.readouterr().out
    sub = build_parser()._subparsers._group_actions[0].choices["calibrate"]
    for action in sub._actions:
        for flag in action.option_strings:
            assert flag in text
        if action.option_strings and action.dest != "help":
            assert action.help, f"calibrate {action.option_strings} has no help"


# --- end to end on the bundled sample ----------------------------------------------------------

TARGET = 0.3


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory):
    out = tmp_path_factory.mktemp("calibration")
    rc = main(["calibrate", "--data-dir", SAMPLE, "--docs", "5000", "--target-rate", str(TARGET),
               "--seed", "11", "-o", str(out)])
    assert rc == 0
    return out


def test_calibrate_writes_file_and_pictures(calibrated, capsys):
    cal = load_calibration(calibrated / "calibration.json")
    model = mc4_sampling.load_perplexity_model(None, "es")
    cal.check_model(model.model_id, model.mode)
    assert cal.documents_scored == 3600 and cal.split == "train" and cal.seed == 11
    assert sorted(cal.extra["subset"]["shards_read"]) == [0, 1, 2, 3]
    # all documents of the sample were scored: its quartiles are those the embedded model ships
    assert cal.boundaries == pytest.approx(model.default_boundaries, rel=1e-6)
    assert set(cal.methods) == {"random", "stepwise", "gaussian"}
    assert all(m["expected_rate"] == pytest.approx(TARGET, rel=1e-9) for m in cal.methods.values())
    from matplotlib.image import imread

    for name in ("perplexity_histogram.png", "expected_distributions.png"):
        img = imread(calibrated / name)
        assert img.shape[0] > 400 and img.shape[1] > 800
        assert img[..., :3].std() > 0.05  # not blank


@pytest.mark.parametrize("method", ["random", "stepwise", "gaussian"])
def test_sampling_with_the_calibration_meets_the_target(calibrated, tmp_path, method):
    """Observed keep rate within a 99.9 % Wilson bound of the target; kept distribution as expected."""
    from scipy import stats

    from mc4_sampling.report import wilson_interval

    report_dir = tmp_path / "report"
    rc = main(["sample", "--data-dir", SAMPLE, "--method", method, "--calibration",
               str(calibrated / "calibration.json"), "--seed", "5", "--report", str(report_dir),
               "--return-perplexity", "-o", str(tmp_path / "kept.jsonl")])
    assert rc == 0
    report = json.loads((report_dir / "report.json").read_text())
    kept = sum(1 for _ in open(tmp_path / "kept.jsonl", encoding="utf-8"))
    assert report["documents_kept"] == kept and report["documents_read"] == 3600
    lo, hi = wilson_interval(kept, 3600, 0.999)
    assert lo <= TARGET <= hi, (kept / 3600, lo, hi)
    assert report["target_check"]["target_within_interval"]
    assert report["keep_rate_check"]["observed_within_interval"]
    threshold = stats.kstwo.isf(0.001, kept)  # about 0.06 for 1000 kept documents
    assert report["distribution_check"]["ks_statistic"] < threshold
    assert (report_dir / "observed_vs_expected.png").stat().st_size > 20_000
    if method != "random":
        # the statistic can fail: the same kept documents against the distribution of all documents
        # (summarised by its percentiles 1..99) are far apart
        cal = load_calibration(calibrated / "calibration.json")
        kept_x = [json.loads(line)["perplexity"] for line in open(tmp_path / "kept.jsonl", encoding="utf-8")]
        assert stats.ks_2samp(kept_x, cal.percentiles).statistic > threshold


def test_calibration_on_a_subset_generalises_to_the_split(tmp_path):
    """Calibrate on 1 200 documents of 2 random shards, sample all 3 600: the rate still holds.

    The bound adds the subset's estimation error (sampling without replacement from the 3 600)
    to the binomial error of the run: sd^2 = R(1-R)/n_run + R(1-R)/n_cal * (1 - n_cal/N).
    """
    from mc4_sampling.calibration import run_calibration

    config = Mc4Sampling(config_name="es", data_dir=SAMPLE).config
    cal, x = run_calibration(config, "es", 0.2, docs=1200, shards_to_read=2, seed=4,
                             output=tmp_path, plots=False)
    assert cal.documents_scored == 1200 and len(cal.extra["subset"]["shards_read"]) == 2
    n_run = 3600
    sd = math.sqrt(0.2 * 0.8 / n_run + 0.2 * 0.8 / 1200 * (1 - 1200 / n_run))
    for method in ("stepwise", "gaussian"):
        out = tmp_path / f"{method}.jsonl"
        assert main(["sample", "--data-dir", SAMPLE, "--method", method, "--calibration",
                     str(tmp_path / "calibration.json"), "-o", str(out)]) == 0
        kept = sum(1 for _ in open(out, encoding="utf-8"))
        assert abs(kept / n_run - 0.2) < 3.29 * sd, (method, kept / n_run)
