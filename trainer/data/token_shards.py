"""Token shards: the format, and its reader: documents tokenised once (``mc4-sampling publish --tokenizer``,
the study), trained on from memory maps. The one writer is :mod:`trainer.data.shard_writer`.

Format (datatrove's tokenised format, readable by datatrove's ``DatatroveFolderDataset`` and nanotron)::

    <folder>/manifest.json             format, tokenizer (name, SHA-256 of its JSON), hold-out settings, splits
    <folder>/eval_manifest.json        the eval documents' SHA-256 (trainer.data.holdout.eval_manifest)
    <folder>/<split>/NNNNN.ds          the tokens of every document, each followed by </s>, little-endian
                                       uint16 (vocabulary < 65 536) or uint32
    <folder>/<split>/NNNNN.ds.index    uint64 little-endian: the end (exclusive, in tokens) of each document
    <folder>/<split>/NNNNN.ds.metadata "<tokenizer>|<token bytes>\\n<tokens>\\n<tokens, humanised>"

``split`` is ``train`` (the hold-out already applied: no eval document nor duplicate of one) and
``eval`` (the eval documents, in order). Every file is written under a temporary name and renamed.

Training order, the same for any number of processes: the train documents in shard order form
blocks of ``data.shuffle_buffer`` documents; epoch ``e`` permutes block ``b`` with
``default_rng([seed, e, b])`` (as the streaming path); the epochs' token streams are concatenated
into one endless stream and batch ``n`` row ``r`` is ``<s>`` followed by its tokens
``[(n B + r)(L - 1), (n B + r + 1)(L - 1))``. The position is the number of batches, so a run resumes
exactly on any process count, and a process can read only the rows it needs.
"""

from __future__ import annotations

import dataclasses
import glob
import hashlib
import json
import logging
import os
import shutil
import zlib
from typing import Iterator, Optional

import numpy as np

from mc4_sampling.common.outputs import atomic_path

from ..errors import DataError

log = logging.getLogger(__name__)

FORMAT = "mc4-sampling-token-shards/1"
MANIFEST = "manifest.json"
EVAL_MANIFEST = "eval_manifest.json"


def token_dtype(vocab_size: int) -> np.dtype:
    """uint16 when every id fits (datatrove's ``token_size=2``), else uint32."""
    return np.dtype("<u2") if vocab_size <= 1 << 16 else np.dtype("<u4")


def tokenizer_sha256(tokenizer_json: str) -> str:
    """SHA-256 of the tokenizer's JSON (``tokenizers.Tokenizer.to_str()``): shards and trainer must agree."""
    return hashlib.sha256(tokenizer_json.encode("utf-8")).hexdigest()


class TokenSplit:
    """The ``.ds`` shards of one split as one virtual array of tokens (memory-mapped) and its documents."""

    def __init__(self, folder: str, dtype: np.dtype):
        self.paths = sorted(glob.glob(os.path.join(folder, "*.ds")))
        self.maps = [np.memmap(p, dtype=dtype, mode="r") if os.path.getsize(p) else np.zeros((0,), dtype)
                     for p in self.paths]
        ends, starts, offset = [], [], 0
        self.file_offsets = []
        for p, m in zip(self.paths, self.maps):
            e = np.fromfile(p + ".index", dtype="<u8").astype(np.int64)
            if (len(e) and e[-1] != len(m)) or (not len(e) and len(m)):
                raise DataError(f"token shard {p}: its index ends at {e[-1] if len(e) else 0}, the file holds "
                                f"{len(m)} tokens; the shard is damaged: publish it again")
            self.file_offsets.append(offset)
            starts.append(offset + np.concatenate([[0], e[:-1]]) if len(e) else e)
            ends.append(offset + e)
            offset += len(m)
        self.starts = np.concatenate(starts) if starts else np.zeros((0,), np.int64)
        self.lengths = (np.concatenate(ends) if ends else np.zeros((0,), np.int64)) - self.starts
        self.file_offsets = np.asarray(self.file_offsets + [offset], np.int64)
        self.num_tokens = offset
        self.single = len(self.maps) == 1

    def __len__(self) -> int:
        return len(self.starts)

    def take(self, index: np.ndarray) -> np.ndarray:
        """Tokens at virtual positions ``index`` (int32)."""
        if self.single:
            return self.maps[0][index].astype(np.int32)
        out = np.empty(len(index), np.int32)
        f = np.searchsorted(self.file_offsets, index, side="right") - 1
        for k in range(int(f.min()), int(f.max()) + 1) if len(index) else ():
            m = f == k
            if m.any():
                out[m] = self.maps[k][index[m] - self.file_offsets[k]]
        return out

    def documents(self) -> list[np.ndarray]:
        return [self.take(np.arange(s, s + n)) for s, n in zip(self.starts, self.lengths)]


