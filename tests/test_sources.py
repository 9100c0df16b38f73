"""The corpus sources (mc4_sampling.sources): each on a small generated folder, remote over loopback HTTP and
the loopback Hub, the same kept documents whatever the units, mC4 unchanged, the builder's source= path."""

from __future__ import annotations

import gzip
import json
import shutil

import datasets
import numpy as np
import pytest
from source_fixtures import LANG, make_jsonl, quality_bin, sample_documents

import mc4_sampling
from mc4_sampling.common import hub
from mc4_sampling.errors import RemoteFileChangedError
from mc4_sampling.http_stream import HTTPRangeFile
from mc4_sampling.reader import iter_records
from mc4_sampling.shards import shard_refs
from mc4_sampling.sources.base import SourceOptions, make_source, source_names

SAMPLE = mc4_sampling.SAMPLE_DATA_DIR


@pytest.fixture(autouse=True)
def _online(monkeypatch):
    monkeypatch.setattr(hub, "_PROBED", {})
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)


def source(name, language=LANG, location=None, **kw):
    s = make_source(SourceOptions(name, language, None if location is None else str(location), **kw))
    s.check()
    return s


def read_all(s, split="train"):
    return [(u.name, p, r) for u in s.units(split) for p, r in s.records(u)]


def test_every_builtin_source_is_registered():
    assert set(source_names()) == {"mc4", "fineweb2", "hplt3", "files", "datasets"}


def test_mc4_source_is_the_shard_reader(tmp_path):
    s = source("mc4", "es", SAMPLE)
    units = s.units("train")
    refs = shard_refs(["es"], "train", data_dir=SAMPLE)
    assert s.draw_by_position and [u.path for u in units] == [r.path for r in refs]
    assert [u.name for u in units] == [f"train-{r.index:05d}-of-02048" for r in refs]
    assert [u.name for u in s.units("validation")] == ["validation-00000-of-00016"]
    got = list(s.records(units[1]))
    want = list(iter_records(refs[1].path))
    assert [p for p, _ in got] == [p for p, _ in want]
    assert all(r.text == w["text"] and r.id is None and r.metadata == {"timestamp": w["timestamp"], "url": w["url"]}
               for (_, r), (_, w) in zip(got, want))


def test_fineweb2_local_folder(fineweb2_folder):
    s = source("fineweb2", location=fineweb2_folder)
    assert s.splits() == ("train", "test")
    assert [u.name for u in s.units("train")] == [f"train-{i:05d}-of-00004" for i in range(4)]
    rows = read_all(s)
    assert len(rows) == 3600 and len({r.id for _, _, r in rows}) == 3600
    assert [p for name, p, _ in rows if name == "train-00001-of-00004"] == list(range(900))
    first = rows[0][2]
    assert first.text == sample_documents(1)[0]["text"] and first.id.startswith("<urn:uuid:")
    assert set(first.metadata) == {"url", "date", "language_score", "minhash_cluster_size"}
    assert isinstance(first.metadata["minhash_cluster_size"], int)
    assert len(read_all(s, "test")) == 200
    # the data/ folder itself is a location too
    assert len(source("fineweb2", location=fineweb2_folder / "data").units("train")) == 4


def test_row_group_runs_give_the_same_documents_and_decisions(fineweb2_folder):
    """Units of row-group runs (rows_per_unit) read the same documents, and the builder keeps the same ids."""
    whole = source("files", location=fineweb2_folder / "data" / LANG, id_column="id")
    runs = source("files", location=fineweb2_folder / "data" / LANG, id_column="id",
                  options={"rows_per_unit": 300})
    units = runs.units("train")
    assert len(units) == 12 and units[0].row_groups == (0, 1, 2) and units[2].row_groups == (6, 7)
    assert [r.id for _, _, r in read_all(runs)] == [r.id for _, _, r in read_all(whole)]

    def kept(**source_options):
        ds = datasets.load_dataset("mc4-sampling", source="fineweb2", language=LANG, data_dir=str(fineweb2_folder),
                                   split="train", streaming=True, sampling_method="random", sampling_factor=0.3,
                                   source_options=source_options or None)
        return [row["id"] for row in ds]

    a, b = kept(), kept(rows_per_unit=300)
    assert a == b
    # a Bernoulli(0.3) keep over 3 600 documents: within 5 standard deviations
    assert abs(len(a) - 1080) < 5 * np.sqrt(3600 * 0.3 * 0.7)


