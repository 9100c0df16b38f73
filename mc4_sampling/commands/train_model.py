"""``mc4-sampling train-model``: a CCNet-style perplexity model folder for any language from the
user's text (:func:`mc4_sampling.model_training.train_model`): options, step lines, summary."""

from __future__ import annotations

import argparse
import sys

from ..model_training import (
    ESTIMATORS,
    HOLDOUT_MODULUS,
    MIN_WORDS,
    TrainModelOptions,
    parse_binary_args,
    read_documents,
    source_documents,
    train_model,
)


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "train-model",
        help="train a CCNet-style perplexity model (SentencePiece + KenLM 5-gram) for any language",
        description="Train a perplexity model folder for --lang from your text, as CCNet trains its "
        "models: CCNet normalisation, a SentencePiece unigram model, a modified Kneser-Ney 5-gram "
        "(the project's estimator, or lmplz when it is on PATH), build_binary when it is on PATH, and "
        "the perplexity quartiles of held-out documents as the default boundaries (model.json). Use the "
        "folder with --perplexity-model FOLDER --lang LANG. A rerun of an interrupted command resumes "
        f"after its last finished step. Needs at least {MIN_WORDS:,} words of text.",
    )
    p.add_argument("inputs", nargs="*", metavar="FILE",
                   help="training text: UTF-8 text files (one paragraph a line, documents separated by blank "
                   "lines; .gz too) or JSON lines with a 'text' field (.jsonl, .jsonl.gz)")
    p.add_argument("--lang", required=True, help="language code of the model files (<lang>.arpa.bin, <lang>.sp.model)")
    p.add_argument("-o", "--output", required=True, help="the model folder to write (new, empty, or ours)")
    p.add_argument("--overwrite", action="store_true", help="replace an --output folder this tool did not write")
    p.add_argument("--sample", action="append", metavar="FILE",
                   help=f"documents whose perplexity quartiles become the default boundaries; repeat for several "
                   f"files (default: 1 in {HOLDOUT_MODULUS} training documents, held out from training)")
    p.add_argument("--sample-documents", type=int, default=10_000, metavar="N",
                   help="at most N held-out documents for the quartiles (default 10000)")
    s = p.add_argument_group("a corpus source instead of FILEs (mc4_sampling.sources)")
    s.add_argument("--source", help="a registered corpus source (e.g. mc4, fineweb2, files) whose train split is read")
    s.add_argument("--source-language", help="the language as the source spells it (default: --lang)")
    s.add_argument("--location", help="the source's local folder or URL")
    s.add_argument("--max-documents", type=int, metavar="N", help="read at most N documents of the source")
    m = p.add_argument_group("model settings (defaults: CCNet's)")
    m.add_argument("--vocab-size", type=int, default=65536, help="SentencePiece pieces (default 65536)")
    m.add_argument("--order", type=int, default=5, help="n-gram order (default 5)")
    m.add_argument("--prune", type=int, nargs="+", default=(), metavar="T",
                   help="lmplz --prune thresholds per order, e.g. 0 0 1 (default: no pruning, as CCNet)")
    m.add_argument("--no-discount-fallback", action="store_true",
                   help="fail where modified Kneser-Ney's closed-form discounts fail instead of using lmplz's "
                   "fallback 0.5 1 1.5 (CCNet passes --discount_fallback)")
    m.add_argument("--keep-case", action="store_true", help="do not lower-case (CCNet lower-cases)")
    m.add_argument("--keep-accents", action="store_true", help="do not strip accents (CCNet strips them)")
    t = p.add_argument_group("tools")
    t.add_argument("--estimator", choices=ESTIMATORS, default="auto",
                   help="own: the project's estimator; lmplz: KenLM's; auto (default): lmplz when on PATH")
    t.add_argument("--lmplz", metavar="PATH", help="KenLM's lmplz (default: from PATH)")
    t.add_argument("--build-binary", metavar="PATH",
                   help="KenLM's build_binary (default: from PATH; none there: the folder keeps the ARPA)")
    t.add_argument("--build-binary-args", default="", metavar="ARGS",
                   help="arguments for build_binary, e.g. \"-q 8 -b 8 -a 64 trie\" (default: none, as CCNet)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    options = TrainModelOptions(
        language=args.lang, vocab_size=args.vocab_size, order=args.order, prune=tuple(args.prune),
        discount_fallback=not args.no_discount_fallback, estimator=args.estimator, lmplz=args.lmplz,
        build_binary=args.build_binary, build_binary_args=parse_binary_args(args.build_binary_args),
        lower_case=not args.keep_case, strip_accents=not args.keep_accents, sample_documents=args.sample_documents,
    )
    from ..errors import ConfigError

    if not args.inputs and not args.source:
        raise ConfigError("give the training text: FILEs (text, or JSON lines with a 'text' field) or --source NAME")
    source_desc = None

    def documents():  # the documents behind a bar (the library logs; the command shows the reading)
        return _bar(read_documents(args.inputs))

    if args.source:
        from ..sources import SourceOptions, make_source

        if args.inputs:
            raise ConfigError("give FILEs or --source, not both")
        source = make_source(SourceOptions(source=args.source, language=args.source_language or args.lang,
                                           location=args.location), "--source")
        source_desc = f"source `{args.source}` ({args.source_language or args.lang}, {args.location or 'its home'})"

        def documents():
            return _bar(source_documents(source, limit=args.max_documents))

    def say(message: str) -> None:
        print(f"train-model: {message}", file=sys.stderr, flush=True)

    meta = train_model(args.output, args.inputs, options, documents=documents, source_desc=source_desc,
                       sample=args.sample, overwrite=args.overwrite, progress=say)
    q1, q2, q3 = meta["boundaries"]
    print(f"{args.output}: {args.lang} model, quartiles {q1} / {q2} / {q3} ({meta['boundaries_source']})")
    print(f"use it with: mc4-sampling score --perplexity-model {args.output} --lang {args.lang} TEXT")
    return 0


def _bar(documents):
    from tqdm import tqdm

    with tqdm(desc="train-model: reading", unit="doc", file=sys.stderr, dynamic_ncols=True, mininterval=1) as bar:
        for doc in documents:
            bar.update()
            yield doc
