"""The trainer's tokenizer: load a tokenizer folder, what the data pipeline asks of it, and training one.

* :func:`load_tokenizer`: the fast tokenizer of ``data.tokenizer`` (a folder that
  ``AutoTokenizer.from_pretrained`` loads), checked, with a ConfigError naming the option;
* :class:`TokenizerFns`: what the batch stream, the token shards, the masking rule and the study
  need from it: batched ids, the special ids, the vocabulary size, its JSON for worker processes;
* :func:`train_tokenizer`: train a byte-level BPE tokenizer (RoBERTa style) on texts, or
  :func:`train_wordpiece` a WordPiece one (BERT style) (the ``trainer tokenizer`` command,
  :mod:`trainer.data.tokenizer_command`, feeds them a stream);
* :func:`word_level_tokenizer`: a closed vocabulary, one whitespace-separated token one id, RoBERTa's or (as
  WordPiece) BERT's specials (the artificial languages of :mod:`trainer.artificial`).

The BPE result is a folder that ``AutoTokenizer.from_pretrained`` loads as a RoBERTa fast tokenizer:
specials ``<s> <pad> </s> <unk> <mask>`` (ids 0-4, as in BERTIN), ``<mask>`` strips the space
on its left (so ``"la <mask>."`` predicts ``"Ġword"`` tokens), and ``<s> ... </s>`` framing. The
WordPiece one loads as a BERT tokenizer: BERT's normalisation (``BertNormalizer``: control characters
removed, CJK characters split, lowercased unless cased) and pre-tokenisation (``BertPreTokenizer``),
``##`` continuation pieces, specials ``[PAD] [UNK] [CLS] [SEP] [MASK]`` (ids 0-4; ``[PAD]`` 0 as in BERT)
and ``[CLS] A [SEP] B [SEP]`` framing with token types 0/1.
"""

from __future__ import annotations

import logging
import os
from typing import Iterable, Optional

from ..errors import ConfigError, DataError

log = logging.getLogger(__name__)

SPECIAL_TOKENS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
#: The WordPiece tokenizer's specials, ids 0-4 (BERT's ``[PAD]`` is 0).
WORDPIECE_SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]

#: The smallest vocabulary of a byte-level BPE: the 256 bytes and the special tokens.
MIN_VOCAB = 256 + len(SPECIAL_TOKENS)


def load_tokenizer(path: Optional[str], option: str = "data.tokenizer", error: type = ConfigError, fast: bool = True,
                   **kwargs):
    """The tokenizer in folder ``path`` (``AutoTokenizer.from_pretrained(path, **kwargs)``), the one way every
    command loads one: the trainer's ``data.tokenizer``, ``publish --tokenizer``, an exported or downloaded
    model's folder. An ``error`` naming ``option`` when it is unset, missing, unreadable or (``fast``) not a
    fast tokenizer."""
    if not path:
        raise error(f"{option} is not set: train one with `python -m trainer tokenizer` "
                    f"and pass --set {option}=FOLDER")
    if not os.path.isdir(path):
        raise error(f"{option}: no tokenizer folder at {path!r}")
    tok = None
    named = _named_class(path)
    if named is not None:
        try:
            tok = named.from_pretrained(path, **kwargs)
        except Exception:  # AutoTokenizer below gives its own error
            tok = None
    if tok is None or (fast and not getattr(tok, "is_fast", False)):
        from transformers import AutoTokenizer

        try:
            tok = AutoTokenizer.from_pretrained(path, **kwargs)
        except Exception as e:
            raise error(f"{option}: cannot load a tokenizer from {path!r}: {type(e).__name__}: {e}") from None
    if fast and not getattr(tok, "is_fast", False):
        raise error(f"{option}: {path!r} is not a fast tokenizer (tokenizer.json needed)")
    return tok


def _named_class(path: str):
    """The tokenizer class that ``tokenizer_config.json`` names (``tokenizer_class``), taken from ``transformers`` by
    name as ``AutoTokenizer`` resolves it, or None (no such file or name, custom code, not a tokenizer class).

    Loading it directly gives the tokenizer ``AutoTokenizer`` gives, without importing ``AutoTokenizer``'s model
    registry, which imports PyTorch (3 s of every trainer run that never uses it)."""
    import json

    try:
        with open(os.path.join(path, "tokenizer_config.json"), encoding="utf-8") as f:
            config = json.load(f)
    except (OSError, ValueError):
        return None
    name = config.get("tokenizer_class") if isinstance(config, dict) else None
    if not isinstance(name, str) or not name.isidentifier() or config.get("auto_map"):
        return None
    import transformers

    try:
        cls = getattr(transformers, name)
    except (AttributeError, ImportError, RuntimeError):
        return None
    return cls if isinstance(cls, type) and issubclass(cls, transformers.PreTrainedTokenizerBase) else None


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
            raise DataError("the tokenizer needs <s>, </s>, <pad> and <mask> tokens (RoBERTa specials; BERT's "
                            "[CLS], [SEP], [PAD], [MASK])")
        self.special_ids = tuple(sorted(set(tokenizer.all_special_ids)))
        self.vocab_size = len(tokenizer)
        #: the backend's model ("WordPiece", "BPE", "Unigram", ...)
        self.model_name = type(self._backend.model).__name__
        self.is_wordpiece = self.model_name == "WordPiece"

    def encode(self, texts: list[str]) -> list[list[int]]:
        return [e.ids for e in self._backend.encode_batch(texts, add_special_tokens=False)]

    def continuation_ids(self) -> list[int]:
        """The ids of the pieces that continue a word (whole-word masking, :mod:`trainer.masking`): those the
        tokenizer's own decoder joins to the piece before them without whitespace (``##lo`` of WordPiece,
        ``lo`` without ``Ġ``/``▁`` of byte-level BPE and SentencePiece). Probed against the piece of ``"a"``,
        so every tokenizer with a decoder is read the same way; special tokens never continue a word.
        A pre-tokeniser word (``word_ids()``) is thus never split across two of these words."""
        decoder = self._backend.decoder
        if decoder is None:
            raise DataError("training.masking=whole-word needs a tokenizer with a decoder (to tell the pieces that "
                            "start a word from those that continue one); use training.masking=token")
        anchor = self._backend.encode("a", add_special_tokens=False).tokens[-1]
        base = decoder.decode([anchor])
        special = set(self.special_ids)
        out = []
        for token, i in sorted(self._backend.get_vocab(with_added_tokens=False).items(), key=lambda kv: kv[1]):
            if i in special:
                continue
            text = decoder.decode([anchor, token])
            rest = text[len(base):] if text.startswith(base) else text
            if rest and not rest[0].isspace():
                out.append(i)
        return out

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


