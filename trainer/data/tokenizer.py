"""The trainer's tokenizer: load a tokenizer folder, what the data pipeline asks of it, and training one.

* :func:`load_tokenizer`: the fast tokenizer of ``data.tokenizer`` (a folder that
  ``AutoTokenizer.from_pretrained`` loads), checked, with a ConfigError naming the option;
* :class:`TokenizerFns`: what the batch stream, the token shards, the masking rule and the study
  need from it: batched ids, the special ids, the vocabulary size, its JSON for worker processes;
* :func:`train_tokenizer` and the ``tokenizer`` command: train a byte-level BPE tokenizer
  (RoBERTa style) on documents of a stream.

``trainer tokenizer --config tiny-cpu --output runs/tok --num-docs 5000 --vocab-size 8000`` (or
``python -m trainer.data.tokenizer ...``)

The result is a folder that ``AutoTokenizer.from_pretrained`` loads as a RoBERTa fast tokenizer:
specials ``<s> <pad> </s> <unk> <mask>`` (ids 0-4, as in BERTIN), ``<mask>`` strips the space
on its left (so ``"la <mask>."`` predicts ``"Ġword"`` tokens), and ``<s> ... </s>`` framing.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import os
import sys
from typing import Iterable, Optional

from mc4_sampling.common.cli_types import int_at_least, positive_int
from mc4_sampling.common.outputs import atomic_dir, check_output_dir

from ..config import max_sequence_length
from ..config_loading import add_config_arguments, load_config
from ..console import configure_logging, run_guarded
from ..errors import ConfigError, DataError, TrainerError

log = logging.getLogger(__name__)

#: The command's one-line description (``--help``).
DESCRIPTION = "Train a byte-level BPE tokenizer (RoBERTa style) on documents of a stream."

SPECIAL_TOKENS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]

#: The smallest vocabulary of a byte-level BPE: the 256 bytes and the special tokens.
MIN_VOCAB = 256 + len(SPECIAL_TOKENS)


def load_tokenizer(path: Optional[str]):
    """The fast tokenizer in folder ``path`` (``data.tokenizer``); a ConfigError naming the option when
    it is unset, missing, unreadable or not a fast tokenizer."""
    if not path:
        raise ConfigError("data.tokenizer is not set: train one with `python -m trainer tokenizer` "
                          "and pass --set data.tokenizer=FOLDER")
    if not os.path.isdir(path):
        raise ConfigError(f"data.tokenizer: no tokenizer folder at {path!r}")
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(path)
    except Exception as e:
        raise ConfigError(f"data.tokenizer: cannot load a tokenizer from {path!r}: {e}") from None
    if not getattr(tok, "is_fast", False):
        raise ConfigError(f"data.tokenizer: {path!r} is not a fast tokenizer (tokenizer.json needed)")
    return tok


class TokenizerFns:
    """What the batch stream needs from a fast tokenizer: batched ids and the special ids."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self._backend = tokenizer.backend_tokenizer
        self.bos_id = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.cls_token_id
        self.eos_id = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.sep_token_id
        self.pad_id = tokenizer.pad_token_id
        self.mask_id = tokenizer.mask_token_id
        if None in (self.bos_id, self.eos_id, self.pad_id, self.mask_id):
            raise DataError("the tokenizer needs <s>, </s>, <pad> and <mask> tokens (RoBERTa specials)")
        self.special_ids = tuple(sorted(set(tokenizer.all_special_ids)))
        self.vocab_size = len(tokenizer)

    def encode(self, texts: list[str]) -> list[list[int]]:
        return [e.ids for e in self._backend.encode_batch(texts, add_special_tokens=False)]

    def to_json(self) -> str:
        """The backend tokenizer as JSON (rebuilt in worker processes by ``Tokenizer.from_str``)."""
        return self._backend.to_str()


