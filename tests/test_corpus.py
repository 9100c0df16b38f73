"""mc4_sampling.sample_dataset: perplexity sampling of any datasets corpus, keyed by document id or text."""

from __future__ import annotations

import gzip
import io
import json
import random
import warnings
from pathlib import Path

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from datasets.distributed import split_dataset_by_node

import mc4_sampling
from mc4_sampling import BadRecordError, ConfigError, load_perplexity_model, sample_dataset
from mc4_sampling.calibration import build_calibration
from mc4_sampling.calibration.file import save_calibration
from mc4_sampling.draw import document_key, hash64, uniform_draws
from mc4_sampling.sampler import SamplingStats
from mc4_sampling.weightings import gaussian_keep_probability, keep_probability

SHARDS = sorted((Path(mc4_sampling.SAMPLE_DATA_DIR) / "multilingual").glob("c4-es.tfrecord-*.json.gz"))
SEED = 2021


def read_shard(path: Path, limit: int | None = None) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    return rows[:limit]


@pytest.fixture(scope="module")
def docs() -> list[dict]:
    """300 documents of the bundled sample (mC4 layout: text, timestamp, url)."""
    return read_shard(SHARDS[0], 300)


@pytest.fixture(scope="module")
def model():
    return load_perplexity_model()


@pytest.fixture(scope="module")
def ppl(docs, model) -> np.ndarray:
    return model.perplexities([d["text"] for d in docs])


def fineweb2(docs: list[dict]) -> list[dict]:
    """Rows shaped like FineWeb-2's (text, id, dump, url, date, file_path, language, language_score, ...)."""
    return [{"text": d["text"], "id": f"<urn:uuid:{i:08x}-0000-4000-8000-{i * 7919:012x}>",
             "dump": "CC-MAIN-2024-10", "url": d["url"], "date": d["timestamp"],
             "file_path": f"s3://commoncrawl/crawl-data/CC-MAIN-2024-10/segments/{i % 7}.warc.gz",
             "language": "spa", "language_score": 0.9 + (i % 10) / 100, "language_script": "Latn",
             "minhash_cluster_size": 1 + i % 3, "top_langs": '{"spa_Latn_score": 0.99}'}
            for i, d in enumerate(docs)]


def culturax(docs: list[dict]) -> list[dict]:
    """Rows shaped like CulturaX's (text, timestamp, url, source)."""
    return [{"text": d["text"], "timestamp": d["timestamp"], "url": d["url"],
             "source": "mC4" if i % 2 else "OSCAR-2301"} for i, d in enumerate(docs)]


def iterable(rows: list[dict], n_shards: int = 1) -> datasets.IterableDataset:
    """A streaming dataset of ``rows`` in ``n_shards`` shards (contiguous chunks)."""
    bounds = np.linspace(0, len(rows), n_shards + 1).astype(int)
    chunks = [rows[a:b] for a, b in zip(bounds[:-1], bounds[1:])]

    def gen(chunks):
        for chunk in chunks:
            yield from chunk

    return datasets.IterableDataset.from_generator(gen, gen_kwargs={"chunks": chunks})


def expected_kept(keys, perplexities, factor, width, median, seed=SEED) -> np.ndarray:
    """The keep decision as the README states it, computed independently of the sampler's code."""
    u = uniform_draws(document_key(seed, "es"), np.array([hash64(k) for k in keys], dtype=np.uint64))
    return u < gaussian_keep_probability(np.asarray(perplexities), factor, width, median)


OPTS = dict(sampling_method="gaussian", boundaries=None, sampling_factor=0.8, width=4.5)


@pytest.fixture(scope="module")
def opts(model):
    return {**OPTS, "boundaries": model.default_boundaries}


# --- the kept set -------------------------------------------------------------------------------


def test_keeps_the_documents_whose_draw_is_below_p_scoring_only_what_the_draw_does_not_reject(docs, ppl, opts):
    stats = SamplingStats()
    out = list(sample_dataset(iterable(culturax(docs)), **opts, return_perplexity=True, stats=stats))
    keep = expected_kept([d["text"] for d in docs], ppl, 0.8, 4.5, opts["boundaries"][1])
    assert 0 < keep.sum() < len(docs)
    assert [d["url"] for d in out] == [d["url"] for d, k in zip(docs, keep) if k]
    assert set(out[0]) == {"text", "timestamp", "url", "source", "perplexity"}  # other columns kept
    assert [d["perplexity"] for d in out] == pytest.approx(ppl[keep].tolist(), rel=1e-12)
    u = uniform_draws(document_key(SEED, "es"), [hash64(d["text"]) for d in docs])
    assert stats.read == len(docs) and stats.kept == keep.sum()
    assert stats.scored == int((u < 0.8).sum()) < len(docs)  # u >= max p: never scored


