"""Sampling report: keep-rate check, KS statistic, files written."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from mc4_sampling.errors import ConfigError
from mc4_sampling.report import build_report, weighted_ks_statistic, wilson_interval, write_report
from mc4_sampling.weightings import keep_probability, max_keep_probability

BOUNDS = (4.3e5, 5.9e5, 8.4e5)


@pytest.fixture(scope="module")
def pool():
    rng = np.random.default_rng(3)
    return np.exp(rng.normal(np.log(5.9e5), 0.5, 30_000))


def _draw(x, method, factor, width=4.5, seed=0):
    p = np.minimum(1.0, keep_probability(x, method, factor, BOUNDS, width))
    return np.random.default_rng(seed).random(x.size) < p


def test_wilson_interval_known_values():
    lo, hi = wilson_interval(50, 100, 0.95)
    assert (lo, hi) == pytest.approx((0.4038, 0.5962), abs=1e-4)
    lo, hi = wilson_interval(0, 10, 0.95)
    assert lo == pytest.approx(0, abs=1e-12) and hi == pytest.approx(0.2775, abs=1e-4)


def test_weighted_ks_matches_scipy_for_integer_weights():
    rng = np.random.default_rng(1)
    x = rng.normal(size=500)
    kept = rng.random(500) < 0.3
    w = rng.integers(0, 4, 500)
    ours = weighted_ks_statistic(x, kept, w)
    theirs = stats.ks_2samp(x[kept], np.repeat(x, w)).statistic
    assert ours == pytest.approx(theirs, abs=1e-12)


@pytest.mark.parametrize("method, factor", [("gaussian", 0.5), ("stepwise", 9e4), ("random", 0.2)])
def test_report_accepts_a_faithful_run(pool, method, factor):
    kept = _draw(pool, method, factor)
    r = build_report(pool, kept, method, factor, BOUNDS, target_rate=None)
    assert r["documents_kept"] == kept.sum()
    assert r["expected_keep_rate"] == pytest.approx(
        np.minimum(1, keep_probability(pool, method, factor, BOUNDS, 4.5)).mean())
    assert r["keep_rate_check"]["observed_within_interval"]
    assert r["distribution_check"]["ks_statistic"] < stats.kstwo.isf(0.001, kept.sum())
    assert r["distribution_check"]["ks_pvalue"] > 0.001


def test_report_detects_a_wrong_weighting(pool):
    """The checks can fail: documents kept by stepwise, reported as gaussian of the same rate."""
    kept = _draw(pool, "stepwise", 9e4)
    rate = kept.mean()
    # the gaussian factor that gives the same expected rate, so only the shape differs
    from mc4_sampling.calibration import fit_gaussian

    g = fit_gaussian(pool, BOUNDS, float(np.minimum(1, keep_probability(pool, "stepwise", 9e4, BOUNDS)).mean()))
    r = build_report(pool, kept, "gaussian", g.factor, BOUNDS, g.width)
    assert r["keep_rate_check"]["observed_within_interval"]  # same rate...
    assert r["distribution_check"]["ks_statistic"] > stats.kstwo.isf(0.001, kept.sum())  # ...other shape
    assert r["distribution_check"]["ks_pvalue"] < 1e-6
    # and a wrong rate is caught by the keep-rate check
    r = build_report(pool, kept, "stepwise", 9e4 * 1.3, BOUNDS)
    assert not r["keep_rate_check"]["observed_within_interval"]
    r = build_report(pool, kept, "stepwise", 9e4, BOUNDS, target_rate=rate * 1.3)
    assert not r["target_check"]["target_within_interval"]


def test_report_with_documents_scored_only_below_the_peak_probability(pool):
    """A pipeline that scores only documents with u < max p: counts over all documents read."""
    factor = 0.6
    s = max_keep_probability("gaussian", factor, BOUNDS)
    rng = np.random.default_rng(9)
    u = rng.random(pool.size)
    scored = u < s
    p = np.minimum(1.0, keep_probability(pool, "gaussian", factor, BOUNDS, 4.5))
    kept = (u < p)[scored]
    r = build_report(pool[scored], kept, "gaussian", factor, BOUNDS, documents_read=pool.size,
                     score_probability=s)
    assert r["documents_read"] == pool.size and r["documents_scored"] == scored.sum()
    assert r["keep_rate_check"]["observed_within_interval"]
    assert r["observed_keep_rate"] == pytest.approx(p.mean(), abs=4 * np.sqrt(p.mean() / pool.size))


def test_report_bad_input(pool):
    with pytest.raises(ConfigError, match="differ in length"):
        build_report(pool, [True], "random", 0.5)
    with pytest.raises(ConfigError, match="no scored documents"):
        build_report([], [], "random", 0.5)
    with pytest.raises(ConfigError, match="below the 30000 documents scored"):
        build_report(pool, _draw(pool, "random", 0.5), "random", 0.5, documents_read=10)


def test_report_writes_json_and_png(pool, tmp_path):
    kept = _draw(pool[:5000], "gaussian", 0.7)
    report = build_report(pool[:5000], kept, "gaussian", 0.7, BOUNDS, target_rate=0.3)
    paths = write_report(report, pool[:5000], kept, tmp_path / "r")
    report = json.loads(paths["json"].read_text())
    assert report["files"] == {"png": "observed_vs_expected.png"}
    assert report["target_check"]["target_rate"] == 0.3
    from matplotlib.image import imread

    img = imread(paths["png"])
    assert img.shape[0] > 500 and img[..., :3].std() > 0.05


def test_write_report_skips_unscored_documents(tmp_path):
    x = np.array([np.nan] + list(np.linspace(100, 1000, 200)))
    kept = np.r_[False, np.arange(200) % 3 == 0]
    r = build_report(x, kept, "random", 0.33)
    assert r["documents_scored"] == 200
    write_report(r, x, kept, tmp_path)
    assert (tmp_path / "observed_vs_expected.png").exists()


@pytest.mark.parametrize("fraction, text", [(0.115833, "11.6%"), (0.999, "99.9%"), (0.9999, "99.99%"), (0.95, "95%"),
                                            (0.000123, "0.0123%"), (0.9996, "99.96%"), (1.0, "100%"), (0.0, "0%")])
def test_percentages_have_sensible_precision(fraction, text):
    from mc4_sampling.plots import percent

    assert percent(fraction) == text


def test_report_line_names_a_999_interval_as_such(tmp_path):
    from mc4_sampling.commands.sample import report_line

    path = tmp_path / "report.json"
    path.write_text(json.dumps({"keep_rate_check": {"observed_within_interval": True, "confidence": 0.999,
                                                    "z_score": 0.5}}))
    line = report_line({"json": path, "png": tmp_path / "x.png"})
    assert line.endswith("the keep rate is within its 99.9% interval (z = 0.50)"), line
