"""The sampling options are declared once (:class:`mc4_sampling.options.SamplingOptions`): every entry
point takes exactly those names, validates them with the one check, and names a bad one as its user
wrote it (keyword, flag, YAML key)."""

from __future__ import annotations

import dataclasses
import json

import datasets
import numpy as np
import pytest

import mc4_sampling
from mc4_sampling import ConfigError as SamplerConfigError, Mc4SamplingConfig, sample_dataset
from mc4_sampling.cli import build_parser, main
from mc4_sampling.corpus import corpus_options
from mc4_sampling.options import MC4_ONLY, OPTION_NAMES, SamplingOptions, flag, option_help
from mc4_sampling.publish import manifest_of, manifest_options
from trainer.config import SamplingConfig
from trainer.config_loading import load_config
from trainer.errors import ConfigError
from trainer.study.config import ArmConfig, load_study_config

SAMPLE = mc4_sampling.SAMPLE_DATA_DIR
DEFAULTS = {f.name: f.default for f in dataclasses.fields(SamplingOptions)}


def _subparser(command: str):
    return build_parser()._subparsers._group_actions[0].choices[command]


def test_every_entry_point_takes_exactly_the_declared_names():
    # the builder, the trainer's data.sampling and the study's arms are the declaration itself
    for cls in (Mc4SamplingConfig, SamplingConfig, ArmConfig):
        assert issubclass(cls, SamplingOptions)
        own = {f.name: f.default for f in dataclasses.fields(cls)}
        assert {name: own[name] for name in OPTION_NAMES} == DEFAULTS, cls
    # sample_dataset: every name (mC4's validation factor aside), no other
    for name in OPTION_NAMES:
        if name not in MC4_ONLY:
            assert getattr(corpus_options(**{name: DEFAULTS[name]}), name) == DEFAULTS[name]
    with pytest.raises(SamplerConfigError, match=r"^factor is not a sampling option; valid: sampling_method, "):
        corpus_options(factor=0.5)
    with pytest.raises(SamplerConfigError, match="validation_sampling_factor applies to mC4's validation split"):
        corpus_options(validation_sampling_factor=0.5)
    # the command line: a flag for every name, generated from the declaration (both spellings), into the name
    sample = _subparser("sample")
    for name in OPTION_NAMES:
        spelled = "--return-score" if name == "return_score" else flag(name)
        action = sample._option_string_actions[spelled]
        assert action.dest == ("return_perplexity" if name == "return_score" else name)
        assert action.help and action.help.startswith(option_help(action.dest))
        if name != "return_score":
            assert sample._option_string_actions["--" + name.replace("_", "-")] is action
    assert flag("sampling_factor") == "--factor" and flag("seed") == "--seed"
    # publish's manifest: every option that decides the documents
    assert set(manifest_options()) >= set(OPTION_NAMES) - {"return_perplexity", "return_score"}


def test_the_builder_docstring_lists_every_option():
    for name in OPTION_NAMES:
        assert f"        {name}: " in Mc4SamplingConfig.__doc__


def test_the_manifest_is_written_from_the_fields():
    config = mc4_sampling.Mc4Sampling(config_name="es", data_dir=SAMPLE, sampling_method="random",
                                      sampling_factor=0.25).config
    values = manifest_of({"random": config}, ["train"], None)["configs"]["random"]
    assert values["sampling_method"] == "random" and values["sampling_factor"] == 0.25
    assert "return_perplexity" not in values and "scorer" not in values  # unset later options stay absent


@pytest.fixture(scope="module")
def tiny_dataset():
    return datasets.Dataset.from_list([{"text": f"documento número {i}.", "id": str(i)} for i in range(50)])