def test_dataset_and_iterable_dataset_agree_and_the_id_keys_the_draw(docs, ppl, opts):
    rows = fineweb2(docs)
    streamed = list(sample_dataset(iterable(rows), id_column="id", **opts))
    table = sample_dataset(datasets.Dataset.from_list(rows), id_column="id", **opts)
    assert [r["id"] for r in streamed] == table["id"]
    assert table.column_names == list(rows[0])
    keep = expected_kept([r["id"] for r in rows], ppl, 0.8, 4.5, opts["boundaries"][1])
    assert table["id"] == [r["id"] for r, k in zip(rows, keep) if k]
    by_text = sample_dataset(datasets.Dataset.from_list(rows), **opts)
    assert by_text["id"] != table["id"]  # another key, another draw


def test_every_method_and_the_seed(docs, ppl):
    for method in ("none", "random", "stepwise", "gaussian"):
        out = sample_dataset(datasets.Dataset.from_list(docs), sampling_method=method,
                             sampling_factor=None if method != "stepwise" else 60.0)
        n = len(out)
        assert (n == len(docs)) if method == "none" else (0 < n < len(docs)), method
    a = sample_dataset(datasets.Dataset.from_list(docs), sampling_method="random", seed=1)["url"]
    b = sample_dataset(datasets.Dataset.from_list(docs), sampling_method="random", seed=2)["url"]
    assert a != b


def test_the_calibration_file_and_the_ccnet_document_mode(docs, ppl, model, tmp_path):
    calib = build_calibration(ppl, 0.3, model_id=model.model_id, mode="ccnet")
    path = save_calibration(calib, tmp_path / "calibration.json")
    out = sample_dataset(datasets.Dataset.from_list(docs), calibration=str(path), return_perplexity=True)
    p = keep_probability(ppl, "gaussian", calib.methods["gaussian"]["factor"], calib.boundaries,
                         calib.methods["gaussian"]["width"])
    u = uniform_draws(document_key(SEED, "es"), [hash64(d["text"]) for d in docs])
    assert out["url"] == [d["url"] for d, k in zip(docs, u < p) if k]
    with pytest.raises(ConfigError, match="ccnet"):  # calibrated for another mode
        sample_dataset(datasets.Dataset.from_list(docs), calibration=str(path), perplexity_mode="ccnet_document")
    with pytest.raises(ConfigError, match="boundaries"):  # the embedded model declares none for this mode
        sample_dataset(datasets.Dataset.from_list(docs), perplexity_mode="ccnet_document")
    doc_mode = sample_dataset(datasets.Dataset.from_list(docs), perplexity_mode="ccnet_document",
                              boundaries=(100.0, 300.0, 900.0), return_perplexity=True)
    assert all(round(x, 1) == x for x in doc_mode["perplexity"])  # CCNet's rounding


# --- determinism without (shard, position) ------------------------------------------------------


def kept_ids(ds) -> list[str]:
    return [r["id"] for r in ds]


