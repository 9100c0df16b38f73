"""Materialising a sampled subset with a dataset card, and pushing it to a (loopback) Hub."""

import subprocess
import sys

import pyarrow.parquet as pq
import pytest
import yaml
from datasets import load_dataset

import mc4_sampling
from mc4_sampling import ConfigError, Mc4Sampling
from mc4_sampling.plan import SamplingPlan
from mc4_sampling.publish import materialize, render_card

SAMPLE = mc4_sampling.SAMPLE_DATA_DIR


def test_materialized_subset_equals_the_stream_and_has_a_valid_card(tmp_path):
    config = Mc4Sampling(config_name="es", data_dir=SAMPLE, sampling_method="stepwise", seed=4).config
    stats = materialize(config, str(tmp_path), rows_per_file=300)
    files = sorted((tmp_path / "data").glob("train-*.parquet"))
    assert len(files) == -(-stats["train"].kept // 300)
    rows = [r for f in files for r in pq.read_table(f).to_pylist()]
    stream = list(load_dataset("mc4-sampling", "es", data_dir=SAMPLE, sampling_method="stepwise", seed=4,
                               return_perplexity=True, streaming=True, split="train"))
    assert rows == stream
    card = render_card(config, stats, "someone/mc4-es-stepwise", ["train", "validation"])
    meta = yaml.safe_load(card.split("---")[1])
    assert meta["configs"][0]["data_files"][0] == {"split": "train", "path": "data/train-*"}
    assert meta["language"] == ["es"] and meta["license"] == "odc-by"
    assert f"| train | 3,600 | {stats['train'].kept:,} |" in card
    assert "`stepwise`" in card and SamplingPlan.resolve(config, "es").model.model_id in card
    ds = load_dataset("parquet", data_files={"train": [str(f) for f in files]}, split="train")
    assert ds.num_rows == stats["train"].kept


def test_max_docs_caps_each_split(tmp_path):
    config = Mc4Sampling(config_name="es", data_dir=SAMPLE, sampling_method="random").config
    stats = materialize(config, str(tmp_path), max_docs=10)
    assert stats["train"].kept == stats["validation"].kept == 10
    with pytest.raises(ConfigError, match="max_docs=0"):
        materialize(config, str(tmp_path), max_docs=0)


def test_publish_pushes_data_and_card_to_the_hub(tmp_path, loopback_hub):
    hub = loopback_hub()
    out = tmp_path / "subset"
    result = subprocess.run(
        [sys.executable, "-m", "mc4_sampling.cli", "publish", str(out), "--data-dir", SAMPLE, "--method", "gaussian",
         "--max-docs", "50", "--push-to-hub", "someone/mc4-es-gaussian"],
        capture_output=True, text=True, env={**__import__("os").environ, "HF_ENDPOINT": hub.url, "HF_TOKEN": "hf_test"},
    )
    assert result.returncode == 0, result.stderr
    assert hub.created[0]["type"] == "dataset" and hub.created[0]["name"] == "mc4-es-gaussian"
    uploaded = hub.repo_files("someone/mc4-es-gaussian", repo_type="dataset")
    for name in ("README.md", "data/train-00000.parquet", "data/validation-00000.parquet"):
        assert uploaded[name] == (out / name).read_bytes()
    assert hub.validated and hub.validated[0].startswith("---")
    result = subprocess.run([sys.executable, "-m", "mc4_sampling.cli", "publish", str(out), "--push-to-hub", "noslash"],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "owner/name" in result.stderr
