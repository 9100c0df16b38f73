"""The keep probabilities and the deterministic draws, against their formulas."""

import math

import numpy as np
import pytest
from scipy import stats

from mc4_sampling.draw import shard_key, uniform_draws
from mc4_sampling.kenlm_models import BERTIN_ES_BOUNDARIES
from mc4_sampling.weightings import (
    gaussian_keep_probability,
    keep_probability,
    max_keep_probability,
    random_keep_probability,
    stepwise_keep_probability,
)

B = BERTIN_ES_BOUNDARIES


def test_stepwise_matches_bertin_formula_in_every_quartile():
    f = 1.5e5
    b1, b2, b3 = B
    x = np.array([1.0, b1 - 1, (b1 + b2) / 2, (b2 + b3) / 2, b3 + 1, 1e9])
    expected = [f / b1, f / b1, f / (b2 - b1), f / (b3 - b2), f / (10 * b3), f / (10 * b3)]
    np.testing.assert_allclose(stepwise_keep_probability(x, f, B), expected)
    # BERTIN's card: the middle-low quartile is always kept (p ~ 1.19)
    assert stepwise_keep_probability((b1 + b2) / 2, f, B) == pytest.approx(1.19, abs=0.01)


def test_stepwise_perplexity_equal_to_a_boundary_falls_in_one_branch():
    f = 1.5e5
    b1, b2, b3 = B
    p = stepwise_keep_probability(np.array(B), f, B)
    np.testing.assert_allclose(p, [f / b1, f / (b3 - b2), f / (10 * b3)])
    assert np.isfinite(p).all()


def test_gaussian_formula_and_peak():
    m = B[1]
    x = np.array([m, 0.5 * m, 2 * m])
    p = gaussian_keep_probability(x, 0.78, 4.5, m)
    expected = [0.78 * math.exp(-(1 / 4.5) * ((v - m) / m) ** 2) for v in x]
    np.testing.assert_allclose(p, expected)
    assert p[0] == pytest.approx(0.78)
    assert keep_probability(x, "gaussian", 0.78, B, 4.5) == pytest.approx(p)


def test_random_and_none():
    x = np.array([1.0, 1e6])
    np.testing.assert_array_equal(random_keep_probability(x, 0.3), [0.3, 0.3])
    np.testing.assert_array_equal(keep_probability(x, "none", 0.3), [1.0, 1.0])


@pytest.mark.parametrize(
    "method,factor,expected",
    [("random", 0.5, 0.5), ("gaussian", 0.78, 0.78), ("gaussian", 3.0, 1.0), ("stepwise", 1.5e5, 1.0),
     ("stepwise", 1e4, 1e4 / (B[1] - B[0])), ("none", 1.0, 1.0)],
)
def test_max_keep_probability_bounds_every_perplexity(method, factor, expected):
    assert max_keep_probability(method, factor, B) == pytest.approx(expected)
    x = np.geomspace(1, 1e8, 2000)
    assert np.all(np.minimum(keep_probability(x, method, factor, B), 1) <= expected + 1e-12)


def test_uniform_draws_are_pure_and_uniform():
    key = shard_key(2021, "es", "train", 7)
    pos = np.arange(200_000)
    u = uniform_draws(key, pos)
    np.testing.assert_array_equal(u[1000:1010], uniform_draws(key, pos[1000:1010]))  # any subset, any order
    np.testing.assert_array_equal(u[[5, 3]], uniform_draws(key, [5, 3]))
    assert 0 <= u.min() and u.max() < 1
    assert stats.kstest(u, "uniform").pvalue > 1e-3
    # neighbouring positions are not correlated
    assert abs(np.corrcoef(u[:-1], u[1:])[0, 1]) < 0.01


def test_shard_keys_differ_by_every_component():
    keys = {shard_key(s, lang, split, i)
            for s in (1, 2) for lang in ("es", "ca") for split in ("train", "validation") for i in (0, 1)}
    assert len(keys) == 16
    u1 = uniform_draws(shard_key(1, "es", "train", 0), np.arange(1000))
    u2 = uniform_draws(shard_key(2, "es", "train", 0), np.arange(1000))
    assert abs(np.corrcoef(u1, u2)[0, 1]) < 0.1


def test_block_decider_bad_records_raised_or_counted_the_same_way_block_or_document():
    from mc4_sampling.sampler import BlockDecider, SamplingStats
    from mc4_sampling.weightings import SamplingRule

    rule = SamplingRule("gaussian", 0.9, B, 4.5)
    x = np.linspace(B[0] * 0.5, B[2] * 1.5, 256)
    x[[3, 100, 200]] = np.nan
    positions = np.arange(256, dtype=np.uint64)
    key = shard_key(2021, "es", "train", 0)
    with pytest.raises(ValueError, match=r"^\[3, 100, 200\]$"):  # the caller's error, given the bad documents
        BlockDecider(rule, score_all=True).decide(key, positions, lambda idx: x[idx],
                                                  lambda bad: ValueError(str(bad.tolist())))
    skip = BlockDecider(rule, on_bad_record="skip", score_all=True)
    whole, by_document = SamplingStats(), SamplingStats()
    decision = skip.decide(key, positions, lambda idx: x[idx], None, stats=whole)
    skip.count(decision, whole)
    seen = list(skip.documents(skip.decide(key, positions, lambda idx: x[idx], None, stats=by_document), by_document))
    assert whole == by_document and (whole.bad_records, whole.read, whole.scored) == (3, 253, 256)
    assert [i for i, _ in seen] == [i for i in range(256) if i not in (3, 100, 200)]
    assert whole.kept == sum(k for _, k in seen) == int(decision.keep.sum()) and not decision.keep[[3, 100, 200]].any()
