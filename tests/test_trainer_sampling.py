"""``data.sampling``: the trainer's source perplexity-sampled by ``sample_dataset``, the hold-out taken after."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import datasets
import pytest
from trainer_helpers import make_tokenizer, tiny_overrides

import mc4_sampling
from mc4_sampling import sample_dataset
from trainer.config_loading import load_config
from trainer.data.batches import BatchStream
from trainer.data.stream import load_stream
from trainer.errors import ConfigError, DataError

SHARD = Path(mc4_sampling.SAMPLE_DATA_DIR) / "multilingual" / "c4-es.tfrecord-00002-of-02048.json.gz"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[list[str], str]:
    """Two JSON-lines files of 250 documents of the bundled sample (text, url, id), and a tokenizer."""
    folder = tmp_path_factory.mktemp("corpus")
    with gzip.open(SHARD, "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f][:250]
    paths = [str(folder / f"part-{i}.jsonl") for i in range(2)]
    for i, path in enumerate(paths):
        with open(path, "w", encoding="utf-8") as f:
            for k, r in enumerate(rows[i::2]):
                f.write(json.dumps({"text": r["text"], "url": r["url"], "id": f"doc-{i}-{k}"}) + "\n")
    return paths, make_tokenizer(str(folder / "tok"), paths, vocab_size=300)


def _first_of_each(texts: list[str]) -> list[str]:
    """The first text of each content (normalised text) in order."""
    from trainer.data.holdout import content_key

    seen, out = set(), []
    for t in texts:
        if content_key(t) not in seen:
            seen.add(content_key(t))
            out.append(t)
    return out


def config(corpus, tmp_path, **sets):
    paths, tok = corpus
    return load_config("tiny-cpu", tiny_overrides(paths, tok, str(tmp_path / "out"), **sets))


SAMPLING = {"sampling_method": "gaussian", "sampling_factor": 0.8, "id_column": "id", "return_perplexity": True}


def test_the_stream_is_the_sample_and_the_hold_out_is_taken_from_it(corpus, tmp_path):
    cfg = config(corpus, tmp_path, **{"data.sampling": SAMPLING})
    assert cfg.data.sampling.sampling_method == "gaussian" and cfg.data.sampling.id_column == "id"
    got = list(load_stream(cfg.data))
    raw = datasets.load_dataset("json", data_files=corpus[0], split="train", streaming=True)
    want = list(sample_dataset(raw, sampling_method="gaussian", sampling_factor=0.8, id_column="id",
                               return_perplexity=True))
    assert got == want and 20 < len(got) < 250
    assert all("perplexity" in r for r in got)
    halves = [list(load_stream(cfg.data, rank, 2)) for rank in range(2)]
    assert sorted(r["id"] for h in halves for r in h) == sorted(r["id"] for r in got)
    from transformers import AutoTokenizer

    from trainer.data.holdout import is_candidate

    stream = BatchStream(cfg.data, AutoTokenizer.from_pretrained(corpus[1]), batch_size=8, seed=3)
    d = cfg.data  # the eval set: the sample's first num_eval_samples distinct candidates (trainer.data.holdout)
    candidates = [r["text"] for r in got if is_candidate(r["text"], d.holdout_seed, d.eval_fraction)]
    distinct = _first_of_each(candidates)
    assert len(distinct) < len(candidates)  # the sample repeats a candidate's text: it is evaluated once
    assert stream.eval_texts() == distinct[: d.num_eval_samples]
    next(stream.batches())  # training batches come from the rest of the sample


def test_sampling_is_off_by_default_and_set_key_by_key(corpus, tmp_path):
    assert config(corpus, tmp_path).data.sampling.sampling_method == "none"
    assert len(list(load_stream(config(corpus, tmp_path).data))) == 250
    cfg = config(corpus, tmp_path, **{"data.sampling.sampling_method": "random", "data.sampling.sampling_factor": 0.25})
    assert (cfg.data.sampling.sampling_method, cfg.data.sampling.sampling_factor) == ("random", 0.25)
    assert 30 < len(list(load_stream(cfg.data))) < 100


@pytest.mark.parametrize("sets, match", [
    ({"data.sampling": {"sampling_method": "bell"}}, r"data.sampling.sampling_method.*gaussian"),
    ({"data.sampling": {"sampling_method": "gaussian", "sampling_factor": -1}},
     r"data.sampling.sampling_factor=-1.0 is not valid; it must be a finite number > 0"),
    ({"data.sampling": {"sampling_method": "gaussian", "boundaries": [3, 2, 1]}}, r"data.sampling.boundaries"),
    ({"data.sampling": {"sampling_method": "gaussian", "calibration": "c.json", "width": 2}},
     r"data.sampling.calibration='c.json' replaces data.sampling.width"),
    ({"data.sampling": {"sampling_factor": 0.5}},
     r"data.sampling.sampling_factor is set but data.sampling.sampling_method is 'none'"),
    ({"data.sampling": {"sampling_method": "gaussian", "metod": 1}}, r"unknown config key 'data.sampling.metod'"),
    ({"data.sampling": {"sampling_method": "gaussian", "perplexity_mode": "wiki"}}, r"ccnet_document"),
    ({"data.sampling": {"upsample": "sqrt"}},
     r"data.sampling.upsample is set but data.sampling.sampling_method is 'none', which the trainer reads unsampled"),
    ({"data.sampling": {"sampling_method": "random", "max_copies": 0}},
     r"data.sampling.max_copies=0 is not valid; it must be an integer >= 1"),
])
def test_bad_sampling_sections_are_refused_naming_the_key(corpus, tmp_path, sets, match):
    with pytest.raises(ConfigError, match=match):
        config(corpus, tmp_path, **sets)


def test_sampling_in_data_kwargs_is_refused_and_sampler_errors_are_data_errors(corpus, tmp_path):
    with pytest.raises(ConfigError, match=r"data.kwargs.sampling_method is a sampling option: write it as "
                                          r"data.sampling.sampling_method"):
        load_config("tiny-cpu", ["data.kwargs={sampling_method: gaussian, data_dir: SAMPLE_DATA_DIR}"])
    cfg = config(corpus, tmp_path, **{"data.sampling": {"sampling_method": "gaussian", "id_column": "uid"}})
    with pytest.raises(DataError, match=r"data.sampling: id_column='uid'.*columns: id, text, url"):
        load_stream(cfg.data)


@pytest.mark.slow
def test_pretraining_on_the_gaussian_sample_is_one_config(corpus, tmp_path):
    """``python -m trainer`` on tiny-cpu with ``data.sampling``: trains, and holds out the sample's first
    eval candidates by content."""
    from trainer_helpers import run_trainer

    from trainer.data.holdout import is_candidate
    from trainer.data.stream import document_hash

    paths, tok = corpus
    out = tmp_path / "run"
    args = ["--config", "tiny-cpu"]
    sampling = {"sampling_method": "gaussian", "id_column": "id"}
    for s in tiny_overrides(paths, tok, str(out), **{"data.sampling": sampling,
                                                      "training.max_steps": 3, "training.eval_every_steps": 3,
                                                      "checkpoint.every_steps": 3, "logging.audit": True}):
        args += ["--set", s]
    r = run_trainer(args)
    assert r.returncode == 0, r.stderr[-3000:]
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert any(m.get("step") == 3 for m in metrics)
    raw = datasets.load_dataset("json", data_files=paths, split="train", streaming=True)
    sampled = [r["text"] for r in sample_dataset(raw, sampling_method="gaussian", id_column="id")]
    held_out = (out / "audit" / "eval-rank0.txt").read_text().split()
    candidates = [t for t in sampled if is_candidate(t, 0, 0.5)]  # tiny_overrides: data.eval_fraction 0.5
    distinct = _first_of_each(candidates)
    assert held_out == [document_hash(t) for t in distinct[:20]]


# --- the sampler's option set, by the sampler's names ---------------------------------------------------


@pytest.fixture(scope="module")
def scored_corpus(corpus, tmp_path_factory):
    """The corpus with a FineWeb-Edu-like ``score`` column (0-5)."""
    folder = tmp_path_factory.mktemp("scored")
    path = folder / "scored.jsonl"
    rows = [json.loads(line) for p in corpus[0] for line in open(p, encoding="utf-8")]
    with open(path, "w", encoding="utf-8") as f:
        for i, r in enumerate(rows):
            f.write(json.dumps({**r, "score": (i * 37 % 50) / 10}) + "\n")
    return [str(path)], corpus[1]


def test_data_sampling_takes_the_samplers_options_by_name(scored_corpus, tmp_path):
    import dataclasses

    from mc4_sampling.options import SamplingOptions
    from trainer.config import SamplingConfig

    # one declaration: every sampler option (but the validation split's factor) is a data.sampling key, same default
    keys = {f.name: f.default for f in dataclasses.fields(SamplingConfig)}
    for f in dataclasses.fields(SamplingOptions):
        assert f.name == "validation_sampling_factor" or keys[f.name] == f.default, f.name
    sampling = {"sampling_method": "threshold", "score_column": "score", "weighting_options": {"low": 3.0},
                "id_column": "id"}
    cfg = config(scored_corpus, tmp_path, **{"data.sampling": sampling})
    assert cfg.data.sampling.sampling_method == "threshold"
    got = list(load_stream(cfg.data))
    raw = datasets.load_dataset("json", data_files=scored_corpus[0], split="train", streaming=True)
    assert got == list(sample_dataset(raw, **sampling)) and got
    assert all(r["score"] >= 3.0 for r in got) and len(got) == sum(r["score"] >= 3 for r in raw)
    # key by key (--set data.sampling.KEY=VALUE), by the sampler's names
    cfg = config(scored_corpus, tmp_path, **{"data.sampling.sampling_method": "random",
                                             "data.sampling.sampling_factor": 0.25})
    assert (cfg.data.sampling.sampling_method, cfg.data.sampling.sampling_factor) == ("random", 0.25)


def test_former_names_are_refused_naming_the_new_key(scored_corpus, tmp_path):
    import yaml

    for sets in ({"data.sampling": {"method": "random", "factor": 0.5}}, {"data.sampling.method": "random"}):
        with pytest.raises(ConfigError, match=r"config key 'data.sampling.method' is now "
                                              r"'data.sampling.sampling_method'"):
            config(scored_corpus, tmp_path, **sets)
    with pytest.raises(ConfigError, match=r"'data.sampling.factor' is now 'data.sampling.sampling_factor'"):
        config(scored_corpus, tmp_path, **{"data.sampling": {"sampling_method": "random", "factor": 0.5}})
    # a saved config reads back as it was
    cfg = config(scored_corpus, tmp_path, **{"data.sampling": {"sampling_method": "random", "sampling_factor": 0.5}})
    saved = tmp_path / "config.yaml"
    saved.write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    assert load_config(str(saved)).data.sampling == cfg.data.sampling


@pytest.mark.parametrize("sampling, match", [
    ({"sampling_method": "bell"}, r"^data.sampling.sampling_method='bell' is not valid; choose one of none, random, "),
    ({"sampling_method": "threshold", "score_column": "score", "weighting_options": {"lo": 1}},
     r"^data.sampling.weighting_options.lo is not a parameter of sampling_method='threshold'"),
    ({"sampling_method": "gaussian", "sampling_factor": 0},
     r"^data.sampling.sampling_factor=0.0 is not valid; it must be a finite number > 0"),
    ({"sampling_method": "threshold", "calibration": "c.json", "weighting_options": {"low": 1}},
     r"^data.sampling.calibration='c.json' replaces data.sampling.weighting_options"),
    ({"sampling_method": "threshold", "scorer": "nope"}, r"^data.sampling.scorer='nope' is not valid; choose one of"),
    ({"score_column": "score"}, r"data.sampling.score_column is set but data.sampling.sampling_method is 'none'"),
])
def test_the_samplers_validation_names_the_config_keys(scored_corpus, tmp_path, sampling, match):
    with pytest.raises(ConfigError, match=match):
        config(scored_corpus, tmp_path, **{"data.sampling": sampling})


def test_data_sampling_source_reads_a_fineweb2_folder(corpus, tmp_path, fineweb2_folder):
    """data.sampling.source goes to the mc4-sampling builder: a FineWeb-2-shaped folder sampled by id (the
    builder's own stream, the same documents), and the trainer's first batch made from it."""
    cfg = load_config("tiny-cpu", tiny_overrides(corpus[0], corpus[1], str(tmp_path / "run"), **{
        "data.path": "mc4-sampling", "data.name": "spa_Latn", "data.data_files": None,
        "data.data_dir": str(fineweb2_folder), "data.num_eval_samples": 5, "data.eval_fraction": 0.05,
        "data.sampling": {"source": "fineweb2", "sampling_method": "random", "sampling_factor": 0.5}}))
    got = [r["id"] for r in load_stream(cfg.data)]
    want = datasets.load_dataset("mc4-sampling", "spa_Latn", source="fineweb2", data_dir=str(fineweb2_folder),
                                 split="train", streaming=True, sampling_method="random", sampling_factor=0.5)
    assert got == [r["id"] for r in want] and 1600 < len(got) < 2000
    from transformers import AutoTokenizer

    stream = BatchStream(cfg.data, AutoTokenizer.from_pretrained(corpus[1]), batch_size=8, seed=3)
    assert len(stream.eval_texts()) == 5
    next(stream.batches())
    with pytest.raises(ConfigError, match=r"data.sampling.source='fineweb3' is not valid; choose one of mc4"):
        load_config("tiny-cpu", tiny_overrides(corpus[0], corpus[1], str(tmp_path / "run"), **{
            "data.path": "mc4-sampling", "data.sampling": {"source": "fineweb3"}}))
    with pytest.raises(ConfigError, match=r"data.sampling.source='fineweb2' is read by the mc4-sampling builder"):
        load_config("tiny-cpu", tiny_overrides(corpus[0], corpus[1], str(tmp_path / "run"), **{
            "data.sampling": {"source": "fineweb2"}}))