def test_the_kept_set_is_the_same_whatever_the_order_the_nodes_the_workers_or_a_restart(docs, opts):
    import torch

    rows = fineweb2(docs)
    full = kept_ids(sample_dataset(iterable(rows, 3), id_column="id", **opts))
    assert len(full) > 20
    shuffled = rows[:]
    random.Random(7).shuffle(shuffled)
    assert sorted(kept_ids(sample_dataset(iterable(shuffled, 2), id_column="id", **opts))) == sorted(full)
    for world_size in (1, 2, 3):
        parts = [kept_ids(sample_dataset(split_dataset_by_node(iterable(rows, 6), rank, world_size),
                                         id_column="id", **opts)) for rank in range(world_size)]
        assert sorted(sum(parts, [])) == sorted(full), world_size
        if world_size > 1:
            assert all(parts), world_size  # each node got some
    sampled = sample_dataset(iterable(rows, 4), id_column="id", **opts)
    loader = torch.utils.data.DataLoader(sampled, batch_size=None, num_workers=2)
    assert sorted(r["id"] for r in loader) == sorted(full)
    # restart from a state_dict taken mid-stream, also mid-block
    ds = sample_dataset(iterable(shuffled, 1), id_column="id", **opts, block_size=16)
    it, head = iter(ds), []
    for _ in range(len(full) // 2 + 3):
        head.append(next(it)["id"])
    state = ds.state_dict()
    resumed = sample_dataset(iterable(shuffled, 1), id_column="id", **opts, block_size=16)
    resumed.load_state_dict(state)
    assert sorted(head + kept_ids(resumed)) == sorted(full)


def test_content_keys_give_exact_duplicates_one_decision(docs, opts):
    rows = culturax(docs[:60])
    doubled = rows + [dict(r, url=r["url"] + "#copy", source="copy") for r in rows]
    out = sample_dataset(datasets.Dataset.from_list(doubled), **opts)
    originals = {u for u in out["url"] if not u.endswith("#copy")}
    copies = {u[: -len("#copy")] for u in out["url"] if u.endswith("#copy")}
    assert originals == copies and originals


# --- bad input ----------------------------------------------------------------------------------


def test_a_missing_column_is_an_error_listing_the_columns(docs):
    with pytest.raises(ConfigError, match=r"text_column='body'.*columns: source, text, timestamp, url"):
        sample_dataset(datasets.Dataset.from_list(culturax(docs[:5])), text_column="body")
    with pytest.raises(ConfigError, match=r"id_column='id'.*columns:"):
        sample_dataset(datasets.Dataset.from_list(culturax(docs[:5])), id_column="id")
    # a stream whose columns are known only once read: the error comes with the first block
    gen = datasets.IterableDataset.from_generator(lambda: iter([{"body": "hola"}]))
    with pytest.raises(ConfigError, match=r"text_column='text'.*columns: body"):
        list(sample_dataset(gen, sampling_method="random"))


def test_null_or_non_string_texts_are_skipped_and_counted_or_an_error_naming_the_row(docs):
    rows = [{"id": f"d{i}", "text": d["text"]} for i, d in enumerate(docs[:40])]
    rows[5]["text"] = None
    rows[17]["text"] = 42
    with pytest.raises(BadRecordError, match=r"row 5 \(id='d5'\).*NoneType.*on_bad_record='skip'"):
        list(sample_dataset(iterable(rows), sampling_method="random", id_column="id"))
    stats = SamplingStats()
    out = list(sample_dataset(iterable(rows), sampling_method="none", id_column="id", on_bad_record="skip",
                              stats=stats))
    assert stats.bad_records == 2 and stats.read == 38 and len(out) == 38
    assert {"d5", "d17"}.isdisjoint(r["id"] for r in out)


def test_duplicated_ids_warn_once(docs):
    rows = [{"id": f"d{i % 30}", "text": d["text"]} for i, d in enumerate(docs[:100])]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        list(sample_dataset(iterable(rows), sampling_method="random", id_column="id", block_size=16))
    messages = [str(w.message) for w in caught if "duplicated ids" in str(w.message)]
    assert len(messages) == 1 and "share one keep decision" in messages[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        list(sample_dataset(iterable(fineweb2(docs[:100])), sampling_method="random", id_column="id"))


def test_invalid_options_are_errors_naming_the_option(docs):
    ds = datasets.Dataset.from_list(docs[:5])
    for kwargs, match in [
        ({"sampling_method": "bell"}, "sampling_method='bell'"),
        ({"sampling_factor": -1}, "sampling_factor=-1"),
        ({"boundaries": (3, 2, 1)}, "boundaries="),
        ({"perplexity_mode": "wiki"}, "perplexity_mode='wiki'.*ccnet_document"),
        ({"on_bad_record": "ignore"}, "on_bad_record='ignore'"),
        ({"calibration": "c.json", "width": 2.0}, "calibration='c.json' replaces width"),
        ({"seed": -3}, "seed=-3"),
    ]:
        with pytest.raises(ConfigError, match=match):
            sample_dataset(ds, **kwargs)
    with pytest.raises(ConfigError, match="IterableDataset or Dataset"):
        sample_dataset(datasets.DatasetDict({"train": ds}))
    with pytest.raises(ConfigError, match="already has one"):
        sample_dataset(datasets.Dataset.from_list([{"text": "a", "perplexity": 1.0}]), return_perplexity=True)


# --- statistics ---------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["random", "gaussian"])
def test_the_keep_rate_is_within_four_sigma_of_the_expected_mean(method, model):
    rows = read_shard(SHARDS[1], 600)
    x = model.perplexities([r["text"] for r in rows])
    factor, (b1, b2, b3), width = (0.3 if method == "random" else 0.78), model.default_boundaries, 4.5
    p = np.minimum(1.0, keep_probability(x, method, factor, (b1, b2, b3), width))
    kept = len(sample_dataset(datasets.Dataset.from_list(rows), sampling_method=method, sampling_factor=factor,
                              width=width, boundaries=(b1, b2, b3)))
    assert abs(kept - p.sum()) <= 4 * np.sqrt((p * (1 - p)).sum())


# --- real load paths: local Parquet / JSON lines, and the Hub ----------------------------------


def parquet_bytes(rows: list[dict]) -> bytes:
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), buf)
    return buf.getvalue()


