"""The batch stream: held-out eval documents, block shuffle, batched tokenisation, packing, position.

The stream is *global*: every process reads the whole source and produces the same global batch
(its documents, order and packing are a function of the seed and the data alone); the trainer
puts on its devices only the rows they hold (:meth:`trainer.train.Trainer.device_batch`). So a
run on 1, 2 or 4 processes trains on the same batches and can resume on another process count.

Document order (every epoch the same)::

    [ block 0: shuffle_buffer documents ][ block 1 ] ...   (the whole stream, eval documents included)

The eval set and what is excluded from training are decided by content (:mod:`trainer.data.holdout`):
each block's documents that duplicate an eval document are dropped, the rest are permuted with
``default_rng([seed, epoch, block])`` and tokenised ``tokenize_batch_size`` documents at a time,
then packed (:mod:`trainer.data.packing`). The :class:`StreamPosition` attached to every batch
is small and exact: the ``datasets`` ``state_dict()`` at the start of the current block, how many
permuted documents of the block were tokenised, and the tokens not yet emitted. Resuming from it
reproduces the following batches bit for bit; no document is repeated or skipped.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import logging
import os
import zlib
from typing import Callable, Iterator, NamedTuple, Optional

import numpy as np

from ..config import DataConfig
from ..errors import DataError
from .holdout import HoldOut, select_eval_texts
from .nsp import PairStats, labelled_rows, skipped_message
from .packing import pack, pack_stream, pad_final, token_stream, unpack
from .stream import document_hash, document_text, load_stream
from .tokenizer import TokenizerFns

log = logging.getLogger(__name__)


@dataclasses.dataclass
class StreamPosition:
    epoch: int = 0
    block: int = 0
    block_state: Optional[dict] = None  # datasets state_dict() before the block's first document
    docs_before_block: int = 0  # documents of this epoch's stream (eval ones included) before the block
    offset: int = 0  # documents of the permuted block already tokenised
    # stream tokens not yet in a batch (a list once read back from JSON; an int32 array in the
    # positions the stream emits, which are cheap shallow copies: nothing mutates them)
    remainder: list = dataclasses.field(default_factory=list)
    batches: int = 0  # batches produced since the start of training
    documents: int = 0  # training documents tokenised since the start of training
    shuffle_buffer: int = 0  # block size the position refers to
    # 1: written before the global order and the hold-out by content (per-process streams, eval
    # documents skipped by position); 2: the global stream of this module
    version: int = 1
    source: str = "stream"  # "stream" (this module) or "token-shards" (trainer.data.token_shards)

    def to_json(self) -> dict:
        d = dataclasses.asdict(self)
        d["remainder"] = np.asarray(self.remainder, np.int64).tolist()
        return d

    @classmethod
    def from_json(cls, d: dict) -> "StreamPosition":
        return cls(**d)


class _Chunk(NamedTuple):
    """``data.tokenize_batch_size`` documents of a shuffled block and where they sit in the stream."""

    epoch: int
    block: int
    block_state: Optional[dict]  # datasets state_dict() before the block's first document
    docs_before_block: int
    end: int  # documents of the permuted block tokenised once this chunk is
    texts: list


class Batch(NamedTuple):
    tokens: np.ndarray  # [local_batch, length] int32, every row starts with <s> (NSP: length + 1, the label last)
    position: StreamPosition  # where the stream stands after this batch
    digest: int  # crc32 of the tokens (logged, to compare runs)


def block_permutation(seed: int, epoch: int, block: int, n: int) -> np.ndarray:
    """The shuffle of one block: ``default_rng([seed, epoch, block]).permutation(n)`` (pure)."""
    return np.random.default_rng([seed, epoch, block]).permutation(n)


POSITION_VERSION = 2


class BatchStream:
    """Produces the global training batches of ``batch_size`` packed sequences and the eval set.

    ``rank`` and ``world_size`` only name the audit files: every process gets the same batches.
    """

    def __init__(self, cfg: DataConfig, tokenizer, batch_size: int, seed: int, rank: int = 0,
                 world_size: int = 1, audit_dir: Optional[str] = None, open_fn: Callable = load_stream,
                 nsp: bool = False):
        self.cfg = cfg
        self.tok = tokenizer if isinstance(tokenizer, TokenizerFns) else TokenizerFns(tokenizer)
        self.batch_size = batch_size
        self.seed = seed
        self.rank, self.world_size = rank, world_size
        self.audit_dir = audit_dir
        self.open_fn = open_fn
        # training.objective mlm+nsp: each tokenising chunk of documents becomes [CLS] A [SEP] B [SEP] rows
        # (trainer.data.nsp) of max_seq_length + 1 columns, the last one the next-sentence label
        self.nsp = nsp
        self.nsp_stats = PairStats()
        self.num_eval = cfg.num_eval_samples
        self._eval_texts: Optional[list[str]] = None
        self._holdout: Optional[HoldOut] = None
        self.holdout_stats: dict = {}  # of the epoch being read: see _chunks
        self.epoch_holdout_stats: list[dict] = []  # of every epoch read to its end
        if audit_dir:
            os.makedirs(audit_dir, exist_ok=True)

    def _open(self):
        return self.open_fn(self.cfg)  # the whole stream, on every process

    # -- documents ------------------------------------------------------------------------------
    def _texts(self, iterator) -> Iterator[str]:
        for example in iterator:
            yield document_text(example, self.cfg.text_column)

    def eval_texts(self) -> list[str]:
        """The eval set: the first ``num_eval_samples`` distinct-content candidates of the stream
        (:mod:`trainer.data.holdout`); also checks the text column."""
        if self._eval_texts is not None:
            return self._eval_texts
        cfg = self.cfg
        texts, read = (select_eval_texts(self._texts(iter(self._open())), self.num_eval, cfg.holdout_seed,
                                         cfg.eval_fraction) if self.num_eval else ([], 0))
        if len(texts) < self.num_eval:
            raise DataError(
                f"the stream's {read} documents hold only {len(texts)} distinct eval candidates "
                f"(data.eval_fraction={cfg.eval_fraction} of them, drawn by content), fewer than "
                f"data.num_eval_samples={self.num_eval}; lower data.num_eval_samples or raise data.eval_fraction"
            )
        log.info("eval set: %d documents drawn by content from the first %d of the stream "
                 "(data.eval_fraction=%s, data.holdout_seed=%d)", len(texts), read, cfg.eval_fraction,
                 cfg.holdout_seed)
        if self.audit_dir:
            with open(os.path.join(self.audit_dir, f"eval-rank{self.rank}.txt"), "w") as f:
                f.writelines(document_hash(t) + "\n" for t in texts)
        self._eval_texts = texts
        return texts

    @property
    def holdout(self) -> HoldOut:
        if self._holdout is None:
            self._holdout = HoldOut(self.eval_texts(), self.cfg.holdout_near_duplicates, self.cfg.holdout_seed)
        return self._holdout

    def check_source(self) -> None:
        """Read one document to fail early on a missing text column or an empty stream."""
        first = next(iter(self._open()), None)
        if first is None:
            raise DataError(f"the dataset {self.cfg.path!r} yields no documents")
        document_text(first, self.cfg.text_column)

    @property
    def num_eval_documents(self) -> int:
        return len(self.eval_texts())

    def eval_rows(self, seq_len: int) -> np.ndarray:
        """The eval set packed into ``[n, seq_len]`` sequences (:meth:`eval_sequences` of :meth:`eval_texts`);
        with NSP, the eval documents' labelled pairs ``[n, seq_len + 1]`` (one group: the whole eval set)."""
        texts = self.eval_texts()
        if self.nsp:
            rows, stats = labelled_rows(texts, self.tok, seq_len, self.seed, self.cfg.nsp_segments)
            log.info("eval set: %s", skipped_message(stats, self.cfg.nsp_segments))
            return rows
        return self.eval_sequences(texts, seq_len) if texts else np.zeros((0, seq_len), np.int32)

    def write_eval_manifest(self, path: str) -> None:
        """The eval manifest (:func:`trainer.data.holdout.eval_manifest`) at ``path``."""
        from .holdout import write_eval_manifest

        write_eval_manifest(path, self.eval_texts(), self.cfg)

    def eval_sequences(self, texts: list[str], seq_len: int) -> np.ndarray:
        """Eval documents packed like training ones; the last partial sequence is padded (no token lost)."""
        seqs, rem = pack(np.zeros((0,), np.int32), self.tok.encode(texts), seq_len, self.tok.bos_id, self.tok.eos_id)
        return np.concatenate([seqs, pad_final(rem, seq_len, self.tok.bos_id, self.tok.pad_id)])

    def _open_at(self, pos: StreamPosition):
        ds = self._open()
        if pos.block_state is not None:
            try:
                ds.load_state_dict(copy.deepcopy(pos.block_state))
                return ds, self._texts(iter(ds))
            except Exception as e:  # an iterable without state support: position by counting
                log.warning("resuming the stream by skipping documents (state_dict failed: %s)", e)
                ds = self._open()
        texts = self._texts(iter(ds))
        skip = pos.docs_before_block
        if skip:
            next(itertools.islice(texts, skip - 1, skip), None)
        return ds, texts

    @staticmethod
    def _state(ds) -> Optional[dict]:
        try:
            return copy.deepcopy(ds.state_dict())
        except Exception:
            return None

    def _log_holdout(self, epoch: int) -> None:
        st = self.holdout_stats
        self.epoch_holdout_stats.append(dict(st))
        log.info("epoch %d of the training stream read after %d documents: %d held out of training "
                 "(%d copies of eval documents, %d of the %d eval documents had duplicates removed; "
                 "%d near-duplicates)", epoch, st["documents"], st["exact"] + st["near"], st["exact"],
                 st["eval_with_duplicates"], self.num_eval, st["near"])

    # -- batches --------------------------------------------------------------------------------
    def _chunks(self, position: StreamPosition) -> Iterator[_Chunk]:
        """The training documents from ``position`` on: block by block, shuffled, in tokenising chunks."""
        cfg = self.cfg
        holdout = self.holdout
        pos = copy.deepcopy(position)
        while True:  # epochs
            ds, texts = self._open_at(pos)
            first_in_epoch = pos.block == 0 and pos.offset == 0 and pos.docs_before_block == 0
            trained = 0
            copies: dict = {}
            st = self.holdout_stats = {"epoch": pos.epoch, "documents": 0, "exact": 0, "near": 0,
                                       "eval_with_duplicates": 0}
            while True:  # blocks
                state = pos.block_state if pos.block_state is not None else self._state(ds)
                raw = list(itertools.islice(texts, cfg.shuffle_buffer))
                if not raw:
                    break
                docs = []
                for t in raw:
                    why = holdout.excluded(t)
                    if why is None:
                        docs.append(t)
                        continue
                    st[why[0]] += 1
                    if why[0] == "exact":
                        copies[why[1]] = copies.get(why[1], 0) + 1
                st["documents"] += len(raw)
                st["eval_with_duplicates"] = sum(1 for c in copies.values() if c > 1)
                trained += len(docs)
                perm = block_permutation(self.seed, pos.epoch, pos.block, len(docs))
                for start in range(pos.offset, len(docs), cfg.tokenize_batch_size):
                    chunk = [docs[i] for i in perm[start: start + cfg.tokenize_batch_size]]
                    yield _Chunk(pos.epoch, pos.block, state, pos.docs_before_block, start + len(chunk), chunk)
                pos.docs_before_block += len(raw)
                pos.block += 1
                pos.offset = 0
                pos.block_state = None
            if first_in_epoch and not trained:
                raise DataError(
                    f"the stream has no training documents once the {self.num_eval} eval documents and "
                    "their duplicates are held out; lower data.num_eval_samples or use more data"
                )
            self._log_holdout(pos.epoch)
            pos = dataclasses.replace(pos, epoch=pos.epoch + 1, block=0, block_state=None,
                                      docs_before_block=0, offset=0)

    def _count_pairs(self, stats: PairStats, chunk: _Chunk) -> None:
        """Add a chunk's pair statistics; the first chunk's are logged, and a first epoch whose documents form
        no pair at all is a DataError naming how many were skipped and why."""
        first = self.nsp_stats.documents == 0
        self.nsp_stats.add(stats)
        if first:
            log.info("first chunk: %s", skipped_message(stats, self.cfg.nsp_segments))
        if self.nsp_stats.pairs == 0 and (chunk.epoch > 0 or self.nsp_stats.documents >= self.cfg.shuffle_buffer):
            raise DataError(skipped_message(self.nsp_stats, self.cfg.nsp_segments) + ": no sentence pair to train "
                            "on; use longer documents, or data.nsp_segments: lines if the corpus' unit is the line")

    def batches(self, position: Optional[StreamPosition] = None) -> Iterator[Batch]:
        """Endless iterator of global batches starting at ``position`` (the start of the stream if None).

        With ``data.num_workers`` > 0 the chunks are tokenised in worker processes
        (:mod:`trainer.data.tokenize_pool`) and come back in order: the same batches and positions.
        """
        cfg, tok, L, B = self.cfg, self.tok, self.cfg.max_seq_length, self.batch_size
        pos = copy.deepcopy(position) if position is not None else StreamPosition(version=POSITION_VERSION)
        if pos.version != POSITION_VERSION:
            if pos.batches or pos.documents:
                raise DataError(
                    f"the saved stream position has version {pos.version} (per-process streams, eval documents "
                    f"held out by position); this trainer reads version {POSITION_VERSION} (one global stream, "
                    "hold-out by content): set checkpoint.init_data_position=false to start the data afresh"
                )
            pos.version = POSITION_VERSION
        if pos.batches and pos.source != "stream":
            raise DataError(f"the saved stream position is of the {pos.source!r} path, the config reads a dataset "
                            "stream; set data.token_shards as before, or checkpoint.init_data_position=false")
        if pos.shuffle_buffer and pos.shuffle_buffer != cfg.shuffle_buffer:
            raise DataError(
                f"the saved stream position uses data.shuffle_buffer={pos.shuffle_buffer}, the config "
                f"{cfg.shuffle_buffer}; use the same value to resume (or checkpoint.init_data_position=false)"
            )
        pos.shuffle_buffer = cfg.shuffle_buffer
        self.holdout  # noqa: B018  (the eval set is read before the first training document)
        width = L + 1 if self.nsp else L  # NSP rows carry their label in a last column
        pending = np.zeros((0, width), np.int32)
        stream_rem = np.asarray(pos.remainder, np.int32)
        if self.nsp:  # the position's remainder holds the labelled rows not yet in a batch
            pending, stream_rem = stream_rem.reshape(-1, width), stream_rem[:0]
        audit = open(os.path.join(self.audit_dir, f"train-rank{self.rank}.txt"), "a") if self.audit_dir else None
        pool = None
        try:
            chunks = self._chunks(pos)
            if self.nsp:  # pairs need the segments of whole documents: tokenised here
                encoded = ((c, None) for c in chunks)
            elif getattr(cfg, "num_workers", 0) > 0:
                from .tokenize_pool import TokenizerPool

                pool = TokenizerPool(tok.to_json(), tok.eos_id, cfg.num_workers)
                encoded = pool.map(chunks, lambda c: c.texts)
            else:
                encoded = ((c, token_stream(tok.encode(c.texts), tok.eos_id)) for c in chunks)
            for chunk, tokens in encoded:
                if audit:
                    audit.writelines(f"{chunk.epoch}\t{document_hash(t)}\n" for t in chunk.texts)
                    audit.flush()
                if self.nsp:
                    seqs, stats = labelled_rows(chunk.texts, tok, L, self.seed, cfg.nsp_segments)
                    self._count_pairs(stats, chunk)
                else:
                    seqs, stream_rem = pack_stream(stream_rem, tokens, L, tok.bos_id)
                pos.epoch, pos.block, pos.block_state = chunk.epoch, chunk.block, chunk.block_state
                pos.docs_before_block, pos.offset = chunk.docs_before_block, chunk.end
                pos.documents += len(chunk.texts)
                pending = np.concatenate([pending, seqs]) if len(pending) else seqs
                while len(pending) >= B:
                    out, pending = pending[:B], pending[B:]
                    pos.batches += 1
                    # a new array and a shallow copy: a deep copy of the position at every batch
                    # (the remainder holds up to a chunk of tokens) cost more than tokenising
                    pos.remainder = (pending.reshape(-1) if self.nsp else
                                     np.concatenate([unpack(pending), stream_rem]))
                    yield Batch(out, dataclasses.replace(pos), zlib.crc32(out.tobytes()))
        finally:
            if pool is not None:
                pool.close()
            if audit:
                audit.close()
