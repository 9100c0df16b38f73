"""``mc4-sampling sample``: stream a sampled subset of mC4 (or of any ``datasets`` corpus, ``--dataset``) to
JSON lines, kept by any scorer and weighting."""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
from tqdm import tqdm

from ..common.outputs import check_output_file, looks_like_json_lines, make_output_dir, output_stream
from ..errors import ConfigError
from ..plan import check_max_docs, iter_kept
from ..sampler import SamplingStats
from ..scoring import ScorerSource
from ..shards import no_files_error, shard_refs_for
from .common import (
    add_model_options,
    add_option_flags,
    add_sampling_options,
    add_source_options,
    build_config,
    corpus_source,
    is_corpus,
    option_values,
    reads_shards,
    source_config,
)
from .dataset_source import add_dataset_options, check_mc4_split, corpus_language, open_dataset


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "sample",
        help="stream a sample to JSON lines",
        description="Stream mC4 documents (or a --dataset), keep each with the chosen weighting of its score "
        "(KenLM perplexity by default; --scorer, --score-column for others), and write the kept ones as JSON "
        "lines (text, timestamp, url[, perplexity or score]). Prints a summary to stderr.",
    )
    add_source_options(p)
    add_sampling_options(p)
    add_model_options(p)
    add_dataset_options(p)
    p.add_argument("--split", help="split to read: train or validation of mC4, any split of a --dataset "
                   "(default: train)")
    add_option_flags(p, "output")  # --return-perplexity / --return-score
    p.add_argument("--max-docs", type=int, help="stop after this many kept documents")
    p.add_argument("-o", "--output", default="-", help="output file (default: - for stdout)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing -o file")
    p.add_argument("--report", metavar="DIR", help="score every document and write a sampling report to DIR")
    b = p.add_argument_group("token budget (with --dataset)")
    b.add_argument("--token-budget", type=float, metavar="T",
                   help="fit --factor so that the expected words of the sample, copies included, are T "
                        "(mc4_sampling.calibration.budget), on the first --budget-docs documents")
    b.add_argument("--budget-docs", type=int, default=20_000, metavar="N",
                   help="documents the factor is fitted on (default 20000)")
    b.add_argument("--total-docs", type=float, metavar="M",
                   help="documents in the whole dataset, when --budget-docs reads only part of it")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    check_max_docs(args.max_docs, "--max-docs")
    if args.output != "-":  # nobody's file replaced by accident (exit 2 before any reading)
        check_output_file(args.output, "-o", args.overwrite, ours=looks_like_json_lines)
    if not reads_shards(args):
        return run_on_source(args)
    if is_corpus(args):
        return run_on_dataset(args)
    if args.token_budget is not None:
        raise ConfigError("--token-budget applies to --dataset only (mC4: calibrate a keep rate instead)")
    check_mc4_split(args)
    config = build_config(args)
    shards = shard_refs_for(config, args.split)
    if not shards:
        raise no_files_error(config, args.split)
    stats = SamplingStats()
    report = args.report is not None
    if report:  # a folder that cannot be written is reported before any reading
        make_output_dir(args.report)
    # -o FILE is written under a temporary name and renamed when complete (never a partial file)
    with output_stream(args.output) as out, tqdm(total=len(shards), unit="shard", desc="sampling",
                                                 file=sys.stderr, dynamic_ncols=True) as bar:

        def shard_done(shard, stats):
            bar.set_postfix(read=stats.read, kept=stats.kept)
            bar.update()

        kept = iter_kept(config, args.split, stats=stats, shards=shards, max_docs=args.max_docs,
                         score_all=report, on_shard_end=shard_done)
        for example in kept:
            out.write(json.dumps(example, ensure_ascii=False) + "\n")
            if stats.read % 512 == 0:
                bar.set_postfix(read=stats.read, kept=stats.kept, refresh=False)
    print(summary(stats, ScorerSource.of(config, config.languages[0]).score_name), file=sys.stderr)
    if report:
        _write_report(args, config, stats)
    return 0


def run_on_dataset(args: argparse.Namespace) -> int:
    """``sample --dataset``: the kept documents (every column) as JSON lines, then the summary."""
    from ..corpus import corpus_options, sample_dataset
    from ..options import flag

    if args.report is not None:
        raise ConfigError("--report applies to mC4 only, not with --dataset")
    options = corpus_options(spell=flag, **option_values(args))  # the flags named in errors
    language = corpus_language(args)
    stats = SamplingStats()
    source = ScorerSource.of(options, language)
    # --return-perplexity and --return-score are one flag: named as the scorer's column in messages
    if source.kind != "kenlm":
        options.return_perplexity, options.return_score = False, options.return_perplexity
    if args.token_budget is not None:
        _check_budget(args, options)
    ds = open_dataset(args)
    if args.token_budget is not None:
        options = _fit_budget(args, ds, options, language)
    kept = sample_dataset(ds, text_column=args.text_column, id_column=args.id_column, language=language,
                          stats=stats, options=options)
    with output_stream(args.output) as out, tqdm(unit="doc", desc="kept", file=sys.stderr, dynamic_ncols=True) as bar:
        for example in kept:
            out.write(json.dumps(example, ensure_ascii=False, default=str) + "\n")
            bar.update()
            if args.max_docs and stats.kept >= args.max_docs:
                break
    print(summary(stats, source.score_name), file=sys.stderr)
    return 0