def jsonl_bytes(rows: list[dict]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()


def test_local_parquet_and_json_lines_files(docs, tmp_path, opts):
    fw = fineweb2(docs[:150])
    (tmp_path / "fw.parquet").write_bytes(parquet_bytes(fw))
    cx = culturax(docs[:150])
    (tmp_path / "cx.jsonl").write_bytes(jsonl_bytes(cx))
    want_fw = sample_dataset(datasets.Dataset.from_list(fw), id_column="id", **opts)["id"]
    want_cx = sample_dataset(datasets.Dataset.from_list(cx), **opts)["url"]
    ds = datasets.load_dataset("parquet", data_files=str(tmp_path / "fw.parquet"), split="train", streaming=True)
    assert [r["id"] for r in sample_dataset(ds, id_column="id", **opts)] == want_fw
    ds = datasets.load_dataset("json", data_files=str(tmp_path / "cx.jsonl"), split="train", streaming=True)
    assert [r["url"] for r in sample_dataset(ds, **opts)] == want_cx


@pytest.fixture
def dataset_hub(loopback_hub, monkeypatch, tmp_path):
    """``loopback_hub`` for ``datasets.load_dataset``: the endpoints both libraries read at import time."""
    import huggingface_hub.constants
    from huggingface_hub import HfFileSystem

    def start(files):
        hub = loopback_hub(files)
        monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", hub.url)
        monkeypatch.setattr(huggingface_hub.constants, "HUGGINGFACE_CO_URL_TEMPLATE",
                            hub.url + "/{repo_id}/resolve/{revision}/{filename}")
        monkeypatch.setattr(datasets.config, "HF_ENDPOINT", hub.url)
        monkeypatch.setattr(datasets.config, "HUB_DATASETS_URL",
                            hub.url + "/datasets/{repo_id}/resolve/{revision}/{path}")
        monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "datasets-cache")
        HfFileSystem.clear_instance_cache()
        return hub

    yield start
    HfFileSystem.clear_instance_cache()


def test_hub_datasets_through_load_dataset_streaming(docs, dataset_hub, opts):
    fw, cx = fineweb2(docs[:200]), culturax(docs[:200])
    hub = dataset_hub({
        "datasets/someone/fineweb-2-like/data/spa_Latn/train/000_00000.parquet": parquet_bytes(fw[:120]),
        "datasets/someone/fineweb-2-like/data/spa_Latn/train/001_00000.parquet": parquet_bytes(fw[120:]),
        "datasets/someone/culturax-like/es/es_part_00000.jsonl": jsonl_bytes(cx),
    })
    ds = datasets.load_dataset("someone/fineweb-2-like", split="train", streaming=True)
    assert ds.column_names == list(fw[0])
    got = list(sample_dataset(ds, id_column="id", return_perplexity=True, **opts))
    assert [r["id"] for r in got] == sample_dataset(datasets.Dataset.from_list(fw), id_column="id", **opts)["id"]
    assert all(isinstance(r["perplexity"], float) and r["language_score"] >= 0.9 for r in got)
    ds = datasets.load_dataset("someone/culturax-like", split="train", streaming=True, data_files="es/*.jsonl")
    got = [r["url"] for r in sample_dataset(ds, **opts)]
    assert got == sample_dataset(datasets.Dataset.from_list(cx), **opts)["url"]
    assert any("/resolve/" in r and "parquet" in r for r in hub.requests)


# --- the command line ---------------------------------------------------------------------------