def test_hplt3_local_folder_and_map(hplt3_folder, tmp_path):
    s = source("hplt3", location=hplt3_folder)
    names = [u.path.rsplit("/", 1)[1] for u in s.units("train")]
    assert names[0] == "10_1.jsonl.zst" or names[0].startswith("9_")  # best bin first
    rows = read_all(s)
    assert len(rows) == 1200
    r = rows[0][2]
    assert set(r.metadata) == {"url", "doc_score", "web_register"} and r.id
    assert isinstance(r.metadata["doc_score"], float) and json.loads(r.metadata["web_register"])
    for _, _, rec in rows:  # each file holds its bin's documents
        assert rec.metadata["doc_score"] >= 5 or quality_bin({"doc_scores": [rec.metadata["doc_score"]]}) == 5
    # min_bin keeps the files of the better bins only
    best = source("hplt3", location=hplt3_folder, options={"min_bin": 8})
    assert all(rec.metadata["doc_score"] >= 8 for _, _, rec in read_all(best))
    # without the language folder, the map lists the files
    copy = tmp_path / "copy"
    shutil.copytree(hplt3_folder, copy)
    (copy / LANG).rename(copy / "files")
    (copy / f"{LANG}.map").write_text((hplt3_folder / f"{LANG}.map").read_text().replace(f"{LANG}/", "files/"))
    assert [r.id for _, _, r in read_all(source("hplt3", location=copy))] == [r.id for _, _, r in rows]


def test_hplt3_doc_score_is_a_score_column(hplt3_folder):
    ds = datasets.load_dataset("mc4-sampling", source="hplt3", language=LANG, data_dir=str(hplt3_folder),
                               split="train", streaming=True, sampling_method="threshold", score_column="doc_score",
                               weighting_options={"low": 7.0})
    rows = list(ds)
    everyone = [r for _, _, r in read_all(source("hplt3", location=hplt3_folder))]
    assert sorted(r["id"] for r in rows) == sorted(r.id for r in everyone if r.metadata["doc_score"] >= 7.0)


def test_files_source_reads_jsonl_gz_zst_and_a_glob_per_split(tmp_path):
    docs = sample_documents(60)
    make_jsonl(tmp_path / "a" / "x.jsonl", docs[:20])
    make_jsonl(tmp_path / "a" / "y.jsonl.gz", docs[20:40])
    make_jsonl(tmp_path / "b" / "z.jsonl.zst", docs[40:])
    (tmp_path / "a" / "README.md").write_text("not data")
    s = source("files", "es", data_files={"train": [str(tmp_path / "a" / "*.json*")],
                                          "test": [str(tmp_path / "b")]}, id_column="doc_id",
               metadata_columns=["url"])
    assert s.splits() == ("train", "test")
    train = [r for _, _, r in read_all(s)]
    assert [r.text for r in train] == [d["text"] for d in docs[:40]]
    assert [r.id for r in train[:2]] == ["d0", "d1"] and train[0].metadata == {"url": docs[0]["url"]}
    assert [r.text for _, _, r in read_all(s, "test")] == [d["text"] for d in docs[40:]]
    # a folder location: the subfolders are the splits; without an id, the draw is by the text
    by_folder = source("files", "es", tmp_path)
    assert by_folder.splits() == ("a", "b") and by_folder.id_column is None


def test_datasets_source_units_are_the_stream_shards(fineweb2_folder):
    s = source("datasets", location=fineweb2_folder / "data" / LANG / "train", id_column="id")
    units = s.units("train")
    assert len(units) == 4
    ids = [r.id for _, _, r in read_all(s)]
    assert ids == [r.id for _, _, r in read_all(source("fineweb2", location=fineweb2_folder))]


