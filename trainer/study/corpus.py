"""The study's documents: the unsampled corpus file by file, its labels, the common eval set and the hold-out
by content. Nothing here holds the corpus in memory: one file at a time (:func:`read_shard`).

A corpus in the mC4 layout (``<data_dir>/multilingual/c4-<lang>[-validation].tfrecord-<shard>-of-<n>.json.gz``)
gives each document the id ``<split>/<shard>/<position>``; its labels come from a sidecar TSV
``split shard position label`` (the bundled sample ships ``kinds.tsv.gz``). JSON-lines files (also
``.jsonl.zst``) and Parquet files (a FineWeb-2 folder's ``data/<lang>/train/*.parquet``) give the id
``<file name>/<row>`` and labels from a column.

The eval set is taken before any sampling (an mC4 split, or the documents whose content hash falls in
``eval.fraction``); every training document whose *content* (:func:`content_hash`: the text with its
whitespace collapsed) is also in the eval set is removed from the corpus every arm samples from (:class:`HoldOut`).
"""

from __future__ import annotations

import dataclasses
import glob
import gzip
import hashlib
import json
import os
import re
from typing import Optional

from ..errors import DataError
from .config import StudyConfig, resolve_path

_SHARD = re.compile(r"c4-(?P<lang>[^.]+?)(?P<val>-validation)?\.tfrecord-(?P<shard>\d{5})-of-(?P<n>\d{5})\.json\.gz$")


@dataclasses.dataclass
class Documents:
    """Parallel lists: ids, texts, labels (None without labels)."""

    ids: list
    texts: list
    labels: list

    def __len__(self) -> int:
        return len(self.ids)

    def __add__(self, other: "Documents") -> "Documents":
        return Documents(self.ids + other.ids, self.texts + other.texts, self.labels + other.labels)

    def subset(self, rows) -> "Documents":
        return Documents([self.ids[i] for i in rows], [self.texts[i] for i in rows], [self.labels[i] for i in rows])


def content_hash(text: str) -> str:
    """The identity of a document's content: SHA-1 of its words joined by single spaces (first 16 hex digits)."""
    return hashlib.sha1(" ".join(text.split()).encode("utf-8")).hexdigest()[:16]


def _read_sidecar(path: str) -> dict:
    opener = gzip.open if path.endswith(".gz") else open
    labels = {}
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            header = f.readline().rstrip("\n").split("\t")
            if header[:3] != ["split", "shard", "position"] or len(header) != 4:
                raise DataError(f"corpus.labels: {path} must start with the header 'split shard position <label>'")
            for line in f:
                split, shard, pos, label = line.rstrip("\n").split("\t")
                labels[(split, int(shard), int(pos))] = label
    except FileNotFoundError:
        raise DataError(f"corpus.labels: no file {path!r}") from None
    return labels


@dataclasses.dataclass(frozen=True)
class Shard:
    """One file of the corpus, read whole when its turn comes (never the corpus at once)."""

    index: int  # its place among the corpus's training files (the study's shard number)
    path: str
    split: str  # mC4 layout: train / validation; JSON lines: train
    number: Optional[int]  # the mC4 shard number (keys the sidecar labels); None for JSON lines


def _mc4_paths(cfg: StudyConfig, split: str) -> list[str]:
    c = cfg.corpus
    folder = os.path.join(resolve_path(c.data_dir), "multilingual")
    suffix = "-validation" if split == "validation" else ""
    paths = sorted(glob.glob(os.path.join(folder, f"c4-{c.language}{suffix}.tfrecord-*-of-*.json.gz")))
    if not paths:
        raise DataError(f"corpus.data_dir: no mC4 files of {c.language!r} split {split!r} in {folder}")
    return paths


def training_shards(cfg: StudyConfig) -> list[Shard]:
    """The files every arm samples from, in order."""
    if cfg.corpus.data_dir is None:
        return [Shard(i, resolve_path(p), "train", None) for i, p in enumerate(cfg.corpus.files)]
    return [Shard(i, p, "train", int(_SHARD.search(os.path.basename(p)).group("shard")))
            for i, p in enumerate(_mc4_paths(cfg, "train"))]


def load_labels(cfg: StudyConfig) -> Optional[dict]:
    """The mC4 layout's sidecar labels ``{(split, shard, position): label}`` (None without)."""
    c = cfg.corpus
    return _read_sidecar(resolve_path(c.labels)) if c.labels and c.data_dir is not None else None