def test_the_command_line_samples_and_calibrates_a_dataset(docs, tmp_path, capsys):
    from mc4_sampling.cli import main

    rows = fineweb2(docs[:200])
    src = tmp_path / "fw.jsonl"
    src.write_bytes(jsonl_bytes(rows))
    out = tmp_path / "kept.jsonl"
    assert main(["sample", "--dataset", str(src), "--method", "random", "--factor", "0.4", "--id-column", "id",
                 "--return-perplexity", "-o", str(out)]) == 0
    kept = [json.loads(line) for line in out.read_text().splitlines()]
    want = sample_dataset(datasets.Dataset.from_list(rows), sampling_method="random", sampling_factor=0.4,
                          id_column="id")
    assert [r["id"] for r in kept] == want["id"] and set(kept[0]) == set(rows[0]) | {"perplexity"}
    assert f"documents kept: {len(kept)}" in capsys.readouterr().err
    calib = tmp_path / "calib"
    assert main(["calibrate", "--dataset", str(src), "--target-rate", "0.3", "--docs", "150", "--no-plots",
                 "-o", str(calib)]) == 0
    written = json.loads((calib / "calibration.json").read_text())
    assert written["documents_scored"] == 150 and written["model"]["mode"] == "ccnet"
    assert main(["sample", "--dataset", str(src), "--calibration", str(calib / "calibration.json"),
                 "-o", str(tmp_path / "calibrated.jsonl")]) == 0
    capsys.readouterr()
    for argv, message in [
        (["sample", "--config", "spa_Latn", "-o", str(tmp_path / "x.jsonl")], "--config applies to a --dataset"),
        (["sample", "--split", "test", "-o", str(tmp_path / "x.jsonl")], "mC4 has the splits train and validation"),
        (["sample", "--dataset", str(src), "--text-column", "body"], "columns: date, dump"),
        (["sample", "--dataset", str(tmp_path / "missing.jsonl")], "cannot open dataset"),
        (["sample", "--dataset", str(src), "--data-dir", str(tmp_path)], "--data-dir locates mC4 files"),
    ]:
        assert main(argv) == 2, argv
        assert message in capsys.readouterr().err, argv


def test_open_corpus_reads_a_file_a_glob_or_a_folder_of_one_format(docs, tmp_path):
    from mc4_sampling.corpus import open_corpus
    from mc4_sampling.errors import DataNotFoundError

    rows = culturax(docs[:30])
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.jsonl").write_bytes(jsonl_bytes(rows[:10]))
    (tmp_path / "d" / "b.jsonl").write_bytes(jsonl_bytes(rows[10:]))
    assert [r["url"] for r in open_corpus(str(tmp_path / "d" / "a.jsonl"))] == [r["url"] for r in rows[:10]]
    assert [r["url"] for r in open_corpus(str(tmp_path / "d" / "*.jsonl"))] == [r["url"] for r in rows]
    assert [r["url"] for r in open_corpus(str(tmp_path / "d"))] == [r["url"] for r in rows]
    (tmp_path / "d" / "c.parquet").write_bytes(parquet_bytes(rows[:3]))
    with pytest.raises(DataNotFoundError, match="several data file formats.*json, parquet"):
        open_corpus(str(tmp_path / "d"))


def test_a_calibration_subset_of_a_corpus_is_seeded_and_counts_bad_rows(docs):
    from mc4_sampling.calibration import draw_corpus_subset

    rows = [{"text": d["text"]} for d in docs[:120]] + [{"text": None}] * 5
    ds = datasets.Dataset.from_list(rows).to_iterable_dataset()
    a = draw_corpus_subset(ds, 50, seed=3, on_bad_record="skip", source="rows")
    b = draw_corpus_subset(ds, 50, seed=3, on_bad_record="skip", source="rows")
    c = draw_corpus_subset(ds, 50, seed=4, on_bad_record="skip", source="rows")
    assert a.texts == b.texts and a.texts != c.texts and len(a.texts) == 50
    everything = draw_corpus_subset(ds, 200, seed=3, on_bad_record="skip", source="rows")
    assert len(everything.texts) == 120 and everything.bad_records == 5 and everything.documents_read == 125
    assert everything.source == "rows" and everything.shards is None
    with pytest.raises(ConfigError, match="a row of 'rows' has NoneType in column 'text'"):
        draw_corpus_subset(ds, 200, seed=3, source="rows")
