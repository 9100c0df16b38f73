"""Materialise sampled subsets as one multi-config Parquet dataset with its card, on datatrove.

:func:`publish` runs the pipeline of :mod:`mc4_sampling.engine` (read, keep by perplexity, write)
over every shard of the requested splits with a datatrove executor (``local`` processes, ``ray``,
``slurm``), one config per sampling method, into::

    OUTPUT/data/<config>/<split>-NNNNN-of-NNNNN.parquet   one file per config and input shard
    OUTPUT/README.md                                      the dataset card, written last
    OUTPUT/.mc4-sampling/options.json                     what the folder holds (the manifest)
    OUTPUT/.mc4-sampling/units/<split>-NNNNN-of-NNNNN.json  statistics of each finished shard
    OUTPUT/.mc4-sampling/logs/                            datatrove's logs, stats and completions

A rerun with the same options finishes only the missing shards; a folder holding another dataset
(other options) or files this tool did not write is refused unless ``overwrite``, which replaces
the folder's contents. The files of a shard do not depend on the executor, the number of tasks or
workers: the same options give the same dataset at any scale, equal to what ``load_dataset`` keeps.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
import logging
import os
import shutil
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import datatrove_logs
from .builder import Mc4SamplingConfig
from .common import hub
from .common.console import Interrupted
from .common.errors import UserError, os_error_reason
from .common.outputs import write_atomic
from .common.processes import children_die_with_parent
from .errors import BadRecordError, ConfigError, Mc4SamplingError
from .options import SamplingOptions, check_sampling_options, flag
from .plan import SPLITS, SamplingPlan, check_max_docs
from .scoring import ScorerSource
from .shards import no_files_error, shard_refs_for
from .sources import SourceOptions
from .upsampling import duplication
from .weightings import WEIGHTINGS

logger = logging.getLogger(__name__)

EXECUTORS = ("local", "ray", "slurm")
SCALE_EXTRA = "pip install 'mc4-sampling[scale]'"
STATE_DIR = ".mc4-sampling"
MANIFEST_FORMAT = "mc4-sampling-publish"
#: the mC4 source's options that decide which documents a dataset holds (``http_retries`` does not);
#: the manifest holds these and every sampling option but those of the ``output`` group (what a kept
#: document carries: the score, which publish always adds)
SOURCE_OPTIONS = ("languages", "data_dir", "base_url", "shards", "max_record_bytes")
#: sampling options absent from a manifest when unset (added after the first manifests, which stay valid)
OPTIONAL_IN_MANIFEST = ("weighting_options", "scorer", "scorer_model", "scorer_options", "score_column")
#: sampling options absent from a manifest at their default (added later; the former manifests stay valid)
DEFAULT_ABSENT_IN_MANIFEST = ("max_copies", "upsample", "upsample_column")


def manifest_options() -> tuple[str, ...]:
    """The names of the options a manifest records: the sampling options that decide the documents, the source's."""
    deciding = tuple(f.name for f in dataclasses.fields(SamplingOptions) if f.metadata["group"] != "output")
    return deciding + SOURCE_OPTIONS

#: each weighting's formula, as the card shows it (:attr:`Weighting.formula`)
FORMULAS = {name: w.formula for name, w in WEIGHTINGS.items()}


class PublishError(Mc4SamplingError):
    """A publish run cannot start or did not finish; the message says what to do."""


class MissingExtraError(Mc4SamplingError, ImportError):
    """An optional dependency of the ``scale`` extra is missing."""


@dataclass
class SlurmOptions:
    """Options of the Slurm executor (sbatch directives and the job's environment)."""

    partition: str
    time: str = "24:00:00"
    cpus_per_task: int = 1
    mem_per_cpu_gb: float = 2
    job_name: str = "mc4-sampling"
    venv_path: str | None = None
    #: False: write the sbatch script and the pickled pipeline, submit nothing
    submit: bool = True


@dataclass
class SplitStats:
    """Statistics of one config and split, summed over its shards."""

    read: int = 0
    scored: int = 0
    skipped_by_draw: int = 0
    kept: int = 0
    bad_records: int = 0
    num_bytes: int = 0
    files: list = field(default_factory=list)
    #: rows written: ``kept`` without upsampling, the copies with it
    copies: int = 0
    #: with upsampling: copies -> documents, and the whitespace words of the kept documents and of the copies
    histogram: dict = field(default_factory=dict)
    words: int = 0
    copy_words: int = 0

    @property
    def keep_rate(self) -> float:
        return self.kept / self.read if self.read else 0.0


@dataclass
class PublishResult:
    output_dir: str
    configs: list[str]
    splits: list[str]
    #: ``{config: {split: SplitStats}}`` (finished shards only)
    stats: dict
    complete: bool
    shards: int
    tasks: int
    card: str | None = None
    #: the sbatch script (Slurm executor)
    slurm_script: str | None = None


# --- the engine and its optional dependencies --------------------------------------------------


