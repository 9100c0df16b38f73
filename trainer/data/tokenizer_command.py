"""The ``tokenizer`` command: train the trainer's byte-level BPE tokenizer (:func:`~.tokenizer.train_tokenizer`) or,
with ``--type wordpiece``, a BERT WordPiece one (:func:`~.tokenizer.train_wordpiece`) on documents of a config's
stream, without the documents the trainer holds out for evaluation (the same content rule,
:class:`~trainer.data.holdout.StreamHoldOut`).

``trainer tokenizer --config tiny-cpu --output runs/tok --num-docs 5000 --vocab-size 8000`` (or
``python -m trainer.data.tokenizer_command ...``)
"""

from __future__ import annotations

import argparse
import sys
from typing import Optional

from mc4_sampling.common.cli_types import int_at_least, positive_int
from mc4_sampling.common.outputs import atomic_dir, check_output_dir

from ..config import max_sequence_length
from ..config_loading import add_config_arguments, load_config
from ..console import configure_logging, run_guarded
from ..errors import TrainerError
from .stream import stream_holdout, stream_texts
from .tokenizer import MIN_VOCAB, train_tokenizer, train_wordpiece

#: The command's one-line description (``--help``).
DESCRIPTION = "Train a byte-level BPE (RoBERTa style) or WordPiece (BERT style) tokenizer on documents of a stream."


def add_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options of `trainer tokenizer` (and `python -m trainer.data.tokenizer_command`)."""
    add_config_arguments(p, help="config YAML (its data section is read) or a shipped config name")
    p.add_argument("--output", required=True, help="folder to write the tokenizer to (a new or empty folder, or "
                   "one this command wrote)")
    p.add_argument("--overwrite", action="store_true", help="replace --output even if it holds other files")
    p.add_argument("--num-docs", type=positive_int, default=100_000, help="documents to train on (default 100000)")
    p.add_argument("--type", choices=("bpe", "wordpiece"), default="bpe",
                   help="bpe: byte-level BPE, RoBERTa's (default); wordpiece: BERT's, for model.type bert")
    p.add_argument("--vocab-size", type=int_at_least(MIN_VOCAB, " (256 bytes + 5 special tokens)"), default=None,
                   help="BERTIN: 50265 (the bpe default); BERT: 30522 (the wordpiece default)")
    p.add_argument("--cased", action="store_true", help="wordpiece: keep case and accents (default: uncased, as "
                   "MultiBERTs)")
    p.add_argument("--min-frequency", type=positive_int, default=2, help="BERTIN: 2")
    p.add_argument("--include-eval", action="store_true",
                   help="also read the documents the trainer holds out for evaluation")
    return p


def run(args: argparse.Namespace) -> int:
    """The ``tokenizer`` command: train on the configured stream without the trainer's eval documents."""
    if args.cased and args.type != "wordpiece":
        raise TrainerError("--cased applies to --type wordpiece (a byte-level BPE keeps case); remove it")
    cfg = load_config(args.config, args.set)
    check_output_dir(args.output, "--output", args.overwrite)  # before minutes of reading
    holdout = None if args.include_eval else stream_holdout(cfg)  # reads the stream up to its eval set
    from tqdm import tqdm

    texts = list(tqdm(stream_texts(cfg, args.num_docs, holdout), total=args.num_docs, desc="reading documents",
                      unit="doc", file=sys.stderr, disable=None, dynamic_ncols=True))  # shown on a terminal
    held = holdout.summary() if holdout is not None else "held out nothing (--include-eval)"
    if not texts:
        raise TrainerError(f"the stream gave no documents to train the tokenizer on once {held}")
    # the model's length (514 positions hold 512 tokens), not the training length: the tokenizer
    # outlives phase 1, and the exported one states what the model accepts
    with atomic_dir(args.output, "trainer tokenizer", "--output", args.overwrite) as folder:  # whole or nothing
        if args.type == "wordpiece":
            tok = train_wordpiece(texts, str(folder), args.vocab_size or 30_522, args.min_frequency,
                                  model_max_length=max_sequence_length(cfg.model), lowercase=not args.cased)
        else:
            tok = train_tokenizer(texts, str(folder), args.vocab_size or 50_265, args.min_frequency,
                                  model_max_length=max_sequence_length(cfg.model))
    print(f"tokenizer ({args.type}): {len(tok)} tokens trained on {len(texts)} documents ({held}) -> {args.output}")
    return 0


def main(argv: Optional[list[str]] = None) -> int:
    """``python -m trainer.data.tokenizer_command``: the same command as ``trainer tokenizer``."""
    p = argparse.ArgumentParser(prog="python -m trainer.data.tokenizer_command", description=DESCRIPTION)
    args = add_arguments(p).parse_args(argv)
    configure_logging()
    return run_guarded(lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
