"""Score sampling of any ``datasets`` corpus: :func:`sample_dataset`, and the helpers built on its
options (:func:`score_texts`, :func:`keep_weights`, :func:`open_corpus`).

The builder samples mC4, whose documents have a (shard, position) that keys their draw. A corpus
such as FineWeb-2 or CulturaX, read through ``load_dataset(..., streaming=True)``, has no such
thing a sampler can rely on (shards are split over nodes and workers, files are re-sharded between
versions). Here the draw of a document is keyed by the document itself::

    u = mix(document_key(seed, language) + mix(hash64(id or text)))

(:func:`mc4_sampling.draw.document_key`, :func:`~mc4_sampling.draw.hash64`: BLAKE2b, then the
builder's SplitMix64 draw), so the kept set does not depend on the order of the stream, the number
of nodes (``split_dataset_by_node``), ``DataLoader`` workers or restarts. With ``id_column`` the
key is the document's id (which must be unique: documents sharing an id share a decision); without
one it is the text, so exact duplicates get the same decision (all kept or all dropped).

The options are the builder's (:class:`~mc4_sampling.options.SamplingOptions`, the same names,
validated by :func:`corpus_options`: weighting, its parameters, calibration, seed, and the scorer:
KenLM perplexity by default, fastText, transformers, a callable or a score column) and are resolved
by the same :class:`~mc4_sampling.plan.SamplingPlan`; each block is decided by the builder's
:class:`~mc4_sampling.sampler.BlockDecider` (the draw first, then the scores of the documents the
draw does not already reject, scored together; bad records raised or counted as ``on_bad_record`` says).
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import fields, replace
from typing import Iterable, Iterator, Sequence

import numpy as np

from .draw import document_key, hashes64
from .errors import BadRecordError, ConfigError
from .options import SamplingOptions, keyword, sampling_options, wants_score
from .plan import SamplingPlan
from .sampler import BlockDecider, SamplingStats
from .upsampling import metadata_values
from .weightings import SamplingRule

#: documents decided (and scored) together: one batched ``filter``/``map`` call
BLOCK_SIZE = 256
#: how many ids are remembered to detect duplicated ids (then the check stops: bounded memory)
DUPLICATE_CHECK_IDS = 100_000


#: what :func:`sample_dataset` samples with when ``sampling_method`` is not given
CORPUS_DEFAULTS = {"sampling_method": "gaussian"}


def check_language(language) -> str:
    """``language`` (it picks the perplexity model's files and defaults and keys the draws)."""
    if not isinstance(language, str) or not language:
        raise ConfigError(f"language={language!r} is not valid; it must be a language code such as 'es'")
    return language


def corpus_options(options: SamplingOptions | None = None, spell=keyword, **values) -> SamplingOptions:
    """The validated :class:`~mc4_sampling.options.SamplingOptions` of a corpus: ``options`` (an
    instance) or the option keyword arguments ``values`` (not both), ``gaussian`` by default;
    errors name each option by ``spell``."""
    if options is not None:
        if values:
            raise ConfigError(f"give options= or the option keywords ({', '.join(values)}), not both")
        if not isinstance(options, SamplingOptions):
            raise ConfigError(f"options={options!r} is not valid; it must be a SamplingOptions")
        values = {f.name: getattr(options, f.name) for f in fields(SamplingOptions)}
    return sampling_options(values, spell, defaults=CORPUS_DEFAULTS)


def _columns_error(what: str, column: str, columns) -> ConfigError:
    return ConfigError(f"{what}={column!r} is not a column of the dataset (columns: {', '.join(sorted(columns))})")


class CorpusSampler:
    """The keep decisions of batches of a corpus (the function given to ``filter``/``map``).

    Picklable (the model travels as its paths and is loaded once per process), so it runs in
    ``DataLoader`` workers. ``stats`` counts what this process has seen. ``rule``: the split's rule
    (default the plan's train rule).
    """

    def __init__(self, plan: SamplingPlan, text_column: str = "text", id_column: str | None = None,
                 stats: SamplingStats | None = None, rule: SamplingRule | None = None):
        self.plan = plan
        # the train split's upsampling (another split's rule, such as the validation split's, is not upsampled)
        self.upsampling = plan.upsampling_of("train") if rule is None or rule is plan.train else None
        self.decider = BlockDecider(plan.train if rule is None else rule, on_bad_record=plan.on_bad_record,
                                    return_perplexity=plan.return_perplexity, upsampling=self.upsampling)
        #: the column the upsampling reads, if any
        self.metadata_column = (self.upsampling.column if self.upsampling is not None and self.upsampling.reads_column
                                else None)
        self.key = document_key(plan.seed, plan.language)
        self.text_column = text_column
        self.id_column = id_column
        self.stats = stats if stats is not None else SamplingStats()
        self.needs_model = plan.needs_model("train")
        self.score_name = plan.score_name
        self.score_column = plan.model_source.score_column if plan.model_source.kind == "column" else None
        self._seen_ids: set[int] | None = set() if id_column is not None else None
        self._warned_duplicates = False

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_seen_ids"] = set() if self.id_column is not None else None
        return state

    def decide(self, batch: dict, indices: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """``(keep, score)`` of a batch (column -> list); bad records (unusable scores included) are never kept."""
        copies, perplexity = self.decide_copies(batch, indices)
        return copies > 0, perplexity

    def decide_copies(self, batch: dict, indices: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """``(copies, score)`` of a batch: how many times each row is written (0: dropped; at most 1
        without upsampling) and its score."""
        texts = self._column(batch, self.text_column, "text_column")
        ids = self._column(batch, self.id_column, "id_column") if self.id_column is not None else None
        metadata = (self._column(batch, self.metadata_column, "upsample_column")
                    if self.metadata_column is not None else None)
        n = len(texts)
        if all(type(t) is str for t in texts) and (ids is None or None not in ids):  # the usual batch
            good = np.ones(n, dtype=bool)
        else:
            good = np.fromiter((isinstance(t, str) for t in texts), dtype=bool, count=n)
            if ids is not None:
                good &= np.fromiter((i is not None for i in ids), dtype=bool, count=n)
        if metadata is not None:
            good &= np.isfinite(metadata_values(metadata))
        if not good.all():
            self._bad_records(texts, ids, indices, good, metadata)
        rows = np.flatnonzero(good)
        copies = np.zeros(n, dtype=np.int64)
        perplexity = np.full(n, np.nan)
        if len(rows) == 0:
            return copies, perplexity
        whole = len(rows) == n  # every row good: the columns as they are, no copies
        picked = rows.tolist()
        good_texts = texts if whole else [texts[i] for i in picked]
        keys = hashes64((ids if whole else [ids[i] for i in picked]) if ids is not None else good_texts)
        if self._seen_ids is not None:
            self._check_duplicates(keys)
        model = self.plan.model if self.needs_model else None
        values = good_texts
        if model is not None and model.input_column is not None:
            column = self._column(batch, model.input_column, "score_column")
            values = column if whole else [column[i] for i in picked]

        def score(idx):
            return model.score(values if len(idx) == len(values) else [values[i] for i in idx.tolist()])

        def bad_record(bad):
            i = int(bad[0])
            row = int(rows[i])
            where = f"row {indices[row]}" if indices is not None else f"row {row} of a batch"
            if ids is not None:
                where += f" ({self.id_column}={ids[row]!r})"
            return BadRecordError(where, None, model.bad_value(values[i]))

        if metadata is not None and not whole:
            metadata = [metadata[i] for i in picked]
        decision = self.decider.decide(self.key, keys, score, bad_record, stats=self.stats, metadata=metadata)
        self.decider.count(decision, self.stats)
        if decision.copies is not None:
            for i, c in zip(picked, decision.copies.tolist()):
                if c:
                    self.stats.count_words(texts[i], c)
        copies[rows] = decision.n_copies
        perplexity[rows] = decision.perplexity
        return copies, perplexity

    def _column(self, batch: dict, column: str, option: str) -> list:
        try:
            return batch[column]
        except KeyError:
            raise _columns_error(option, column, batch.keys()) from None

    def _bad_records(self, texts, ids, indices, good: np.ndarray, metadata=None) -> None:
        bad = np.flatnonzero(~good)
        if self.plan.on_bad_record == "skip":
            self.stats.bad_records += len(bad)
            return
        i = int(bad[0])
        where = f"row {indices[i]}" if indices is not None else f"row {i} of a batch"
        if ids is not None and ids[i] is not None:
            where += f" ({self.id_column}={ids[i]!r})"
        if ids is not None and ids[i] is None:
            reason = f"column {self.id_column!r} (id_column) is null"
        elif metadata is not None and isinstance(texts[i], str):
            reason = (f"column {self.metadata_column!r} (upsample_column) holds {metadata[i]!r:.40}, "
                      "not a number >= 0")
        else:
            reason = f"column {self.text_column!r} holds {type(texts[i]).__name__} {texts[i]!r:.40}, not a string"
        raise BadRecordError(where, None, reason)

    def _check_duplicates(self, keys: np.ndarray) -> None:
        seen = self._seen_ids
        if self._warned_duplicates or len(seen) >= DUPLICATE_CHECK_IDS:
            return
        batch = keys.tolist()
        if len(set(batch)) < len(batch) or not seen.isdisjoint(batch):
            self._warned_duplicates = True
            warnings.warn(
                f"id_column={self.id_column!r} holds duplicated ids: documents with the same id share one keep "
                "decision (all kept or all dropped). Use a unique id column, or no id_column to key the draw by "
                "the text", UserWarning, stacklevel=2)
            return
        seen.update(batch[: DUPLICATE_CHECK_IDS - len(seen)])

    # --- the functions given to datasets ---------------------------------------------------------
    def keep_mask(self, batch: dict, indices: Sequence[int]) -> list[bool]:
        """For ``filter(batched=True, with_indices=True)``."""
        return self.decide(batch, indices)[0].tolist()

    def kept_rows(self, batch: dict, indices: Sequence[int]) -> dict:
        """For ``map(batched=True, with_indices=True)``: the kept rows, every column, plus the score
        (``perplexity`` for KenLM, ``score`` otherwise; a score column stays as it is, and is added
        only with ``return_score``). With upsampling a row comes as many times as its copies, one after
        the other."""
        copies, perplexity = self.decide_copies(batch, indices)
        rows = np.repeat(np.arange(len(copies)), copies).tolist()
        out = {name: [values[i] for i in rows] for name, values in batch.items()}
        if self.score_column is None and self.plan.return_perplexity:
            out[self.score_name] = perplexity[rows].tolist()
        return out


def sample_dataset(
    ds,
    sampling_method: str | None = None,
    *,
    text_column: str = "text",
    id_column: str | None = None,
    language: str = "es",
    block_size: int = BLOCK_SIZE,
    stats: SamplingStats | None = None,
    options: SamplingOptions | None = None,
    **option_values,
):
    """The sampled version of a ``datasets`` ``IterableDataset`` or ``Dataset``, by any score
    (KenLM perplexity by default; ``scorer``, ``scorer_model``, ``scorer_options`` or ``score_column``
    for the others).

    The sampling options are those of :class:`~mc4_sampling.options.SamplingOptions`, by the same
    names, given as keywords (``sampling_method`` also as the second argument; ``gaussian`` by
    default) or as one ``options=SamplingOptions(...)``; ``validation_sampling_factor`` is mC4's only.

    Every document (a row with a string in ``text_column``) is kept when its draw ``u`` is below
    its keep probability ``p(perplexity)``, with the builder's weightings and options (see
    :class:`~mc4_sampling.options.SamplingOptions` and README). ``u`` is keyed by ``id_column`` (a unique document
    id) or, without one, by the text, and by ``seed`` and ``language``: the same documents are
    kept whatever the order, node or worker split, or restarts. The other columns are kept as they
    are; ``return_perplexity`` adds a float ``perplexity`` column. Documents are decided in blocks
    of ``block_size``, the draw first, scoring only those it does not already reject.

    With upsampling (``max_copies`` > 1 or ``upsample`` other than ``none``, :mod:`mc4_sampling.upsampling`)
    a document comes ``0 .. max_copies`` times, ``min(max_copies, p * g(m))`` on average, ``m`` its value
    in ``upsample_column``; its copies follow one another.

    A row whose text is not a string (null, a number) or whose id is null is a bad record: an error
    naming the row under ``on_bad_record="raise"``, skipped and counted in ``stats.bad_records``
    under ``"skip"``. Streaming datasets are sampled lazily (``stats`` fills as they are read, in
    the reading process); a ``Dataset`` is sampled now.
    """
    import datasets

    if sampling_method is not None:
        option_values["sampling_method"] = sampling_method
    options = corpus_options(options, **option_values)
    check_language(language)
    if not isinstance(ds, (datasets.IterableDataset, datasets.Dataset)):
        raise ConfigError(f"sample_dataset needs a datasets IterableDataset or Dataset, got {type(ds).__name__} "
                          "(for a DatasetDict, pass one split: ds['train'])")
    if not (isinstance(block_size, int) and block_size > 0):
        raise ConfigError(f"block_size={block_size!r} is not valid; it must be an integer > 0")
    if stats is not None and not isinstance(stats, SamplingStats):
        raise ConfigError(f"stats={stats!r} is not valid; it must be a SamplingStats (or None)")
    columns = ds.column_names
    for option, column in (("text_column", text_column), ("id_column", id_column)):
        if column is None and option == "id_column":
            continue
        if not isinstance(column, str):
            raise ConfigError(f"{option}={column!r} is not valid; it must be a column name")
        if columns is not None and column not in columns:
            raise _columns_error(option, column, columns)
    plan = SamplingPlan.resolve(options, language)
    name = plan.score_name
    is_column = plan.model_source.kind == "column"
    if is_column and columns is not None and name not in columns:
        raise _columns_error("score_column", name, columns)
    flag = "return_perplexity" if options.return_perplexity else "return_score"
    if wants_score(options) and not is_column and columns is not None and name in columns:
        raise ConfigError(f"{flag}=True adds a {name!r} column, but the dataset already has one; "
                          f"rename it first (ds.rename_column({name!r}, ...))")
    sampler = CorpusSampler(plan, text_column, id_column, stats)
    if sampler.metadata_column is not None and columns is not None and sampler.metadata_column not in columns:
        raise ConfigError(f"upsample_column={sampler.metadata_column!r} is not a column of the dataset (columns: "
                          f"{', '.join(sorted(columns))}); give the column upsample={options.upsample!r} reads, "
                          "or upsample='none'")
    kwargs: dict = {"batched": True, "batch_size": block_size, "with_indices": True}
    if isinstance(ds, datasets.Dataset):
        kwargs["new_fingerprint"] = _fingerprint(ds._fingerprint, options, language, plan, text_column, id_column)
    if sampler.upsampling is not None and not (wants_score(options) and not is_column):
        return ds.map(sampler.kept_rows, **kwargs)  # copies: rows repeated, the columns as they are
    if not wants_score(options) or is_column:
        return ds.filter(sampler.keep_mask, **kwargs)
    features = ds.features.copy() if ds.features is not None else None
    if features is not None:
        features[name] = datasets.Value("float64")
        kwargs["features"] = features
    return ds.map(sampler.kept_rows, **kwargs)


def sample_records(sampler: CorpusSampler, records: Iterable, *, block_size: int = BLOCK_SIZE,
                   return_score: bool = False) -> Iterator[tuple[int, dict]]:
    """``(position, example)`` of the kept records of one unit of a corpus source
    (:meth:`mc4_sampling.sources.base.CorpusSource.records`: ``(position, Record or None)``), decided by
    ``sampler`` in blocks of ``block_size`` (the draw keyed by each record's id, or its text where the
    sampler has no id column). An example is the record's ``text``, its id (under the sampler's
    ``id_column``), its metadata and, with ``return_score``, its score (unless the score is a column).
    A ``None`` record (a bad record the source skipped) is counted in ``sampler.stats.bad_records``."""
    block: list = []
    for position, record in records:
        if record is None:
            sampler.stats.bad_records += 1
            continue
        block.append((position, record))
        if len(block) == block_size:
            yield from _kept_records(sampler, block, return_score)
            block = []
    if block:
        yield from _kept_records(sampler, block, return_score)


def source_examples(options, source, units, *, stats: SamplingStats | None = None, language: str | None = None):
    """``(unit, position, example)`` of the kept documents of a corpus source's ``units``
    (:class:`~mc4_sampling.sources.base.CorpusSource`), sampled as ``options`` say (a validated
    :class:`~mc4_sampling.Mc4SamplingConfig`: its ``language``, the sampling options): every document
    decided by :class:`CorpusSampler` (the draw keyed by its id, or its text), ``train`` by the train
    rule and any other split by the validation rule (kept whole unless ``validation_sampling_factor``);
    ``stats`` counts as documents are read; ``language`` (default ``options.language``) the source's. The
    builder, ``sample --source`` and ``publish``'s checks before writing read sources this way."""
    plan = SamplingPlan.resolve(options, language or options.language)
    samplers: dict[str, CorpusSampler] = {}
    for unit in units:
        sampler = samplers.get(unit.split)
        if sampler is None:
            rule = plan.rule("train" if unit.split == "train" else "validation")
            sampler = samplers[unit.split] = CorpusSampler(plan, "text", "id" if source.id_column else None,
                                                           stats=stats, rule=rule)
        records = source.records(unit, on_bad_record=plan.on_bad_record, retries=plan.http_retries,
                                 timeout=plan.http_timeout)
        for position, example in sample_records(sampler, records, return_score=plan.return_perplexity):
            yield unit, position, example


def _kept_records(sampler: CorpusSampler, block: list, return_score: bool) -> Iterator[tuple[int, dict]]:
    batch = {sampler.text_column: [r.text for _, r in block]}
    if sampler.id_column is not None:
        batch[sampler.id_column] = [r.id for _, r in block]
    for name in block[0][1].metadata:
        batch[name] = [r.metadata.get(name) for _, r in block]
    copies, scores = sampler.decide_copies(batch, [p for p, _ in block])
    add_score = return_score and sampler.score_column is None
    for i in np.flatnonzero(copies).tolist():
        example = {name: values[i] for name, values in batch.items()}
        if add_score:
            example[sampler.score_name] = float(scores[i])
        yield block[i][0], example
        for _ in range(int(copies[i]) - 1):  # upsampled: the further copies, one after the other
            yield block[i][0], dict(example)


def _fingerprint(parent: str, options: SamplingOptions, language: str, plan: SamplingPlan, text_column: str,
                 id_column: str | None) -> str:
    """The fingerprint of a sampled ``Dataset``: its parent's, the options and the model's identity."""
    h = hashlib.blake2b(digest_size=8)
    model_id = plan.model.model_id if plan.needs_model("train") else None
    values = {f.name: getattr(options, f.name) for f in fields(options)
              if f.name not in ("perplexity_model", "scorer", "scorer_model")}
    values["language"] = language
    h.update(repr((parent, sorted(values.items()), repr(plan.train), model_id, text_column, id_column)).encode())
    return h.hexdigest()


#: file name endings -> the ``datasets`` packaged builder that reads them
_FILE_BUILDERS = {".parquet": "parquet", ".jsonl": "json", ".json": "json", ".jsonl.gz": "json", ".json.gz": "json",
                  ".jsonl.zst": "json", ".csv": "csv", ".csv.gz": "csv", ".txt": "text", ".txt.gz": "text"}


def open_corpus(source: str, config: str | None = None, split: str = "train"):
    """A streaming ``IterableDataset`` of ``source``: local data files (a file, a glob, or a folder
    of files of one format: Parquet, JSON lines, CSV, text) or a Hub dataset ``owner/name`` (with
    ``config``, e.g. FineWeb-2's ``spa_Latn``). Local files have a single split, ``train``.
    A source that does not load raises :class:`~mc4_sampling.errors.DataNotFoundError`.
    """
    import glob
    import os
    from pathlib import Path

    import datasets

    from .common.errors import HubUnreachableError
    from .common.hub import HubLocation, require_hub
    from .errors import DataNotFoundError

    path = os.path.expanduser(source)
    files = sorted(glob.glob(path)) if any(c in path for c in "*?[") else [path] if os.path.isfile(path) else []
    if os.path.isdir(path) and not os.path.isfile(os.path.join(path, "README.md")):
        files = sorted(str(p) for p in Path(path).rglob("*") if p.is_file())
    try:
        if files:
            kinds = {next((b for e, b in _FILE_BUILDERS.items() if f.endswith(e)), None) for f in files}
            kinds.discard(None)
            if len(kinds) != 1:
                raise DataNotFoundError(
                    f"{source!r}: found {'no' if not kinds else 'several'} data file formats among {len(files)} files "
                    f"({', '.join(sorted(k for k in kinds if k)) or 'none known'}); give files of one format: "
                    f"{', '.join(sorted(_FILE_BUILDERS))}")
            return datasets.load_dataset(kinds.pop(), data_files=[f for f in files if any(
                f.endswith(e) for e in _FILE_BUILDERS)], split="train", streaming=True)
        if HubLocation.parse(source) is not None and not os.path.exists(path):  # the Hub: the reachability rule
            require_hub(f"dataset {source!r}")
        return datasets.load_dataset(source, config, split=split, streaming=True)
    except (DataNotFoundError, HubUnreachableError):
        raise
    except Exception as e:  # datasets raises many types; all mean "this source does not load"
        raise DataNotFoundError(f"cannot open dataset {source!r} (config {config!r}, split {split!r}): "
                                f"{type(e).__name__}: {e}") from None


def _resolved_plan(language: str, options: dict) -> SamplingPlan:
    """The plan of ``sample_dataset``'s sampling keyword arguments ``options`` (checked the same way;
    ``options=`` a :class:`~mc4_sampling.options.SamplingOptions` is taken too)."""
    opts = corpus_options(**options)
    return SamplingPlan.resolve(opts, check_language(language))


def score_texts(texts: Sequence[str], language: str = "es", **options) -> np.ndarray:
    """The score of each text by the scorer that ``sample_dataset``'s options name (the embedded
    KenLM perplexity by default): what ``return_score=True`` adds to a kept row, for every text.
    A scorer that reads another column (``score_column``) has no text to score: ConfigError."""
    if "options" not in options:  # the scorer only: no weighting to resolve
        options = {"sampling_method": "none", **options}
    plan = _resolved_plan(language, options)
    model = plan.model
    if model.input_column is not None:
        raise ConfigError("score_texts scores texts; a score_column is read from the dataset instead")
    return np.asarray(model.score(list(texts)), dtype=np.float64)


def keep_weights(scores, language: str = "es", **options) -> tuple[float, np.ndarray]:
    """``(factor, w)`` with ``p(x) = factor * w(x)`` the keep probability of ``sample_dataset``'s
    options (every weighting is linear in its factor; ``w`` is ``p`` at factor 1).

    ``sample_dataset(**options, sampling_factor=f)`` keeps a document with draw ``u`` exactly when
    ``u < f * w(x)``, that is when its threshold ``u / w(x)`` is below ``f`` (``w = 0``: never kept), so
    the factor keeping exactly ``n`` documents lies between the ``n``-th and ``(n+1)``-th smallest
    thresholds. ``method="none"`` has no factor: ``(1.0, ones)``, every document kept."""
    plan = _resolved_plan(language, options)
    x = np.asarray(scores, dtype=np.float64)
    rule = plan.train
    if rule.weighting.keeps_all:
        return 1.0, np.ones(x.shape)
    w = np.asarray(replace(rule, factor=1.0).probability(x), dtype=np.float64) * np.ones(x.shape)
    return float(rule.factor), np.where(np.isfinite(w) & (w > 0), w, 0.0)
