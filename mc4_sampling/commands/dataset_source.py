"""``--dataset``: the options with which ``sample`` and ``calibrate`` read any ``datasets`` corpus
instead of mC4, and the corpus they open (:func:`mc4_sampling.corpus.open_corpus`: local files or
a Hub dataset, streaming)."""

from __future__ import annotations

import argparse
import os

from ..corpus import open_corpus
from ..errors import ConfigError


def add_dataset_options(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("any datasets corpus (instead of mC4)")
    g.add_argument("--dataset", metavar="NAME_OR_PATH",
                   help="a Hub dataset owner/name, or local data files (a file, a glob, a folder: Parquet, "
                   "JSON lines, CSV, text); read with datasets, streaming")
    g.add_argument("--config", metavar="NAME", help="the dataset's configuration (e.g. spa_Latn)")
    g.add_argument("--text-column", default="text", help="column with the documents (default: text)")
    g.add_argument("--id-column", help="column with a unique document id to key the draws by (default: the text)")


def check_mc4_split(args: argparse.Namespace) -> None:
    """``--split`` of mC4: ``train`` (the default) or ``validation``; the corpus options need ``--dataset``."""
    args.split = args.split or "train"
    if args.split not in ("train", "validation"):
        raise ConfigError(f"--split {args.split}: mC4 has the splits train and validation")
    given = [flag for flag, value in (("--config", args.config), ("--id-column", args.id_column),
                                      ("--text-column", None if args.text_column == "text" else args.text_column))
             if value is not None]
    if given:
        raise ConfigError(f"{given[0]} applies to a --dataset, not to mC4")


def open_dataset(args):
    """The ``--dataset`` corpus as a streaming dataset (its ``--text-column`` checked)."""
    mc4_only = [flag for flag, value in (("--data-dir", args.data_dir), ("--base-url", args.base_url),
                                         ("--shards", args.shards)) if value is not None]
    if mc4_only:
        raise ConfigError(f"{mc4_only[0]} locates mC4 files; it does not apply with --dataset")
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


def corpus_language(args) -> str:
    """The one ``--lang`` whose model samples a corpus."""
    if len(args.lang) != 1:
        raise ConfigError(f"--lang: a corpus is sampled with one language's model, got {' '.join(args.lang)}")
    return args.lang[0]
