"""The sampler as datatrove pipeline steps: read a corpus source's units, keep documents by their score,
write Parquet.

Three steps make the pipeline of ``mc4-sampling publish`` (:mod:`mc4_sampling.publish`), run by
any datatrove executor (local processes, Ray, Slurm):

* A reader yields a :class:`~datatrove.data.Document` per good record of the units of its task,
  with ``language``, ``split``, ``unit``, ``position`` (the record's index in the unit, bad records
  included) and the columns to keep in its metadata. After the last record of a unit it yields an
  *end-of-unit marker* (``metadata["mc4_end"]``: the unit, its bad records, or the error that
  stopped it). :class:`Mc4ShardReader` reads mC4's shards (*units*: one split's shard, local or
  HTTP, :func:`mc4_sampling.reader.iter_records`; ``shard``, ``timestamp`` and ``url`` in the
  metadata): its documents are drawn by ``(seed, language, split, shard, position)``, BERTIN's draw,
  so its files stay bit-exact. :class:`SourceReader` reads the units of any other corpus source
  (:class:`~mc4_sampling.sources.SourceUnit`, :meth:`~mc4_sampling.sources.CorpusSource.records`):
  its documents carry ``doc_key`` (the id, or None: the text is the key), and their draw is keyed by
  ``(seed, language, id or text)`` (:func:`~mc4_sampling.draw.document_key`,
  :func:`~mc4_sampling.draw.hashes64`, as :class:`~mc4_sampling.corpus.CorpusSampler`), so the same
  documents are kept whatever the units, tasks or workers.
* :class:`ScoreSampler` applies the builder's keep decision to the documents, in blocks of
  256 of one shard: the block decider of the builder's
  :class:`~mc4_sampling.sampler.DocumentSampler` (from
  :meth:`~mc4_sampling.plan.SamplingPlan.document_sampler`) decides each block
  (:class:`~mc4_sampling.sampler.BlockDecider`: draw first, score what the draw does not reject,
  keep when ``u < p(x)``; a document without a finite score is an error). Several configs
  (methods, scorers) are decided on the same documents, each document scored at most once per
  scorer (configs sharing a scorer share its scores). Each kept document is yielded with its
  ``config`` and ``score`` in its metadata.
* :class:`SubsetWriter` writes the kept documents of each (config, shard) to
  ``data/<config>/<split>-NNNNN-of-NNNNN.parquet`` under a temporary name, renamed when the
  shard is complete (columns ``text``, the source's metadata columns (mC4: ``timestamp``, ``url``)
  and the config's score column: ``perplexity`` for KenLM, ``score`` otherwise,
  :func:`features_for`), then the shard's
  statistics to ``.mc4-sampling/units/<unit>.json``, which marks the shard as done (a rerun
  skips it). A shard that failed leaves no file but ``.mc4-sampling/failed/<unit>.json`` (the
  shard and the error).

Datatrove statistics of each task: ``read``, ``bad_records``, ``scored`` (documents scored once,
whatever the number of configs), and per config ``<config>/scored``, ``<config>/skipped_by_draw``,
``<config>/kept``.

This module needs datatrove (``pip install 'mc4-sampling[scale]'``); :mod:`mc4_sampling.publish`
imports it only when a pipeline runs.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from typing import Iterator

import numpy as np
from datatrove.data import Document
from datatrove.pipeline.base import PipelineStep

from .common.errors import UserError
from .common.outputs import write_atomic
from .draw import document_key, hashes64
from .errors import Mc4SamplingError
from .plan import SamplingPlan
from .reader import iter_records
from .shards import ShardRef
from .sources import SourceOptions, SourceUnit, make_source

#: metadata key of the end-of-shard markers that travel between the steps
END = "mc4_end"
#: the bookkeeping folder inside an output folder
STATE_DIR = ".mc4-sampling"
#: the columns every Parquet file has, before the score column
DOCUMENT_FEATURES = {"text": "string", "timestamp": "string", "url": "string"}
#: the columns of a KenLM config's files
FEATURES = {**DOCUMENT_FEATURES, "perplexity": "float64"}


def features_for(score_name: str = "score", columns: dict | None = None) -> dict:
    """The columns of a config's Parquet files: the document's (``columns``, ``{name: type}``, types as
    :func:`arrow_type` reads them; default :data:`DOCUMENT_FEATURES`, mC4's) and the scorer's column
    (:attr:`~mc4_sampling.scoring.Scorer.score_name`: ``perplexity`` for KenLM, ``score`` otherwise)."""
    document = DOCUMENT_FEATURES if columns is None else columns
    # a score read from a column of the source is that column (kept once, as the score)
    return {**{k: v for k, v in document.items() if k != score_name}, score_name: "float64"}


def arrow_type(kind: str):
    """The Arrow type of a column type name (``string``, ``float64``, ``int64``, ``bool``, ``list<T>``)."""
    import pyarrow as pa

    if kind.startswith("list<") and kind.endswith(">"):
        return pa.list_(arrow_type(kind[5:-1]))
    return {"string": pa.string(), "float64": pa.float64(), "int64": pa.int64(), "bool": pa.bool_()}[kind]


def type_name(value) -> str | None:
    """The column type name (:func:`arrow_type`) of a Python value; None for None (unknown yet);
    anything else (a dict...) is kept as text (``string``: its JSON)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int64"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, (list, tuple)):
        inner = next((type_name(v) for v in value if v is not None), None)
        return f"list<{inner or 'string'}>"
    return "string"


def unit_description(unit) -> dict:
    """What a unit's statistics and failure records say it is (mC4: its shard; a source's unit: itself)."""
    return asdict(unit.shard) if isinstance(unit, Unit) else asdict(unit)


def unit_path(unit) -> str:
    """The file a unit reads."""
    return unit.shard.path if isinstance(unit, Unit) else unit.path


@dataclass(frozen=True)
class Unit:
    """One shard of one split: the work of a task is a list of units."""

    split: str
    #: index of the shard among the split's files of this dataset, and their number
    index: int
    count: int
    shard: ShardRef

    @property
    def name(self) -> str:
        return f"{self.split}-{self.index:05d}-of-{self.count:05d}"


def units_of_task(units: list, rank: int, world_size: int) -> list:
    """The units of task ``rank`` of ``world_size``: a contiguous slice, in order."""
    n = len(units)
    return units[rank * n // world_size:(rank + 1) * n // world_size]


def data_file(config: str, unit) -> str:
    """The Parquet file of a config and unit, relative to the output folder."""
    return f"data/{config}/{unit.name}.parquet"


def unit_stats_file(output_dir: str, unit) -> str:
    return os.path.join(output_dir, STATE_DIR, "units", f"{unit.name}.json")


def failure_file(output_dir: str, unit) -> str:
    return os.path.join(output_dir, STATE_DIR, "failed", f"{unit.name}.json")


def write_json_atomic(path: str, value) -> None:
    """Write ``value`` as JSON to ``path`` through a temporary file renamed when complete."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_atomic(path, json.dumps(value, indent=1, sort_keys=True))


class Mc4ShardReader(PipelineStep):
    """Reads the units of a task (see the module); skips units already done in ``output_dir``."""

    name = "mC4 shards"
    type = "📖 - READER"

    def __init__(self, units: list[Unit], output_dir: str | None = None, on_bad_record: str = "raise",
                 retries: int = 5, skip_done: bool = True, max_record_bytes: int | None = None,
                 timeout: float | None = None):
        super().__init__()
        self.units = list(units)
        #: as the builder reads (``max_record_bytes`` decides which long lines are bad records)
        self.reader_options = {"max_record_bytes": max_record_bytes, "timeout": timeout}
        self.output_dir = output_dir
        self.on_bad_record = on_bad_record
        self.retries = retries
        self.skip_done = skip_done

    def run(self, data=None, rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        if data:
            yield from data
        for unit in units_of_task(self.units, rank, world_size):
            if self.skip_done and self.output_dir and os.path.exists(unit_stats_file(self.output_dir, unit)):
                self.stat_update("shards_already_done")
                continue
            yield from self.read_unit(unit)

    def read_unit(self, unit: Unit) -> Iterator[Document]:
        shard = unit.shard
        bad = lines = read = 0
        try:
            for position, record in iter_records(shard.path, self.on_bad_record, self.retries, **self.reader_options):
                lines = position + 1
                if record is None:
                    bad += 1
                    continue
                read += 1
                yield Document(
                    text=record["text"], id=f"{unit.name}/{position}",
                    metadata={"language": shard.language, "split": shard.split, "shard": shard.index,
                              "position": position, "timestamp": record.get("timestamp"), "url": record.get("url"),
                              "unit": unit.name},
                )
        except (Mc4SamplingError, OSError, ConnectionError, EOFError) as e:
            self.stat_update("failed_shards")
            yield _marker(unit, bad, lines, error=f"{type(e).__name__}: {e}")
            return
        finally:  # counted per shard: a statistic per document would cost more than reading it
            self.stat_update("read", value=read, unit="shard")
            self.stat_update("bad_records", value=bad, unit="shard")
        self.stat_update("shards")
        yield _marker(unit, bad, lines)


class SourceReader(Mc4ShardReader):
    """Reads the units of a task from a corpus source (see the module); skips units already done.

    The source travels as its :class:`~mc4_sampling.sources.SourceOptions` and is built once per
    process. ``columns``: the columns to keep (each document carries their values; ``id_column``: the
    one that holds the record's id); ``score_columns``: columns a scorer reads (carried too)."""

    name = "corpus source"

    def __init__(self, source: SourceOptions, units: list[SourceUnit], output_dir: str | None = None,
                 on_bad_record: str = "raise", retries: int = 5, skip_done: bool = True,
                 timeout: float | None = None, columns=(), score_columns=(), id_column: str | None = None):
        super().__init__(units, output_dir, on_bad_record, retries, skip_done, timeout=timeout)
        self.source_options = source
        #: the column the record's id is kept under (None: the source has no id)
        self.id_column = id_column
        self.columns = tuple(dict.fromkeys([*columns, *score_columns]))
        self._source = None

    def read_unit(self, unit: SourceUnit) -> Iterator[Document]:
        if self._source is None:
            self._source = make_source(self.source_options)
        bad = lines = read = 0
        columns, id_column = self.columns, self.id_column
        try:
            for position, record in self._source.records(unit, on_bad_record=self.on_bad_record, retries=self.retries,
                                                         timeout=self.reader_options["timeout"]):
                lines = position + 1
                if record is None:
                    bad += 1
                    continue
                read += 1
                values = {**record.metadata, id_column: record.id} if id_column else record.metadata
                yield Document(
                    text=record.text, id=f"{unit.name}/{position}",
                    metadata={"language": unit.language, "split": unit.split, "position": position, "unit": unit.name,
                              "doc_key": record.id, "columns": {c: values.get(c) for c in columns}},
                )
        except (UserError, OSError, ConnectionError, EOFError, ValueError) as e:
            self.stat_update("failed_shards")
            yield _marker(unit, bad, lines, error=f"{type(e).__name__}: {e}")
            return
        finally:
            self.stat_update("read", value=read, unit="shard")
            self.stat_update("bad_records", value=bad, unit="shard")
        self.stat_update("shards")
        yield _marker(unit, bad, lines)


def _marker(unit, bad_records: int, lines: int, error: str | None = None) -> Document:
    return Document(text="", id=f"{unit.name}/end",
                    metadata={END: {"unit": unit, "bad_records": bad_records, "lines": lines, "error": error}})


class ScoreSampler(PipelineStep):
    """The builder's keep decision as a datatrove step (see the module).

    Args:
        configs: ``{config name: validated Mc4SamplingConfig}``; each is decided on every document.
        block_size: documents of one shard decided together (one SentencePiece batch), as the builder.
        max_docs: stop keeping for a (config, split) after this many kept documents, counted in
            the task (deterministic only with one task).
    """

    name = "score sampling"
    type = "🔻 - FILTER"

    def __init__(self, configs: dict, block_size: int = 256, max_docs: int | None = None):
        super().__init__()
        self.configs = dict(configs)
        self.block_size = block_size
        self.max_docs = max_docs

    def run(self, data, rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        self._samplers: dict = {}
        self._unit_stats: dict[str, dict] = {}
        self._kept_in_task: dict[tuple[str, str], int] = {}
        block: list[Document] = []
        for doc in data or ():
            end = doc.metadata.get(END)
            if end is None and block and doc.metadata["unit"] != block[0].metadata["unit"]:
                yield from self._decide(block)
                block = []
            if end is not None:
                if end["error"] is None:
                    yield from self._decide(block)
                    end["configs"] = self._unit_stats.pop(end["unit"].name, None) or self._empty_stats()
                self._unit_stats.pop(end["unit"].name, None)
                block = []
                yield doc
                continue
            block.append(doc)
            if len(block) == self.block_size:
                yield from self._decide(block)
                block = []
        if block:
            yield from self._decide(block)

    def _empty_stats(self) -> dict:
        return {name: {"read": 0, "scored": 0, "skipped_by_draw": 0, "kept": 0} for name in self.configs}

    def sampler(self, name: str, language: str, split: str):
        """The builder's sampler of a config, language and split (resolved once per process): ``train``
        by the train rule, any other split (mC4's ``validation``, FineWeb-2's ``test``) by the validation
        rule, as the builder (kept whole unless ``validation_sampling_factor``)."""
        key = (name, language, split)
        if key not in self._samplers:
            plan = SamplingPlan.resolve(self.configs[name], language)
            self._samplers[key] = plan.document_sampler("train" if split == "train" else "validation",
                                                        return_perplexity=True)
        return self._samplers[key]

    def _draw_keys(self, block: list[Document], sampler) -> tuple[int, np.ndarray]:
        """The draw's key and counters of a block: mC4's (shard key, positions), BERTIN's; a source's
        (:func:`~mc4_sampling.draw.document_key`, :func:`~mc4_sampling.draw.hashes64` of each id or text),
        :class:`~mc4_sampling.corpus.CorpusSampler`'s."""
        meta = block[0].metadata
        if "shard" in meta:
            shard = ShardRef(meta["language"], meta["split"], meta["shard"], "")
            positions = np.fromiter((d.metadata["position"] for d in block), dtype=np.uint64, count=len(block))
            return sampler.shard_key(shard), positions
        ids = [d.metadata["doc_key"] for d in block]
        return (document_key(sampler.seed, meta["language"]),
                hashes64([d.text if i is None else i for d, i in zip(block, ids)]))

    def _decide(self, block: list[Document]) -> Iterator[Document]:
        if not block:
            return
        meta = block[0].metadata
        unit, split = meta["unit"], meta["split"]
        by_scorer: dict = {}  # model_id -> (scores, scored): each document scored once per scorer
        unit_stats = self._unit_stats.setdefault(unit, self._empty_stats())
        model_holder = {}

        def score(idx):  # each document scored once per scorer, whichever configs need it
            model = model_holder["model"]
            scores, scored = by_scorer.setdefault(model.model_id, (np.full(len(block), np.nan),
                                                                   np.zeros(len(block), dtype=bool)))
            missing = idx[~scored[idx]]
            if len(missing):
                column = model.input_column  # a scorer of a column: the source's values
                values = ([block[i].text for i in missing] if column is None else
                          [block[i].metadata["columns"].get(column) for i in missing])
                with self.track_time("block"):
                    scores[missing] = model.score(values)
                scored[missing] = True
                self.stat_update("scored", value=len(missing))
            return scores[idx]

        kept_by_doc: list[list[str]] = [[] for _ in block]
        scores_of: dict = {}
        draw = None
        for name in self.configs:
            count_key = (name, split)
            if self.max_docs and self._kept_in_task.get(count_key, 0) >= self.max_docs:
                continue
            sampler = self.sampler(name, meta["language"], split)
            model_holder["model"] = sampler.model
            if draw is None or draw[0] != sampler.seed:  # configs of one seed share the draw's counters
                draw = (sampler.seed, *self._draw_keys(block, sampler))
            upsampling = sampler.decider.upsampling
            metadata = ([d.metadata.get("columns", d.metadata).get(upsampling.column) for d in block]
                        if upsampling is not None and upsampling.reads_column else None)
            # publish refuses a document without a finite score (or upsampling value), whatever on_bad_record
            decision = sampler.decider.decide(
                draw[1], draw[2], score, on_bad_record="raise", metadata=metadata,
                bad_record=lambda bad: Mc4SamplingError(f"{unit}: {len(bad)} documents got no finite score from "
                                                        f"{sampler.model.name}" if metadata is None else
                                                        f"{unit}: {len(bad)} documents got no finite score from "
                                                        f"{sampler.model.name} or no {upsampling.column} >= 0"))
            scores_of[name] = decision.perplexity
            stats = unit_stats[name]
            n_scored = int(decision.to_score.sum())
            stats["scored"] += n_scored
            stats["skipped_by_draw"] += len(block) - n_scored
            self.stat_update(f"{name}/scored", value=n_scored)
            self.stat_update(f"{name}/skipped_by_draw", value=len(block) - n_scored)
            kept = 0
            for i, copies in enumerate(decision.n_copies.tolist()):
                stats["read"] += 1
                if copies:
                    kept += 1
                    kept_by_doc[i].extend([name] * copies)  # upsampled: one after the other
                    if decision.copies is not None:
                        _count_copies(stats, block[i].text, copies)
                    if self.max_docs:
                        self._kept_in_task[count_key] = self._kept_in_task.get(count_key, 0) + 1
                        if self._kept_in_task[count_key] >= self.max_docs:
                            break
            stats["kept"] += kept
            self.stat_update(f"{name}/kept", value=kept, unit="block")
        for i, names in enumerate(kept_by_doc):
            if not names:
                continue
            doc = block[i]
            for name in names[1:]:  # a copy for each further config that keeps it
                yield Document(text=doc.text, id=doc.id,
                               metadata={**doc.metadata, "config": name, "score": float(scores_of[name][i])})
            doc.metadata["config"], doc.metadata["score"] = names[0], float(scores_of[names[0]][i])
            yield doc


def _count_copies(stats: dict, text: str, copies: int) -> None:
    """An upsampled config's unit statistics: ``copies`` written, their ``histogram`` (copies -> documents),
    the whitespace ``words`` of the kept documents and ``copy_words`` of the copies (absent without upsampling)."""
    words = len(text.split())
    stats["copies"] = stats.get("copies", 0) + copies
    histogram = stats.setdefault("histogram", {})
    histogram[str(copies)] = histogram.get(str(copies), 0) + 1
    stats["words"] = stats.get("words", 0) + words
    stats["copy_words"] = stats.get("copy_words", 0) + words * copies


#: the former name of :class:`ScoreSampler`
PerplexitySampler = ScoreSampler


class SubsetWriter(PipelineStep):
    """Writes the kept documents of each (config, shard) as one Parquet file (see the module)."""

    name = "Parquet per config and shard"
    type = "💽 - WRITER"

    def __init__(self, output_dir: str, configs: list[str], rows_per_group: int = 10_000,
                 score_name: str | dict = "perplexity", columns: dict | None = None):
        super().__init__()
        self.output_dir = output_dir
        self.configs = list(configs)
        self.rows_per_group = rows_per_group
        #: the score column of each config (``perplexity`` for KenLM, ``score`` otherwise); one name for all
        self.score_names = (dict(score_name) if isinstance(score_name, dict)
                            else {config: score_name for config in self.configs})
        #: the document's columns after the text (``{name: type}``; None: mC4's, :data:`DOCUMENT_FEATURES`)
        self.columns = None if columns is None else dict(columns)

    def run(self, data, rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        schemas = {config: pa.schema([(name, arrow_type(kind))
                                      for name, kind in features_for(self.score_names[config], self.columns).items()])
                   for config in self.configs}
        names = {config: [n for n in schemas[config].names[1:-1]] for config in self.configs}
        if self.columns is None:  # mC4's documents carry their fields in the metadata itself
            def row(doc):
                meta = doc.metadata
                return (doc.text, meta["timestamp"], meta["url"], meta["score"])
        else:
            texts = {n for n, kind in self.columns.items() if kind == "string"}

            def value(name, v):  # a text column holding something else (a dict, a number): its JSON
                return json.dumps(v, ensure_ascii=False, default=str) if (
                    name in texts and v is not None and type(v) is not str) else v

            def row(doc):
                values, meta = doc.metadata["columns"], doc.metadata
                return (doc.text, *[value(n, values.get(n)) for n in names[meta["config"]]], meta["score"])
        open_files: dict[str, dict] = {}  # config -> {"tmp", "writer", "rows", "bytes"} of the current unit

        def flush(state, close=False):
            schema = state["schema"]
            try:
                if state["writer"] is None:
                    state["writer"] = pq.ParquetWriter(state["tmp"], schema)
                if state["rows"]:  # an empty shard: a file without row groups (which readers skip)
                    columns = list(zip(*state["rows"]))
                    table = pa.Table.from_arrays([pa.array(c, type=f.type) for c, f in zip(columns, schema)],
                                                 schema=schema)
                    state["writer"].write_table(table)
                    state["bytes"] += table.nbytes
                    state["rows"] = []
                if close:
                    state["writer"].close()
            except OSError as e:  # pyarrow's write errors (disk full...) name no file: name it
                if e.filename is not None or e.errno is None:
                    raise
                raise OSError(e.errno, os.strerror(e.errno), state["tmp"]) from e

        def state_for(config, unit_name):
            state = open_files.get(config)
            if state is None:
                folder = os.path.join(self.output_dir, "data", config)
                os.makedirs(folder, exist_ok=True)
                tmp = os.path.join(folder, f".tmp.{unit_name}.{os.getpid()}.parquet")
                state = open_files[config] = {"tmp": tmp, "writer": None, "rows": [], "bytes": 0,
                                              "schema": schemas[config]}
            return state

        def discard():
            for state in open_files.values():
                if state["writer"] is not None:
                    try:
                        state["writer"].close()
                    except OSError:  # disk full: the error that stopped the task is the one to report
                        pass
                if os.path.exists(state["tmp"]):
                    os.unlink(state["tmp"])
            open_files.clear()

        try:
            for doc in data or ():
                end = doc.metadata.get(END)
                if end is None:
                    meta = doc.metadata
                    state = state_for(meta["config"], meta["unit"])
                    state["rows"].append(row(doc))
                    if len(state["rows"]) >= self.rows_per_group:
                        flush(state)
                    continue
                unit = end["unit"]
                if end["error"] is not None:
                    discard()
                    write_json_atomic(failure_file(self.output_dir, unit),
                                      {"shard": unit_path(unit), "unit": unit.name, "error": end["error"]})
                    continue
                files = {}
                for config in self.configs:
                    state = state_for(config, unit.name)
                    flush(state, close=True)
                    final = os.path.join(self.output_dir, data_file(config, unit))
                    os.replace(state["tmp"], final)
                    files[config] = state["bytes"]
                    self.stat_update(f"{config}/bytes", value=state["bytes"], unit="shard")
                open_files.clear()
                configs = end["configs"]
                for config in self.configs:
                    configs[config]["num_bytes"] = files[config]
                    configs[config]["file"] = data_file(config, unit)
                write_json_atomic(unit_stats_file(self.output_dir, unit), {
                    "unit": unit.name, "split": unit.split, "shard": unit_description(unit), "lines": end["lines"],
                    "bad_records": end["bad_records"], "configs": configs,
                })
        finally:
            discard()
        yield from ()
