"""``mc4-sampling calibrate``: fit the sampling parameters of a language to a target keep rate or token budget.

The options, progress bars and summary of :func:`mc4_sampling.calibration.run_calibration`, which
scores a random subset of a language's documents, writes a calibration file (quartiles, deciles,
percentiles and per-method parameters) and pictures of the distributions. See the README,
"Calibrating the sampler".
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..calibration import (
    CALIBRATION_FILE,
    DEFAULT_DOCS,
    DEFAULT_SHARDS_TO_READ,
    EXPECTED_FILE,
    HISTOGRAM_FILE,
    MIN_DOCUMENTS,
    Calibration,
    calibratable_methods,
    histogram_file,
    resolve_target,
    run_calibration,
)
from ..common.outputs import atomic_dir, check_output_dir
from ..errors import ConfigError
from ..shards import require_source
from ..upsampling import NO_UPSAMPLING
from ..weightings import DEFAULT_WIDTH
from .common import add_model_options, add_option_flags, add_source_options, build_config, is_corpus, option_values
from .dataset_source import add_dataset_options, check_mc4_split, corpus_language, open_dataset


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "calibrate",
        help="fit sampling parameters to a target keep rate or token budget",
        description="Score a random subset of a language's documents, estimate the perplexity "
        "quartiles, and fit each method's factor (and optionally the gaussian width) so that the "
        "expected keep rate meets a target (or, with --token-budget, the expected words, copies included). "
        "Writes calibration.json (use it with "
        "`sample --calibration` or calibration= in load_dataset) and PNG pictures to --output.",
    )
    add_source_options(p)
    add_model_options(p)
    add_dataset_options(p)
    g = p.add_argument_group("subset")
    g.add_argument("--split", help="split to draw the subset from: train or validation of mC4, any split of a "
                   "--dataset (default: train)")
    g.add_argument("--docs", type=int, default=DEFAULT_DOCS,
                   help=f"documents to score (default {DEFAULT_DOCS}; at least {MIN_DOCUMENTS})")
    g.add_argument("--shards-to-read", type=int, default=DEFAULT_SHARDS_TO_READ, metavar="K",
                   help="read K shards picked at random among those available and draw the "
                   f"subset from all their documents (reservoir sampling; default {DEFAULT_SHARDS_TO_READ})")
    g.add_argument("--max-docs-per-shard", type=int, metavar="M",
                   help="read at most the first M documents of each picked shard (faster on remote data)")
    g.add_argument("--seed", type=int, default=2021, help="seed of the shard pick and the reservoir (default 2021)")
    t = p.add_argument_group("target (either --target-rate, or --target-docs with --total-docs)")
    t.add_argument("--target-rate", type=float, metavar="R", help="fraction of documents to keep, in (0, 1]")
    t.add_argument("--target-docs", type=float, metavar="N", help="documents to keep (e.g. 50e6)")
    t.add_argument("--total-docs", type=float, metavar="M", help="documents in the split (e.g. 416e6); with "
                   "--token-budget, the corpus the subset is scaled to (default: counted when the subset reads the "
                   "whole corpus, estimated from the picked shards on mC4)")
    t.add_argument("--token-budget", type=float, metavar="T",
                   help="instead of a keep rate: solve each method's factor so that the expected whitespace words "
                        "of the sample, copies included (--max-copies, --upsample), are T over the corpus")
    add_option_flags(p, "sampling", names=("max_copies", "upsample", "upsample_column"),
                     title="upsampling (with --token-budget; sample/publish --calibration then take the same)")
    f = p.add_argument_group("fit")
    f.add_argument("--methods", nargs="+", choices=calibratable_methods(),
                   help="methods to fit (default: random, stepwise, gaussian for perplexities; random, threshold, "
                   "pareto, gaussian for scores where higher is better)")
    f.add_argument("--width", type=float, default=DEFAULT_WIDTH,
                   help=f"gaussian width held while its factor is fitted (default {DEFAULT_WIDTH})")
    f.add_argument("--fit-width", action="store_true",
                   help="fit the gaussian width instead, holding the factor at --gaussian-factor: "
                   "the narrowest bell of that height that reaches the target")
    f.add_argument("--gaussian-factor", type=float, default=1.0,
                   help="gaussian factor held with --fit-width (default 1: the median is always kept)")
    p.add_argument("-o", "--output", required=True, metavar="DIR",
                   help=f"folder for {CALIBRATION_FILE}, {HISTOGRAM_FILE} (another scorer's: score_histogram.png) "
                        f"and {EXPECTED_FILE}")
    p.add_argument("--no-plots", action="store_true", help="write the calibration file only")
    p.add_argument("--overwrite", action="store_true", help="replace --output even if it holds other files")
    p.set_defaults(handler=run)


def _flag(parameter: str) -> str:
    """The option of this command that sets a :func:`run_calibration` parameter: ``--max-docs-per-shard``."""
    return "--" + parameter.replace("_", "-")


def upsampling_options(upsampling):
    """The sampling options of an :class:`~mc4_sampling.upsampling.Upsampling` (for the option checks)."""
    from types import SimpleNamespace

    return SimpleNamespace(max_copies=upsampling.max_copies, upsample=upsampling.function,
                           upsample_column=upsampling.column)


def _check_budget(args: argparse.Namespace):
    """``--token-budget``'s refusals, one line each before any reading; the upsampling it is solved with."""
    from ..calibration.budget import check_token_budget
    from ..options import SamplingOptions, check_sampling_options, flag
    from ..upsampling import Upsampling

    check_sampling_options(SamplingOptions(max_copies=args.max_copies, upsample=args.upsample,
                                           upsample_column=args.upsample_column), spell=flag)
    upsampling = Upsampling.of(args)
    if args.token_budget is None:
        if upsampling is not None:
            given = "--max-copies" if args.max_copies != 1 else "--upsample"
            raise ConfigError(f"{given} applies with --token-budget (a keep rate counts documents, not copies): "
                              "add --token-budget T or drop it")
        return None
    given = [f for f, v in (("--target-rate", args.target_rate), ("--target-docs", args.target_docs)) if v is not None]
    if given:
        raise ConfigError(f"--token-budget and {given[0]} are two targets: pick one")
    check_token_budget(args.token_budget, "--token-budget")
    if args.fit_width:
        raise ConfigError("--fit-width fits the gaussian width to a keep rate; with --token-budget each factor is "
                          "fitted: drop one")
    if args.total_docs is not None and not args.total_docs > 0:
        raise ConfigError(f"--total-docs {args.total_docs:g} is not valid; it must be > 0")
    return upsampling


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    upsampling = _check_budget(args)
    target = None if args.token_budget is not None else resolve_target(args.target_rate, args.target_docs,
                                                                          args.total_docs)
    corpus = None
    if is_corpus(args):
        from ..corpus import corpus_options
        from ..options import flag

        language = corpus_language(args)
        config = corpus_options(spell=flag, **{**option_values(args), "sampling_method": "none"})
        corpus = open_dataset(args)
    else:
        check_mc4_split(args)
        if len(args.lang) != 1:
            raise ConfigError(f"--lang: calibrate one language at a time, got {' '.join(args.lang)}")
        language = args.lang[0]
        if upsampling is not None and upsampling.reads_column:
            from ..options import check_mc4_upsampling, flag

            check_mc4_upsampling(upsampling_options(upsampling), spell=flag)
        config = build_config(args, sampling_method="none")
        if not config.data_dir:  # the reachability rule: an unreachable source is one line before any work
            require_source(config)
    check_output_dir(args.output, "--output", args.overwrite)  # reported before any reading; nothing created
    bars: dict[str, tqdm] = {}

    def bar(desc: str, total: int | None = None) -> tqdm:
        if desc not in bars:
            bars[desc] = tqdm(total=total, desc=desc, unit="doc", file=sys.stderr, dynamic_ncols=True)
        return bars[desc]

    def start_scoring(n: int) -> None:
        bar("reading").close()
        bar("scoring", total=n)

    try:  # the folder appears whole when complete: a failed run leaves nothing
        with atomic_dir(args.output, "mc4-sampling calibrate", "--output", args.overwrite) as out:
            calibration, _ = run_calibration(
                config, language, target, split=args.split, docs=args.docs, seed=args.seed,
                shards_to_read=args.shards_to_read, max_docs_per_shard=args.max_docs_per_shard,
                methods=args.methods, width=args.width, fit_width=args.fit_width,
                gaussian_factor=args.gaussian_factor, output=str(out),
                plots=not args.no_plots, read_progress=lambda n: bar("reading").update(n),
                score_progress=lambda n: bar("scoring").update(n), on_subset=start_scoring,
                option_name=_flag, corpus=corpus, text_column=args.text_column, corpus_name=args.dataset,
                token_budget=args.token_budget, total_docs=args.total_docs, upsampling=upsampling,
            )
    finally:
        for b in bars.values():
            b.close()
    print(summary(calibration, Path(args.output), plots=not args.no_plots))
    return 0