def load_engine():
    """:mod:`mc4_sampling.engine` (needs datatrove); :class:`MissingExtraError` naming the extra."""
    try:
        engine = importlib.import_module("mc4_sampling.engine")
    except ImportError as e:
        raise MissingExtraError(f"publish needs datatrove ({e}); install it with: {SCALE_EXTRA}") from None
    return engine


def require_ray():
    try:
        import ray
    except ImportError as e:
        raise MissingExtraError(f"--executor ray needs Ray ({e}); install it with: {SCALE_EXTRA}") from None
    return ray


# --- the run -----------------------------------------------------------------------------------


def method_configs(config: Mc4SamplingConfig, methods, weighting_options: dict | None = None
                   ) -> dict[str, Mc4SamplingConfig]:
    """``{method: the config with that sampling_method}`` (every one validated, scores returned).

    ``weighting_options`` (default: the config's) are shared by the methods: each config gets the
    keys its weighting declares (``threshold`` ``low``/``high``, ``pareto`` ``alpha``); a key that
    none of the methods declares is refused, naming the methods and their keys.
    """
    methods = list(dict.fromkeys(methods))
    shared = dict(config.weighting_options or {}) if weighting_options is None else dict(weighting_options)
    declared = {m: WEIGHTINGS[m].option_keys for m in methods if m in WEIGHTINGS}
    unused = [k for k in shared if not any(k in keys for keys in declared.values())]
    if unused:
        valid = "; ".join(f"{m}: {', '.join(keys)}" for m, keys in declared.items() if keys) or "none"
        raise ConfigError(f"weighting_options.{unused[0]} is not a parameter of sampling_method "
                          f"{', '.join(methods)} (valid keys: {valid})")
    configs = {}
    for method in methods:
        own = {k: v for k, v in shared.items() if k in declared.get(method, ())} or None
        c = dataclasses.replace(config, sampling_method=method, return_perplexity=True, weighting_options=own)
        if hasattr(c, "validate"):  # a builder config (mC4)
            c = c.validate()
        else:  # the sampling options of a corpus source
            check_sampling_options(c, flag)
        configs[method] = c
    return configs


def manifest_of(configs: dict[str, Mc4SamplingConfig], splits, max_docs, source: SourceOptions | None = None) -> dict:
    """What the folder holds: the options that decide its documents, per config (and the corpus
    source's, ``source``, when it is not mC4)."""
    def options(c):
        values = {name: getattr(c, name, None) for name in manifest_options()}
        for name in OPTIONAL_IN_MANIFEST:
            if values[name] is None:  # absent: the manifests of KenLM runs stay as they were
                del values[name]
        for name in DEFAULT_ABSENT_IN_MANIFEST:
            if values[name] == SamplingOptions.__dataclass_fields__[name].default:
                del values[name]
        if "scorer" in values and not isinstance(values["scorer"], str):
            values["scorer"] = SamplingPlan.resolve(c, language_of(c, source)).model.model_id
        if c.calibration is not None:
            values["calibration"] = {"path": str(c.calibration),
                                     "sha256": hashlib.sha256(Path(c.calibration).read_bytes()).hexdigest()}
        if getattr(c, "data_dir", None) is not None:
            values["data_dir"] = os.path.abspath(os.path.expanduser(str(c.data_dir)))
        return values

    manifest = {"format": MANIFEST_FORMAT, "version": 1, "splits": list(splits), "max_docs": max_docs,
                "configs": {name: options(c) for name, c in configs.items()}}
    if source is not None:  # a corpus source: its options replace mC4's in each config
        for values in manifest["configs"].values():
            for name in SOURCE_OPTIONS:
                values.pop(name, None)
        manifest["source"] = source_manifest(source)
    return json.loads(json.dumps(manifest, default=list))


def source_manifest(source: SourceOptions) -> dict:
    """The options of a corpus source that decide which documents a dataset holds (a local location
    made absolute)."""
    values = dataclasses.asdict(source)
    location = values["location"]
    if location is not None and "://" not in location:
        values["location"] = os.path.abspath(os.path.expanduser(location))
    if values["data_files"] is not None:
        values["data_files"] = {k: list(v) for k, v in dict(values["data_files"]).items()}
    return values


def language_of(config, source: SourceOptions | None = None) -> str:
    """The language a config samples: the corpus source's, else the (first) mC4 language."""
    return source.language if source is not None else config.languages[0]


def is_mc4(source: SourceOptions | None) -> bool:
    """Whether ``source`` is mC4 read by the builder's reader (None: the configs' own mC4 options)."""
    if source is None:
        return True
    from .sources.base import SOURCES, source_names

    source_names()  # the built-in sources registered
    cls = SOURCES.get(source.source)
    return cls is not None and cls.draw_by_position