def block_order(seed: int, epoch: int, num_docs: int, block_size: int) -> np.ndarray:
    """The documents of one epoch in training order: ``b S + default_rng([seed, epoch, b]).permutation(n_b)``
    for each block ``b`` of ``S = block_size`` documents (:func:`trainer.data.batches.block_permutation`)."""
    from .batches import block_permutation

    parts = [b * block_size + block_permutation(seed, epoch, b, min(block_size, num_docs - b * block_size))
             for b in range(-(-num_docs // block_size))]
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros((0,), np.int64)


class TokenShardStream:
    """The trainer's data from a token-shard folder, with the interface of :class:`~.batches.BatchStream`."""

    source = "token-shards"

    def __init__(self, cfg, tokenizer, batch_size: int, seed: int, rank: int = 0, world_size: int = 1,
                 audit_dir: Optional[str] = None):
        from .tokenizer import TokenizerFns

        self.cfg = cfg
        self.folder = cfg.token_shards
        self.tok = tokenizer if isinstance(tokenizer, TokenizerFns) else TokenizerFns(tokenizer)
        self.batch_size, self.seed = batch_size, seed
        self.rank, self.world_size = rank, world_size
        if audit_dir:
            log.warning("logging.audit lists documents of the streaming path; token shards are audited by their "
                        "eval_manifest.json and the publish statistics")
        self._manifest = None
        self._train = self._eval = None
        self._epochs: dict = {}

    # -- the folder -----------------------------------------------------------------------------
    def manifest(self) -> dict:
        if self._manifest is None:
            path = os.path.join(self.folder, MANIFEST)
            try:
                with open(path, encoding="utf-8") as f:
                    m = json.load(f)
            except (OSError, ValueError) as e:
                raise DataError(f"data.token_shards={self.folder!r}: no readable {MANIFEST} ({e}); write the "
                                "shards with `mc4-sampling publish --tokenizer DIR`") from None
            if m.get("format") != FORMAT:
                raise DataError(f"data.token_shards={self.folder!r}: format {m.get('format')!r}, expected {FORMAT!r}")
            want = tokenizer_sha256(self.tok.to_json())
            if m.get("tokenizer_sha256") != want:
                raise DataError(f"data.token_shards={self.folder!r} was tokenised with another tokenizer "
                                f"({m.get('tokenizer')!r}) than data.tokenizer={self.cfg.tokenizer!r}; use the same "
                                "tokenizer or tokenise again")
            if m.get("eos_id") != self.tok.eos_id:
                raise DataError(f"data.token_shards={self.folder!r}: documents end with id {m.get('eos_id')}, the "
                                f"tokenizer's </s> is {self.tok.eos_id}")
            self._manifest = m
        return self._manifest

    def split(self, name: str) -> TokenSplit:
        m = self.manifest()
        return TokenSplit(os.path.join(self.folder, name), np.dtype(m["dtype"]))

    @property
    def train(self) -> TokenSplit:
        if self._train is None:
            self._train = self.split("train")
        return self._train

    def check_source(self) -> None:
        if not len(self.train):
            raise DataError(f"data.token_shards={self.folder!r} holds no training documents")
        m = self.manifest()
        log.info("token shards %s: %d training documents (%d tokens); the hold-out was applied when they were "
                 "written (%s; data.num_eval_samples / eval_fraction / holdout_seed are not used): %s",
                 self.folder, len(self.train), self.train.num_tokens, m.get("holdout"),
                 m.get("held_out_of_training"))

    # -- eval -----------------------------------------------------------------------------------
    def eval_documents(self) -> list[np.ndarray]:
        if self._eval is None:
            self._eval = self.split("eval").documents()
        return self._eval

    @property
    def num_eval_documents(self) -> int:
        return len(self.eval_documents())

    def eval_rows(self, seq_len: int) -> np.ndarray:
        """The eval documents packed like training ones, the last partial sequence padded."""
        from .packing import pack_stream, pad_final

        docs = self.eval_documents()
        if not docs:
            return np.zeros((0, seq_len), np.int32)
        seqs, rem = pack_stream(np.zeros((0,), np.int32), np.concatenate(docs), seq_len, self.tok.bos_id)
        return np.concatenate([seqs, pad_final(rem, seq_len, self.tok.bos_id, self.tok.pad_id)])

    def write_eval_manifest(self, path: str) -> None:
        """Copy the shards' eval manifest into the run folder (temporary name, then renamed)."""
        with atomic_path(path) as tmp:
            shutil.copyfile(os.path.join(self.folder, EVAL_MANIFEST), tmp)

    # -- training -------------------------------------------------------------------------------
    def _epoch(self, epoch: int):
        """``(order, cumulative lengths)`` of one epoch (the two most recent kept)."""
        if epoch not in self._epochs:
            order = block_order(self.seed, epoch, len(self.train), self.cfg.shuffle_buffer)
            self._epochs[epoch] = (order, np.cumsum(self.train.lengths[order]))
            for old in sorted(self._epochs)[:-2]:
                del self._epochs[old]
        return self._epochs[epoch]

    def stream_tokens(self, start: int, stop: int) -> np.ndarray:
        """Tokens ``[start, stop)`` of the endless stream (epoch after epoch)."""
        T = self.train.num_tokens
        out = []
        while start < stop:
            epoch, x = divmod(start, T)
            y = min(T, x + stop - start)
            order, cum = self._epoch(epoch)
            i0 = int(np.searchsorted(cum, x, side="right"))
            i1 = int(np.searchsorted(cum, y - 1, side="right"))
            docs = order[i0: i1 + 1]
            lengths = self.train.lengths[docs]
            before = cum[i0] - lengths[0]  # stream offset of the first document's first token
            first = np.cumsum(lengths) - lengths
            index = np.repeat(self.train.starts[docs] - first, lengths) + np.arange(int(lengths.sum()))
            out.append(self.train.take(index[x - before: y - before]))
            start += y - x
        return np.concatenate(out) if len(out) != 1 else out[0]

    def rows(self, batch: int, rows: Optional[np.ndarray] = None) -> np.ndarray:
        """Rows (all, or the given indices) of global batch ``batch``: ``[<s>] + L - 1`` stream tokens each."""
        L, B = self.cfg.max_seq_length, self.batch_size
        rows = np.arange(B) if rows is None else np.asarray(rows)
        out = np.empty((len(rows), L), np.int32)
        out[:, 0] = self.tok.bos_id
        # contiguous runs of rows are read at once
        cuts = np.flatnonzero(np.diff(rows) != 1) + 1
        for run in np.split(np.arange(len(rows)), cuts):
            if not len(run):
                continue
            a = (batch * B + int(rows[run[0]])) * (L - 1)
            out[run, 1:] = self.stream_tokens(a, a + len(run) * (L - 1)).reshape(len(run), L - 1)
        return out

    def batches(self, position=None, rows: Optional[np.ndarray] = None) -> Iterator:
        """Endless global batches (or only ``rows`` of each) from ``position`` (a batch count)."""
        from .batches import POSITION_VERSION, Batch, StreamPosition

        pos = position if position is not None else StreamPosition(version=POSITION_VERSION)
        if pos.batches and pos.source != self.source:
            raise DataError(f"the saved stream position is of the {pos.source!r} path, the config reads token "
                            "shards; set checkpoint.init_data_position=false to start the data afresh")
        if pos.shuffle_buffer and pos.shuffle_buffer != self.cfg.shuffle_buffer:
            raise DataError(f"the saved stream position uses data.shuffle_buffer={pos.shuffle_buffer}, the config "
                            f"{self.cfg.shuffle_buffer}; use the same value to resume")
        n = pos.batches
        per_batch = self.batch_size * (self.cfg.max_seq_length - 1)
        while True:
            tokens = self.rows(n, rows)
            n += 1
            p = dataclasses.replace(pos, batches=n, version=POSITION_VERSION, shuffle_buffer=self.cfg.shuffle_buffer,
                                    source=self.source, epoch=(n * per_batch) // self.train.num_tokens,
                                    remainder=[], block_state=None)
            yield Batch(tokens, p, zlib.crc32(tokens.tobytes()))