def train_tokenizer(texts: Iterable[str], output_dir: str, vocab_size: int = 50_265, min_frequency: int = 2,
                    model_max_length: int = 512):
    """Train on ``texts`` and save to ``output_dir``; returns the transformers tokenizer."""
    from tokenizers import AddedToken, ByteLevelBPETokenizer
    from tokenizers.processors import RobertaProcessing
    from transformers import RobertaTokenizerFast

    bpe = ByteLevelBPETokenizer(add_prefix_space=False, trim_offsets=True)
    specials = [AddedToken(t, lstrip=(t == "<mask>"), rstrip=False, normalized=False, special=True)
                for t in SPECIAL_TOKENS]
    bpe.train_from_iterator(texts, vocab_size=vocab_size, min_frequency=min_frequency,
                            special_tokens=specials, show_progress=False)
    backend = bpe._tokenizer
    backend.post_processor = RobertaProcessing(("</s>", backend.token_to_id("</s>")),
                                               ("<s>", backend.token_to_id("<s>")),
                                               trim_offsets=True, add_prefix_space=False)
    tok = RobertaTokenizerFast(
        tokenizer_object=backend, bos_token="<s>", eos_token="</s>", sep_token="</s>", cls_token="<s>",
        unk_token="<unk>", pad_token="<pad>", mask_token=AddedToken("<mask>", lstrip=True, rstrip=False),
        model_max_length=model_max_length,
    )
    tok.save_pretrained(output_dir)
    log.info("tokenizer with %d tokens saved to %s", len(tok), output_dir)
    return tok


def stream_texts(cfg, num_docs: int, skip: int = 0) -> Iterable[str]:
    """``num_docs`` texts of the configured stream after the first ``skip`` (the eval documents)."""
    from .stream import document_text, load_stream

    ds = load_stream(cfg.data)
    it = (document_text(ex, cfg.data.text_column) for ex in ds)
    return itertools.islice(it, skip, skip + num_docs)


def add_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options of the ``tokenizer`` command (``trainer tokenizer`` and ``python -m trainer.data.tokenizer``)."""
    add_config_arguments(p, help="config YAML (its data section is read) or a shipped config name")
    p.add_argument("--output", required=True, help="folder to write the tokenizer to (a new or empty folder, or "
                   "one this command wrote)")
    p.add_argument("--overwrite", action="store_true", help="replace --output even if it holds other files")
    p.add_argument("--num-docs", type=positive_int, default=100_000, help="documents to train on (default 100000)")
    p.add_argument("--vocab-size", type=int_at_least(MIN_VOCAB, " (256 bytes + 5 special tokens)"), default=50_265,
                   help="BERTIN: 50265")
    p.add_argument("--min-frequency", type=positive_int, default=2, help="BERTIN: 2")
    p.add_argument("--include-eval", action="store_true",
                   help="also read the documents the trainer holds out for evaluation")
    return p


def run(args: argparse.Namespace) -> int:
    """The ``tokenizer`` command: train on the configured stream, skipping the eval documents."""
    cfg = load_config(args.config, args.set)
    check_output_dir(args.output, "--output", args.overwrite)  # before minutes of reading
    skip = 0 if args.include_eval else cfg.data.num_eval_samples
    from tqdm import tqdm

    texts = list(tqdm(stream_texts(cfg, args.num_docs, skip), total=args.num_docs, desc="reading documents",
                      unit="doc", file=sys.stderr, disable=None, dynamic_ncols=True))  # shown on a terminal
    if not texts:
        raise TrainerError("the stream gave no documents to train the tokenizer on")
    # the model's length (514 positions hold 512 tokens), not the training length: the tokenizer
    # outlives phase 1, and the exported one states what the model accepts
    with atomic_dir(args.output, "trainer tokenizer", "--output", args.overwrite) as folder:  # whole or nothing
        tok = train_tokenizer(texts, str(folder), args.vocab_size, args.min_frequency,
                              model_max_length=max_sequence_length(cfg.model))
    print(f"tokenizer: {len(tok)} tokens trained on {len(texts)} documents -> {args.output}")
    return 0


def main(argv: Optional[list[str]] = None) -> int:
    """``python -m trainer.data.tokenizer``: the same command as ``trainer tokenizer``."""
    p = argparse.ArgumentParser(prog="python -m trainer.data.tokenizer", description=DESCRIPTION)
    args = add_arguments(p).parse_args(argv)
    configure_logging()
    return run_guarded(lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