def source_units(engine, source: SourceOptions, configs: dict, splits) -> tuple:
    """Check a corpus source and the configs against it, before any work: ``(the source, its units
    of the requested splits, the splits, the kept columns and their types)``.

    A ``--score-column`` the source lacks, a split it lacks, a source without files: one error line."""
    from .sources import make_source

    src = make_source(source, "--source")
    src.check()
    title = src.title or src.name
    available = tuple(src.splits())
    splits = list(available) if splits is None else list(dict.fromkeys(splits))
    unknown = [s for s in splits if s not in available]
    if unknown:
        raise ConfigError(f"--splits {unknown[0]}: the {title} source has the splits {', '.join(available)} "
                          f"for {source.language}")
    # what each kept document carries beside its text: its id (the draw's key; named ``id`` whatever the
    # source calls it, as in the builder's examples), then the metadata columns
    columns = tuple(dict.fromkeys(c for c in ("id" if src.id_column else None, *src.metadata_columns)
                                  if c and c != src.text_column))
    score_columns = []
    for c in configs.values():
        if ScorerSource.of(c, source.language).kind != "column":
            continue
        column = c.score_column or dict(c.scorer_options or {}).get("column")
        if column not in src.score_columns and column not in columns:
            known = [*src.score_columns, *columns]
            raise ConfigError(f"--score-column {column}: the {title} source has no such column (its columns: "
                              f"{', '.join(known) if known else 'none but the text'})")
        score_columns.append(column)
    units = [u for split in splits for u in src.units(split)]
    if not units:
        raise PublishError(f"the {title} source has no files for {source.language} "
                           f"(splits {', '.join(splits)}, location {source.location or 'its public home'})")
    return src, units, splits, column_types(src, units[0], columns), tuple(dict.fromkeys(score_columns))


def record_values(src, record) -> dict:
    """The columns of a record beside its text: its metadata and its id (as ``id``)."""
    return {**record.metadata, "id": record.id} if src.id_column else record.metadata


def column_types(src, unit, columns, sample: int = 1000) -> dict:
    """``{"text": "string", column: type}`` of the kept columns, from the first records of the first
    unit (a column whose values are all null there is text)."""
    types = {"text": "string", **{c: None for c in columns}}
    if columns:
        from .engine import type_name

        records = src.records(unit, on_bad_record="skip")
        try:
            for n, (_, record) in enumerate(records):
                if record is not None:
                    values = record_values(src, record)
                    for c in columns:
                        if types[c] is None:
                            types[c] = type_name(values.get(c))
                if n >= sample or all(types.values()):
                    break
        finally:
            close = getattr(records, "close", None)
            if close is not None:
                close()
    return {c: t or "string" for c, t in types.items()}


