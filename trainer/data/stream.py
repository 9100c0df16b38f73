"""Opening any streaming ``datasets`` source for the trainer."""

from __future__ import annotations

import hashlib
import itertools
import logging
from typing import Any, Iterable

from mc4_sampling.common.errors import UserError

from ..config import SAMPLE_DATA_DIR_MARKER, DataConfig
from ..errors import DataError

log = logging.getLogger(__name__)


def resolve_markers(value: Any) -> Any:
    """Replace the string ``SAMPLE_DATA_DIR`` (anywhere in lists/dicts) by the bundled sample folder."""
    if isinstance(value, dict):
        return {k: resolve_markers(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [resolve_markers(v) for v in value]
    if isinstance(value, str) and SAMPLE_DATA_DIR_MARKER in value:
        try:
            import mc4_sampling
        except ImportError as e:  # pragma: no cover - the package is part of this project
            raise DataError(f"{SAMPLE_DATA_DIR_MARKER} needs the mc4_sampling package: {e}") from None
        sample = getattr(mc4_sampling, "SAMPLE_DATA_DIR", None)
        if sample is None:
            raise DataError("mc4_sampling.SAMPLE_DATA_DIR is not available in this version of mc4_sampling")
        return value.replace(SAMPLE_DATA_DIR_MARKER, str(sample))
    return value


def load_stream(cfg: DataConfig, rank: int = 0, world_size: int = 1):
    """``load_dataset(path, name, split=..., streaming=True, **kwargs)``; split by node when ``world_size`` > 1
    (the trainer does not: every process reads the whole stream, :mod:`trainer.data.batches`)."""
    import datasets
    from datasets.distributed import split_dataset_by_node

    if cfg.path == "mc4-sampling":
        try:
            import mc4_sampling  # noqa: F401  (registers the builder)
        except ImportError as e:
            raise DataError(f"data.path 'mc4-sampling' needs the mc4_sampling package: {e}") from None
    kwargs = dict(resolve_markers(cfg.kwargs))
    if cfg.path == "mc4-sampling":  # the builder samples (each draw keyed by shard and position)
        kwargs.update(builder_options(cfg.sampling))
    if cfg.data_files is not None:
        kwargs["data_files"] = resolve_markers(cfg.data_files)
    if cfg.data_dir is not None:
        kwargs["data_dir"] = resolve_markers(cfg.data_dir)
    if cfg.path == "mc4-sampling" and kwargs.get("data_dir"):
        _require_local_split(cfg, kwargs)
    if _on_the_hub(cfg.path):  # the reachability rule, before any work: one line in seconds
        from mc4_sampling.common.hub import require_hub

        require_hub(f"dataset data.path={cfg.path!r}")
    try:
        ds = datasets.load_dataset(cfg.path, cfg.name, split=cfg.split, streaming=True, **kwargs)
    except UserError:  # the sampler's (an unreachable mC4, a bad record...) and the common layer's: as they are
        raise
    except Exception as e:  # datasets raises many types; all mean "this source does not load"
        raise DataError(
            f"cannot open dataset data.path={cfg.path!r} name={cfg.name!r} split={cfg.split!r} "
            f"kwargs={kwargs!r}: {type(e).__name__}: {e}"
        ) from None
    if not isinstance(ds, datasets.IterableDataset):
        raise DataError(f"dataset {cfg.path!r} did not give a streaming split (got {type(ds).__name__})")
    columns = ds.column_names
    if columns is not None and cfg.text_column not in columns:
        raise_missing_column(cfg.text_column, columns)
    ds = sample_stream(ds, cfg)
    if world_size > 1:
        ds = split_dataset_by_node(ds, rank=rank, world_size=world_size)
    return ds


def _require_local_split(cfg: DataConfig, kwargs: dict) -> None:
    """A local mC4 copy (``data_dir``) without the files of ``data.split``: the sampler's one line naming
    the folder, the names looked for and what it holds (``datasets`` said only "Bad split: train")."""
    from types import SimpleNamespace

    from mc4_sampling.languages import shard_counts
    from mc4_sampling.shards import no_files_error, shard_refs

    languages = (cfg.name or "").split("+")
    if cfg.split not in ("train", "validation") or not set(languages) <= set(shard_counts()):
        return  # the builder's own checks name a bad language or split
    shards = kwargs.get("shards")
    if not shard_refs(languages, cfg.split, data_dir=kwargs["data_dir"], shards=shards):
        options = SimpleNamespace(languages=languages, data_dir=kwargs["data_dir"], shards=shards)
        raise DataError(f"data.split {cfg.split!r}: {no_files_error(options, cfg.split)}")


def _on_the_hub(path: str) -> bool:
    """Whether ``load_dataset(path)`` reads the Hub: not a local folder or script, not a builder of
    ``datasets`` (``json``, ``parquet``...) nor ``mc4-sampling`` (which applies the rule to mC4 itself)."""
    import os

    from datasets.packaged_modules import _PACKAGED_DATASETS_MODULES

    from mc4_sampling.common.hub import HubLocation

    return (path != "mc4-sampling" and path not in _PACKAGED_DATASETS_MODULES and not os.path.exists(path)
            and HubLocation.parse(path) is not None)


def _sampler_values(sp) -> dict:
    """``data.sampling``'s sampler options that differ from their defaults (files' markers resolved)."""
    import dataclasses

    from mc4_sampling.options import SamplingOptions

    values = {f.name: getattr(sp, f.name) for f in dataclasses.fields(SamplingOptions)
              if getattr(sp, f.name) != f.default}
    for name in ("perplexity_model", "scorer_model", "calibration"):
        if name in values:
            values[name] = resolve_markers(values[name])
    if values.get("boundaries") is not None:
        values["boundaries"] = tuple(values["boundaries"])
    return values


def builder_options(sp) -> dict:
    """The ``load_dataset`` keywords of the mc4-sampling builder that ``data.sampling`` gives: the
    sampling options, and the corpus source (``source``, ``source_options``, ``id_column``) when one is set."""
    from mc4_sampling.weightings import keeps_all

    options = {} if keeps_all(sp.sampling_method) else _sampler_values(sp)
    if getattr(sp, "source", None) is not None:  # the builder checks what applies to the source
        options["source"] = sp.source
        if sp.source_options:
            options["source_options"] = dict(resolve_markers(sp.source_options))
        if sp.id_column is not None:
            options["id_column"] = sp.id_column
    return options


def sample_stream(ds, cfg: DataConfig):
    """``ds`` sampled as ``data.sampling`` says (unchanged for ``sampling_method: none``, or when the
    mc4-sampling builder already sampled it).

    The keep decision of a document depends on the document alone (its id or text), so it is the
    same on every node, worker and resume; the hold-out (by content, :mod:`trainer.data.holdout`) is
    taken from the sample.
    """
    from mc4_sampling.weightings import keeps_all

    sp = cfg.sampling
    if keeps_all(sp.sampling_method) or cfg.path == "mc4-sampling":
        return ds
    try:
        from mc4_sampling import sample_dataset
        from mc4_sampling.common.errors import UserError
    except ImportError as e:  # pragma: no cover - the package is part of this project
        raise DataError(f"data.sampling needs the mc4_sampling package: {e}") from None
    try:
        return sample_dataset(ds, text_column=cfg.text_column, id_column=sp.id_column, language=sp.language or "es",
                              **_sampler_values(sp))
    except UserError as e:  # the sampler's errors and the common layer's (an unreachable Hub...)
        raise DataError(f"data.sampling: {e}") from None


def raise_missing_column(column: str, columns) -> None:
    raise DataError(
        f"the dataset has no text column {column!r} (columns: {', '.join(sorted(columns))}); "
        "set data.text_column to the column holding the documents"
    )


def document_text(example: dict, column: str) -> str:
    try:
        text = example[column]
    except KeyError:
        raise_missing_column(column, example.keys())
    if not isinstance(text, str):
        raise DataError(f"column {column!r} holds {type(text).__name__}, not text")
    return text


def document_hash(text: str) -> str:
    """Identity of a document for the eval/train audit: first 16 hex digits of SHA-1(UTF-8 text)."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


def open_texts(cfg) -> Iterable[str]:
    """The texts of the configured stream (``data.text_column``), from its start."""
    return (document_text(ex, cfg.data.text_column) for ex in load_stream(cfg.data))


def stream_texts(cfg, num_docs: int, holdout=None) -> Iterable[str]:
    """The first ``num_docs`` texts of the configured stream; with ``holdout`` (a
    :class:`~trainer.data.holdout.StreamHoldOut` of ``cfg``), of those the trainer trains on."""
    it = open_texts(cfg)
    return itertools.islice(holdout.training(it) if holdout is not None else it, num_docs)


def stream_holdout(cfg):
    """The trainer's hold-out of ``cfg``'s stream (:class:`~trainer.data.holdout.StreamHoldOut`): its
    eval set read, for :func:`stream_texts`."""
    from .holdout import StreamHoldOut

    return StreamHoldOut(lambda: open_texts(cfg), cfg.data)
