"""The ``trainer generate-pcfg`` command: an artificial corpus from a treebank (:mod:`.generate`), with a bar.

``trainer generate-pcfg --treebank trainer/artificial/data/es-tiny.conllu --relexicalise zipf --sentences 20000
--output runs/pcfg-zipf --seed 0``
"""

from __future__ import annotations

import argparse
import sys

from mc4_sampling.common.cli_types import finite_float, int_at_least, non_negative_int, positive_float, positive_int

from .generate import FORMATS, GenerateOptions, generate
from .relexicalisers import RELEXICALISERS

DESCRIPTION = ("Learn a PCFG over dependency relations from a CoNLL-U treebank, sample sentences, relexicalise "
               "them into an artificial vocabulary, and write them as a corpus (JSON lines or Parquet shards) with "
               "its tokenizer (one token one id) and the relation of each token.")

_D = GenerateOptions()


def add_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("--treebank", required=True, help="a CoNLL-U file (.conllu or .conllu.gz) or an http(s) URL; "
                   "shipped: trainer/artificial/data/es-tiny.conllu")
    p.add_argument("--output", required=True, help="folder to write (a new or empty folder, or one this command "
                   "wrote: the same options resume it)")
    p.add_argument("--overwrite", action="store_true", help="replace --output even if it holds other files")
    p.add_argument("--relexicalise", choices=sorted(RELEXICALISERS), default=_D.relexicalise,
                   help="; ".join(f"{n}: {c.summary}" for n, c in sorted(RELEXICALISERS.items())))
    p.add_argument("--sentences", type=positive_int, default=_D.sentences,
                   help=f"sentences to generate (default {_D.sentences}, the post's 1 M, about 15 M tokens)")
    p.add_argument("--seed", type=non_negative_int, default=_D.seed, help="sentence i is drawn from (seed, i)")
    p.add_argument("--top-k", type=positive_int, default=_D.top_k,
                   help=f"relations kept, the rest become 'other' (default {_D.top_k})")
    p.add_argument("--strip-subtypes", action="store_true", help="acl:relcl counts as acl (default: as written)")
    p.add_argument("--max-depth", type=positive_int, default=_D.max_depth,
                   help=f"depth of the sampled trees; a node at this depth has no dependents (default {_D.max_depth})")
    p.add_argument("--vocab-size", type=positive_int, default=_D.vocab_size,
                   help=f"tokens of the artificial vocabulary, split among the relations by their distinct forms "
                        f"(default {_D.vocab_size}); at least the number of relation tags")
    p.add_argument("--zipf-exponent", type=finite_float(0), default=_D.zipf_exponent,
                   help=f"zipf: p(rank k) ∝ k^-s (default {_D.zipf_exponent:g})")
    p.add_argument("--dimension", type=positive_int, default=_D.dimension,
                   help=f"loglinear: dimension of the token and topic vectors (default {_D.dimension})")
    p.add_argument("--temperature", type=positive_float, default=_D.temperature,
                   help=f"loglinear: p(w|t) ∝ exp(v_w·v_t / temperature) (default {_D.temperature:g})")
    p.add_argument("--shard-size", type=positive_int, default=_D.shard_size,
                   help=f"sentences per shard file (default {_D.shard_size})")
    p.add_argument("--format", choices=FORMATS, default=_D.format, help="jsonl: {\"text\": ...} lines (default); "
                   "parquet: one column text")
    p.add_argument("--workers", type=int_at_least(1), default=1,
                   help="processes writing shards (the corpus does not depend on it)")
    p.add_argument("--max-length", type=positive_int, default=512,
                   help="the tokenizer's model_max_length (default 512)")
    return p


def options_of(args: argparse.Namespace) -> GenerateOptions:
    return GenerateOptions(relexicalise=args.relexicalise, sentences=args.sentences, seed=args.seed,
                           top_k=args.top_k, strip_subtypes=args.strip_subtypes, max_depth=args.max_depth,
                           vocab_size=args.vocab_size, zipf_exponent=args.zipf_exponent, dimension=args.dimension,
                           temperature=args.temperature, shard_size=args.shard_size, format=args.format)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    options = options_of(args)
    with tqdm(total=options.sentences, desc="generating sentences", unit="sent", file=sys.stderr, disable=None,
              dynamic_ncols=True) as bar:
        manifest = generate(args.treebank, args.output, options, workers=args.workers, overwrite=args.overwrite,
                            progress=bar.update, model_max_length=args.max_length)
    v = manifest["vocabulary"]
    print(f"{manifest['sentences']} sentences, {manifest['tokens']} tokens ({options.relexicalise}, "
          f"{len(v['tags'])} relation tags, {v['size']} tokens) -> {args.output} "
          f"(tokenizer: {args.output}/tokenizer, labels: {args.output}/labels.tsv)")
    return 0