def publish(
    configs: dict[str, Mc4SamplingConfig],
    output_dir: str,
    *,
    source: SourceOptions | None = None,
    splits=None,
    executor: str = "local",
    tasks: int | None = None,
    workers: int | None = None,
    max_docs: int | None = None,
    overwrite: bool = False,
    slurm: SlurmOptions | None = None,
    ray_address: str | None = None,
    repo_id: str | None = None,
    on_interrupt=None,
    before_writing=None,
) -> PublishResult:
    """Sample every shard of ``splits`` with each config and write the dataset (see the module).

    ``configs`` maps config names to validated builder configs that differ only in their sampling
    (:func:`method_configs`), or, with a corpus ``source`` other than mC4, to validated
    :class:`~mc4_sampling.options.SamplingOptions` (``source`` defaults to the builder configs' own).
    ``splits``: default every split of the source.
    ``tasks`` defaults to one per input shard, ``workers`` (tasks run at
    once) to the CPU count (local, Ray) or no limit (Slurm). ``max_docs`` keeps at most that many
    documents per config and split, with one local task only. Ctrl-C raises
    :class:`~mc4_sampling.common.console.Interrupted` saying what is kept, or, with ``on_interrupt``
    (a command line's printer) and several local workers, prints that line through it and ends the
    process with status 130 (see :func:`_pool_ends_on_ctrl_c`). Returns the statistics; raises
    :class:`PublishError` naming the shards that failed (the other shards' files are kept).
    ``before_writing()``, when given, runs after every check of the options and before the output
    folder is touched (a command's checks of the documents, such as ``--eval-docs``).
    """
    if executor not in EXECUTORS:
        raise ConfigError(f"executor={executor!r} is not valid; choose one of: {', '.join(EXECUTORS)}")
    if not configs:
        raise ConfigError("give at least one sampling method")
    if slurm is not None and executor != "slurm":
        raise ConfigError("Slurm options need --executor slurm")
    if executor == "slurm" and slurm is None:
        raise ConfigError("--executor slurm needs --slurm-partition")
    check_max_docs(max_docs, "--max-docs")
    engine = load_engine()
    if executor == "ray":
        require_ray()
    first = next(iter(configs.values()))
    if source is None and not getattr(first, "is_mc4", True):  # builder configs of another source carry it
        source = first.source_options_of()
    if not is_mc4(source):
        src, units, splits, columns, score_columns = source_units(engine, source, configs, splits)
        for c in configs.values():  # models, boundaries, calibration: checked before anything is written
            SamplingPlan.resolve(c, source.language)
    else:
        source = src = columns = None
        splits = [s for s in SPLITS if s in (SPLITS if splits is None else splits)]
        for c in configs.values():  # models, boundaries, calibration: checked before anything is written
            for language in c.languages:
                SamplingPlan.resolve(c, language)
        units = []
        for split in splits:
            refs = shard_refs_for(first, split)
            units += [engine.Unit(split, i, len(refs), ref) for i, ref in enumerate(refs)]
        if not units:
            raise no_files_error(first, splits[0])
    if tasks is not None and tasks < 1:
        raise ConfigError(f"--tasks={tasks} is not valid; it must be a positive integer")
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers={workers} is not valid; it must be a positive integer")
    tasks = min(tasks or len(units), len(units))
    if max_docs is not None and (tasks != 1 or executor != "local"):
        raise ConfigError("--max-docs is only deterministic in one task: use it with --executor local --tasks 1 "
                          f"(here: --executor {executor}, {tasks} tasks)")
    if workers is None:
        workers = -1 if executor == "slurm" else max(1, min(tasks, os.cpu_count() or 1))
    else:
        workers = min(workers, tasks)

    if before_writing is not None:
        before_writing()
    out = os.path.abspath(os.path.expanduser(output_dir))
    manifest = manifest_of(configs, splits, max_docs, source)
    prepare_output(out, manifest, overwrite)
    names = list(configs)
    state = os.path.join(out, STATE_DIR)
    logs = os.path.join(state, "logs")
    _forget_unfinished_tasks(engine, out, logs, units, tasks, reset=max_docs is not None)

    if src is None:
        reader = engine.Mc4ShardReader(units, out, first.on_bad_record, first.http_retries,
                                       skip_done=max_docs is None, max_record_bytes=getattr(first, "max_record_bytes",
                                                                                            None),
                                       timeout=getattr(first, "http_timeout", None))
    else:
        reader = engine.SourceReader(source, units, out, first.on_bad_record, getattr(first, "http_retries", 5),
                                     skip_done=max_docs is None, timeout=getattr(first, "http_timeout", None),
                                     columns=[c for c in columns if c != "text"], score_columns=score_columns,
                                     id_column="id" if src.id_column else None)
    pipeline = [
        reader,
        engine.ScoreSampler(configs, max_docs=max_docs),
        engine.SubsetWriter(out, names, score_name={name: SamplingPlan.resolve(c, language_of(c, source)).score_name
                                                    for name, c in configs.items()}, columns=columns),
    ]
    slurm_script = None
    children_die_with_parent()  # datatrove's workers and manager end if this process is killed
    progress = datatrove_logs.start([engine.unit_stats_file(out, u) for u in units])  # quiet unless --verbose
    try:
        if executor == "local":
            from datatrove.executor import LocalPipelineExecutor

            if workers > 1:  # workers fork from a server that has imported the engine once
                import multiprocess

                multiprocess.get_context("forkserver").set_forkserver_preload(
                    ["mc4_sampling.engine", "mc4_sampling.datatrove_logs", "mc4_sampling.common.forkserver_preload"])
            with _pool_ends_on_ctrl_c(workers, on_interrupt, lambda: _interrupted(engine, out, units)):
                LocalPipelineExecutor(pipeline, tasks=tasks, workers=workers, logging_dir=logs).run()
        elif executor == "ray":
            with _ray_session(ray_address, workers):
                from datatrove.executor.ray import RayPipelineExecutor

                RayPipelineExecutor(pipeline, tasks=tasks, workers=workers, logging_dir=logs, cpus_per_task=1,
                                    mem_per_cpu_gb=0.5).run()
        else:
            slurm_script = _run_slurm(pipeline, tasks, workers, logs, slurm)
    except UserError:
        raise
    except KeyboardInterrupt:  # say exactly what is kept
        raise Interrupted(_interrupted(engine, out, units)) from None
    except Exception as e:
        raise PublishError(f"a task failed: {type(e).__name__}: {e}. The finished shards are kept; see the logs in "
                           f"{logs} and run the same command again to finish the others") from e
    finally:
        datatrove_logs.stop(progress)

    result = collect(engine, out, names, splits, units, tasks)
    result.slurm_script = slurm_script
    failures = _failures(engine, out, units)
    if failures:
        listed = "; ".join(f"shard {f['shard']}: {f['error']}" for f in failures[:5])
        more = f" (and {len(failures) - 5} more)" if len(failures) > 5 else ""
        bad_records = any(f["error"].startswith(f"{BadRecordError.__name__}:") for f in failures)
        fix = "fix the input or pass --on-bad-record skip" if bad_records else "fix the cause"
        raise PublishError(f"{len(failures)} shard(s) failed: {listed}{more}. The other shards' files are kept "
                           f"(logs in {logs}); {fix}, then run the same command again to finish")
    if not result.complete:
        if executor == "slurm":
            return result
        missing = [u.name for u in units if not os.path.exists(engine.unit_stats_file(out, u))]
        raise PublishError(f"{len(missing)} of {len(units)} shard(s) did not finish ({', '.join(missing[:5])}); "
                           f"see the logs in {logs} and run the same command again to finish them")
    if src is None:
        card = render_card(configs, result, repo_id or f"your-name/mc4-{'+'.join(first.languages)}-sampled")
    else:
        card = render_card(configs, result, repo_id or f"your-name/{src.name}-{source.language}-sampled",
                           src, columns)
    write_atomic(os.path.join(out, "README.md"), card)
    result.card = os.path.join(out, "README.md")
    write_atomic(os.path.join(state, "stats.json"), json.dumps(
        {name: {split: dataclasses.asdict(s) for split, s in by_split.items()}
         for name, by_split in result.stats.items()},
        indent=1))
    return result


