"""Corpus folders shaped like FineWeb-2, HPLT 3.0 and a plain Parquet/JSONL glob, made from the bundled Spanish
mC4 sample (``mc4_sampling.SAMPLE_DATA_DIR``), for the tests of the corpus sources, publish and the trainer.

* :func:`make_fineweb2`: ``<root>/data/spa_Latn/{train,test}/000_0000N.parquet`` with FineWeb-2's columns
  (``text``, ``id``, ``url``, ``date``, ``dump``, ``file_path``, ``language``, ``language_score``,
  ``language_script``, ``minhash_cluster_size``, ``top_langs``), small row groups;
* :func:`make_hplt3`: ``<root>/spa_Latn/<bin>_<n>.jsonl.zst`` (documents grouped by the quality bin of
  ``doc_scores[0]``) and ``<root>/spa_Latn.map`` listing them, rows ``id``, ``text``, ``u``, ``ts``,
  ``doc_scores``, ``web-register``, ``lang``;
* :func:`sample_documents`: the sample's documents (text, url, timestamp), repeated with distinct ids to
  any number.

Every value is a pure function of the document's index, so folders are identical run to run. The
session-scoped fixtures ``fineweb2_folder``, ``hplt3_folder`` build one copy per test session (tests/conftest.py
registers this module with ``pytest_plugins``: any test may ask for them).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
from pathlib import Path

import pytest

import mc4_sampling

LANG = "spa_Latn"


def _u(i: int, salt: str) -> float:
    """A uniform number in [0, 1) from ``i`` and ``salt``."""
    return int.from_bytes(hashlib.blake2b(f"{salt}/{i}".encode(), digest_size=8).digest(), "little") / 2 ** 64


def sample_documents(n: int | None = None, split: str = "train") -> list[dict]:
    """The bundled sample's documents of ``split`` (``train``: 3 600, ``validation``: 400) as dicts with
    ``text``, ``url``, ``timestamp``; with ``n``, cycled to ``n`` documents (a repeat's text gets a
    suffix, so that texts stay distinct)."""
    folder = Path(mc4_sampling.SAMPLE_DATA_DIR) / "multilingual"
    pattern = "c4-es.tfrecord-*.json.gz" if split == "train" else "c4-es-validation.tfrecord-*.json.gz"
    docs = []
    for path in sorted(folder.glob(pattern)):
        with gzip.open(path, "rt", encoding="utf-8") as f:
            docs += [json.loads(line) for line in f]
    if n is None:
        return docs
    out = []
    for i in range(n):
        doc = dict(docs[i % len(docs)])
        if i >= len(docs):
            doc["text"] = f"{doc['text']}\n({i // len(docs)})"
        out.append(doc)
    return out


def fineweb2_rows(docs: list[dict], start: int = 0) -> list[dict]:
    """FineWeb-2 rows for ``docs`` (document ``start + k`` for the k-th)."""
    rows = []
    for k, doc in enumerate(docs):
        i = start + k
        uid = hashlib.blake2b(f"fw2/{i}".encode(), digest_size=16).hexdigest()
        rows.append({
            "text": doc["text"],
            "id": f"<urn:uuid:{uid[:8]}-{uid[8:12]}-{uid[12:16]}-{uid[16:20]}-{uid[20:32]}>",
            "url": doc.get("url"),
            "date": doc.get("timestamp"),
            "dump": "CC-MAIN-2020-05",
            "file_path": f"s3://commoncrawl/crawl-data/CC-MAIN-2020-05/segments/{i % 97}/warc/x.warc.gz",
            "language": "spa",
            "language_score": round(0.6 + 0.4 * _u(i, "lid"), 6),
            "language_script": "Latn",
            # cluster sizes: mostly 1, a long tail (FineWeb-2 keeps one copy per MinHash cluster)
            "minhash_cluster_size": 1 + int(-3.0 * math.log(1.0 - _u(i, "mh"))),
            "top_langs": json.dumps({"spa_Latn_score": round(0.6 + 0.4 * _u(i, "lid"), 6)}),
        })
    return rows


def make_fineweb2(root, *, files: int = 4, docs_per_file: int | None = None, test_docs: int = 200,
                  row_group_size: int = 128, language: str = LANG) -> Path:
    """A FineWeb-2-shaped folder at ``root`` (``data/<language>/train`` with ``files`` Parquet files of
    ``docs_per_file`` documents each, default the sample's 3 600 split evenly; ``test`` with
    ``test_docs``); returns ``root``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    root = Path(root)
    per = docs_per_file or 3600 // files
    docs = sample_documents(per * files)
    start = 0
    for split, chunks in (("train", [docs[k * per:(k + 1) * per] for k in range(files)]),
                          ("test", [sample_documents(test_docs, "validation")] if test_docs else [])):
        folder = root / "data" / language / split
        folder.mkdir(parents=True, exist_ok=True)
        for k, chunk in enumerate(chunks):
            rows = fineweb2_rows(chunk, start if split == "train" else 10_000_000 + start)
            start += len(chunk)
            pq.write_table(pa.Table.from_pylist(rows), folder / f"000_{k:05d}.parquet", row_group_size=row_group_size)
    return root


