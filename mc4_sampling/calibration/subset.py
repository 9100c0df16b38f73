"""The random subset a calibration scores: ``docs`` documents drawn uniformly from random shards."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import numpy as np

from ..errors import ConfigError, out_of_range
from ..reader import iter_records
from ..shards import no_files_error, shard_refs_for
from .fit import MIN_DOCUMENTS
from .tokens import word_count

logger = logging.getLogger(__name__)

#: Default number of documents scored.
DEFAULT_DOCS = 10_000
#: Default number of shards (picked at random) the subset is drawn from.
DEFAULT_SHARDS_TO_READ = 8


@dataclass
class Subset:
    """The drawn documents, how many documents were read to draw them, and from which shards."""

    texts: list[str]
    documents_read: int
    shards: list[int] | None
    bad_records: int = 0
    #: where the documents come from (a folder, a mirror, ``hub``, or a corpus name)
    source: str = "hub"
    #: for a token budget: each drawn document's whitespace words, and its ``upsample_column`` value
    lengths: list[int] | None = None
    metadata: list | None = None
    #: the documents the corpus holds, when the draw knows it (a corpus read to its end), or estimates
    #: it (mC4: documents read in the picked shards times shards available over shards picked)
    total_docs: float | None = None
    #: how :attr:`total_docs` was found (``counted``, ``estimated``)
    total_docs_from: str | None = None


def check_subset(docs: int, shards_to_read: int, max_docs_per_shard: int | None,
                 option_name: Callable[[str], str] = str) -> None:
    """Raise :class:`ConfigError` naming the first out-of-range size (as ``option_name(parameter)``)."""
    if docs < MIN_DOCUMENTS:
        raise out_of_range(option_name("docs"), docs,
                           f"at least {MIN_DOCUMENTS} documents are needed to estimate quartiles")
    if shards_to_read < 1:
        raise out_of_range(option_name("shards_to_read"), shards_to_read, "it must be >= 1")
    if max_docs_per_shard is not None and max_docs_per_shard < 1:
        raise out_of_range(option_name("max_docs_per_shard"), max_docs_per_shard, "it must be >= 1")


def reservoir_sample(items: Iterable, k: int, rng: np.random.Generator) -> tuple[list, int]:
    """Algorithm R: a uniform random sample of ``k`` items of a stream; returns (sample, seen)."""
    sample: list = []
    seen = 0
    for item in items:
        if seen < k:
            sample.append(item)
        else:
            j = int(rng.integers(0, seen + 1))
            if j < k:
                sample[j] = item
        seen += 1
    return sample, seen


def pick_shards(shards: Sequence, shards_to_read: int, rng: np.random.Generator) -> list:
    """``shards_to_read`` of ``shards`` picked at random (all of them if there are fewer), in order."""
    if not shards:
        raise ConfigError("no shards to read")
    order = rng.permutation(len(shards))[: min(shards_to_read, len(shards))]
    return [shards[i] for i in sorted(order)]


def draw_subset(options, language: str, split: str, n_docs: int, seed: int,
                shards_to_read: int = DEFAULT_SHARDS_TO_READ,
                max_docs_per_shard: int | None = None,
                progress: Callable[[int], None] | None = None) -> Subset:
    """A uniform random subset of ``n_docs`` documents from ``shards_to_read`` random shards.

    ``options`` locates the shards and says how to read them (``languages``, ``data_dir``,
    ``base_url``, ``shards``, ``on_bad_record``, ``http_retries``, optionally ``max_record_bytes``
    and ``http_timeout``), e.g. a validated
    :class:`mc4_sampling.Mc4SamplingConfig`. ``progress(n)`` is called with the number of
    documents read since the last call. ``seed`` fixes both the shard pick and the reservoir.
    """
    check_subset(n_docs, shards_to_read, max_docs_per_shard)
    refs = [r for r in shard_refs_for(options, split) if r.language == language]
    if not refs:
        raise no_files_error(options, split, language)
    rng = np.random.default_rng(seed)
    picked = pick_shards(refs, shards_to_read, rng)
    logger.info("drawing %d documents from %s shards %s", n_docs, split, [r.index for r in picked])
    bad = 0

    def texts():
        nonlocal bad
        for ref in picked:
            records = iter_records(ref.path, options.on_bad_record, options.http_retries,
                                   max_record_bytes=getattr(options, "max_record_bytes", None),
                                   timeout=getattr(options, "http_timeout", None))
            for n, (_, record) in enumerate(records):
                if max_docs_per_shard is not None and n >= max_docs_per_shard:
                    break
                if progress is not None:
                    progress(1)
                if record is None:
                    bad += 1
                    continue
                yield record["text"]

    sample, seen = reservoir_sample(texts(), n_docs, rng)
    if seen < n_docs:
        logger.warning("only %d documents in the picked shards: all of them are scored", seen)
    source = str(options.data_dir or options.base_url or "hub")
    if max_docs_per_shard is None:  # every document of the picked shards read: scale to every shard
        total, how = (seen * len(refs) / len(picked), "counted" if len(picked) == len(refs) else "estimated")
    else:
        total, how = None, None
    return Subset(sample, seen, [r.index for r in picked], bad, source, lengths=[word_count(t) for t in sample],
                  total_docs=total, total_docs_from=how)


def draw_corpus_subset(ds, n_docs: int, seed: int, *, text_column: str = "text", on_bad_record: str = "raise",
                       source: str = "corpus", progress: Callable[[int], None] | None = None,
                       value_column: str | None = None, metadata_column: str | None = None) -> Subset:
    """``n_docs`` documents of a ``datasets`` corpus: the first ``n_docs`` texts of its stream
    shuffled with ``seed`` (``IterableDataset.shuffle``, a buffer of ``max(10 000, n_docs)``).

    A row whose ``text_column`` is not a string raises :class:`ConfigError`, or with
    ``on_bad_record="skip"`` is counted as a bad record and skipped. With ``value_column`` (a score
    column), the subset holds that column's values instead of the texts. It also keeps each document's
    whitespace words (:attr:`Subset.lengths`) and, with ``metadata_column`` (upsampling's column, which
    the first row must hold), its values; a corpus read to its end gives :attr:`Subset.total_docs`.
    """
    check_subset(n_docs, 1, None)
    texts: list[str] = []
    lengths: list[int] = []
    metadata: list = []
    read = bad = 0
    exhausted = True
    for row in ds.shuffle(seed=seed, buffer_size=max(10_000, n_docs)):
        if metadata_column is not None and read == 0 and metadata_column not in row:
            raise ConfigError(f"--upsample-column {metadata_column!r} is not a column of {source!r} "
                              f"(columns: {', '.join(sorted(row))})")
        read += 1
        if progress is not None:
            progress(1)
        text = row.get(text_column)
        if not isinstance(text, str):
            if on_bad_record == "raise":
                raise ConfigError(f"a row of {source!r} has {type(text).__name__} in column {text_column!r}, not "
                                  "text (on_bad_record='skip' skips such rows)")
            bad += 1
            continue
        texts.append(text if value_column is None else row.get(value_column))
        lengths.append(word_count(text))
        if metadata_column is not None:
            metadata.append(row.get(metadata_column))
        if len(texts) == n_docs:
            exhausted = False
            break
    return Subset(texts, read, None, bad, source, lengths=lengths,
                  metadata=metadata if metadata_column is not None else None,
                  total_docs=float(read) if exhausted else None, total_docs_from="counted" if exhausted else None)