# --- the output folder -------------------------------------------------------------------------


def _ours(relative: str, configs) -> bool:
    """Whether a file of the output folder is one this tool writes."""
    parts = relative.split("/")
    if parts[0] in (STATE_DIR, ".cache") or relative == "README.md":
        return True
    if parts[0] == "tokens":  # token shards (publish --tokenizer: trainer.data.publish_tokens)
        return len(parts) >= 3 and parts[1] in configs
    return len(parts) == 3 and parts[0] == "data" and parts[1] in configs and parts[2].endswith(".parquet")


def _files(folder: str) -> list[str]:
    found = []
    for root, dirs, files in os.walk(folder):
        found += [os.path.relpath(os.path.join(root, f), folder).replace(os.sep, "/") for f in files]
    return sorted(found)


def prepare_output(out: str, manifest: dict, overwrite: bool) -> bool:
    """Check that ``out`` is new, empty or holds this same dataset (then resumed: True).

    A folder holding another dataset or files this tool did not write is refused
    (:class:`PublishError`) unless ``overwrite``, which empties it. Raises :class:`PublishError`
    when the folder cannot be written.
    """
    if os.path.exists(out) and not os.path.isdir(out):
        raise PublishError(f"output folder {out} is a file; give a folder")
    manifest_path = os.path.join(out, STATE_DIR, "options.json")
    existing = _files(out) if os.path.isdir(out) else []
    resumed = False
    if existing:
        try:
            with open(manifest_path, encoding="utf-8") as f:
                old = json.load(f)
        except (OSError, ValueError):
            old = None
        foreign = [f for f in existing if not _ours(f, (old or {}).get("configs", {}))] if old else existing
        nothing_done = old is not None and not foreign and not any(
            f.startswith(("data/", f"{STATE_DIR}/units/")) for f in existing)
        if old == manifest and not foreign:
            resumed = True
        elif nothing_done:  # a run that failed before finishing a shard: start afresh with these options
            shutil.rmtree(os.path.join(out, STATE_DIR), ignore_errors=True)
        elif not overwrite:
            if old is None or old.get("format") != MANIFEST_FORMAT:
                listed = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
                reason = f"holds files this tool did not write ({listed})"
            elif old != manifest:
                differ = sorted(k for k in set(old) | set(manifest) if old.get(k) != manifest.get(k))
                if "configs" in differ:
                    differ = _config_differences(old.get("configs") or {}, manifest["configs"]) + \
                        [d for d in differ if d != "configs"]
                reason = f"holds another dataset (made with other options: {', '.join(differ)})"
            else:
                reason = f"holds files this tool did not write ({', '.join(foreign[:3])})"
            raise PublishError(f"output folder {out} {reason}; give a new or empty folder, the same options to "
                               "resume, or --overwrite to replace its contents")
        else:
            logger.warning("--overwrite: removing the contents of %s", out)
            for entry in os.listdir(out):
                path = os.path.join(out, entry)
                shutil.rmtree(path) if os.path.isdir(path) and not os.path.islink(path) else os.unlink(path)
    try:
        os.makedirs(os.path.join(out, STATE_DIR), exist_ok=True)
        probe = os.path.join(out, STATE_DIR, f".probe-{os.getpid()}")
        with open(probe, "w") as f:
            f.write("ok")
        os.unlink(probe)
        if not resumed:
            write_atomic(manifest_path, json.dumps(manifest, indent=1, sort_keys=True))
    except OSError as e:
        raise PublishError(f"cannot write to the output folder {out}: {os_error_reason(e)}") from None
    return resumed


def _config_differences(old: dict, new: dict) -> list[str]:
    """``config.option`` for each option that differs, ``config NAME`` for configs in one only."""
    differ = []
    for name in dict.fromkeys([*old, *new]):
        if name not in old or name not in new:
            differ.append(f"config {name}")
        elif isinstance(old[name], dict):
            differ += [f"{name}.{k}" for k in dict.fromkeys([*old[name], *new[name]])
                       if old[name].get(k) != new[name].get(k)]
    return differ


def _forget_unfinished_tasks(engine, out: str, logs: str, units, tasks: int, reset: bool) -> None:
    """Before a run: drop stale temporary files and failure records, and the completion markers of
    the tasks (under this number of tasks) that own a shard not finished, so they run again."""
    _drop_partial_files(out)
    shutil.rmtree(os.path.join(out, STATE_DIR, "failed"), ignore_errors=True)
    if reset:  # --max-docs counts over the whole task: never resumed shard by shard
        shutil.rmtree(os.path.join(out, STATE_DIR, "units"), ignore_errors=True)
    for rank in range(tasks):
        mine = engine.units_of_task(units, rank, tasks)
        if any(not os.path.exists(engine.unit_stats_file(out, u)) for u in mine):
            marker = os.path.join(logs, "completions", f"{rank:05d}")
            if os.path.exists(marker):
                os.unlink(marker)


