"""The corpus that ``sample``, ``calibrate`` and ``embed-map`` read instead of mC4's shards: a
``--dataset`` (any ``datasets`` corpus: local files or a Hub dataset, streaming,
:func:`mc4_sampling.corpus.open_corpus`) or a corpus ``--source`` (FineWeb-2, HPLT 3.0, files, ...:
:mod:`mc4_sampling.sources`), read as a streaming dataset of its records (:func:`source_dataset`)."""

from __future__ import annotations

import argparse
import os

from ..corpus import open_corpus
from ..errors import ConfigError
from .common import corpus_source, reads_shards, source_flags_given


def add_dataset_options(parser: argparse.ArgumentParser) -> None:
    """``--dataset`` and ``--config`` (``--text-column``/``--id-column`` are the data source's flags)."""
    g = parser.add_argument_group("any datasets corpus (instead of mC4)")
    g.add_argument("--dataset", metavar="NAME_OR_PATH",
                   help="a Hub dataset owner/name, or local data files (a file, a glob, a folder: Parquet, "
                   "JSON lines, CSV, text); read with datasets, streaming")
    g.add_argument("--config", metavar="NAME", help="the dataset's configuration (e.g. spa_Latn)")


def check_mc4_split(args: argparse.Namespace) -> None:
    """``--split`` of mC4: ``train`` (the default) or ``validation``; the corpus options need ``--dataset``
    or a ``--source``."""
    corpus_source(args)  # --location as --data-dir/--base-url; --data-files, --text-column... refused
    args.split = args.split or "train"
    if args.split not in ("train", "validation"):
        raise ConfigError(f"--split {args.split}: mC4 has the splits train and validation")
    if args.config is not None:
        raise ConfigError("--config applies to a --dataset, not to mC4")


def open_dataset(args):
    """The corpus as a streaming dataset: the ``--source``'s records (:func:`source_dataset`; then
    ``args.text_column``/``args.id_column`` are the source's), else the ``--dataset`` (its
    ``--text-column`` checked)."""
    if not reads_shards(args):
        source = corpus_source(args, corpus_language(args))
        if args.config is not None:
            raise ConfigError(f"--config applies to a --dataset; --source {args.source} takes --lang")
        return source_dataset(args, source)
    mc4_only = [flag for flag, value in (("--data-dir", args.data_dir), ("--base-url", args.base_url),
                                         ("--shards", args.shards), ("--location", args.location)) if value is not None]
    if mc4_only:
        raise ConfigError(f"{mc4_only[0]} locates mC4 files; it does not apply with --dataset")
    if "--data-files" in source_flags_given(args):
        raise ConfigError("--data-files applies to --source files; give the files to --dataset")
    args.text_column = args.text_column or "text"
    if args.split is None:
        args.split = "train"
    if args.split != "train" and (os.path.exists(args.dataset) or any(c in args.dataset for c in "*?[")):
        raise ConfigError(f"--split {args.split}: local data files ({args.dataset}) have one split, train")
    ds = open_corpus(args.dataset, args.config, args.split)
    columns = ds.column_names
    if columns is not None and args.text_column not in columns:
        raise ConfigError(f"--text-column {args.text_column}: no such column in {args.dataset!r} "
                          f"(columns: {', '.join(sorted(columns))})")
    return ds


def source_dataset(args, options):
    """The records of a corpus source's split (``--split``, default its first) as a streaming
    ``datasets.IterableDataset``: a row per good record, the text under the source's text column,
    the id under its id column (when it has one) and its metadata columns; ``args.split``,
    ``args.text_column``, ``args.id_column`` and ``args.dataset`` (a name for messages) set to the
    source's."""
    import datasets

    from ..sources import make_source

    src = make_source(options, "--source")
    splits = tuple(src.splits())
    args.split = args.split or splits[0]
    if args.split not in splits:
        raise ConfigError(f"--split {args.split}: the {src.title or src.name} source has the splits "
                          f"{', '.join(splits)} for {options.language}")
    units = src.units(args.split)
    if not units:
        raise ConfigError(f"the {src.title or src.name} source has no files of split {args.split} for "
                          f"{options.language} (location {options.location or 'its public home'})")
    args.text_column, args.id_column = src.text_column, src.id_column
    args.dataset = f"{src.title or src.name} {options.language}"
    on_bad_record = getattr(args, "on_bad_record", "raise") or "raise"
    return datasets.IterableDataset.from_generator(
        _source_rows, gen_kwargs={"options": options, "units": units, "on_bad_record": on_bad_record})


def _source_rows(options, units, on_bad_record):
    """The rows of ``units`` (a generator for ``datasets``, which gives each worker some units)."""
    from ..sources import make_source

    src = make_source(options)
    for unit in units:
        for _, record in src.records(unit, on_bad_record=on_bad_record):
            if record is None:
                continue
            row = {**record.metadata, src.text_column: record.text}
            if src.id_column is not None:
                row[src.id_column] = record.id
            yield row


def corpus_language(args) -> str:
    """The one ``--lang`` whose model samples a corpus (the source's spelling for a ``--source``)."""
    if len(args.lang) != 1:
        raise ConfigError(f"--lang: a corpus is sampled with one language's model, got {' '.join(args.lang)}")
    return args.lang[0]
