"""Bad input to the corpus sources: one clear line each (a UserError naming the option, the file, the URL), before
any work where it can be known then. One table row per mistake."""

from __future__ import annotations

import gzip
import json
import re

import datasets
import pytest
from source_fixtures import LANG, make_jsonl, sample_documents

from mc4_sampling.common import hub
from mc4_sampling.common.errors import UserError
from mc4_sampling.errors import BadRecordError
from mc4_sampling.http_stream import HTTPRangeFile
from mc4_sampling.sources.base import SourceOptions, make_source


@pytest.fixture(autouse=True)
def _online(monkeypatch):
    monkeypatch.setattr(hub, "_PROBED", {})
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)


def one_line(excinfo) -> str:
    message = str(excinfo.value)
    assert isinstance(excinfo.value, UserError) and "\n" not in message, message
    return message


def read(name, language=LANG, location=None, **kw):
    s = make_source(SourceOptions(name, language, None if location is None else str(location), **kw))
    s.check()
    return [r for split in s.splits() for u in s.units(split) for _, r in s.records(u)]


@pytest.fixture
def files(tmp_path):
    docs = sample_documents(30)
    make_jsonl(tmp_path / "ok.jsonl.zst", docs)
    make_jsonl(tmp_path / "ok.jsonl.gz", docs)
    (tmp_path / "notes.csv").write_text("text\nhola\n")
    (tmp_path / "fake.parquet").write_text("not parquet at all")
    zst, gz = (tmp_path / "ok.jsonl.zst").read_bytes(), (tmp_path / "ok.jsonl.gz").read_bytes()
    (tmp_path / "cut.jsonl.zst").write_bytes(zst[: len(zst) // 2])
    (tmp_path / "cut.jsonl.gz").write_bytes(gz[: len(gz) // 2])
    return tmp_path


CASES = [
    ("unknown source", lambda f, fw: read("fineweb3"),
     r"^source='fineweb3' is not valid; choose one of (?=.*mc4)(?=.*fineweb2)(?=.*hplt3)(?=.*files)(?=.*datasets)"),
    ("a language FineWeb-2 lacks", lambda f, fw: read("fineweb2", "spa_Latm", fw),
     r"language='spa_Latm' is not a language of FineWeb-2 in location=.*; near ones: spa_Latn"),
    ("a language HPLT lacks", lambda f, fw: read("hplt3", "xx_Yyyy", f),
     r"language='xx_Yyyy' is not a language of HPLT 3.0 in location="),
    ("text column missing in the first file",
     lambda f, fw: read("files", data_files={"train": [str(f / "ok.jsonl.zst")]}, text_column="body"),
     r"ok.jsonl.zst: no column for text_column='body'; its columns: doc_id, text, timestamp, url$"),
    ("id column missing", lambda f, fw: read("fineweb2", location=fw, id_column="uid"),
     r"000_00000.parquet: no column for id_column='uid'; its columns: text, id, url, date"),
    ("a file that is not Parquet/JSONL", lambda f, fw: read("files", data_files={"train": [str(f / "notes.csv")]}),
     r"notes.csv: not a Parquet or JSON-lines file \(files ending in .parquet, .jsonl"),
    ("a .parquet file that is not Parquet",
     lambda f, fw: read("files", data_files={"train": [str(f / "fake.parquet")]}),
     r"fake.parquet: not a readable Parquet file \("),
    ("a truncated .zst", lambda f, fw: read("files", data_files={"train": [str(f / "cut.jsonl.zst")]}),
     r"cut.jsonl.zst: corrupt or truncated zstd data: the file ends inside a zstd frame \(truncated\) at compressed "
     r"byte 0, after line \d+"),
    ("a truncated .gz", lambda f, fw: read("files", data_files={"train": [str(f / "cut.jsonl.gz")]}),
     r"cut.jsonl.gz: corrupt or truncated gzip data: .* at compressed byte \d+, after line \d+"),
    ("a glob over HTTP", lambda f, fw: read("files", data_files={"train": ["http://127.0.0.1:1/*.parquet"]}),
     r"data_files\['train'\]='http://127.0.0.1:1/\*.parquet': a web server cannot be searched with a glob"),
    ("rows_per_unit", lambda f, fw: read("files", location=f, options={"rows_per_unit": 0}),
     r"source_options rows_per_unit=0 is not valid; it must be an integer >= 1"),
    ("an option of another source", lambda f, fw: read("fineweb2", location=fw, options={"min_bin": 3}),
     r"source_options 'min_bin' are not options of the fineweb2 source; valid: rows_per_unit"),
]


@pytest.mark.parametrize("what, call, message", CASES, ids=[c[0] for c in CASES])
def test_one_clear_line(what, call, message, files, fineweb2_folder):
    with pytest.raises(UserError) as e:
        call(files, fineweb2_folder)
    assert re.search(message, one_line(e)), one_line(e)


def test_truncated_files_are_skipped_and_counted_under_skip(files):
    s = make_source(SourceOptions("files", "es", data_files={"train": [str(files / "cut.jsonl.zst")]}))
    records = [r for u in s.units("train") for _, r in s.records(u, on_bad_record="skip")]
    assert records[-1] is None and all(r is not None for r in records[:-1]) and len(records) < 31


def test_builder_names_the_source_option(fineweb2_folder):
    with pytest.raises(UserError) as e:
        datasets.load_dataset("mc4-sampling", source="fineweb3", language=LANG, streaming=True, split="train")
    assert one_line(e).startswith("source='fineweb3' is not valid; choose one of mc4")
    with pytest.raises(UserError) as e:
        datasets.load_dataset("mc4-sampling", source="fineweb2", language=LANG, data_dir=str(fineweb2_folder),
                              streaming=True, split="train", score_column="doc_score", sampling_method="threshold")
    assert "score_column='doc_score': the fineweb2 source has no such column" in one_line(e)


def test_remote_404_and_416_name_the_url(fineweb2_folder, file_server, tmp_path):
    server = file_server(fineweb2_folder / "data" / LANG / "train")
    missing = f"{server.url}/nope.parquet"
    with pytest.raises(UserError) as e:
        read("files", data_files={"train": [missing]})
    assert one_line(e).startswith(f"{missing}: HTTP 404")
    name = "000_00000.parquet"
    server.validator = None  # no If-Range: the server answers the range itself
    server.replace[name] = (1, b"PAR1 short")
    f = HTTPRangeFile(f"{server.url}/{name}", backoff=0, retries=1)
    f.seek(1000)
    with pytest.raises(UserError) as e:
        f.read(10)
    assert one_line(e).startswith(f"{server.url}/{name}: the server has 10 bytes")


def test_bad_jsonl_row_names_file_and_line(tmp_path):
    path = tmp_path / "x.jsonl.gz"
    with gzip.open(path, "wt") as f:
        f.write(json.dumps({"text": "hola"}) + "\n" + json.dumps({"text": 3}) + "\n")
    with pytest.raises(BadRecordError) as e:
        read("files", "es", data_files={"train": [str(path)]})
    assert one_line(e).startswith(f"{path}:2: record has no string field 'text'")


def test_a_language_without_a_perplexity_model_points_to_train_model(fineweb2_folder):
    files = str(fineweb2_folder / "data" / LANG / "test" / "*.parquet")
    with pytest.raises(UserError) as e:
        datasets.load_dataset("mc4-sampling", source="files", language="cat_Latn", data_files={"train": [files]},
                              streaming=True, split="train", sampling_method="gaussian")
    assert "language 'cat_Latn' pass perplexity_model=" in one_line(e) and "mc4-sampling train-model" in one_line(e)
