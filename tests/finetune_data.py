"""Small synthetic downstream datasets with a learnable structure (for tests/test_finetune.py and the benchmark).

* NER: Spanish-like sentences where the tag is a function of the word (a lexicon of PER and LOC
  names, some of two words: ``B-``/``I-``), every other word ``O``;
* pairs: two sentences, each holding one key word; the label is 1 when they hold the same one.
"""

from __future__ import annotations

import io
import json
import os

import numpy as np

FILLER = ("el la de en con por para que y un una casa perro gato ciudad río grande pequeño come bebe corre "
          "vive canta lee hoy mañana siempre muy bien libro mesa agua pan sol luna").split()
PER = ["Ana", "Carlos", "María", "Juan", "Lucía", "Pedro", ("José", "Luis"), ("Rosa", "María")]
LOC = ["Madrid", "Sevilla", "Valencia", "Bilbao", "Toledo", ("San", "Sebastián"), ("Buenos", "Aires")]
NER_TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
KEYS = ["gato", "perro"]


def ner_rows(n: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    tokens, tags = [], []
    for _ in range(n):
        words, t = [], []
        for _ in range(int(rng.integers(4, 10))):
            r = rng.random()
            if r < 0.2 or r < 0.35:
                lex, kind = (PER, "PER") if r < 0.2 else (LOC, "LOC")
                name = lex[int(rng.integers(len(lex)))]
                parts = name if isinstance(name, tuple) else (name,)
                words += list(parts)
                t += [NER_TAGS.index(f"B-{kind}")] + [NER_TAGS.index(f"I-{kind}")] * (len(parts) - 1)
            else:
                words.append(FILLER[int(rng.integers(len(FILLER)))])
                t.append(0)
        tokens.append(words)
        tags.append(t)
    return {"tokens": tokens, "ner_tags": tags}


def pair_rows(n: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    s1, s2, labels = [], [], []
    for _ in range(n):
        same = bool(rng.integers(2))
        k1 = KEYS[int(rng.integers(2))]
        k2 = k1 if same else KEYS[1 - KEYS.index(k1)]
        out = []
        for k in (k1, k2):
            words = [FILLER[int(i)] for i in rng.integers(0, len(FILLER), int(rng.integers(3, 7)))]
            words = [w for w in words if w not in KEYS]
            words.insert(int(rng.integers(len(words) + 1)), k)
            out.append(" ".join(words))
        s1.append(out[0])
        s2.append(out[1])
        labels.append(int(same))
    return {"sentence1": s1, "sentence2": s2, "label": labels}


def ner_features():
    import datasets

    return datasets.Features({"tokens": datasets.Sequence(datasets.Value("string")),
                              "ner_tags": datasets.Sequence(datasets.ClassLabel(names=NER_TAGS))})


def pair_features():
    import datasets

    return datasets.Features({"sentence1": datasets.Value("string"), "sentence2": datasets.Value("string"),
                              "label": datasets.ClassLabel(names=["different", "same"])})


def parquet_bytes(rows: dict, features=None) -> bytes:
    import datasets

    buf = io.BytesIO()
    datasets.Dataset.from_dict(rows, features=features).to_parquet(buf)
    return buf.getvalue()


def hub_files(repo: str, splits: dict[str, bytes]) -> dict[str, bytes]:
    """``{"datasets/REPO/data/SPLIT-00000-of-00001.parquet": bytes}`` for :class:`loopback_hub.LoopbackHub`."""
    return {f"datasets/{repo}/data/{split}-00000-of-00001.parquet": data for split, data in splits.items()}


def corpus_texts(n: int = 300) -> list[str]:
    ner, pair = ner_rows(n, 123), pair_rows(n, 456)
    return [" ".join(w) for w in ner["tokens"]] + pair["sentence1"] + pair["sentence2"]


def tiny_model_folder(folder: str, vocab_size: int = 1000, max_positions: int = 66, seed: int = 0) -> str:
    """A tokenizer trained on the synthetic sentences and a random tiny RoBERTa, exported as a transformers
    masked-LM folder (what ``trainer export`` writes)."""
    from trainer.data.tokenizer import train_tokenizer

    tok_dir = os.path.join(folder, "tokenizer")
    corpus = os.path.join(folder, "corpus.jsonl")
    os.makedirs(folder, exist_ok=True)
    with open(corpus, "w", encoding="utf-8") as f:
        for t in corpus_texts():
            f.write(json.dumps({"text": t}) + "\n")
    tok = train_tokenizer(corpus_texts(), tok_dir, vocab_size=vocab_size, min_frequency=1,
                          model_max_length=max_positions - 2)
    return random_roberta_folder(os.path.join(folder, "model"), tok, max_positions=max_positions, seed=seed)


def random_roberta_folder(out: str, tok, num_layers: int = 2, max_positions: int = 66, seed: int = 0) -> str:
    """A random tiny RoBERTa (hidden 32, ``num_layers`` layers, no dropout) for tokenizer ``tok``, exported as a
    transformers masked-LM folder."""
    import jax

    from trainer.models.roberta import RobertaSpec, init_params
    from trainer.models.roberta_hf import export_pretrained

    spec = RobertaSpec(vocab_size=len(tok), hidden_size=32, num_layers=num_layers, num_heads=2, intermediate_size=64,
                       max_position_embeddings=max_positions, dtype="float32", attention_impl="xla",
                       hidden_dropout=0.0, attention_dropout=0.0)
    # numpy draws of init_params' distribution (no compilation: seconds saved on a busy CPU)
    rng = np.random.default_rng(seed)
    shapes = jax.eval_shape(lambda k: init_params(spec, k), jax.random.key(0))

    def draw(path, a):
        leaf = path[-1].key
        if leaf in ("kernel", "embedding"):
            return (spec.initializer_range * rng.standard_normal(a.shape)).astype(np.float32)
        return (np.ones if leaf == "scale" else np.zeros)(a.shape, np.float32)

    params = jax.tree_util.tree_map_with_path(draw, shapes)
    export_pretrained(params, spec, out, tokenizer=tok)
    return out


CITIES = [c for c in LOC if isinstance(c, str)]
NAMES = [p for p in PER if isinstance(p, str)]


def _filler(rng, lo: int, hi: int) -> list[str]:
    return [FILLER[int(i)] for i in rng.integers(0, len(FILLER), int(rng.integers(lo, hi)))]


def qa_rows(n: int, seed: int, long_every: int = 4) -> list[dict]:
    """SQuAD-style rows: a context of filler words holding one city (the answer, with its character offset) and
    a question ``¿Dónde vive NAME?``; every ``long_every``-th context is long (several windows)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        before = _filler(rng, 2, 30 if i % long_every == 0 else 8)
        after = _filler(rng, 1, 6)
        name, city = NAMES[int(rng.integers(len(NAMES)))], CITIES[int(rng.integers(len(CITIES)))]
        prefix = " ".join(before + [name, "vive", "en"]) + " "
        context = prefix + city + " " + " ".join(after) + "."
        rows.append({"id": f"q{i}", "question": f"¿Dónde vive {name}?", "context": context,
                     "answers": {"text": [city], "answer_start": [len(prefix)]}})
    return rows


def regression_rows(n: int, seed: int) -> list[dict]:
    """Sentences holding 0 to 3 times ``gato`` among filler words; the label is that count (a float)."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        k = int(rng.integers(0, 4))
        words = [w for w in _filler(rng, 3, 8) if w not in KEYS]
        for _ in range(k):
            words.insert(int(rng.integers(len(words) + 1)), "gato")
        rows.append({"text": " ".join(words), "label": float(k)})
    return rows


def choice_rows(n: int, seed: int, choices: int = 3) -> list[dict]:
    """A context holding a key word (``gato`` or ``perro``) and ``choices`` endings; the right one (``label``)
    holds the same key word, the others the other one."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        k = int(rng.integers(2))
        context = " ".join(_filler(rng, 2, 6) + [KEYS[k]] + _filler(rng, 0, 3))
        right = int(rng.integers(choices))
        ends = [" ".join(_filler(rng, 1, 4) + [KEYS[k] if j == right else KEYS[1 - k]]) for j in range(choices)]
        rows.append({"context": context, "choices": ends, "label": right})
    return rows


def write_jsonl(path: str, rows: list[dict]) -> str:
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    return path