def _interrupted(engine, out: str, units) -> str:
    """After Ctrl-C: the partial files removed, the line that says what is kept and how to resume."""
    _drop_partial_files(out)
    finished = sum(os.path.exists(engine.unit_stats_file(out, u)) for u in units)
    return (f"interrupted: {finished} of {len(units)} shards finished and kept in {out}; run the same command "
            "again to resume")


@contextmanager
def _pool_ends_on_ctrl_c(workers: int, on_interrupt, report):
    """With ``on_interrupt`` (the command line's), Ctrl-C during a run of several local workers ends
    the process at once: the workers stopped, ``on_interrupt(report())`` (what is kept), exit 130.

    Raising ``KeyboardInterrupt`` instead would leave the worker pool to ``multiprocess``' own
    terminate, which can wait forever for its task thread blocked on a full pipe that no worker reads
    any more (many shards). The workers end quietly on the SIGINT a terminal sends them too
    (:mod:`~mc4_sampling.common.forkserver_preload`)."""
    import signal
    import threading

    if on_interrupt is None or workers <= 1 or threading.current_thread() is not threading.main_thread():
        yield
        return

    def end(signum, frame):
        import multiprocess

        children = multiprocess.active_children()
        for child in children:
            child.terminate()
        for child in children:
            child.join(10)
        on_interrupt(report())
        # the semaphore tracker would only warn about the stopped pool's locks (unlinked when made: none leaks)
        from multiprocess import resource_tracker

        tracker = getattr(resource_tracker._resource_tracker, "_pid", None)
        if tracker:
            os.kill(tracker, signal.SIGKILL)
        os._exit(130)

    previous = signal.signal(signal.SIGINT, end)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _drop_partial_files(out: str) -> None:
    """Remove the temporary Parquet files of shards not finished (a failed or interrupted run's)."""
    for folder in Path(out, "data").glob("*"):
        for tmp in folder.glob(".tmp.*.parquet"):
            tmp.unlink(missing_ok=True)


def _failures(engine, out: str, units) -> list[dict]:
    failures = []
    for unit in units:
        path = engine.failure_file(out, unit)
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                failures.append(json.load(f))
    return failures


def collect(engine, out: str, configs, splits, units, tasks: int) -> PublishResult:
    """The statistics of the finished shards of a folder."""
    stats = {name: {split: SplitStats() for split in splits} for name in configs}
    finished = 0
    for unit in units:
        path = engine.unit_stats_file(out, unit)
        if not os.path.exists(path):
            continue
        finished += 1
        with open(path, encoding="utf-8") as f:
            record = json.load(f)
        for name in configs:
            s, r = stats[name][unit.split], record["configs"][name]
            s.read += r["read"]
            s.scored += r["scored"]
            s.skipped_by_draw += r["skipped_by_draw"]
            s.kept += r["kept"]
            s.copies += r.get("copies", r["kept"])
            for k, v in r.get("histogram", {}).items():
                s.histogram[k] = s.histogram.get(k, 0) + v
            s.words += r.get("words", 0)
            s.copy_words += r.get("copy_words", 0)
            s.bad_records += record["bad_records"]
            s.num_bytes += r["num_bytes"]
            s.files.append(r["file"])
    return PublishResult(out, list(configs), list(splits), stats, finished == len(units), len(units), tasks)


# --- executors ---------------------------------------------------------------------------------