def hplt3_rows(docs: list[dict], start: int = 0) -> list[dict]:
    """HPLT 3.0 rows for ``docs``: ``doc_scores[0]`` (0-10) the overall quality, then sub-scores."""
    rows = []
    for k, doc in enumerate(docs):
        i = start + k
        overall = round(10 * _u(i, "q"), 3)
        registers = {"IN": round(_u(i, "in"), 3), "NA": round(_u(i, "na"), 3), "OP": round(_u(i, "op"), 3)}
        rows.append({
            "id": hashlib.blake2b(f"hplt/{i}".encode(), digest_size=16).hexdigest(),
            "text": doc["text"],
            "u": doc.get("url"),
            "ts": doc.get("timestamp"),
            "lang": [LANG],
            "doc_scores": [overall, round(_u(i, "s1"), 3), round(_u(i, "s2"), 3)],
            "web-register": registers,
        })
    return rows


def quality_bin(row: dict) -> int:
    """The bin HPLT 3.0 files a document under: the integer part of ``doc_scores[0]``, at least 5."""
    return max(5, min(10, int(row["doc_scores"][0])))


def make_hplt3(root, *, n: int = 1200, language: str = LANG, per_file: int = 150) -> Path:
    """An HPLT-3.0-shaped folder at ``root``: ``<language>/<bin>_<k>.jsonl.zst`` (at most ``per_file``
    documents a file) and ``<language>.map`` listing the files (relative paths); returns ``root``."""
    import zstandard

    root = Path(root)
    rows = hplt3_rows(sample_documents(n))
    by_bin: dict[int, list[dict]] = {}
    for row in rows:
        by_bin.setdefault(quality_bin(row), []).append(row)
    folder = root / language
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for b in sorted(by_bin, reverse=True):
        chunk = by_bin[b]
        for k in range(0, len(chunk), per_file):
            name = f"{b}_{k // per_file + 1}.jsonl.zst"
            data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in chunk[k:k + per_file]).encode()
            (folder / name).write_bytes(zstandard.ZstdCompressor(level=3).compress(data))
            names.append(f"{language}/{name}")
    (root / f"{language}.map").write_text("".join(n + "\n" for n in names))
    return root


def make_jsonl(path, docs: list[dict], *, id_field: str | None = "doc_id") -> Path:
    """``docs`` as JSON lines at ``path`` (``.gz``/``.zst`` compressed by its name), with a ``doc_id``."""
    import zstandard

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = "".join(json.dumps({**({id_field: f"d{i}"} if id_field else {}), **d}, ensure_ascii=False) + "\n"
                   for i, d in enumerate(docs)).encode()
    if path.name.endswith(".gz"):
        data = gzip.compress(data, mtime=0)
    elif path.name.endswith(".zst"):
        data = zstandard.ZstdCompressor().compress(data)
    path.write_bytes(data)
    return path


@pytest.fixture(scope="session")
def fineweb2_folder(tmp_path_factory) -> Path:
    """A FineWeb-2-shaped folder: ``data/spa_Latn/train`` (4 x 900 documents, row groups of 128) and ``test``."""
    return make_fineweb2(tmp_path_factory.mktemp("fineweb2"))


@pytest.fixture(scope="session")
def hplt3_folder(tmp_path_factory) -> Path:
    """An HPLT-3.0-shaped folder: ``spa_Latn/<bin>_<k>.jsonl.zst`` (1 200 documents) and ``spa_Latn.map``."""
    return make_hplt3(tmp_path_factory.mktemp("hplt3"))


__all__ = ["LANG", "sample_documents", "fineweb2_rows", "make_fineweb2", "hplt3_rows", "make_hplt3", "make_jsonl",
           "quality_bin", "fineweb2_folder", "hplt3_folder"]