def test_builder_source_matches_sample_dataset(fineweb2_folder):
    """The builder keeps exactly what sample_dataset keeps of the same documents keyed by the same ids, with
    the same scores; a split other than train is not sampled (as mC4's validation)."""
    from mc4_sampling.corpus import sample_dataset

    test_files = str(fineweb2_folder / "data" / LANG / "test" / "*.parquet")
    kw = dict(sampling_method="gaussian", return_perplexity=True)
    built = list(datasets.load_dataset("mc4-sampling", source="files", language=LANG, id_column="id",
                                       data_files={"train": [test_files]}, split="train", streaming=True, **kw))
    table = datasets.load_dataset("parquet", data_files=test_files, split="train")
    ref = sample_dataset(table, id_column="id", language=LANG, **kw)
    assert 0 < len(built) < 200 and [r["id"] for r in built] == ref["id"]
    assert np.allclose([r["perplexity"] for r in built], ref["perplexity"])
    test = datasets.load_dataset("mc4-sampling", source="fineweb2", language=LANG, data_dir=str(fineweb2_folder),
                                 split="test", streaming=True, **kw)
    assert len(list(test)) == 200


# --- remote -----------------------------------------------------------------------------------


def test_parquet_over_http_by_ranges(fineweb2_folder, file_server):
    folder = fineweb2_folder / "data" / LANG / "train"
    server = file_server(folder)
    urls = [f"{server.url}/000_{i:05d}.parquet" for i in range(2)]
    s = source("files", data_files={"train": urls}, id_column="id", metadata_columns=["url"])
    local = source("files", data_files={"train": [str(folder / "000_0000[01].parquet")]}, id_column="id",
                   metadata_columns=["url"])
    assert [(r.id, r.text) for _, _, r in read_all(s)] == [(r.id, r.text) for _, _, r in read_all(local)]
    assert any(rng and rng != "bytes=0-" for _, rng in server.requests)  # read by ranges, not whole


def test_range_file_detects_a_changed_file(fineweb2_folder, file_server, tmp_path):
    folder = fineweb2_folder / "data" / LANG / "train"
    server = file_server(folder)
    name = "000_00000.parquet"
    server.replace[name] = (1, (folder / "000_00001.parquet").read_bytes())
    f = HTTPRangeFile(f"{server.url}/{name}", backoff=0)
    f.seek(-100, 2)
    with pytest.raises(RemoteFileChangedError):
        f.read(10)


def test_hplt3_over_https_through_its_map(hplt3_folder, file_server, tmp_path):
    flat = tmp_path / "served"
    flat.mkdir()
    for path in (hplt3_folder / LANG).iterdir():
        shutil.copy(path, flat / path.name)
    shutil.copy(hplt3_folder / f"{LANG}.map", flat / f"{LANG}.map")
    server = file_server(flat)
    # no silent truncation of a .zst: a transfer cut short with a Content-Length is resumed at its byte; one
    # without a length (the connection closed) is not taken for the end before the server says it has no more
    server.cuts["5_1.jsonl.zst"] = [1500]
    server.no_length["5_2.jsonl.zst"] = "close"
    server.cuts["5_2.jsonl.zst"] = [2000]
    remote = source("hplt3", location=server.url)
    assert all(u.path.startswith(f"{server.url}/{LANG}/") for u in remote.units("train"))
    local = source("hplt3", location=hplt3_folder)
    assert [r.id for _, _, r in read_all(remote)] == [r.id for _, _, r in read_all(local)]
    assert [rng for name, rng in server.requests if name == "5_2.jsonl.zst"][1:] == ["bytes=2000-"]


def test_fineweb2_on_the_hub(fineweb2_folder, loopback_hub):
    files = {f"datasets/me/fw2/data/{LANG}/{split}/000_00000.parquet":
             fineweb2_folder / "data" / LANG / split / "000_00000.parquet" for split in ("train", "test")}
    files["datasets/me/fw2/data/cat_Latn/train/000_00000.parquet"] = fineweb2_folder / "data" / LANG / "test" / \
        "000_00000.parquet"
    loopback_hub(files)
    s = source("fineweb2", location="hf://datasets/me/fw2")
    assert [u.name for u in s.units("train")] == ["train-00000-of-00001"]
    assert "/datasets/me/fw2/resolve/main/data/spa_Latn/train/000_00000.parquet" in s.units("train")[0].path
    assert len(read_all(s)) == 900 and len(read_all(s, "test")) == 200
    with pytest.raises(mc4_sampling.errors.DataNotFoundError, match=r"'spa_Latm' .* near ones: spa_Latn"):
        source("fineweb2", "spa_Latm", "hf://datasets/me/fw2")
    # files on the Hub by a glob
    g = source("files", data_files={"train": ["hf://datasets/me/fw2/data/*/train/*.parquet"]})
    assert len(g.units("train")) == 2


