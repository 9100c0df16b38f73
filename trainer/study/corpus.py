"""The study's documents: the unsampled corpus, its labels, the common eval set and the hold-out by content.

A corpus in the mC4 layout (``<data_dir>/multilingual/c4-<lang>[-validation].tfrecord-<shard>-of-<n>.json.gz``)
gives each document the id ``<split>/<shard>/<position>``; its labels come from a sidecar TSV
``split shard position label`` (the bundled sample ships ``kinds.tsv.gz``). JSON-lines files give the id
``<file name>/<line>`` and labels from a column.

The eval set is taken before any sampling (an mC4 split, or the documents whose content hash falls in
``eval.fraction``); every training document whose *content* (:func:`content_hash`: the text with its
whitespace collapsed) is also in the eval set is removed from the corpus every arm samples from.
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


def _mc4_split(cfg: StudyConfig, split: str, limit: Optional[int]) -> Documents:
    c = cfg.corpus
    folder = os.path.join(resolve_path(c.data_dir), "multilingual")
    suffix = "-validation" if split == "validation" else ""
    paths = sorted(glob.glob(os.path.join(folder, f"c4-{c.language}{suffix}.tfrecord-*-of-*.json.gz")))
    if not paths:
        raise DataError(f"corpus.data_dir: no mC4 files of {c.language!r} split {split!r} in {folder}")
    sidecar = _read_sidecar(resolve_path(c.labels)) if c.labels else None
    docs = Documents([], [], [])
    for path in paths:
        shard = int(_SHARD.search(os.path.basename(path)).group("shard"))
        with gzip.open(path, "rt", encoding="utf-8") as f:
            for pos, line in enumerate(f):
                if limit is not None and len(docs) >= limit:
                    return docs
                text = json.loads(line)[c.text_column]
                docs.ids.append(f"{split}/{shard}/{pos}")
                docs.texts.append(text)
                if sidecar is not None:
                    if (split, shard, pos) not in sidecar:
                        raise DataError(f"corpus.labels: no label for {split} shard {shard} position {pos}")
                    docs.labels.append(sidecar[(split, shard, pos)])
                else:
                    docs.labels.append(None)
    return docs


def _files(cfg: StudyConfig, limit: Optional[int]) -> Documents:
    c = cfg.corpus
    docs = Documents([], [], [])
    for path in [resolve_path(p) for p in c.files]:
        opener = gzip.open if path.endswith(".gz") else open
        try:
            with opener(path, "rt", encoding="utf-8") as f:
                for line_no, line in enumerate(f):
                    if limit is not None and len(docs) >= limit:
                        return docs
                    row = json.loads(line)
                    if not isinstance(row.get(c.text_column), str):
                        raise DataError(f"corpus.files: line {line_no + 1} of {path} has no text in {c.text_column!r}")
                    if c.labels and c.labels not in row:
                        raise DataError(f"corpus.labels: line {line_no + 1} of {path} has no column {c.labels!r}")
                    docs.ids.append(f"{os.path.basename(path)}/{line_no}")
                    docs.texts.append(row[c.text_column])
                    docs.labels.append(str(row[c.labels]) if c.labels else None)
        except FileNotFoundError:
            raise DataError(f"corpus.files: no file {path!r}") from None
    return docs


@dataclasses.dataclass
class StudyData:
    """The corpus every arm samples from (hold-out removed), the eval set, and what the hold-out removed."""

    train: Documents
    eval: Documents
    held_out_duplicates: int  # training documents removed because their content is in the eval set


def load_study_data(cfg: StudyConfig) -> StudyData:
    """Read the corpus, take the eval set, remove the eval contents from the training documents."""
    c, e = cfg.corpus, cfg.eval
    if c.data_dir is not None:
        train = _mc4_split(cfg, "train", c.max_documents)
        evals = _mc4_split(cfg, e.split, None) if e.split is not None else None
    else:
        train, evals = _files(cfg, c.max_documents), None
    if evals is None:  # a content-hash fraction of the corpus (independent of order and shards)
        cut = int(e.fraction * 2**32)
        in_eval = [int(content_hash(t)[:8], 16) < cut for t in train.texts]
        evals = train.subset([i for i, x in enumerate(in_eval) if x])
        train = train.subset([i for i, x in enumerate(in_eval) if not x])
    if e.max_documents is not None:
        evals = evals.subset(range(min(e.max_documents, len(evals))))
    if not len(evals):
        raise DataError("the eval set is empty; raise eval.fraction or give an eval.split with documents")
    eval_hashes = {content_hash(t) for t in evals.texts}
    keep = [i for i, t in enumerate(train.texts) if content_hash(t) not in eval_hashes]
    removed = len(train) - len(keep)
    train = train.subset(keep)
    if not len(train):
        raise DataError("no training documents are left after holding out the eval set")
    return StudyData(train, evals, removed)