def read_shard(cfg: StudyConfig, shard: Shard, sidecar: Optional[dict], limit: Optional[int] = None) -> Documents:
    """The documents of one file (at most ``limit``), with their ids and labels."""
    c = cfg.corpus
    if shard.number is None and not shard.path.endswith((".json", ".jsonl", ".json.gz", ".jsonl.gz")):
        return _read_rows(cfg, shard, limit)
    docs = Documents([], [], [])
    opener = gzip.open if shard.path.endswith(".gz") else open
    try:
        with opener(shard.path, "rt", encoding="utf-8") as f:
            for pos, line in enumerate(f):
                if limit is not None and len(docs) >= limit:
                    break
                where = f"line {pos + 1} of {shard.path}"
                try:
                    row = json.loads(line)
                except ValueError as e:
                    raise DataError(f"corpus: {where} is not a JSON object ({e})") from None
                if not isinstance(row, dict) or not isinstance(row.get(c.text_column), str):
                    raise DataError(f"corpus: {where} has no text in {c.text_column!r}")
                docs.texts.append(row[c.text_column])
                if shard.number is not None:
                    docs.ids.append(f"{shard.split}/{shard.number}/{pos}")
                    key = (shard.split, shard.number, pos)
                    if sidecar is not None and key not in sidecar:
                        raise DataError(f"corpus.labels: no label for {shard.split} shard {shard.number} "
                                        f"position {pos}")
                    docs.labels.append(sidecar[key] if sidecar is not None else None)
                else:
                    docs.ids.append(f"{os.path.basename(shard.path)}/{pos}")
                    if c.labels and c.labels not in row:
                        raise DataError(f"corpus.labels: {where} has no column {c.labels!r}")
                    docs.labels.append(str(row[c.labels]) if c.labels else None)
    except FileNotFoundError:
        raise DataError(f"corpus.files: no file {shard.path!r}") from None
    except (OSError, EOFError, UnicodeDecodeError) as e:  # a damaged or truncated file
        raise DataError(f"corpus: cannot read {shard.path} ({type(e).__name__}: {e}); download it again") from None
    return docs


def _read_rows(cfg: StudyConfig, shard: Shard, limit: Optional[int]) -> Documents:
    """The documents of a Parquet or ``.jsonl.zst`` file of ``corpus.files`` (a FineWeb-2 or HPLT 3.0 file),
    read by the corpus sources' one reader of each format (:mod:`mc4_sampling.sources.formats`)."""
    from mc4_sampling.common.errors import UserError
    from mc4_sampling.sources.formats import iter_rows

    c = cfg.corpus
    docs = Documents([], [], [])
    name = os.path.basename(shard.path)
    rows = iter_rows(shard.path, text_field=c.text_column, columns=[c.labels] if c.labels else None)
    try:
        for pos, row in rows:
            if limit is not None and len(docs) >= limit:
                break
            if c.labels and row.get(c.labels) is None:
                raise DataError(f"corpus.labels: row {pos + 1} of {shard.path} has no {c.labels!r}")
            docs.ids.append(f"{name}/{pos}")
            docs.texts.append(row[c.text_column])
            docs.labels.append(str(row[c.labels]) if c.labels else None)
    except UserError as e:
        raise DataError(f"corpus: {e}") from None
    finally:
        rows.close()
    return docs


def in_eval_fraction(text: str, fraction: float) -> bool:
    """Whether a document's content hash falls in the eval fraction (independent of order and shards)."""
    return int(content_hash(text)[:8], 16) < int(fraction * 2**32)


@dataclasses.dataclass
class HoldOut:
    """Which training documents no arm may keep: those whose content is in the eval set (and, when the eval set
    is a content-hash fraction of the corpus, every document of that fraction)."""

    hashes: set
    fraction: Optional[float]

    @classmethod
    def of(cls, cfg: StudyConfig, evals: Documents) -> "HoldOut":
        return cls({content_hash(t) for t in evals.texts}, cfg.eval.fraction if cfg.eval.split is None else None)

    def __call__(self, text: str) -> bool:
        if self.fraction is not None and in_eval_fraction(text, self.fraction):
            return True
        return content_hash(text) in self.hashes


def load_eval(cfg: StudyConfig) -> Documents:
    """The common eval set, taken before any sampling: an mC4 split, or the distinct documents of the corpus
    whose content hash falls in ``eval.fraction`` (at most ``eval.max_documents`` of them, in corpus order)."""
    e = cfg.eval
    sidecar = load_labels(cfg)
    evals = Documents([], [], [])
    if e.split is not None:
        for i, path in enumerate(_mc4_paths(cfg, e.split)):
            number = int(_SHARD.search(os.path.basename(path)).group("shard"))
            left = None if e.max_documents is None else e.max_documents - len(evals)
            got = read_shard(cfg, Shard(i, path, e.split, number), sidecar, left)
            evals = evals + got
            if left is not None and len(evals) >= e.max_documents:
                break
    else:
        read = 0
        for shard in training_shards(cfg):
            limit = None if cfg.corpus.max_documents is None else cfg.corpus.max_documents - read
            docs = read_shard(cfg, shard, sidecar, limit)
            read += len(docs)
            seen = {content_hash(t) for t in evals.texts}
            rows = []
            for i, t in enumerate(docs.texts):  # distinct contents: a copy of an eval document is only held out
                if in_eval_fraction(t, e.fraction) and content_hash(t) not in seen:
                    seen.add(content_hash(t))
                    rows.append(i)
            if e.max_documents is not None:
                rows = rows[: e.max_documents - len(evals)]
            got = docs.subset(rows)
            evals = evals + got
            full = e.max_documents is not None and len(evals) >= e.max_documents
            if full or (limit is not None and read >= cfg.corpus.max_documents):
                break
    if not len(evals):
        raise DataError("the eval set is empty; raise eval.fraction or give an eval.split with documents")
    return evals
