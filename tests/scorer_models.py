"""Tiny quality models built at test time (no network): a fastText classifier, a transformers
regression classifier and a causal LM, each saved to a folder."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import mc4_sampling

SHARDS = sorted((Path(mc4_sampling.SAMPLE_DATA_DIR) / "multilingual").glob("c4-es.tfrecord-*.json.gz"))


def sample_docs(limit: int | None = None, shard: int = 0) -> list[dict]:
    with gzip.open(SHARDS[shard], "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    return rows[:limit]


def is_prose(text: str) -> bool:
    """A crude label for training: long lines of words ending in sentence punctuation."""
    lines = [line for line in text.split("\n") if line.strip()]
    prose = sum(len(line.split()) >= 8 and line.rstrip()[-1:] in ".!?" for line in lines)
    return bool(lines) and prose / len(lines) > 0.5


#: fastText's trainer, alone in a fresh interpreter that imports nothing else.
_TRAIN = ("import sys, fasttext; fasttext.train_supervised(sys.argv[1], epoch=5, lr=0.1, wordNgrams=1, dim=16, "
          "minCount=1, thread=1, seed=1, verbose=0).save_model(sys.argv[2])")


def train_fasttext(folder: Path) -> str:
    """A tiny quality classifier (``__label__hq``: prose) trained on shard 3 of the sample.

    The training runs in a fresh interpreter that imports only fastText: in a process that has
    loaded other native libraries (here: the ones ``mc4_sampling`` and ``datasets`` import),
    fasttext-numpy2's trainer can stop with "Encountered NaN", depending on the process's memory
    (seen on fresh venvs; scoring is unaffected). With one thread and a seed it is deterministic."""
    import subprocess
    import sys

    folder = Path(folder)
    train, path = folder / "train.txt", folder / "quality.bin"
    with open(train, "w", encoding="utf-8") as f:
        for d in sample_docs(shard=3):
            label = "__label__hq" if is_prose(d["text"]) else "__label__cc"
            f.write(f"{label} {d['text'].replace(chr(10), ' ')}\n")
    subprocess.run([sys.executable, "-c", _TRAIN, str(train), str(path)], check=True, capture_output=True, text=True)
    return str(path)


def _tokenizer(folder: Path, texts):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    specials = ["[PAD]", "[UNK]", "[CLS]"]
    tok.train_from_iterator(texts, trainers.WordLevelTrainer(vocab_size=500, special_tokens=specials))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]")
    fast.save_pretrained(folder)
    return fast


def build_classifier(folder: Path, num_labels: int = 1) -> str:
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    folder.mkdir(parents=True, exist_ok=True)
    tok = _tokenizer(folder, [d["text"] for d in sample_docs(300, shard=3)])
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(tok), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=128, num_labels=num_labels,
                        id2label={i: f"L{i}" for i in range(num_labels)},
                        label2id={f"L{i}": i for i in range(num_labels)}, pad_token_id=0)
    BertForSequenceClassification(config).save_pretrained(folder)
    return str(folder)


def build_causal_lm(folder: Path) -> str:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    folder.mkdir(parents=True, exist_ok=True)
    tok = _tokenizer(folder, [d["text"] for d in sample_docs(300, shard=3)])
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=len(tok), n_embd=16, n_layer=1, n_head=2, n_positions=128, pad_token_id=0)
    GPT2LMHeadModel(config).save_pretrained(folder)
    return str(folder)
