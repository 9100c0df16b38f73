"""``mc4-sampling publish``: materialise a sampled subset with a dataset card, optionally push it."""

from __future__ import annotations

import argparse
import sys

from tqdm import tqdm

from ..errors import ConfigError
from ..hub import push_folder, write_card
from ..plan import check_max_docs
from ..publish import materialize, render_card
from .common import add_model_options, add_sampling_options, add_source_options, build_config


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "publish",
        help="write a sampled subset as Parquet with a dataset card, optionally push it to the Hub",
        description="Sample mC4 and write the kept documents (with their perplexity) to OUTPUT_DIR/data/"
        "{split}-NNNNN.parquet plus a dataset card OUTPUT_DIR/README.md, ready for the Hub; "
        "--push-to-hub uploads the folder as a dataset repository.",
    )
    p.add_argument("output_dir", metavar="OUTPUT_DIR", help="folder to write")
    add_source_options(p)
    add_sampling_options(p)
    add_model_options(p)
    p.add_argument("--splits", nargs="+", choices=("train", "validation"), default=["train", "validation"],
                   help="splits to write (default: both)")
    p.add_argument("--max-docs", type=int, help="stop each split after this many kept documents")
    p.add_argument("--push-to-hub", metavar="REPO_ID", help="upload to this dataset repository (owner/name)")
    p.add_argument("--private", action="store_true", help="create the repository as private")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    check_max_docs(args.max_docs, "--max-docs")
    if args.push_to_hub is not None and args.push_to_hub.count("/") != 1:
        raise ConfigError(f"--push-to-hub={args.push_to_hub!r} is not valid; give a repository id owner/name")
    config = build_config(args, return_perplexity=True)
    bars: dict[str, tqdm] = {}

    def progress(split, stats):
        bar = bars.setdefault(split, tqdm(desc=f"{split}", unit="doc", file=sys.stderr, dynamic_ncols=True))
        bar.update(stats.read - bar.n)
        bar.set_postfix(kept=stats.kept, refresh=False)

    stats = materialize(config, args.output_dir, splits=args.splits, max_docs=args.max_docs, progress=progress)
    for bar in bars.values():
        bar.close()
    card = render_card(config, stats, args.push_to_hub or f"your-name/{config.name}-{config.sampling_method}", args.splits)
    write_card(args.output_dir, card)
    for split, s in stats.items():
        print(f"{split}: kept {s.kept} of {s.read} documents (keep rate {s.keep_rate:.4f})", file=sys.stderr)
    print(f"wrote {args.output_dir}/README.md and {args.output_dir}/data/", file=sys.stderr)
    if args.push_to_hub:
        info = push_folder(args.output_dir, args.push_to_hub, repo_type="dataset", private=args.private,
                           commit_message="Upload perplexity-sampled mC4 subset (mc4-sampling)")
        print(f"pushed to {args.push_to_hub}: {info.commit_url if hasattr(info, 'commit_url') else info}", file=sys.stderr)
    return 0
