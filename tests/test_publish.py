"""``mc4-sampling publish`` end to end on the bundled sample: files, card, ``--max-docs``, push to a loopback Hub."""

import os
import subprocess
import sys

import pyarrow.parquet as pq
import yaml
from datasets import load_dataset

import mc4_sampling
from mc4_sampling.plan import SamplingPlan

SAMPLE = mc4_sampling.SAMPLE_DATA_DIR
CLI = [sys.executable, "-m", "mc4_sampling.cli", "publish"]


def test_published_subset_equals_the_stream_and_has_a_valid_card(tmp_path):
    out = tmp_path / "subset"
    r = subprocess.run(CLI + [str(out), "--data-dir", SAMPLE, "--method", "stepwise", "--seed", "4", "--workers", "1"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    files = sorted((out / "data" / "stepwise").glob("train-*.parquet"))
    assert [f.name for f in files] == [f"train-{i:05d}-of-00004.parquet" for i in range(4)]
    rows = [row for f in files for row in pq.read_table(f).to_pylist()]
    stream = list(load_dataset("mc4-sampling", "es", data_dir=SAMPLE, sampling_method="stepwise", seed=4,
                               return_perplexity=True, streaming=True, split="train"))
    assert rows == stream
    card = (out / "README.md").read_text()
    meta = yaml.safe_load(card.split("---")[1])
    assert meta["configs"][0]["config_name"] == "stepwise"
    assert meta["configs"][0]["data_files"][0] == {"split": "train", "path": "data/stepwise/train-*"}
    assert meta["language"] == ["es"] and meta["license"] == "odc-by"
    splits = {s["name"]: s["num_examples"] for s in meta["dataset_info"][0]["splits"]}
    assert splits == {"train": len(stream), "validation": 400}
    assert "| `stepwise` | train | 3,600 |" in card and f"| {len(stream):,} |" in card
    config = mc4_sampling.Mc4Sampling(config_name="es", data_dir=SAMPLE, sampling_method="stepwise").config
    assert "`stepwise`" in card and SamplingPlan.resolve(config, "es").model.model_id in card
    ds = load_dataset(str(out), "stepwise", split="train")
    assert ds.num_rows == len(stream)


def test_max_docs_caps_each_split_in_one_task(tmp_path):
    out = tmp_path / "subset"
    r = subprocess.run(CLI + [str(out), "--data-dir", SAMPLE, "--method", "random", "--max-docs", "10", "--tasks", "1"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    for split in ("train", "validation"):
        n = sum(pq.read_metadata(f).num_rows for f in (out / "data" / "random").glob(f"{split}-*.parquet"))
        assert n == 10
    r = subprocess.run(CLI + [str(tmp_path / "x"), "--data-dir", SAMPLE, "--max-docs", "0"], capture_output=True,
                       text=True)
    assert r.returncode == 2 and "--max-docs=0" in r.stderr


def test_publish_pushes_data_and_card_to_the_hub(tmp_path, loopback_hub):
    hub = loopback_hub()
    out = tmp_path / "subset"
    result = subprocess.run(
        CLI + [str(out), "--data-dir", SAMPLE, "--method", "gaussian", "--max-docs", "50", "--tasks", "1",
               "--push-to-hub", "someone/mc4-es-gaussian"],
        capture_output=True, text=True, env={**os.environ, "HF_ENDPOINT": hub.url, "HF_TOKEN": "hf_test"},
    )
    assert result.returncode == 0, result.stderr
    assert hub.created[0]["type"] == "dataset" and hub.created[0]["name"] == "mc4-es-gaussian"
    uploaded = hub.repo_files("someone/mc4-es-gaussian", repo_type="dataset")
    for name in ("README.md", "data/gaussian/train-00000-of-00004.parquet",
                 "data/gaussian/validation-00000-of-00001.parquet"):
        assert uploaded[name] == (out / name).read_bytes()
    assert not any(name.startswith(".") for name in uploaded)
    assert hub.validated and hub.validated[0].startswith("---")
    result = subprocess.run(CLI + [str(out), "--push-to-hub", "noslash"], capture_output=True, text=True)
    assert result.returncode == 2 and "owner/name" in result.stderr
