"""The study's one pass over the unsampled corpus, file by file: every document that is not held out is
tokenised once (with the study's tokenizer) and scored once by each scorer the arms name; each arm's sample
is then a selection of these documents, written as the unit's token shards without tokenising again.

Layout (``<output_dir>/shared/corpus/``), one entry per corpus file ``NNNNN``::

    train/NNNNN.ds[.index|.metadata]   the tokens of its documents that are not held out (token-shard format,
                                       :mod:`trainer.data.token_shards`), in file order
    NNNNN.npz                          per such document: ``keys`` (the 64-bit hash of its id, which keys every
                                       sampler draw), ``tokens`` (its token count), ``labels``, and one
                                       ``score.<scorer>`` array per scorer; ``read`` / ``held_out`` counts.
                                       Written last: a file is done when its ``.npz`` and ``.ds`` exist (a rerun
                                       skips it)

Memory: one corpus file at a time per worker; the arrays of the whole corpus (a few bytes per document)
are what :class:`CorpusIndex` holds. Files are indexed by ``workers`` processes in parallel (each one dies
with its parent); the result does not depend on their number.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from typing import Optional

import numpy as np

from mc4_sampling.common.outputs import atomic_folder, atomic_path

from ..errors import DataError
from . import sampling
from .config import StudyConfig
from .corpus import HoldOut, Shard, load_labels, read_shard, training_shards

log = logging.getLogger(__name__)

#: documents scored and tokenised together
BATCH = 1024
#: the index's format (a folder of another format is rebuilt)
FORMAT = "study-corpus-index/1"


def _npz_path(folder: str, shard: Shard) -> str:
    return os.path.join(folder, f"{shard.index:05d}.npz")


def _ds_path(folder: str, shard: Shard) -> str:
    return os.path.join(folder, "train", f"{shard.index:05d}.ds")


def index_shard(job: dict) -> dict:
    """Index one corpus file (see the module); returns its counts. Runs in a worker process or in this one."""
    from mc4_sampling.draw import hashes64

    from ..data.shard_writer import write_shard
    from ..data.token_shards import token_dtype
    from ..data.tokenizer import TokenizerFns, load_tokenizer

    cfg, shard, folder = job["cfg"], job["shard"], job["folder"]
    npz = _npz_path(folder, shard)
    if os.path.exists(npz) and os.path.exists(_ds_path(folder, shard)):  # done (a lost token file: again)
        with np.load(npz) as z:
            return {"read": int(z["read"]), "held_out": int(z["held_out"]), "documents": len(z["keys"])}
    docs = read_shard(cfg, shard, job["sidecar"], job.get("limit"))
    hold = HoldOut(job["eval_hashes"], job["fraction"])
    keep = [i for i, t in enumerate(docs.texts) if not hold(t)]
    tok = TokenizerFns(load_tokenizer(job["tokenizer_dir"]))
    ids: list = []
    texts = [docs.texts[i] for i in keep]
    for k in range(0, len(texts), BATCH):
        ids += tok.encode(texts[k: k + BATCH])
    nonempty = [j for j, x in enumerate(ids) if len(x)]  # a document without tokens trains nothing
    rows = [keep[j] for j in nonempty]
    out = {"keys": hashes64([docs.ids[i] for i in rows]).astype(np.uint64),
           "tokens": np.asarray([len(ids[j]) for j in nonempty], np.int64),
           "labels": np.asarray([docs.labels[i] or "" for i in rows], dtype=str),
           "read": np.int64(len(docs)), "held_out": np.int64(len(docs) - len(keep))}
    for key, spec in job["scorers"].items():
        scores = [sampling.score_texts(spec, [docs.texts[i] for i in rows[k: k + BATCH]], cfg.corpus.language)
                  for k in range(0, len(rows), BATCH)]
        out[f"score.{key}"] = np.concatenate(scores) if scores else np.zeros((0,), np.float64)
    os.makedirs(os.path.join(folder, "train"), exist_ok=True)
    write_shard(_ds_path(folder, shard), [ids[j] for j in nonempty], tok.eos_id, token_dtype(tok.vocab_size),
                "study")
    with atomic_path(npz) as tmp:
        np.savez(tmp, **out)
    return {"read": len(docs), "held_out": len(docs) - len(keep), "documents": len(rows)}


def _pool_initializer() -> None:
    from mc4_sampling.common.processes import die_with_parent

    die_with_parent()


@dataclasses.dataclass
class CorpusIndex:
    """The arrays of every indexed document, in corpus order, and where its tokens are."""

    folder: str
    shards: list  # Shard per corpus file
    offsets: np.ndarray  # document offsets of the files (len(shards) + 1)
    keys: np.ndarray
    tokens: np.ndarray
    labels: Optional[np.ndarray]  # None without labels
    scores: dict  # scorer key -> scores
    read: int  # documents read
    held_out: int  # documents read that no arm may keep (their content is in the eval set)

    def __len__(self) -> int:
        return len(self.keys)

    def shard_rows(self, i: int) -> slice:
        return slice(int(self.offsets[i]), int(self.offsets[i + 1]))


def build_index(cfg: StudyConfig, evals, tokenizer_dir: str, folder: str, workers: int = 1,
                progress=None) -> CorpusIndex:
    """Index every corpus file not indexed yet (``workers`` processes), then read the index."""
    shards = training_shards(cfg)
    marker = os.path.join(folder, "index.json")
    scorers = sampling.scorers(cfg.arms)
    with open(os.path.join(tokenizer_dir, "tokenizer.json"), "rb") as f:
        tokenizer = hashlib.sha256(f.read()).hexdigest()
    settings = {"format": FORMAT, "scorers": scorers, "tokenizer_sha256": tokenizer,
                "files": [os.path.basename(s.path) for s in shards]}
    if os.path.isfile(marker):
        with open(marker, encoding="utf-8") as f:
            if json.load(f) != settings:
                raise DataError(f"{folder} holds a corpus index made with other settings; delete it to index again")
    os.makedirs(folder, exist_ok=True)
    from .units import write_json

    write_json(marker, settings)
    hold = HoldOut.of(cfg, evals)
    base = {"cfg": cfg, "folder": folder, "sidecar": load_labels(cfg), "eval_hashes": hold.hashes,
            "fraction": hold.fraction, "tokenizer_dir": tokenizer_dir, "scorers": scorers}
    done = 0
    if cfg.corpus.max_documents is not None:  # a prefix of the corpus: file after file
        left, used = cfg.corpus.max_documents, []
        for shard in shards:
            if left <= 0:
                break
            counts = index_shard({**base, "shard": shard, "limit": left})
            left -= counts["read"]
            used.append(shard)
            done += 1
            if progress:
                progress(done, len(shards))
        shards = used
    elif workers <= 1 or len(shards) == 1:
        for shard in shards:
            index_shard({**base, "shard": shard})
            done += 1
            if progress:
                progress(done, len(shards))
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        ctx = multiprocessing.get_context("spawn")  # no forked copy of JAX's threads
        with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_pool_initializer) as pool:
            for fut in as_completed([pool.submit(index_shard, {**base, "shard": s}) for s in shards]):
                fut.result()
                done += 1
                if progress:
                    progress(done, len(shards))
    return read_index(folder, shards, list(scorers))


def read_index(folder: str, shards: list, scorer_keys: list) -> CorpusIndex:
    parts = []
    for shard in shards:
        with np.load(_npz_path(folder, shard)) as z:
            parts.append({k: z[k] for k in z.files})
    offsets = np.concatenate([[0], np.cumsum([len(p["keys"]) for p in parts])]).astype(np.int64)
    cat = lambda k, dtype: np.concatenate([p[k] for p in parts]).astype(dtype) if parts else np.zeros(0, dtype)  # noqa: E731
    labels = np.concatenate([p["labels"] for p in parts]) if parts else np.zeros(0, str)
    if not len(labels) or not labels.any():
        labels = None
    return CorpusIndex(folder, shards, offsets, cat("keys", np.uint64), cat("tokens", np.int64), labels,
                       {k: cat(f"score.{k}", np.float64) for k in scorer_keys},
                       int(sum(int(p["read"]) for p in parts)), int(sum(int(p["held_out"]) for p in parts)))


def write_selection(index: CorpusIndex, mask: np.ndarray, folder: str, tokenizer_dir: str,
                    eval_texts: list) -> dict:
    """The documents of ``mask`` as a token-shard folder the trainer reads (``data.token_shards``): one train
    shard per corpus file (their tokens copied from the index), the eval split (``eval_texts``), the manifests
    (:class:`~trainer.data.shard_writer.TokenShardWriter`). Written under a temporary name and renamed whole."""
    from ..data.holdout import content_key, text_sha256
    from ..data.shard_writer import TokenShardWriter
    from ..data.tokenizer import TokenizerFns, load_tokenizer
    from .units import write_json

    tok = TokenizerFns(load_tokenizer(tokenizer_dir))
    with atomic_folder(folder) as tmp:
        writer = TokenShardWriter(tmp, tok, "study", dump=write_json)
        os.makedirs(os.path.join(tmp, "train"))
        os.makedirs(os.path.join(tmp, "eval"))
        documents = tokens = 0
        for i, shard in enumerate(index.shards):
            rows = index.shard_rows(i)
            picked = np.flatnonzero(mask[rows])
            if not len(picked):
                continue
            split = _ShardTokens(_ds_path(index.folder, shard), writer.dtype)
            docs = [split.document(int(j)) for j in picked]
            tokens += writer.write("train", shard.index, docs)
            documents += len(docs)
        eval_tokens = writer.write("eval", 0, tok.encode(list(eval_texts)))
        writer.write_eval_manifest({
            "rule": "trainer study: the study's common eval set, taken before any sampling; no arm keeps a document "
                    "whose normalised text is an eval document's (trainer/study/corpus.py)",
            "num_documents": len(eval_texts),
            "documents": [{"sha256": text_sha256(t), "content_sha256": content_key(t).hex()} for t in eval_texts]})
        writer.write_manifest(
            holdout={"study": "eval set held out of every arm by content"},
            splits={"train": {"documents": documents, "tokens": tokens},
                    "eval": {"documents": len(eval_texts), "tokens": eval_tokens}},
            held_out_of_training={"exact_duplicates_of_eval": index.held_out})
    return {"documents": documents, "tokens": tokens}


class _ShardTokens:
    """The documents of one indexed file (memory-mapped)."""

    def __init__(self, path: str, dtype):
        self.tokens = np.memmap(path, dtype=dtype, mode="r") if os.path.getsize(path) else np.zeros(0, dtype)
        self.ends = np.fromfile(path + ".index", dtype="<u8").astype(np.int64)

    def document(self, j: int) -> np.ndarray:
        """Document ``j``'s tokens without its final ``</s>``."""
        start = int(self.ends[j - 1]) if j else 0
        return np.asarray(self.tokens[start: int(self.ends[j]) - 1])