def summary(calibration: Calibration, out: Path, plots: bool = True) -> str:
    b = calibration.boundaries or (float("nan"),) * 3
    mode = f"{calibration.mode} mode" if calibration.mode else f"{calibration.scorer}, higher is " + \
        ("better" if calibration.higher_is_better else "worse")
    subset = calibration.extra.get("subset", {})
    # mC4's shards by index; a corpus (a source, a --dataset) has no shard indices: the documents read
    read = (f" (shards {subset['shards_read']})" if subset.get("shards_read") is not None else
            f" (of {subset['documents_read']} read)" if subset.get("documents_read") is not None else "")
    lines = [
        f"model: {calibration.model_id} ({mode})",
        f"documents scored: {calibration.documents_scored}{read}",
        f"quartiles: Q1 {b[0]:.6g}  median {b[1]:.6g}  Q3 {b[2]:.6g}",
    ]
    budget = calibration.token_budget
    if budget is None:
        lines.append(f"target keep rate: {calibration.target_rate:.6g}")
    else:
        copies = (f", up to {budget['max_copies']} copies by {budget['upsample']}"
                  + (f" of {budget['upsample_column']}" if budget.get("upsample_column") else "")
                  if budget["max_copies"] > 1 or budget["upsample"] != NO_UPSAMPLING else "")
        how = {"given": "--total-docs", "counted": "counted: the subset is the whole corpus",
               "estimated": "estimated from the picked shards"}.get(budget["total_docs_from"],
                                                                     budget["total_docs_from"])
        lines.append(f"token budget: {budget['tokens']:,.0f} words{copies}, over {budget['total_docs']:,.0f} "
                     f"documents assumed ({how}; the subset's {budget['documents']:,} documents scaled by "
                     f"{budget['total_docs'] / budget['documents']:.6g})")
    for method, params in calibration.methods.items():
        desc = f"factor {params['factor']:.6g}"
        desc += "".join(f"  {k} {params[k]:.6g}" for k in ("low", "high", "alpha") if params.get(k) is not None)
        if "width" in params:
            desc += f"  width {params['width']:.6g}"
        words = (f", {params['expected_words']:,.0f} words, {params['expected_copies']:.4g} copies per document"
                 if "expected_words" in params else "")
        lines.append(f"  {method:9s} {desc}  -> expected keep rate {params['expected_rate']:.6g}{words}")
        for note in params.get("notes", []):
            lines.append(f"            note: {note}")
    lines.append(f"wrote {out / CALIBRATION_FILE}")
    if plots:
        lines.append(f"wrote {out / histogram_file(calibration)}, {out / EXPECTED_FILE}")
    return "\n".join(lines)
