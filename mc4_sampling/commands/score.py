"""``mc4-sampling score``: print the perplexity of texts."""

from __future__ import annotations

import argparse
import os
import sys

from ..errors import ConfigError
from ..kenlm_models import load_perplexity_model
from ..languages import check_language
from .common import add_model_options, model_spec


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "score",
        help="print the perplexity of texts",
        description="Print '<perplexity>\\t<text>' for each text: the TEXT arguments, else the 'text' field of "
        "each line of --jsonl, else each line of standard input (one document per line; write \\n for a "
        "newline inside a document).",
    )
    p.add_argument("texts", nargs="*", metavar="TEXT", help="texts to score")
    p.add_argument("--jsonl", help="a JSON-lines file (or .json.gz) whose 'text' fields are scored")
    p.add_argument("--lang", default="es",
                   help="language of the model files to pick in a folder or Hub repo (default: es)")
    add_model_options(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    spec = args.perplexity_model or []
    if len(spec) > 1 and not os.path.isfile(os.path.expanduser(spec[1])):  # not a KENLM SP pair: TEXT arguments
        args.perplexity_model, args.texts = spec[:1], spec[1:] + args.texts
    check_language(args.lang)
    if not spec and args.lang != "es":
        raise ConfigError(f"--lang {args.lang}: the embedded perplexity model is Spanish; give --perplexity-model")
    model = load_perplexity_model(model_spec(args), args.lang, args.perplexity_mode).load()
    for text in _texts(args):
        print(f"{model.perplexity(text):.2f}\t{text[:80]!r}")
    return 0


def _texts(args):
    if args.texts:
        yield from args.texts
    elif args.jsonl:
        from ..reader import iter_records

        for _, record in iter_records(args.jsonl):
            yield record["text"]
    else:
        for line in sys.stdin:
            yield line.rstrip("\n").replace("\\n", "\n")

