"""The hold-out by content (trainer.data.holdout): the draw, exact and near duplicates, disjointness
from training over several epochs, the log line and the eval manifest."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
from trainer_helpers import make_corpus, make_tokenizer

from trainer.config import DataConfig
from trainer.data.batches import BatchStream, StreamPosition
from trainer.data.holdout import (
    MinHasher,
    content_key,
    eval_manifest,
    holdout_draw,
    is_candidate,
    lsh_bands,
    normalize_text,
    text_sha256,
    write_eval_manifest,
)

_WORDS = [f"w{i}" for i in range(400)]


def test_normalisation_and_content_key():
    assert normalize_text("  Hola\u00a0  MUNDO\n\tﬁn ") == "hola mundo fin"  # NBSP, case, NFKC ligature
    assert content_key("Hola mundo") == content_key(" hola\n MUNDO ") != content_key("hola mundos")
    assert holdout_draw("Hola mundo", 0) == holdout_draw("hola   mundo", 0) != holdout_draw("hola mundo", 1)


def test_the_draw_is_uniform_and_candidates_are_the_fraction():
    """Over 20 000 distinct texts the candidates are within 4 standard deviations of ``p n``, for each p."""
    texts = [f"documento número {i}" for i in range(20_000)]
    u = np.asarray([holdout_draw(t, 7) for t in texts])
    assert 0.0 <= u.min() and u.max() < 1.0
    for p in (0.01, 0.1, 0.5):
        n = sum(is_candidate(t, 7, p) for t in texts)
        assert abs(n - p * len(texts)) < 4 * np.sqrt(len(texts) * p * (1 - p)), p
    hist = np.histogram(u, bins=10, range=(0, 1))[0]  # chi-square, 9 dof: 99.9 % quantile 27.9
    assert ((hist - 2000) ** 2 / 2000).sum() < 27.9


def test_minhash_estimates_jaccard():
    """Estimated Jaccard (fraction of equal signature entries) within 4 sd ``sqrt(J (1-J) / 128)`` of the truth."""
    rng = np.random.default_rng(0)
    hasher = MinHasher(128, seed=0)
    for _ in range(8):
        base = list(rng.choice(_WORDS, 200))
        other = base.copy()
        for i in rng.choice(200, int(rng.integers(5, 120)), replace=False):
            other[i] = f"x{rng.integers(10 ** 6)}"
        a, b = " ".join(base), " ".join(other)
        sa = {" ".join(base[i: i + 5]) for i in range(196)}
        sb = {" ".join(other[i: i + 5]) for i in range(196)}
        truth = len(sa & sb) / len(sa | sb)
        est = float(np.mean(hasher.signature(a) == hasher.signature(b)))
        assert abs(est - truth) <= 4 * np.sqrt(max(truth * (1 - truth), 0.01) / 128), (est, truth)
    bands, rows = lsh_bands(0.8, 128)
    assert bands * rows <= 128 and (1 / bands) ** (1 / rows) <= 0.8


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """150 documents, then 60 copies of 30 of them (case / white space changed) and 10 near-duplicates."""
    folder = tmp_path_factory.mktemp("holdout")
    make_corpus(str(folder / "base"), n_docs=150, n_files=1)
    base = [json.loads(line)["text"] for line in open(folder / "base" / "part-0.jsonl")]
    rng = np.random.default_rng(1)
    rows = list(base)
    for i in rng.choice(150, 30, replace=False):
        rows.append(base[i].upper())
        rows.append("  " + base[i].replace(" ", "\n "))
    long_docs = [" ".join(rng.choice(_WORDS, 120)) for _ in range(10)]
    rows[10:10] = long_docs  # early in the stream: some become eval documents
    for d in long_docs:  # one word changed out of 120: Jaccard of 5-gram shingles ~0.92
        words = d.split()
        words[60] = "cambiado"
        rows.append(" ".join(words))
    path = folder / "docs.jsonl"
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in rows))
    return [str(path)], make_tokenizer(str(folder / "tok"), [str(path)], vocab_size=300), rows, long_docs


def _stream(corpus, **kw):
    from transformers import AutoTokenizer

    paths, tok = corpus[:2]
    cfg = DataConfig(path="json", name=None, kwargs={}, data_files=paths, max_seq_length=32, shuffle_buffer=25,
                     tokenize_batch_size=7, num_eval_samples=30, eval_fraction=0.5, **kw)
    return BatchStream(cfg, AutoTokenizer.from_pretrained(tok), batch_size=8, seed=3)


def _trained(stream, epochs: int) -> dict[int, list[str]]:
    got: dict[int, list[str]] = {}
    for chunk in stream._chunks(StreamPosition(version=2)):
        if chunk.epoch == epochs:
            return got
        got.setdefault(chunk.epoch, []).extend(chunk.texts)
    raise AssertionError("unreachable")


def test_eval_and_training_are_disjoint_by_content_over_epochs(corpus, caplog):
    rows = corpus[2]
    stream = _stream(corpus)
    eval_texts = stream.eval_texts()
    eval_keys = {content_key(t) for t in eval_texts}
    assert len(eval_texts) == len(eval_keys) == 30
    with caplog.at_level(logging.INFO, logger="trainer.data.batches"):
        trained = _trained(stream, 3)
    all_keys = {content_key(t) for t in rows}
    for epoch, texts in trained.items():
        keys = [content_key(t) for t in texts]
        assert not set(keys) & eval_keys, epoch
        assert set(keys) == all_keys - eval_keys, epoch  # every other content is trained on, every epoch
        assert len(texts) == sum(content_key(t) not in eval_keys for t in rows), epoch  # duplicates included
    held = sum(content_key(t) in eval_keys for t in rows)
    with_copies = sum(sum(content_key(t) == k for t in rows) > 1 for k in eval_keys)
    assert held > 30 and with_copies > 0
    lines = [r.getMessage() for r in caplog.records if "held out of training" in r.getMessage()]
    assert len(lines) == 3
    assert f"{held} held out of training ({held} copies of eval documents, {with_copies} of the 30" in lines[0]


def test_near_duplicates_are_held_out_when_asked(corpus):
    long_docs = corpus[3]
    plain, near = _stream(corpus), _stream(corpus, holdout_near_duplicates=0.8)
    assert plain.eval_texts() == near.eval_texts()
    evaluated = [d for d in long_docs if d in plain.eval_texts()]
    assert evaluated  # some of the long documents are eval documents
    changed = {" ".join(w if i != 60 else "cambiado" for i, w in enumerate(d.split())) for d in evaluated}
    assert changed <= set(_trained(plain, 1)[0])  # without the option the near-duplicates are trained on
    trained = set(_trained(near, 1)[0])
    assert not changed & trained
    assert near.epoch_holdout_stats[0]["near"] == len(changed)
    others = {" ".join(w if i != 60 else "cambiado" for i, w in enumerate(d.split())) for d in long_docs} - changed
    assert others <= trained  # near-duplicates of documents that are not evaluated stay in training


def test_eval_manifest_records_every_eval_document(corpus, tmp_path):
    stream = _stream(corpus)
    texts = stream.eval_texts()
    path = tmp_path / "eval_manifest.json"
    write_eval_manifest(str(path), texts, stream.cfg)
    got = json.loads(path.read_text())
    assert got == json.loads(json.dumps(eval_manifest(texts, stream.cfg)))
    assert [d["sha256"] for d in got["documents"]] == [text_sha256(t) for t in texts]
    assert [d["content_sha256"] for d in got["documents"]] == [content_key(t).hex() for t in texts]
    assert got["eval_fraction"] == 0.5 and got["num_documents"] == 30
    assert not list(tmp_path.glob("*.tmp"))


# --- the tokenizer's hold-out: the trainer's rule, by content ---------------------------------------------


def _trainer_config(corpus, config="tiny-cpu", **data):
    from trainer.config_loading import load_config

    sets = {"data.path": "json", "data.name": None, "data.kwargs": {}, "data.sampling": {},
            "data.data_files": corpus[0], "data.num_eval_samples": 30, "data.eval_fraction": 0.5, **data}
    return load_config(config, [f"{k}={json.dumps(v)}" for k, v in sets.items()])


@pytest.mark.parametrize("near", [None, 0.8], ids=["exact", "near-duplicates"])
def test_tokenizer_reads_exactly_what_the_trainer_trains_on(corpus, near):
    """The tokenizer's documents are, as a multiset, the trainer's training documents of an epoch (the eval set,
    its copies and, when asked, near-duplicates left out); the positional skip it replaces kept eval documents."""
    import itertools

    from trainer.data.stream import open_texts, stream_holdout, stream_texts

    cfg = _trainer_config(corpus, **{"data.holdout_near_duplicates": near})
    holdout = stream_holdout(cfg)
    texts = list(stream_texts(cfg, 10 ** 6, holdout))
    stream = _stream(corpus, holdout_near_duplicates=near)
    assert holdout.eval_texts == stream.eval_texts()
    assert sorted(texts) == sorted(_trained(stream, 1)[0])
    eval_keys = {content_key(t) for t in stream.eval_texts()}
    assert not eval_keys & {content_key(t) for t in texts}
    positional = itertools.islice(open_texts(cfg), cfg.data.num_eval_samples, None)  # the former rule
    assert len(eval_keys & {content_key(t) for t in positional}) >= 10
    copies = sum(content_key(t) in eval_keys for t in corpus[2]) - 30
    summary = holdout.summary()
    assert summary.startswith(f"held out 30 eval documents by the trainer's content rule (data.eval_fraction=0.5, "
                              f"data.holdout_seed=0), and {copies} copies"), summary
    assert (", " + str(stream.epoch_holdout_stats[0]["near"]) + " near-duplicates of them" in summary) == bool(near)


def test_tokenizer_command_on_a_small_corpus_holds_out_every_candidate(corpus, tmp_path, capsys):
    """roberta-base-128 asks for 10 000 eval documents: a 250-document corpus has fewer candidates, so all are
    held out (what any smaller data.num_eval_samples would evaluate on) and the tokenizer is trained on the rest."""
    from trainer.cli import main
    from trainer.data.holdout import select_eval_texts

    sets = {"data.path": "json", "data.name": None, "data.kwargs": {}, "data.sampling": {},
            "data.data_files": corpus[0]}
    out = tmp_path / "tok"
    argv = ["tokenizer", "--config", "roberta-base-128", "--output", str(out), "--vocab-size", "300"]
    for k, v in sets.items():
        argv += ["--set", f"{k}={json.dumps(v)}"]
    assert main(argv) == 0
    candidates, read = select_eval_texts(corpus[2], 10_000, 0, 0.1)
    copies = sum(content_key(t) in {content_key(c) for c in candidates} for t in corpus[2])
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"tokenizer (bpe): 300 tokens trained on {len(corpus[2]) - copies} documents (held out "
                           f"{len(candidates)} eval documents by the trainer's content rule"), line
    assert f"the stream's {read} documents hold only {len(candidates)} candidates, fewer than " \
           "data.num_eval_samples=10000: all are held out" in line
    assert (out / "tokenizer.json").is_file()
