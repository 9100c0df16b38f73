"""``mc4-sampling calibrate``: fit the sampling parameters of a language to a target keep rate.

Scores a random subset of a language's documents with a perplexity model, writes a calibration
file (quartiles, deciles, percentiles and per-method parameters) and pictures of the
distributions. See ``docs/calibration.md``.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from ..calibration import (
    FIT_METHODS,
    MIN_DOCUMENTS,
    Calibration,
    build_calibration,
    clean_perplexities,
    resolve_target,
    save_calibration,
)
from ..errors import ConfigError
from ..sampling import DEFAULT_WIDTH
from .common import add_model_options, add_source_options, model_spec

logger = logging.getLogger(__name__)

#: Default number of documents scored.
DEFAULT_DOCS = 10_000
#: Default number of shards (picked at random) the subset is drawn from.
DEFAULT_SHARDS_TO_READ = 8
CALIBRATION_FILE = "calibration.json"
HISTOGRAM_FILE = "perplexity_histogram.png"
EXPECTED_FILE = "expected_distributions.png"


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "calibrate",
        help="fit sampling parameters to a target keep rate",
        description="Score a random subset of a language's documents, estimate the perplexity "
        "quartiles, and fit each method's factor (and optionally the gaussian width) so that the "
        "expected keep rate meets a target. Writes calibration.json (use it with "
        "`sample --calibration` or calibration= in load_dataset) and PNG pictures to --output.",
    )
    add_source_options(p)
    add_model_options(p)
    g = p.add_argument_group("subset")
    g.add_argument("--split", choices=("train", "validation"), default="train",
                   help="split to draw the subset from (default: train)")
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
    t.add_argument("--total-docs", type=float, metavar="M", help="documents in the split (e.g. 416e6)")
    f = p.add_argument_group("fit")
    f.add_argument("--methods", nargs="+", choices=FIT_METHODS, default=list(FIT_METHODS),
                   help="methods to fit (default: all three)")
    f.add_argument("--width", type=float, default=DEFAULT_WIDTH,
                   help=f"gaussian width held while its factor is fitted (default {DEFAULT_WIDTH})")
    f.add_argument("--fit-width", action="store_true",
                   help="fit the gaussian width instead, holding the factor at --gaussian-factor: "
                   "the narrowest bell of that height that reaches the target")
    f.add_argument("--gaussian-factor", type=float, default=1.0,
                   help="gaussian factor held with --fit-width (default 1: the median is always kept)")
    p.add_argument("-o", "--output", required=True, metavar="DIR",
                   help=f"folder for {CALIBRATION_FILE}, {HISTOGRAM_FILE} and {EXPECTED_FILE}")
    p.add_argument("--no-plots", action="store_true", help="write the calibration file only")
    p.set_defaults(handler=run)


# --- library part: pick, read and score a random subset -------------------------------------


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


@dataclass
class Subset:
    texts: list[str]
    documents_read: int
    shards: list[int]
    bad_records: int = 0


def pick_shards(shards: Sequence, shards_to_read: int, rng: np.random.Generator) -> list:
    """``shards_to_read`` of ``shards`` picked at random (all of them if there are fewer)."""
    if shards_to_read < 1:
        raise ConfigError(f"shards_to_read={shards_to_read!r} is out of range: it must be >= 1")
    if not shards:
        raise ConfigError("no shards to read")
    order = rng.permutation(len(shards))[: min(shards_to_read, len(shards))]
    return [shards[i] for i in sorted(order)]


def draw_subset(config, language: str, split: str, n_docs: int, seed: int,
                shards_to_read: int = DEFAULT_SHARDS_TO_READ,
                max_docs_per_shard: int | None = None,
                progress: Callable[[int], None] | None = None) -> Subset:
    """A uniform random subset of ``n_docs`` documents from ``shards_to_read`` random shards.

    ``config`` is a validated :class:`mc4_sampling.Mc4SamplingConfig` (it locates the shards).
    ``progress(n)`` is called with the number of documents read since the last call.
    """
    from ..reader import iter_records

    if n_docs < MIN_DOCUMENTS:
        raise ConfigError(
            f"docs={n_docs!r} is out of range: at least {MIN_DOCUMENTS} documents are needed to "
            "estimate quartiles"
        )
    if max_docs_per_shard is not None and max_docs_per_shard < 1:
        raise ConfigError(f"max_docs_per_shard={max_docs_per_shard!r} is out of range: it must be >= 1")
    refs = [r for r in config.shard_refs(split) if r.language == language]
    if not refs:
        raise ConfigError(f"no {split} files found for language {language!r}")
    rng = np.random.default_rng(seed)
    picked = pick_shards(refs, shards_to_read, rng)
    logger.info("drawing %d documents from %s shards %s", n_docs, split, [r.index for r in picked])
    bad = 0

    def texts():
        nonlocal bad
        for ref in picked:
            for n, (_, record) in enumerate(iter_records(ref.path, config.on_bad_record,
                                                         config.http_retries)):
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
    return Subset(sample, seen, [r.index for r in picked], bad)


def score_texts(model, texts: Sequence[str], batch_size: int = 256,
                progress: Callable[[int], None] | None = None) -> np.ndarray:
    """Perplexities of ``texts`` in batches (``progress(n)`` after each batch)."""
    out = np.empty(len(texts), dtype=np.float64)
    for start in range(0, len(texts), batch_size):
        batch = texts[start:start + batch_size]
        out[start:start + len(batch)] = model.perplexities(batch)
        if progress is not None:
            progress(len(batch))
    return out


def run_calibration(config, language: str, target_rate: float, *, split: str = "train",
                    docs: int = DEFAULT_DOCS, seed: int = 2021,
                    shards_to_read: int = DEFAULT_SHARDS_TO_READ,
                    max_docs_per_shard: int | None = None,
                    methods: Sequence[str] = FIT_METHODS, width: float = DEFAULT_WIDTH,
                    fit_width: bool = False, gaussian_factor: float = 1.0,
                    output: str | Path | None = None, plots: bool = True,
                    read_progress=None, score_progress=None,
                    on_subset: Callable[[int], None] | None = None) -> tuple[Calibration, np.ndarray]:
    """Draw, score and fit; write ``calibration.json`` (and pictures) to ``output`` if given.

    ``read_progress(n)``/``score_progress(n)`` report documents read and scored;
    ``on_subset(n)`` is called once the subset of ``n`` documents is drawn.
    Returns the calibration and the scored perplexities.
    """
    target_rate = resolve_target(target_rate=target_rate)
    model = config.model(language)
    subset = draw_subset(config, language, split, docs, seed, shards_to_read, max_docs_per_shard,
                         read_progress)
    if len(subset.texts) < MIN_DOCUMENTS:
        raise ConfigError(
            f"too few documents to estimate quartiles: {len(subset.texts)} found in the picked "
            f"{split} shards of {language!r} (need at least {MIN_DOCUMENTS}); point at more data"
        )
    if on_subset is not None:
        on_subset(len(subset.texts))
    perplexities = score_texts(model, subset.texts, progress=score_progress)
    spec = config.perplexity_model
    calibration = build_calibration(
        perplexities, target_rate, model_id=model.model_id, mode=model.mode,
        model_spec=(list(spec) if isinstance(spec, (list, tuple)) else spec) or "embedded",
        language=language, split=split, seed=seed, methods=methods, width=width,
        fit_width=fit_width, gaussian_factor=gaussian_factor,
        extra={"subset": {"shards_read": subset.shards, "documents_read": subset.documents_read,
                          "bad_records": subset.bad_records,
                          "max_docs_per_shard": max_docs_per_shard,
                          "source": config.data_dir or config.base_url or "hub"},
               "model_name": getattr(model, "name", None)},
    )
    if output is not None:
        out = Path(output)
        save_calibration(calibration, out / CALIBRATION_FILE)
        if plots:
            write_plots(calibration, perplexities, out)
    return calibration, perplexities


def write_plots(calibration: Calibration, perplexities, out_dir) -> list[Path]:
    from ..plots import plot_expected_distributions, plot_perplexity_histogram

    x = clean_perplexities(perplexities)
    out = Path(out_dir)
    who = f"{calibration.language or ''} {calibration.split or ''}".strip()
    return [
        plot_perplexity_histogram(
            x, calibration.boundaries, out / HISTOGRAM_FILE, deciles=calibration.deciles,
            title=f"Perplexity of {x.size:,} scored documents ({who}, {calibration.mode} mode), "
            "with quartiles",
        ),
        plot_expected_distributions(
            x, calibration.boundaries, calibration.methods, out / EXPECTED_FILE,
            title=f"Calibrated for a {calibration.target_rate:.4g} keep rate ({who}): "
            "keep probability by perplexity",
        ),
    ]


# --- command line ---------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..builder import Mc4Sampling

    target = resolve_target(args.target_rate, args.target_docs, args.total_docs)
    if len(args.lang) != 1:
        raise ConfigError(f"--lang: calibrate one language at a time, got {' '.join(args.lang)}")
    if args.docs < MIN_DOCUMENTS:
        raise ConfigError(f"--docs {args.docs} is out of range: at least {MIN_DOCUMENTS} documents "
                          "are needed to estimate quartiles")
    if args.width <= 0 or not math.isfinite(args.width):
        raise ConfigError(f"--width {args.width} is out of range: it must be > 0")
    if args.gaussian_factor <= 0 or not math.isfinite(args.gaussian_factor):
        raise ConfigError(f"--gaussian-factor {args.gaussian_factor} is out of range: it must be > 0")
    language = args.lang[0]
    kwargs = dict(sampling_method="none", data_dir=args.data_dir, base_url=args.base_url,
                  shards=args.shards, on_bad_record=args.on_bad_record,
                  perplexity_model=model_spec(args), perplexity_mode=args.perplexity_mode)
    config = Mc4Sampling(config_name=language,
                         **{k: v for k, v in kwargs.items() if v is not None}).config
    bars = {"read": tqdm(desc="reading", unit="doc", file=sys.stderr, dynamic_ncols=True)}

    def start_scoring(n: int) -> None:
        bars["read"].close()
        bars["score"] = tqdm(total=n, desc="scoring", unit="doc", file=sys.stderr,
                             dynamic_ncols=True)

    try:
        calibration, _ = run_calibration(
            config, language, target, split=args.split, docs=args.docs, seed=args.seed,
            shards_to_read=args.shards_to_read, max_docs_per_shard=args.max_docs_per_shard,
            methods=args.methods, width=args.width, fit_width=args.fit_width,
            gaussian_factor=args.gaussian_factor, output=args.output,
            plots=not args.no_plots, read_progress=bars["read"].update,
            score_progress=lambda n: bars["score"].update(n), on_subset=start_scoring,
        )
    finally:
        for bar in bars.values():
            bar.close()
    print(summary(calibration, Path(args.output), plots=not args.no_plots))
    return 0


def summary(calibration: Calibration, out: Path, plots: bool = True) -> str:
    b = calibration.boundaries
    lines = [
        f"model: {calibration.model_id} ({calibration.mode} mode)",
        f"documents scored: {calibration.documents_scored} "
        f"(shards {calibration.extra.get('subset', {}).get('shards_read')})",
        f"quartiles: Q1 {b[0]:.6g}  median {b[1]:.6g}  Q3 {b[2]:.6g}",
        f"target keep rate: {calibration.target_rate:.6g}",
    ]
    for method, params in calibration.methods.items():
        desc = f"factor {params['factor']:.6g}"
        if "width" in params:
            desc += f"  width {params['width']:.6g}"
        lines.append(f"  {method:9s} {desc}  -> expected keep rate {params['expected_rate']:.6g}")
        for note in params.get("notes", []):
            lines.append(f"            note: {note}")
    lines.append(f"wrote {out / CALIBRATION_FILE}")
    if plots:
        lines.append(f"wrote {out / HISTOGRAM_FILE}, {out / EXPECTED_FILE}")
    return "\n".join(lines)
