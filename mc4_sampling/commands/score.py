"""``mc4-sampling score``: print the score of texts by any scorer (the embedded KenLM perplexity by
default; ``--scorer``/``--scorer-model``/``--scorer-option`` for fastText, transformers and the others)."""

from __future__ import annotations

import argparse
import os
import sys

from ..errors import ConfigError
from ..languages import check_language, mc4_code
from ..options import flag, sampling_options
from ..scoring import ScorerSource
from .common import (
    add_corpus_source_options,
    add_model_options,
    corpus_source,
    option_values,
    reads_shards,
    source_flags_given,
)


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "score",
        help="print the score of texts (KenLM perplexity by default, or --scorer's)",
        description="Print '<score>\\t<text>' for each text: the TEXT arguments, else the 'text' field of "
        "each line of --jsonl, else each line of standard input (one document per line; write \\n for a "
        "newline inside a document). The score is the scorer's (KenLM perplexity by default); its name "
        "('perplexity', 'score') goes to standard error first.",
    )
    p.add_argument("texts", nargs="*", metavar="TEXT", help="texts to score")
    p.add_argument("--jsonl", help="a JSON-lines file (or .json.gz) whose 'text' fields are scored")
    p.add_argument("--lang", default="es",
                   help="language of the model files to pick in a folder or Hub repo, and of a --source as the "
                   "source spells it (default: es)")
    add_corpus_source_options(p)
    p.add_argument("--split", help="with --source: the split whose documents are scored (default: its first)")
    add_model_options(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    spec = args.perplexity_model or []
    if len(spec) > 1 and not os.path.isfile(os.path.expanduser(spec[1])):  # not a KENLM SP pair: TEXT arguments
        args.perplexity_model, args.texts = spec[:1], spec[1:] + args.texts
    source = None
    if not reads_shards(args):  # the documents of a corpus source, checked before any scoring
        source = corpus_source(args)
    else:
        given = source_flags_given(args) + [f for f, v in (("--location", args.location), ("--split", args.split))
                                            if v is not None]
        if given:
            raise ConfigError(f"{given[0]} applies to the documents of a corpus source: give --source NAME")
        check_language(args.lang)
    options = sampling_options(option_values(args), flag)  # the scorer options, checked once, named as flags
    default_scorer = options.scorer is None and options.score_column is None
    if default_scorer and not spec and mc4_code(args.lang) != "es":
        raise ConfigError(f"--lang {args.lang}: the embedded perplexity model is Spanish; give --perplexity-model")
    model = ScorerSource.of(options, args.lang).load()
    if model.input_column is not None:
        raise ConfigError(f"--score-column {model.input_column}: score reads texts; a column of scores is read "
                          "from a dataset (mc4-sampling sample --dataset ... --score-column)")
    texts = _source_texts(args, source) if source is not None else _texts(args)  # checked before the header
    print(f"{model.score_name}\ttext ({model.name})", file=sys.stderr)
    for text in texts:
        print(f"{float(model.score([text])[0]):{model.score_format}}\t{text[:80]!r}")
    return 0


def _source_texts(args, source):
    """The texts of a corpus source's split (``--split``, default its first), unit by unit."""
    from ..sources import make_source

    if args.texts or args.jsonl:
        raise ConfigError(f"--source {args.source} gives the documents; TEXT arguments and --jsonl do not apply")
    src = make_source(source, "--source")
    splits = tuple(src.splits())
    split = args.split or splits[0]
    if split not in splits:
        raise ConfigError(f"--split {split}: the {src.title or src.name} source has the splits {', '.join(splits)}")
    units = src.units(split)

    def texts():
        for unit in units:
            for _, record in src.records(unit, on_bad_record=getattr(args, "on_bad_record", None) or "raise"):
                if record is not None:
                    yield record.text

    return texts()


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
