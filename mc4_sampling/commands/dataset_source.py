"""``--dataset``: ``sample`` and ``calibrate`` on any ``datasets`` corpus instead of mC4.

The corpus is opened with :func:`mc4_sampling.corpus.open_corpus` (local files or a Hub dataset,
streaming) and sampled with :func:`mc4_sampling.sample_dataset`; calibration scores ``--docs``
documents drawn from a shuffled stream (``IterableDataset.shuffle``, buffer of 10 000 or ``--docs``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..corpus import CorpusSamplingOptions, open_corpus, sample_dataset
from ..errors import ConfigError, DataNotFoundError
from ..outputs import OutputFile, make_output_dir
from ..sampler import SamplingStats


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


def _corpus(args):
    mc4_only = [flag for flag, value in (("--data-dir", args.data_dir), ("--base-url", args.base_url),
                                         ("--shards", args.shards)) if value is not None]
    if mc4_only:
        raise ConfigError(f"{mc4_only[0]} locates mC4 files; it does not apply with --dataset")
    if args.split is None:
        args.split = "train"
    ds = open_corpus(args.dataset, args.config, args.split)
    columns = ds.column_names
    if columns is not None and args.text_column not in columns:
        raise ConfigError(f"--text-column {args.text_column}: no such column in {args.dataset!r} "
                          f"(columns: {', '.join(sorted(columns))})")
    return ds


def _language(args) -> str:
    if len(args.lang) != 1:
        raise ConfigError(f"--lang: a corpus is sampled with one language's model, got {' '.join(args.lang)}")
    return args.lang[0]


def run_sample(args: argparse.Namespace) -> int:
    """``sample --dataset``: the kept documents (every column) as JSON lines, then the summary."""
    from tqdm import tqdm

    from .sample import summary

    if getattr(args, "report", None) is not None or getattr(args, "validation_factor", None) is not None:
        raise ConfigError("--report and --validation-factor apply to mC4 only, not with --dataset")
    ds = _corpus(args)
    stats = SamplingStats()
    kept = sample_dataset(
        ds, sampling_method=args.method, text_column=args.text_column, id_column=args.id_column,
        language=_language(args), perplexity_model=_model_spec(args), perplexity_mode=args.perplexity_mode,
        calibration=args.calibration, boundaries=tuple(args.boundaries) if args.boundaries else None,
        sampling_factor=args.factor, width=args.width, seed=args.seed, return_perplexity=args.return_perplexity,
        on_bad_record=args.on_bad_record, stats=stats)
    out = sys.stdout if args.output == "-" else OutputFile(args.output)
    try:
        with tqdm(unit="doc", desc="kept", file=sys.stderr, dynamic_ncols=True) as bar:
            for example in kept:
                out.write(json.dumps(example, ensure_ascii=False, default=str) + "\n")
                bar.update()
                if args.max_docs and stats.kept >= args.max_docs:
                    break
    except BaseException:
        if out is not sys.stdout:
            out.discard()
        raise
    if out is not sys.stdout:
        out.commit()
    print(summary(stats), file=sys.stderr)
    return 0


def run_calibrate(args: argparse.Namespace, target: float) -> int:
    """``calibrate --dataset``: score ``--docs`` documents of a shuffled stream, fit, write the file."""
    from ..calibration import (
        CALIBRATION_FILE,
        MIN_DOCUMENTS,
        build_calibration,
        check_positive,
        save_calibration,
        score_texts,
        write_plots,
    )
    from ..plan import SamplingPlan
    from .calibrate import summary

    language = _language(args)
    if args.docs < MIN_DOCUMENTS:
        raise ConfigError(f"--docs {args.docs} is out of range: at least {MIN_DOCUMENTS}")
    check_positive(args.width, "--width")
    check_positive(args.gaussian_factor, "--gaussian-factor")
    options = CorpusSamplingOptions(sampling_method="none", perplexity_model=_model_spec(args),
                                    perplexity_mode=args.perplexity_mode, language=language).validate()
    model = SamplingPlan.resolve(options, language).model
    ds = _corpus(args)
    make_output_dir(args.output)
    texts, bad = [], 0
    for row in ds.shuffle(seed=args.seed, buffer_size=max(10_000, args.docs)):
        text = row.get(args.text_column)
        if not isinstance(text, str):
            if args.on_bad_record == "raise":
                raise ConfigError(f"a row of {args.dataset!r} has {type(text).__name__} in --text-column "
                                  f"{args.text_column}, not text (pass --on-bad-record skip to skip such rows)")
            bad += 1
            continue
        texts.append(text)
        if len(texts) == args.docs:
            break
    if len(texts) < MIN_DOCUMENTS:
        raise DataNotFoundError(f"too few documents to estimate quartiles: {len(texts)} in {args.dataset!r} "
                                f"(need at least {MIN_DOCUMENTS})")
    perplexities = score_texts(model, texts)
    spec = options.perplexity_model
    calibration = build_calibration(
        perplexities, target, model_id=model.model_id, mode=model.mode,
        model_spec=(list(spec) if isinstance(spec, (list, tuple)) else spec) or "embedded",
        language=language, split=args.split, seed=args.seed, methods=args.methods, width=args.width,
        fit_width=args.fit_width, gaussian_factor=args.gaussian_factor,
        extra={"subset": {"source": args.dataset, "config": args.config, "documents_read": len(texts) + bad,
                          "bad_records": bad, "shards_read": None}, "model_name": getattr(model, "name", None)})
    out = Path(args.output)
    save_calibration(calibration, out / CALIBRATION_FILE)
    if not args.no_plots:
        write_plots(calibration, perplexities, out)
    print(summary(calibration, out, plots=not args.no_plots))
    return 0


def _model_spec(args):
    spec = getattr(args, "perplexity_model", None)
    if spec is None:
        return None
    return spec[0] if len(spec) == 1 else tuple(spec)