def test_sample_dataset_takes_keywords_positional_method_or_options(tiny_dataset):
    by_keywords = sample_dataset(tiny_dataset, sampling_method="random", sampling_factor=0.5, seed=3)["id"]
    assert sample_dataset(tiny_dataset, "random", sampling_factor=0.5, seed=3)["id"] == by_keywords
    options = SamplingOptions(sampling_method="random", sampling_factor=0.5, seed=3)
    assert sample_dataset(tiny_dataset, options=options)["id"] == by_keywords
    with pytest.raises(SamplerConfigError, match="not both"):
        sample_dataset(tiny_dataset, options=options, seed=4)
    with pytest.raises(SamplerConfigError, match="^metod is not a sampling option"):
        sample_dataset(tiny_dataset, metod="random")


# --- one validation, each entry point's spelling ----------------------------------------------------------


def test_a_bad_option_is_named_as_each_entry_point_spells_it(tiny_dataset, tmp_path, capsys):
    # Python keyword
    with pytest.raises(SamplerConfigError, match=r"^sampling_factor=0 is not valid; it must be a finite number > 0"):
        sample_dataset(tiny_dataset, sampling_method="random", sampling_factor=0)
    with pytest.raises(SamplerConfigError, match=r"^sampling_factor=0 is not valid"):
        mc4_sampling.keep_weights([1.0], sampling_method="random", sampling_factor=0)
    with pytest.raises(SamplerConfigError, match=r"^width=-1 is not valid"):
        load_builder(width=-1)
    # command line: the flag
    for argv, message in [
        (["--factor", "0"], "--factor 0.0 is not valid; it must be a finite number > 0"),
        (["--sampling-factor", "0"], "--factor 0.0 is not valid"),
        (["--seed", "-1"], "--seed -1 is not valid; it must be an integer >= 0"),
        (["--calibration", "c.json", "--width", "2"], "--calibration c.json replaces --width; pass one or the other"),
        (["--scorer", "fasttext", "--perplexity-mode", "raw"],
         "--perplexity-mode apply to the KenLM scorer only; with --scorer fasttext give the model as --scorer-model"),
    ]:
        assert main(["sample", "--data-dir", SAMPLE, *argv, "-o", str(tmp_path / "x.jsonl")]) == 2
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert err == f"mc4-sampling sample: error: {message}" or message in err, err
    # trainer YAML: the config key
    with pytest.raises(ConfigError, match=r"^data.sampling.sampling_factor=0.0 is not valid; it must be a finite"):
        load_config("tiny-cpu", ["data.sampling.sampling_factor=0"])
    with pytest.raises(ConfigError, match=r"^data.sampling.perplexity_mode='wiki' is not valid; choose one of"):
        load_config("tiny-cpu", ["data.sampling.perplexity_mode=wiki"])
    # study YAML: the arm's key
    with pytest.raises(ConfigError, match=r"^arms.g.sampling_factor=0.0 is not valid; it must be a finite number"):
        load_study_config("study-tiny", ["arms=[{name: g, sampling_method: gaussian, sampling_factor: 0}]"])


def load_builder(**options):
    return mc4_sampling.Mc4Sampling(config_name="es", data_dir=SAMPLE, **options).config