def run_on_source(args: argparse.Namespace) -> int:
    """``sample --source``: the kept documents of a corpus source's split as JSON lines (text, id,
    metadata[, score]), decided as the builder and ``publish`` decide them
    (:func:`mc4_sampling.corpus.source_examples`), then the summary."""
    from ..corpus import source_examples

    if args.report is not None:
        raise ConfigError(f"--report applies to mC4 only, not with --source {args.source}")
    source = corpus_source(args)  # unknown source, missing language or column: one line before any work
    config = source_config(args, source)
    src = config.corpus_source()
    splits = tuple(src.splits())
    args.split = args.split or ("train" if "train" in splits else splits[0])
    if args.split not in splits:
        raise ConfigError(f"--split {args.split}: the {src.title or src.name} source has the splits "
                          f"{', '.join(splits)} for {source.language}")
    units = src.units(args.split)
    stats = SamplingStats()
    written = 0
    with output_stream(args.output) as out, tqdm(total=len(units), unit="unit", desc="sampling", file=sys.stderr,
                                                 dynamic_ncols=True) as bar:
        last = None
        for unit, _, example in source_examples(config, src, units, stats=stats):
            if unit is not last:
                bar.update(units.index(unit) - bar.n)
                last = unit
            out.write(json.dumps(example, ensure_ascii=False, default=str) + "\n")
            written += 1
            if args.max_docs and written >= args.max_docs:
                break
        else:
            bar.update(len(units) - bar.n)
    print(summary(stats, ScorerSource.of(config, source.language).score_name), file=sys.stderr)
    return 0


def _check_budget(args, options) -> None:
    """``--token-budget``'s refusals, before any reading."""
    if options.calibration is not None or options.sampling_factor is not None:
        given = "--calibration" if options.calibration is not None else "--factor"
        raise ConfigError(f"--token-budget fits the factor; {given} sets it: pass one or the other")
    if not (isinstance(args.budget_docs, int) and args.budget_docs > 0):
        raise ConfigError(f"--budget-docs {args.budget_docs} is not valid; it must be an integer > 0")


def _fit_budget(args, ds, options, language: str):
    """``--token-budget``: the options with the factor whose expected words meet it (one line says so)."""
    import dataclasses

    from ..calibration.budget import fit_token_budget

    fit = fit_token_budget(ds, args.token_budget, language=language, text_column=args.text_column,
                           total_docs=args.total_docs, max_docs=args.budget_docs, options=options)
    print(f"token budget {fit.budget:,.0f} words: --factor {fit.factor:.6g} (fitted on {fit.documents:,} documents: "
          f"{fit.expected_tokens:,.0f} words expected of their {fit.tokens:,})", file=sys.stderr)
    return dataclasses.replace(options, sampling_factor=fit.factor)


def summary(stats: SamplingStats, score_name: str = "perplexity") -> str:
    lines = [
        f"documents read: {stats.read}",
        f"documents kept: {stats.kept}",
        f"keep rate:      {stats.keep_rate:.4f}",
    ]
    if stats.bad_records:
        lines.append(f"bad records skipped: {stats.bad_records}")
    if stats.copy_histogram:
        from ..upsampling import duplication, duplication_line

        lines.append(duplication_line(duplication(stats.kept, stats.copies, stats.copy_histogram, stats.kept_words,
                                                  stats.copy_words)))
    if stats.kept_scores:
        q1, q2, q3 = np.percentile(stats.kept_scores, [25, 50, 75])
        spec = ".2f" if score_name == "perplexity" else ".4g"  # scores are often probabilities
        lines.append(f"{score_name} of kept documents: Q1 {q1:{spec}}  median {q2:{spec}}  Q3 {q3:{spec}}")
    return "\n".join(lines)


def _write_report(args, config, stats: SamplingStats) -> None:
    """Observed vs expected distribution of the kept documents (see :mod:`mc4_sampling.report`)."""
    from ..report import write_sampling_report

    paths = write_sampling_report(args.report, stats, config, split=args.split)
    print(report_line(paths), file=sys.stderr)


def report_line(paths: dict) -> str:
    """Where the report went and whether the kept count passed its check."""
    from ..plots import percent

    check = json.loads(open(paths["json"], encoding="utf-8").read())["keep_rate_check"]
    verdict = "within" if check["observed_within_interval"] else "OUTSIDE"
    return (f"report: {paths['json']} and {paths['png']}; the keep rate is {verdict} its "
            f"{percent(check['confidence'])} interval (z = {check['z_score']:.2f})")