def train_wordpiece(texts: Iterable[str], output_dir: str, vocab_size: int = 30_522, min_frequency: int = 2,
                    model_max_length: int = 512, lowercase: bool = True):
    """Train a WordPiece tokenizer (BERT's normalisation and pre-tokenisation, ``lowercase``: uncased as
    MultiBERTs) on ``texts`` and save it to ``output_dir``; returns the transformers tokenizer."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertTokenizerFast

    backend = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    backend.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=None,
                                                    lowercase=lowercase)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.train_from_iterator(texts, trainers.WordPieceTrainer(
        vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=WORDPIECE_SPECIAL_TOKENS,
        continuing_subword_prefix="##", show_progress=False))
    cls, sep = backend.token_to_id("[CLS]"), backend.token_to_id("[SEP]")
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    backend.decoder = decoders.WordPiece(prefix="##")
    tok = BertTokenizerFast(tokenizer_object=backend, unk_token="[UNK]", sep_token="[SEP]", pad_token="[PAD]",
                            cls_token="[CLS]", mask_token="[MASK]", do_lower_case=lowercase,
                            model_max_length=model_max_length)
    tok.save_pretrained(output_dir)
    log.info("WordPiece tokenizer with %d tokens saved to %s", len(tok), output_dir)
    return tok


def word_level_tokenizer(tokens: list, output_dir: str, model_max_length: int = 512, wordpiece: bool = False):
    """A tokenizer of the closed vocabulary ``tokens``, saved to ``output_dir``; returns the transformers tokenizer.
    Texts are split on whitespace and each token is one id: the five specials are ids 0-4 and ``tokens[i]`` is id
    ``5 + i``; no token continues a word (so whole-word masking is token masking). Default: a WordLevel model
    with RoBERTa's specials ``<s> <pad> </s> <unk> <mask>`` and ``<s> A </s>`` framing (``<s> A </s></s> B </s>``);
    ``wordpiece``: a WordPiece model (for the BERT family) with BERT's ``[PAD] [UNK] [CLS] [SEP] [MASK]`` and
    ``[CLS] A [SEP] B [SEP]`` framing with token types. Loads with :func:`load_tokenizer` as any tokenizer folder."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import BertTokenizerFast, PreTrainedTokenizerFast

    specials = WORDPIECE_SPECIAL_TOKENS if wordpiece else SPECIAL_TOKENS
    vocab = {t: i for i, t in enumerate(specials)}
    for t in tokens:
        if t in vocab or not t or any(c.isspace() for c in t):
            raise DataError(f"token {t!r}: empty, holds a space, appears twice or is a special token")
        vocab[t] = len(vocab)
    if wordpiece:
        backend = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]", continuing_subword_prefix="##"))
        cls, sep = vocab["[CLS]"], vocab["[SEP]"]
        post = processors.TemplateProcessing(single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
                                             special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    else:
        backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
        post = processors.TemplateProcessing(single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>",
                                             special_tokens=[("<s>", vocab["<s>"]), ("</s>", vocab["</s>"])])
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    backend.add_special_tokens([AddedToken(t, normalized=False, special=True) for t in specials])
    backend.post_processor = post
    backend.decoder = decoders.WordPiece(prefix="##", cleanup=False)  # joins with spaces; no "##" token exists
    if wordpiece:
        tok = BertTokenizerFast(tokenizer_object=backend, unk_token="[UNK]", sep_token="[SEP]", pad_token="[PAD]",
                                cls_token="[CLS]", mask_token="[MASK]", do_lower_case=False,
                                model_max_length=model_max_length)
    else:
        tok = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>", eos_token="</s>", sep_token="</s>",
                                      cls_token="<s>", unk_token="<unk>", pad_token="<pad>", mask_token="<mask>",
                                      model_max_length=model_max_length)
    tok.save_pretrained(output_dir)
    log.info("closed-vocabulary tokenizer with %d tokens saved to %s", len(tok), output_dir)
    return tok