@contextmanager
def _ray_session(address: str | None, workers: int):
    """Ray, started in this process for the run (unless already initialised or ``address`` given)."""
    ray = require_ray()
    if ray.is_initialized():
        yield
        return
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, log_to_driver=False)
    else:
        ray.init(num_cpus=max(1, workers), include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


def _run_slurm(pipeline, tasks: int, workers: int, logs: str, slurm: SlurmOptions) -> str:
    """Submit the pipeline as a Slurm job array (or, ``submit=False``, only write its script); the script's path."""
    from unittest import mock

    import datatrove.executor.slurm as slurm_module

    executor = slurm_module.SlurmPipelineExecutor(
        pipeline, tasks=tasks, time=slurm.time, partition=slurm.partition, cpus_per_task=slurm.cpus_per_task,
        mem_per_cpu_gb=slurm.mem_per_cpu_gb, workers=workers, job_name=slurm.job_name, venv_path=slurm.venv_path,
        logging_dir=logs,
    )
    if slurm.submit:
        executor.run()
    else:
        with mock.patch.object(slurm_module, "launch_slurm_job", lambda *args, **kwargs: "-1"):
            executor.run()
    return os.path.join(logs, "launch_script.slurm")


# --- the card ----------------------------------------------------------------------------------


def _quartiles(out: str, files, column: str = "perplexity") -> str:
    import pyarrow.parquet as pq

    values = [pq.read_table(os.path.join(out, f), columns=[column]).column(0).to_numpy() for f in files]
    values = np.concatenate(values) if values else np.array([])
    if not len(values):
        return "-"
    spec = ".1f" if column == "perplexity" else ".4g"  # perplexities are large; scores often in [0, 1]
    return " / ".join(f"{v:{spec}}" for v in np.percentile(values, [25, 50, 75]))


def _scorer_text(models: dict, score_names: dict, languages: str, corpus: str = "mC4") -> dict:
    """The card's words for the scorers of the configs (``{config: scorer}``): KenLM's as they always
    were; otherwise each scorer's kind, name, direction and identity (its files' fingerprint), with
    the configs it scored when they differ."""
    by_id: dict = {}
    for config, model in models.items():
        by_id.setdefault(model.model_id, (model, []))[1].append(config)
    names = list(dict.fromkeys(score_names.values()))
    if len(by_id) == 1 and next(iter(by_id.values()))[0].kind == "kenlm":
        model = next(iter(by_id.values()))[0]
        return dict(
            sampling_tag="perplexity-sampling", what="perplexity", score_name="perplexity",
            intro=f"A perplexity-sampled subset of {corpus} ({languages}), made with the\n"
                  "`mc4-sampling` library the way the BERTIN project sampled Spanish mC4: each document\n"
                  "was kept or dropped by a uniform draw against a keep probability that depends on its KenLM\n"
                  "perplexity.",
            scorer_rows=f"| perplexity model | `{model.model_id}` ({model.name}) |\n"
                        f"| perplexity mode | `{model.mode}` |")
    rows, described = [], []
    for model, configs in by_id.values():
        better = "higher" if model.higher_is_better else "lower"
        which = f" (configs {', '.join(f'`{c}`' for c in configs)})" if len(by_id) > 1 else ""
        rows.append(f"| scorer{which} | `{model.kind}`: {model.name} ({better} scores are better; "
                    f"column `{score_names[configs[0]]}`) |")
        rows.append(f"| scorer identity{which} | `{model.model_id}` |")
        if model.kind == "kenlm":
            rows.append(f"| perplexity mode{which} | `{model.mode}` |")
        described.append(f"the {model.kind} scorer {model.name} ({better} is better)")
    kinds = list(dict.fromkeys(m.kind for m, _ in by_id.values()))
    return dict(
        sampling_tag="quality-sampling", what=f"{'/'.join(kinds)} score",
        score_name=names[0] if len(names) == 1 else "score",
        intro=f"A quality-sampled subset of {corpus} ({languages}), made with the `mc4-sampling` library: each\n"
              f"document was kept or dropped by a uniform draw against a keep probability that depends on its\n"
              f"score `x` from {' and '.join(described)}, stored in the\n"
              f"{' / '.join(f'`{n}`' for n in names)} column.",
        scorer_rows="\n".join(rows))


def render_card(configs: dict[str, Mc4SamplingConfig], result: PublishResult, repo_id: str, src=None,
                columns: dict | None = None) -> str:
    """The dataset card (README.md): YAML ``configs`` and ``dataset_info`` per config, sampling
    parameters, the scorer (perplexity model) and the statistics of the run. With a corpus source
    ``src`` (not mC4), the card names it (title, language, location) and its kept ``columns``."""
    import yaml

    first = next(iter(configs.values()))
    language = first.languages[0] if src is None else src.language
    features = [{"name": n, "dtype": _dtype(t)} for n, t in (columns or {"text": "string", "timestamp": "string",
                                                                           "url": "string"}).items()]
    configs_yaml, info, param_rows, stat_rows, copy_rows = [], [], [], [], []
    models, score_names = {}, {}
    for index, (name, config) in enumerate(configs.items()):
        plan = SamplingPlan.resolve(config, language)
        models[name], score_names[name] = plan.model, plan.score_name
        by_split = result.stats[name]
        # datasets cannot build a split without rows: a split that kept nothing is left out
        splits = [s for s in result.splits if by_split[s].copies] or result.splits
        entry = {"config_name": name, "data_files": [{"split": s, "path": f"data/{name}/{s}-*"} for s in splits]}
        if index == 0:
            entry["default"] = True
        configs_yaml.append(entry)
        info.append({
            "config_name": name,
            "features": [*(dict(f) for f in features if f["name"] != plan.score_name),
                         {"name": plan.score_name, "dtype": "float64"}],
            "splits": [{"name": s, "num_bytes": by_split[s].num_bytes, "num_examples": by_split[s].copies}
                       for s in splits],
            "dataset_size": sum(by_split[s].num_bytes for s in splits),
        })
        rule, validation = plan.train, plan.validation
        validation_rule = ("not sampled (every document kept)" if validation.weighting.keeps_all
                           else f"factor {validation.factor:g}")
        param_rows.append(
            f"| `{name}` | `{rule.method}` | {WEIGHTINGS[rule.method].formula}"
            f"{''.join(f'; {k} = {v:g}' for k, v in rule.params if v is not None)} | "
            f"{' | '.join(rule.weighting.card_cells(rule))} | "
            f"{', '.join(f'{b:.2f}' for b in rule.boundaries) if rule.boundaries else '-'} | "
            f"{validation_rule} |"
        )
        for s in result.splits:
            st = by_split[s]
            stat_rows.append(f"| `{name}` | {s} | {st.read:,} | {st.scored:,} | {st.skipped_by_draw:,} | {st.kept:,} | "
                             f"{st.keep_rate:.4f} | {st.bad_records:,} | "
                             f"{_quartiles(result.output_dir, st.files, plan.score_name)} |")
            upsampling = plan.upsampling_of(s)
            if upsampling is not None:
                d = duplication(st.kept, st.copies, st.histogram, st.words, st.copy_words)
                g = f"{upsampling.function}(`{upsampling.column}`)" if upsampling.reads_column else "1"
                copy_rows.append(f"| `{name}` | {s} | {upsampling.max_copies} | {g} | {d['documents']:,} | "
                                 f"{d['copies']:,} | {d['mean_copies']:.3f} | {d['most_copies']} | {d['words']:,} | "
                                 f"{d['copy_words']:,} |")
    total = max(sum(s.copies for s in by_split.values()) for by_split in result.stats.values())
    stats_rows = "\n".join(stat_rows) + (UPSAMPLING_SECTION.format(rows="\n".join(copy_rows)) if copy_rows else "")
    if src is not None:
        title = src.title or src.name
        words = _scorer_text(models, score_names, language, title)
        location = src.options.location or "its public home"
        return hub.render_card(
            "dataset-source",
            language_yaml=f"- {language.split('_')[0].split('-')[0]}",
            pretty_name=f"{title} {language}, {words['what']} sampling ({', '.join(configs)})",
            size_category=_size_category(total),
            configs_yaml=yaml.safe_dump({"configs": configs_yaml}, sort_keys=False).rstrip(),
            dataset_info_yaml=yaml.safe_dump({"dataset_info": info}, sort_keys=False).rstrip(),
            source_name=src.name, title=title, language=language, location=location,
            param_rows="\n".join(param_rows), sampling_tag=words["sampling_tag"], intro=words["intro"],
            scorer_rows=words["scorer_rows"], score_name=words["score_name"], seed=first.seed,
            units=result.shards, stats_rows=stats_rows, repo_id=repo_id,
            first_config=next(iter(configs)), first_split=result.splits[0],
            config_list=", ".join(f"`{c}`" for c in configs),
            key=f"the `{src.id_column}` column" if src.id_column else "the text's hash",
            features=", ".join(f"`{f['name']}`" for f in features),
        )
    words = _scorer_text(models, score_names, ", ".join(first.languages))
    source = (f"local copy ({len(shard_refs_for(first, 'train'))} train shards)" if first.data_dir else
              f"`{first.base_url}`" if first.base_url else "`allenai/c4` (Hub), pinned revision")
    return hub.render_card(
        "dataset",
        language_yaml="\n".join(f"- {lang.split('-')[0]}" for lang in first.languages),
        pretty_name=f"mC4 {'+'.join(first.languages)}, {words['what']} sampling ({', '.join(configs)})",
        size_category=_size_category(total),
        configs_yaml=yaml.safe_dump({"configs": configs_yaml}, sort_keys=False).rstrip(),
        dataset_info_yaml=yaml.safe_dump({"dataset_info": info}, sort_keys=False).rstrip(),
        languages=", ".join(first.languages),
        param_rows="\n".join(param_rows),
        sampling_tag=words["sampling_tag"],
        intro=words["intro"],
        scorer_rows=words["scorer_rows"],
        score_name=words["score_name"],
        seed=first.seed,
        source=source,
        shards=result.shards,
        stats_rows=stats_rows,
        repo_id=repo_id,
        first_config=next(iter(configs)),
        config_list=", ".join(f"`{c}`" for c in configs),
    )


def _dtype(kind: str):
    """The card's ``dataset_info`` dtype of a column type (:func:`mc4_sampling.engine.arrow_type`)."""
    if kind.startswith("list<"):
        return {"sequence": _dtype(kind[5:-1])}
    return kind


#: the card's section on the duplication of upsampled configs (after the statistics; absent without upsampling)
UPSAMPLING_SECTION = """

### Upsampling

A kept document of an upsampled config was written `c(x) = min(N, p(x) * g(m(x)))` times on average
(`N` = `max_copies`, `g` of the metadata column `m`), copy `k` when its own counter-based draw
`u_k < clip(c - k, 0, 1)`: deterministic per document. Words are whitespace-separated.

| config | split | N | g | documents kept | copies written | mean copies | most copies | words kept | words written |
|---|---|---:|---|---:|---:|---:|---:|---:|---:|
{rows}"""


def _size_category(n: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
                        (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B")):
        if n < limit:
            return name
    return "1B<n<10B"