def test_gz_line_reader_reads_jsonl_gz_written_by_python(tmp_path):
    path = tmp_path / "d.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write(json.dumps({"body": "hola"}) + "\n")
    s = source("files", "es", data_files={"train": [str(path)]}, text_column="body")
    assert [r.text for _, _, r in read_all(s)] == ["hola"]


def test_a_non_streaming_build_is_rebuilt_after_a_source_file_changed(tmp_path):
    from source_fixtures import make_fineweb2

    folder = make_fineweb2(tmp_path / "fw2", files=2, docs_per_file=60, test_docs=10)
    kw = dict(source="fineweb2", language=LANG, data_dir=str(folder), split="train", sampling_method="random",
              sampling_factor=0.5, cache_dir=str(tmp_path / "cache"))
    first = datasets.load_dataset("mc4-sampling", **kw)
    assert datasets.load_dataset("mc4-sampling", **kw).cache_files == first.cache_files
    make_fineweb2(folder, files=2, docs_per_file=30, test_docs=10)
    again = datasets.load_dataset("mc4-sampling", **kw)
    assert again.cache_files != first.cache_files and len(again) < len(first)


def test_source_languages_map_to_mc4_codes_for_the_scorer():
    from mc4_sampling.languages import mc4_code

    assert [mc4_code(x) for x in ("spa_Latn", "rus_Latn", "rus_Cyrl", "cmn_Hani", "es", "zsm_Latn", "xyz_Abcd")] == \
        ["es", "ru-Latn", "ru", "zh", "es", "ms", "xyz_Abcd"]


def test_parquet_over_http_survives_cuts_and_server_errors(fineweb2_folder, file_server):
    """The Parquet range file keeps the transport's guarantees: a transfer cut short is resumed at its byte, a
    5xx retried; the rows are those of the local file."""
    import pyarrow.parquet as pq

    folder = fineweb2_folder / "data" / LANG / "train"
    server = file_server(folder)
    name = "000_00002.parquet"
    server.cuts[name] = [None, 7000, 3000]  # the first answer whole, then two reads cut short
    server.errors[name] = [None, 503]
    f = HTTPRangeFile(f"{server.url}/{name}", backoff=0)
    remote = pq.ParquetFile(f).read(columns=["id", "text"]).to_pylist()
    assert remote == pq.read_table(folder / name, columns=["id", "text"]).to_pylist()
    assert server.counts[name] > 4


def test_hplt3_metadata_columns_can_be_chosen(hplt3_folder):
    s = source("hplt3", location=hplt3_folder, metadata_columns=["doc_score", "ts"])
    record = read_all(s)[0][2]
    assert set(record.metadata) == {"doc_score", "ts"} and isinstance(record.metadata["doc_score"], float)
    doc = next(d for d in sample_documents(1200) if d["text"] == record.text)
    assert record.metadata["ts"] == doc["timestamp"]


def test_zstd_frames_are_read_and_damage_is_located():
    """Several frames and skippable frames are one stream; a cut inside the second frame is located at its start."""
    import io
    import struct

    import zstandard

    from mc4_sampling.unzstd import Unzstd, ZstdDataError

    one, two = (zstandard.ZstdCompressor().compress(t) for t in (b"uno\n" * 50, b"dos\n" * 50))
    skip = struct.pack("<II", 0x184D2A50, 3) + b"xyz"
    assert Unzstd(io.BytesIO(one + skip + two)).read() == b"uno\n" * 50 + b"dos\n" * 50
    with pytest.raises(ZstdDataError, match="ends inside a zstd frame") as e:
        Unzstd(io.BytesIO(one + two[:-3])).read()
    assert e.value.offset == len(one)
    with pytest.raises(ZstdDataError, match="data after the last frame") as e:
        Unzstd(io.BytesIO(one + b"not zstd")).read()
    assert e.value.offset == len(one)
