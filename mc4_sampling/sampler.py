"""Keep or drop documents, block by block: the per-example accept/reject filter.

For each block of documents: draw ``u`` for every document (:mod:`mc4_sampling.draw`), score only
the documents that a draw does not already reject (``u < max p``) with the scorer
(:mod:`mc4_sampling.scoring`), compute ``p(x)`` (:mod:`mc4_sampling.weightings`), keep when
``u < p(x)`` (:func:`decide_block`). A document whose score is not a finite number is a bad
record, never kept: :class:`BlockDecider` is the one place that decides a block and keeps the
bad-record bookkeeping (an error naming the record, or a count in :class:`SamplingStats`), used by
the builder's :class:`DocumentSampler` (mC4 shards, keyed by shard and position), by
:func:`mc4_sampling.corpus.sample_dataset` (any corpus, keyed by document) and by the datatrove
step :class:`mc4_sampling.engine.ScoreSampler`. The decisions are a pure function of the seed and
the documents' keys, whatever order or subset of the data a worker reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np

from .draw import shard_key, uniform_draws
from .errors import BadRecordError
from .reader import iter_records
from .scoring import Scorer
from .shards import ShardRef
from .upsampling import Upsampling, copies_from_draws, expected_copies
from .weightings import SamplingRule


@dataclass
class SamplingStats:
    """Counters filled in while a stream is sampled (used by the CLI's summary and reports)."""

    read: int = 0
    kept: int = 0
    scored: int = 0
    bad_records: int = 0
    #: the scores of the kept documents (when they were scored)
    kept_scores: list = field(default_factory=list)
    #: with ``score_all``: (score, keep probability, kept) for every document read
    scored_documents: list = field(default_factory=list)
    #: the copies written (``kept`` without upsampling: one per kept document)
    copies: int = 0
    #: copies of a document -> how many kept documents got that many (filled with upsampling only)
    copy_histogram: dict = field(default_factory=dict)
    #: with upsampling: the whitespace words of the kept documents, and of the copies written
    kept_words: int = 0
    copy_words: int = 0

    def count_words(self, text: str, copies: int) -> None:
        """Count a kept document of ``copies`` copies in :attr:`kept_words` and :attr:`copy_words`."""
        words = len(text.split())
        self.kept_words += words
        self.copy_words += words * copies

    @property
    def keep_rate(self) -> float:
        return self.kept / self.read if self.read else 0.0


@dataclass
class BlockDecision:
    """The keep decisions of one block of documents (arrays aligned with the block)."""

    #: the documents that were scored
    to_score: np.ndarray
    #: their scores (NaN where not scored)
    perplexity: np.ndarray
    #: keep probability ``p`` (of ``u`` for ``random``/``none``)
    probability: np.ndarray
    #: ``u < p``, and a usable score where one was computed
    keep: np.ndarray
    #: the scored documents whose score is not a finite number (bad records, never kept)
    bad: np.ndarray | None = None
    #: with upsampling: the number of copies of each document (0 where not kept); None: one per kept one
    copies: np.ndarray | None = None

    @property
    def scores(self) -> np.ndarray:
        return self.perplexity

    @property
    def n_copies(self) -> np.ndarray:
        """The number of copies of each document to write: :attr:`copies`, or 1 per kept document."""
        return self.copies if self.copies is not None else self.keep.astype(np.int64)


def decide_block(rule: SamplingRule, key: int, positions: np.ndarray, score, *, return_perplexity: bool = False,
                 score_all: bool = False, upsampling: Upsampling | None = None, metadata=None) -> BlockDecision:
    """The keep decisions of a block of documents of one shard: the draw first, then the scores it needs.

    ``key`` is the shard's :func:`~mc4_sampling.draw.shard_key`, ``positions`` the documents'
    line numbers in the shard (bad lines included) or the documents' hashes, ``score(indices)``
    returns the scores of the documents at these indices of the block (called once, only when some
    document needs a score; NaN for a value it cannot score, which makes the document a bad record).
    Every sampler decides through this function, by way of :class:`BlockDecider`.

    With ``upsampling`` (:mod:`mc4_sampling.upsampling`), ``metadata`` holds the documents' values of
    its column (when its function reads one) and the decision says how many copies of each document
    to write: ``c = min(N, p * g(m))`` expected, copy ``k`` written when ``u_k < clip(c - k, 0, 1)``
    (``u_0 = u``); a document whose ``m`` is not a number >= 0 is a bad record.
    """
    if upsampling is not None:
        return _decide_copies(rule, key, positions, score, upsampling, metadata, return_perplexity, score_all)
    n = len(positions)
    u = uniform_draws(key, positions)
    if score_all:
        to_score = np.ones(n, dtype=bool)
    elif rule.needs_scores or return_perplexity:
        # u >= max p rejects whatever the perplexity, and only kept documents carry one
        to_score = u < rule.max_probability
    else:
        to_score = np.zeros(n, dtype=bool)
    perplexity = np.full(n, np.nan)
    if to_score.any():
        idx = np.flatnonzero(to_score)
        perplexity[idx] = score(idx)
    p = rule.probability(perplexity) if rule.needs_scores else rule.probability(u)
    keep = u < p
    bad = to_score & ~np.isfinite(perplexity)
    if bad.any():
        keep &= ~bad
    return BlockDecision(to_score, perplexity, p, keep, bad)


def _decide_copies(rule: SamplingRule, key: int, positions: np.ndarray, score, upsampling: Upsampling, metadata,
                   return_perplexity: bool, score_all: bool) -> BlockDecision:
    """:func:`decide_block` with upsampling: the copies of each document (see there)."""
    n = len(positions)
    u = uniform_draws(key, positions)
    g = upsampling.weights(metadata) if upsampling.reads_column else np.ones(n)
    bad_metadata = ~np.isfinite(g)
    if score_all:
        to_score = np.ones(n, dtype=bool)
    elif rule.needs_scores or return_perplexity:
        # copy 0 needs u < min(1, p * g) and every further copy needs copy 0's c > 1: u >= that with
        # the largest p rejects every copy whatever the score
        with np.errstate(invalid="ignore"):
            to_score = (u < np.minimum(1.0, rule.max_probability * g)) & ~bad_metadata
    else:
        to_score = np.zeros(n, dtype=bool)
    perplexity = np.full(n, np.nan)
    if to_score.any():
        idx = np.flatnonzero(to_score)
        perplexity[idx] = score(idx)
    p = rule.probability(perplexity) if rule.needs_scores else rule.probability(u)
    with np.errstate(invalid="ignore"):
        copies = copies_from_draws(expected_copies(p, g, upsampling.max_copies), key, positions, u,
                                   upsampling.max_copies)
    bad = (to_score & ~np.isfinite(perplexity)) | bad_metadata
    copies[bad] = 0
    return BlockDecision(to_score, perplexity, p, copies > 0, bad, copies)


class BlockDecider:
    """The keep decisions of blocks of documents under one rule, and their bad-record bookkeeping.

    Args:
        rule: the weighting.
        on_bad_record: ``"raise"``: a block with a bad record (a score that is not a finite number)
            raises the error its caller makes for it; ``"skip"``: bad records are never kept and
            are counted in :attr:`SamplingStats.bad_records`.
        return_perplexity: score every document a draw does not reject (to return its score).
        score_all: score every document (for reports); changes no decision.
        upsampling: copies instead of a keep decision (:mod:`mc4_sampling.upsampling`); None: none.
    """

    def __init__(self, rule: SamplingRule, *, on_bad_record: str = "raise", return_perplexity: bool = False,
                 score_all: bool = False, upsampling: Upsampling | None = None):
        self.rule = rule
        self.upsampling = upsampling
        self.on_bad_record = on_bad_record
        self.return_perplexity = return_perplexity
        self.score_all = score_all

    def decide(self, key: int, positions: np.ndarray, score, bad_record: Callable[[np.ndarray], Exception], *,
               stats: SamplingStats | None = None, on_bad_record: str | None = None, metadata=None) -> BlockDecision:
        """The decisions of one block (:func:`decide_block`). Under ``on_bad_record="raise"`` (this
        decider's unless given), a block with bad records raises ``bad_record(indices)``, the error
        its caller makes for them (``indices``: the bad documents' indices in the block, at least
        one). ``stats.scored`` counts the documents scored. ``metadata``: the values of the upsampling's
        column, one per document (when it reads one)."""
        decision = decide_block(self.rule, key, positions, score, return_perplexity=self.return_perplexity,
                                score_all=self.score_all, upsampling=self.upsampling, metadata=metadata)
        if decision.bad is not None and not decision.bad.any():
            decision.bad = None
        if decision.bad is not None and (on_bad_record or self.on_bad_record) == "raise":
            raise bad_record(np.flatnonzero(decision.bad))
        if stats is not None:
            stats.scored += int(decision.to_score.sum())
        return decision

    @staticmethod
    def count(decision: BlockDecision, stats: SamplingStats) -> None:
        """Count the whole block in ``stats``: bad records apart, the others read, and the kept ones."""
        n_bad = int(decision.bad.sum()) if decision.bad is not None else 0
        stats.bad_records += n_bad
        stats.read += len(decision.keep) - n_bad
        stats.kept += int(decision.keep.sum())
        if decision.copies is None:
            stats.copies += int(decision.keep.sum())
        else:
            stats.copies += int(decision.copies.sum())
            values, counts = np.unique(decision.copies[decision.copies > 0], return_counts=True)
            for v, c in zip(values.tolist(), counts.tolist()):
                stats.copy_histogram[v] = stats.copy_histogram.get(v, 0) + c

    @staticmethod
    def documents(decision: BlockDecision, stats: SamplingStats | None = None) -> Iterator[tuple[int, int]]:
        """``(index, copies)`` of each good document of the block, in order (``copies``: 0 dropped, 1
        kept, more with upsampling), counted in ``stats`` (as :meth:`count` does) as each is reached,
        so that a consumer that stops early sees exact numbers."""
        bad = decision.bad.tolist() if decision.bad is not None else None
        upsampled = decision.copies is not None
        for i, copies in enumerate(decision.n_copies.tolist()):
            if bad is not None and bad[i]:
                if stats is not None:
                    stats.bad_records += 1
                continue
            if stats is not None:
                stats.read += 1
                stats.kept += copies > 0
                stats.copies += copies
                if upsampled and copies:
                    stats.copy_histogram[copies] = stats.copy_histogram.get(copies, 0) + 1
            yield i, copies


class DocumentSampler:
    """Applies a :class:`SamplingRule` to shards.

    Args:
        rule: the weighting.
        seed: seed of the accept/reject draws.
        model: the scorer (needed for weightings of scores, ``return_perplexity`` or ``score_all``).
        return_perplexity: add the score to every kept document, as ``score_name``.
        score_all: score every document, also those a draw rejects (for reports); changes no
            decision.
        on_bad_record: ``"raise"`` or ``"skip"``.
        retries, max_record_bytes, timeout: those of :func:`~mc4_sampling.reader.iter_records`.
        block_size: documents scored together (one SentencePiece batch).
        score_name: the field of the score (``perplexity`` for KenLM; default: the scorer's).
        upsampling: copies of a kept document (:mod:`mc4_sampling.upsampling`; mC4 has no metadata
            column, so only a function that reads none).
    """

    def __init__(
        self,
        rule: SamplingRule,
        seed: int,
        model: Scorer | None = None,
        return_perplexity: bool = False,
        score_all: bool = False,
        on_bad_record: str = "raise",
        retries: int = 5,
        block_size: int = 256,
        max_record_bytes: int | None = None,
        timeout: float | None = None,
        score_name: str | None = None,
        upsampling: Upsampling | None = None,
    ):
        if (rule.needs_scores or return_perplexity or score_all) and model is None:
            raise ValueError("a scorer is needed for this sampling rule")
        self.score_name = score_name or (model.score_name if model is not None else "perplexity")
        self.input_column = (model.input_column if model is not None else None) or "text"
        self.rule = rule
        self.seed = seed
        self.model = model
        self.return_perplexity = return_perplexity
        self.score_all = score_all
        self.on_bad_record = on_bad_record
        self.decider = BlockDecider(rule, on_bad_record=on_bad_record, return_perplexity=return_perplexity,
                                    score_all=score_all, upsampling=upsampling)
        self.retries = retries
        self.block_size = block_size
        self.max_record_bytes = max_record_bytes
        self.timeout = timeout

    def sample(self, shard: ShardRef, stats: SamplingStats | None = None) -> Iterator[tuple[int, dict]]:
        """Yield ``(position, example)`` for the kept documents of ``shard``, in file order."""
        key = self.shard_key(shard)
        block: list[tuple[int, dict]] = []
        for position, record in iter_records(shard.path, self.on_bad_record, self.retries,
                                             max_record_bytes=self.max_record_bytes, timeout=self.timeout):
            if record is None:
                if stats is not None:
                    stats.bad_records += 1
                continue
            block.append((position, record))
            if len(block) == self.block_size:
                yield from self._decide(key, block, stats, shard)
                block = []
        if block:
            yield from self._decide(key, block, stats, shard)

    def shard_key(self, shard: ShardRef) -> int:
        """The key of ``shard``'s draws under this sampler's seed."""
        return shard_key(self.seed, shard.language, shard.split, shard.index)

    def _decide(self, key: int, block, stats: SamplingStats | None, shard: ShardRef | None = None):
        positions = np.fromiter((p for p, _ in block), dtype=np.uint64, count=len(block))
        column = self.input_column

        def bad_record(indices):
            i = int(indices[0])
            return BadRecordError(shard.path if shard is not None else "block", int(block[i][0]) + 1,
                                  self.model.bad_value(block[i][1].get(column)))

        decision = self.decider.decide(key, positions,
                                       lambda idx: self.model.score([block[i][1].get(column) for i in idx]),
                                       bad_record, stats=stats)
        perplexity, p = decision.perplexity, decision.probability
        name = self.score_name
        for i, copies in self.decider.documents(decision, stats):
            if stats is not None and self.score_all:
                stats.scored_documents.append((float(perplexity[i]), min(float(p[i]), 1.0), copies > 0))
            if not copies:
                continue
            position, record = block[i]
            example = {"text": record["text"], "timestamp": record.get("timestamp"), "url": record.get("url")}
            if self.return_perplexity:
                example[name] = float(perplexity[i])
            if stats is not None and not np.isnan(perplexity[i]):
                stats.kept_scores.append(float(perplexity[i]))
            if stats is not None and decision.copies is not None:
                stats.count_words(record["text"], copies)
            yield position, example
            for _ in range(copies - 1):  # upsampled: the further copies
                yield position, dict(example)
