"""SamplingPlan: which value each weighting parameter takes, from plain options (no ``datasets``)."""

from types import SimpleNamespace

import numpy as np
import pytest

from mc4_sampling.calibration import build_calibration, save_calibration
from mc4_sampling.errors import ConfigError
from mc4_sampling.kenlm_models import load_perplexity_model
from mc4_sampling.plan import SamplingPlan
from mc4_sampling.weightings import DEFAULT_WIDTH, WEIGHTINGS, SamplingRule


def options(**kw):
    """The options a plan reads, with the builder's defaults."""
    base = dict(sampling_method="none", sampling_factor=None, validation_sampling_factor=None, width=None,
                boundaries=None, perplexity_model=None, perplexity_mode=None, calibration=None, seed=2021,
                return_perplexity=False, on_bad_record="raise", http_retries=5)
    return SimpleNamespace(**{**base, **kw})


@pytest.fixture(scope="module")
def embedded():
    return load_perplexity_model()


@pytest.fixture(scope="module")
def calibration_file(embedded, tmp_path_factory):
    x = np.exp(np.random.default_rng(0).normal(np.log(400.0), 0.5, 2000))
    cal = build_calibration(x, 0.25, model_id=embedded.model_id, mode=embedded.mode, fit_width=True)
    return str(save_calibration(cal, tmp_path_factory.mktemp("cal") / "calibration.json")), cal


def test_none_keeps_everything_and_loads_no_model():
    plan = SamplingPlan.resolve(options(perplexity_model="/nowhere/es.arpa.bin"), "es")
    assert plan.train == plan.validation == SamplingRule("none")
    assert not plan.needs_model("train") and not plan.needs_model("validation")
    assert plan.document_sampler("train").model is None


def test_model_defaults_fill_unset_parameters(embedded):
    stepwise = SamplingPlan.resolve(options(sampling_method="stepwise"), "es")
    assert stepwise.train == SamplingRule("stepwise", embedded.default_factors["stepwise"],
                                          embedded.default_boundaries, embedded.default_width)
    assert stepwise.model is embedded and stepwise.needs_model("train")
    # the validation split is not sampled unless it has its own factor, which keeps the rest
    assert stepwise.validation == SamplingRule("none") and not stepwise.needs_model("validation")
    both = SamplingPlan.resolve(options(sampling_method="gaussian", validation_sampling_factor=0.3), "es")
    assert both.validation == SamplingRule("gaussian", 0.3, both.train.boundaries, both.train.width)


def test_calibration_file_beats_model_defaults(embedded, calibration_file):
    path, cal = calibration_file
    for method in ("stepwise", "gaussian"):
        plan = SamplingPlan.resolve(options(sampling_method=method, calibration=path), "es")
        params = cal.methods[method]
        assert plan.train.boundaries == cal.boundaries != embedded.default_boundaries
        assert plan.train.factor == params["factor"]
        assert plan.calibration.path == path
    assert plan.train.width == cal.methods["gaussian"]["width"] != embedded.default_width


def test_options_beat_the_calibration_file(calibration_file):
    path, _ = calibration_file
    plan = SamplingPlan.resolve(options(sampling_method="gaussian", calibration=path, boundaries=(1.0, 2.0, 3.0),
                                        sampling_factor=0.9, width=2.0), "es")
    assert plan.train == SamplingRule("gaussian", 0.9, (1.0, 2.0, 3.0), 2.0)


def test_bertin_factors_and_width_when_nothing_else_gives_them(tiny_arpa):
    no_defaults = dict(perplexity_model=tiny_arpa, boundaries=(10.0, 20.0, 30.0))
    gaussian = SamplingPlan.resolve(options(sampling_method="gaussian", **no_defaults), "es")
    assert gaussian.train == SamplingRule("gaussian", WEIGHTINGS["gaussian"].default_factor, (10.0, 20.0, 30.0),
                                          DEFAULT_WIDTH)
    random = SamplingPlan.resolve(options(sampling_method="random"), "es")
    assert random.train.factor == WEIGHTINGS["random"].default_factor and not random.needs_model("train")
    # stepwise's scale depends on the boundaries: no factor is borrowed for boundaries of another origin
    with pytest.raises(ConfigError, match="needs sampling_factor"):
        SamplingPlan.resolve(options(sampling_method="stepwise", **no_defaults), "es")
    with pytest.raises(ConfigError, match="needs boundaries .*calibrate"):
        SamplingPlan.resolve(options(sampling_method="gaussian", perplexity_model=tiny_arpa), "es")


def test_document_sampler_scores_only_when_asked(embedded):
    plan = SamplingPlan.resolve(options(sampling_method="random"), "es")
    assert plan.document_sampler("train").model is None
    assert plan.document_sampler("train", return_perplexity=True).model is embedded
    assert plan.document_sampler("validation", score_all=True).model is embedded
    scored = SamplingPlan.resolve(options(sampling_method="random", return_perplexity=True), "es")
    assert scored.needs_model("validation") and scored.document_sampler("validation").return_perplexity


def test_the_embedded_model_is_spanish_only():
    with pytest.raises(ConfigError, match="embedded perplexity model is Spanish"):
        SamplingPlan.resolve(options(sampling_method="gaussian"), "ca")
    plan = SamplingPlan.resolve(options(sampling_method="random"), "ca")  # no model needed
    with pytest.raises(ConfigError, match="embedded perplexity model is Spanish"):
        plan.document_sampler("train", score_all=True)
