"""Bad input: a clear error naming the value, file or line, raised before any work."""

import json
import shutil

import pytest
from conftest import write_shard
from datasets import load_dataset

from mc4_sampling import BadRecordError, ConfigError, DataNotFoundError, Mc4Sampling, ModelNotFoundError
from mc4_sampling.plan import SamplingPlan


def load(data_dir, **kw):
    return load_dataset("mc4-sampling", kw.pop("name", "es"), streaming=True, split="train", data_dir=str(data_dir),
                        **kw)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(name="xx"), "language='xx' is not an mC4 language"),
        (dict(languages=["es", "klingon"]), "language='klingon'"),
        (dict(sampling_method="gauss"),
         "sampling_method='gauss' is not valid; choose one of none, random, stepwise, gaussian"),
        (dict(sampling_factor=0), "sampling_factor=0 is not valid; it must be a finite number > 0"),
        (dict(sampling_factor=float("inf")), "sampling_factor=inf is not valid; it must be a finite number > 0"),
        (dict(sampling_factor=float("nan")), "sampling_factor=nan is not valid"),
        (dict(sampling_factor="0.5"), "sampling_factor='0.5' is not valid"),
        (dict(width=float("inf")), "width=inf is not valid"),
        (dict(boundaries=[1, 2, float("inf")]), "three increasing positive finite"),
        (dict(boundaries=[1, 2, float("nan")]), "three increasing positive finite"),
        (dict(http_retries=-3), "http_retries=-3 is not valid; it must be an integer >= 0"),
        (dict(http_retries="5"), "http_retries='5' is not valid; it must be an integer >= 0"),
        (dict(http_retries=2.0), "http_retries=2.0 is not valid"),
        (dict(http_retries=True), "http_retries=True is not valid"),
        (dict(return_perplexity="no"), "return_perplexity='no' is not valid; it must be True or False"),
        (dict(return_perplexity=1), "return_perplexity=1 is not valid"),
        (dict(seed=True), "seed=True is not valid; it must be an integer >= 0"),
        (dict(seed="7"), "seed='7' is not valid"),
        (dict(shards=[True]), "shards=\\[True\\] is not valid"),
        (dict(max_record_bytes=0), "max_record_bytes=0 is not valid; it must be an integer >= 1"),
        (dict(max_record_bytes="1M"), "max_record_bytes='1M' is not valid"),
        (dict(http_timeout=0), "http_timeout=0 is not valid; it must be a finite number > 0"),
        (dict(http_timeout=float("inf")), "http_timeout=inf is not valid"),
        (dict(name="es+es"), "languages=\\['es', 'es'\\] names 'es' more than once"),
        (dict(languages=["es", "ca", "es"]), "names 'es' more than once"),
        (dict(languages=[5]), "languages=\\[5\\] is not valid"),
        (dict(sampling_method=["gaussian"]), "sampling_method=\\['gaussian'\\] is not valid"),
        (dict(perplexity_mode=5), "perplexity_mode=5 is not valid; choose one of"),
        (dict(on_bad_record=0), "on_bad_record=0 is not valid; choose one of raise, skip"),
        (dict(calibration=5), "calibration=5 is not valid; it must be a string"),
        (dict(sampling_factor=-1.5), "sampling_factor=-1.5"),
        (dict(validation_sampling_factor=-1), "validation_sampling_factor=-1"),
        (dict(width=0), "width=0 is not valid"),
        (dict(boundaries=[1, 2]), "boundaries=\\[1, 2\\] is not valid; it must be three increasing positive"),
        (dict(boundaries=[3, 2, 1]), "three increasing"),
        (dict(boundaries=[-1, 2, 3]), "three increasing positive"),
        (dict(boundaries=[1, "b", 3]), "three increasing"),
        (dict(seed=-3), "seed=-3"),
        (dict(on_bad_record="ignore"), "on_bad_record='ignore' is not valid; choose one of raise, skip"),
        (dict(perplexity_mode="fast"), "perplexity_mode='fast'"),
        (dict(shards=[4096]), "shards=\\[4096\\] is not valid; give shard indices in \\[0, 2048\\)"),
        (dict(factor=0.5), "unknown option\\(s\\) factor for mc4-sampling; valid options: base_url"),
        (dict(base_url="ftp://x"), "base_url='ftp://x'"),
        (dict(calibration="c.json", width=2.0), "replaces width"),
    ],
)
def test_invalid_options_name_the_option_and_range(mini_mc4, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        load(mini_mc4.parent, **kwargs)


def test_fallback_builder_validates_too(mini_mc4):
    with pytest.raises(ConfigError, match="sampling_factor=0"):
        Mc4Sampling(config_name="es", sampling_factor=0, data_dir=str(mini_mc4.parent))


def test_missing_model_file_is_reported_before_reading(mini_mc4, tmp_path):
    with pytest.raises(ModelNotFoundError, match="missing.arpa.bin"):
        load(mini_mc4.parent, sampling_method="gaussian", perplexity_model=str(tmp_path / "missing.arpa.bin"))


def test_model_without_boundaries_points_to_calibration(mini_mc4, tiny_arpa):
    with pytest.raises(ConfigError, match="calibrate"):
        load(mini_mc4.parent, sampling_method="stepwise", perplexity_model=tiny_arpa)
    with pytest.raises(ConfigError, match="needs sampling_factor"):
        load(mini_mc4.parent, sampling_method="stepwise", perplexity_model=tiny_arpa, boundaries=(10, 20, 30))
    # the embedded model's stepwise factor belongs to its own quartiles, not to other boundaries
    with pytest.raises(ConfigError, match="needs sampling_factor"):
        load(mini_mc4.parent, sampling_method="stepwise", boundaries=(100, 200, 300))
    cfg = Mc4Sampling(config_name="es", sampling_method="gaussian", boundaries=(100, 200, 300)).config
    assert SamplingPlan.resolve(cfg, "es").train.factor == 0.78


def test_embedded_model_is_spanish_only(mini_mc4):
    with pytest.raises(ConfigError, match="embedded perplexity model is Spanish"):
        load(mini_mc4.parent, name="ca", sampling_method="gaussian")


def test_missing_data(tmp_path):
    with pytest.raises(DataNotFoundError, match="is not a folder"):
        load(tmp_path / "nowhere")
    with pytest.raises(DataNotFoundError, match="c4-es.tfrecord-00000-of-02048.json.gz"):
        load(tmp_path)  # an empty folder


@pytest.fixture
def bad_dir(tmp_path, mini_mc4):
    root = tmp_path / "multilingual"
    root.mkdir()
    shutil.copy(mini_mc4 / "c4-es.tfrecord-00000-of-02048.json.gz", root)
    return root


def test_line_that_is_not_json_names_file_and_line(bad_dir):
    write_shard(bad_dir / "c4-es.tfrecord-00001-of-02048.json.gz", 5, lines=["{not json"])
    ds = load(bad_dir.parent, sampling_method="none")
    with pytest.raises(BadRecordError, match=r"c4-es.tfrecord-00001-of-02048.json.gz:6: not a JSON object"):
        list(ds)


def test_record_without_text_names_file_and_line(bad_dir):
    write_shard(bad_dir / "c4-es.tfrecord-00001-of-02048.json.gz", 2, lines=[json.dumps({"url": "x"}), "[1, 2]"])
    with pytest.raises(BadRecordError, match=r"00001-of-02048.json.gz:3: record has no string field 'text'"):
        list(load(bad_dir.parent, sampling_method="none"))


def test_corrupt_gzip_names_the_file(bad_dir):
    good = (bad_dir / "c4-es.tfrecord-00000-of-02048.json.gz").read_bytes()
    (bad_dir / "c4-es.tfrecord-00001-of-02048.json.gz").write_bytes(good[: len(good) // 2])
    (bad_dir / "c4-es.tfrecord-00002-of-02048.json.gz").write_bytes(b"plain text, not gzip\n")
    with pytest.raises(BadRecordError, match="00001-of-02048.json.gz: corrupt or truncated gzip"):
        list(load(bad_dir.parent, sampling_method="none", shards=[0, 1]))
    with pytest.raises(BadRecordError, match="00002-of-02048.json.gz: corrupt or truncated gzip"):
        list(load(bad_dir.parent, sampling_method="none", shards=[2]))


def test_skip_policy_skips_and_counts_without_losing_good_records(bad_dir):
    from mc4_sampling.sampler import DocumentSampler, SamplingStats
    from mc4_sampling.shards import shard_refs_for
    from mc4_sampling.weightings import SamplingRule

    write_shard(bad_dir / "c4-es.tfrecord-00001-of-02048.json.gz", 10,
                lines=["oops", json.dumps({"text": 5}), json.dumps({"text": "último"})])
    ds = load(bad_dir.parent, sampling_method="none", on_bad_record="skip")
    assert len(list(ds)) == 400 + 11
    config = Mc4Sampling(config_name="es", data_dir=str(bad_dir.parent), on_bad_record="skip").config
    stats = SamplingStats()
    sampler = DocumentSampler(SamplingRule("none"), seed=0, on_bad_record="skip")
    for shard in shard_refs_for(config, "train"):
        list(sampler.sample(shard, stats))
    assert (stats.read, stats.bad_records) == (411, 2)


def test_max_record_bytes_and_http_timeout_reach_the_reader(mini_mc4):
    everything = list(load(mini_mc4.parent, sampling_method="none"))
    longest = max(len(d["text"].encode()) for d in everything)
    short = list(load(mini_mc4.parent, sampling_method="none", on_bad_record="skip", max_record_bytes=longest // 2))
    assert 0 < len(short) < len(everything)
    assert {d["url"] for d in short} < {d["url"] for d in everything}
    with pytest.raises(BadRecordError, match=f"longer than max_record_bytes={longest // 2}"):
        list(load(mini_mc4.parent, sampling_method="none", max_record_bytes=longest // 2))
    config = Mc4Sampling(config_name="es", http_timeout=7.5, max_record_bytes=1000).config
    sampler = SamplingPlan.resolve(config, "es").document_sampler("train")
    assert (sampler.timeout, sampler.max_record_bytes) == (7.5, 1000)