def test_former_names_and_untyped_sampling_are_refused_naming_the_key():
    with pytest.raises(ConfigError, match=r"data.kwargs.sampling_method is a sampling option: write it as "
                                          r"data.sampling.sampling_method"):
        load_config("tiny-cpu", ["data.kwargs={data_dir: SAMPLE_DATA_DIR, sampling_method: random}"])
    with pytest.raises(ConfigError, match=r"data.kwargs.perplexity_model is a sampling option"):
        load_config("tiny-cpu", ["data.kwargs={perplexity_model: x}"])
    with pytest.raises(ConfigError, match=r"'data.sampling.factor' is now 'data.sampling.sampling_factor'"):
        load_config("tiny-cpu", ["data.sampling.factor=0.5"])
    with pytest.raises(ConfigError, match=r"'arms\[0\].method' is now 'arms\[0\].sampling_method'"):
        load_study_config("study-tiny", ["arms=[{name: g, method: gaussian}]"])
    # the builder's draw stays the builder's: the options go to load_dataset, a corpus's keys are refused
    with pytest.raises(ConfigError, match=r"data.sampling.id_column is for a corpus"):
        load_config("tiny-cpu", ["data.sampling.id_column=id"])
    with pytest.raises(ConfigError, match=r"data.sampling.validation_sampling_factor applies to mC4"):
        load_config("tiny-cpu", ["data.path=json", "data.name=null", "data.kwargs={}",
                                 "data.sampling.validation_sampling_factor=0.5"])
    from trainer.data.stream import builder_options

    cfg = load_config("tiny-cpu", ["data.sampling.validation_sampling_factor=0.5"])
    assert builder_options(cfg.data.sampling) == {"sampling_method": "gaussian", "validation_sampling_factor": 0.5}


def test_shipped_trainer_configs_sample_through_data_sampling():
    from trainer.config_loading import shipped_configs

    for name in shipped_configs():
        if name in ("transfer-es-to-ca", "earlyberts-base"):  # placeholders to fill in; MultiBERTs' unsampled corpus
            continue
        cfg = load_config(name)
        assert cfg.data.sampling.sampling_method == "gaussian", name
        assert not set(cfg.data.kwargs) & set(OPTION_NAMES), name


# --- the study's arms: any scorer and weighting ------------------------------------------------------------


def test_a_study_arm_with_a_fasttext_scorer_is_validated_and_matched_exactly(tmp_path):
    from scorer_models import sample_docs, train_fasttext

    from mc4_sampling.draw import hashes64
    from trainer.study import sampling

    with pytest.raises(ConfigError, match=r"^arms.ft.perplexity_mode apply to the KenLM scorer only; with "
                                          r"arms.ft.scorer='fasttext'"):
        load_study_config("study-tiny", ["arms=[{name: ft, sampling_method: threshold, scorer: fasttext, "
                                         "perplexity_mode: raw}]"])
    with pytest.raises(ConfigError, match=r"^arms.ft.seed is set by the study"):
        load_study_config("study-tiny", ["arms=[{name: ft, sampling_method: random, seed: 3}]"])
    model = train_fasttext(tmp_path)
    cfg = load_study_config("study-tiny", [json.dumps(
        {"name": "ft", "sampling_method": "threshold", "scorer": "fasttext", "scorer_model": model,
         "scorer_options": {"label": "__label__hq"}, "weighting_options": {"low": 0.3}}).join(["arms=[", "]"]),
        "baseline=ft"])
    arm = cfg.arms[0]
    assert (arm.scorer, arm.weighting_options) == ("fasttext", {"low": 0.3})
    sampling.check_arm(arm, "es")
    docs = sample_docs(300)
    texts, ids = [d["text"] for d in docs], [f"train/0/{i}" for i in range(len(docs))]
    key = sampling.scorer_key(arm)
    assert key is not None and sampling.scorers([arm])[key]["scorer"] == "fasttext"
    scores = sampling.score_texts(sampling.scorers([arm])[key], texts, "es")
    own, t = sampling.thresholds(arm, scores, hashes64(ids), 7, "es")
    assert np.array_equal(sampling.keep_mask(arm, texts, ids, 7, "es"), t < own)
    n = int(np.isfinite(t).sum()) // 2
    factor = sampling.factor_keeping(t, n)
    mask = sampling.keep_mask(arm, texts, ids, 7, "es", factor=factor)
    assert int(mask.sum()) == n and np.array_equal(mask, t < factor)
    with pytest.raises(ConfigError, match=r"^arms.ft2: "):  # a missing model: one line naming the arm
        sampling.check_arm(ArmConfig(name="ft2", sampling_method="threshold", scorer="fasttext",
                                     scorer_model=str(tmp_path / "missing.bin")), "es")
