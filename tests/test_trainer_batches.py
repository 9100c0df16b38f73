"""The batch stream: exact positions, eval documents held out by content, audit, bad sources, prefetch."""

from __future__ import annotations

import itertools
import json
import os

import numpy as np
import pytest
from trainer_helpers import make_corpus, make_tokenizer

from trainer.config import DataConfig
from trainer.data.batches import BatchStream, StreamPosition
from trainer.data.packing import unpack
from trainer.data.prefetch import Prefetcher
from trainer.data.stream import document_hash
from trainer.errors import DataError


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus")
    paths = make_corpus(str(folder), n_docs=120, n_files=3)
    return paths, make_tokenizer(str(folder / "tok"), paths, vocab_size=300)


def _stream(corpus, audit_dir=None, rank=0, world=1, **kw):
    from transformers import AutoTokenizer

    paths, tok = corpus
    kw = {"eval_fraction": 0.25, **kw}  # 10 eval documents among the candidates of 120
    cfg = DataConfig(path="json", name=None, kwargs={}, data_files=paths, max_seq_length=32, shuffle_buffer=25,
                     tokenize_batch_size=7, num_eval_samples=10, **kw)
    return BatchStream(cfg, AutoTokenizer.from_pretrained(tok), batch_size=8, seed=3, rank=rank, world_size=world,
                       audit_dir=audit_dir)


def test_resume_from_any_batch_gives_the_same_following_batches(corpus):
    stream = _stream(corpus)
    reference = list(itertools.islice(stream.batches(), 80))  # > 2 epochs of 110 training documents
    assert reference[-1].position.epoch >= 1
    for k in (0, 1, 5, 17, 34, 35, 36, 60):
        saved = StreamPosition.from_json(json.loads(json.dumps(reference[k].position.to_json())))
        resumed = list(itertools.islice(_stream(corpus).batches(saved), 8))
        for a, b in zip(reference[k + 1:], resumed):
            assert np.array_equal(a.tokens, b.tokens)


def test_batches_are_exactly_the_shuffled_token_stream(corpus):
    """Concatenated batches == the training documents, block-shuffled, ``doc </s>`` each, epoch after epoch.

    Blocks are ``shuffle_buffer`` documents of the whole stream; the eval documents (by content) are
    dropped from each block before it is permuted."""
    import datasets

    from trainer.data.batches import block_permutation
    from trainer.data.packing import token_stream

    stream = _stream(corpus)
    batches = list(itertools.islice(stream.batches(), 80))
    emitted = np.concatenate([unpack(b.tokens) for b in batches])
    ds = datasets.load_dataset("json", data_files=corpus[0], streaming=True, split="train")
    texts = [ex["text"] for ex in ds]
    eval_set = set(stream.eval_texts())
    assert len(eval_set) == 10 and eval_set < set(texts)
    expected = []
    for epoch in range(3):
        for block in range(0, len(texts), 25):
            docs = [t for t in texts[block: block + 25] if t not in eval_set]
            perm = block_permutation(3, epoch, block // 25, len(docs))
            expected.append(token_stream(stream.tok.encode([docs[i] for i in perm]), stream.tok.eos_id))
    expected = np.concatenate(expected)
    assert len(expected) > len(emitted) > 2 * len(expected) // 3
    assert np.array_equal(emitted, expected[: len(emitted)])


def test_eval_documents_are_never_trained_on(corpus, tmp_path):
    stream = _stream(corpus, audit_dir=str(tmp_path))
    eval_texts = stream.eval_texts()
    assert len(eval_texts) == 10
    list(itertools.islice(stream.batches(), 80))  # two epochs and more
    eval_hashes = set((tmp_path / "eval-rank0.txt").read_text().split())
    train = [line.split("\t") for line in (tmp_path / "train-rank0.txt").read_text().splitlines()]
    epochs = {int(e) for e, _ in train}
    assert epochs >= {0, 1, 2}
    train_hashes = {h for _, h in train}
    assert eval_hashes == {document_hash(t) for t in eval_texts}
    assert not eval_hashes & train_hashes
    per_epoch0 = [h for e, h in train if e == "0"]
    assert len(per_epoch0) == len(set(per_epoch0)) == 110  # every training document once per epoch


def test_every_process_reads_the_same_global_stream(corpus):
    """The eval set and the global batches do not depend on the process (each keeps its rows later)."""
    ref = _stream(corpus)
    want = list(itertools.islice(ref.batches(), 30))
    for rank in range(2):
        s = _stream(corpus, rank=rank, world=2)
        assert s.eval_texts() == ref.eval_texts()
        for a, b in zip(want, itertools.islice(s.batches(), 30), strict=True):
            assert np.array_equal(a.tokens, b.tokens) and a.position.to_json() == b.position.to_json()


def test_missing_text_column_is_a_clear_error(corpus):
    with pytest.raises(DataError, match="no text column 'content'.*columns: text, url"):
        _stream(corpus, text_column="content").check_source()


def test_unloadable_source_is_a_clear_error(corpus, tmp_path):
    stream = _stream(corpus)
    stream.cfg.data_files = [str(tmp_path / "missing-*.jsonl")]
    with pytest.raises(DataError, match="cannot open dataset data.path='json'"):
        stream.check_source()


def test_too_many_eval_documents(corpus):
    stream = _stream(corpus)
    stream.num_eval = 1000
    with pytest.raises(DataError, match="lower data.num_eval_samples"):
        stream.eval_texts()
    stream = _stream(corpus, eval_fraction=1.0)  # every document a candidate: all 120 held out
    stream.num_eval = 120
    stream.eval_texts()
    with pytest.raises(DataError, match="no training documents"):
        next(stream.batches())


def test_prefetcher_forwards_items_and_errors():
    def gen():
        yield 1
        yield 2
        raise ValueError("boom")

    p = Prefetcher(gen(), size=1)
    assert next(p) == 1 and next(p) == 2
    with pytest.raises(ValueError, match="boom"):
        next(p)
    p.close()
    q = Prefetcher(iter(range(3)), size=2)
    assert list(q) == [0, 1, 2]
    q.close()


def test_tokenizer_workers_give_the_same_batches_and_resume(corpus):
    """0, 1 and 2 tokenizer processes: the same batches and positions, over epochs and from a resume."""
    reference = list(itertools.islice(_stream(corpus).batches(), 60))  # > 2 epochs
    for workers in (1, 2):
        got = list(itertools.islice(_stream(corpus, num_workers=workers).batches(), 60))
        for a, b in zip(reference, got, strict=True):
            assert np.array_equal(a.tokens, b.tokens) and a.position.to_json() == b.position.to_json()
    for k in (17, 35):  # mid-block, then mid-epoch of the second epoch
        saved = StreamPosition.from_json(json.loads(json.dumps(reference[k].position.to_json())))
        stream = _stream(corpus, num_workers=2).batches(saved)
        resumed = list(itertools.islice(stream, 6))
        stream.close()  # stops the workers
        for a, b in zip(reference[k + 1:], resumed):
            assert np.array_equal(a.tokens, b.tokens)


def test_tokenizer_workers_raise_the_stream_errors_in_order(corpus):
    stream = _stream(corpus, num_workers=2, eval_fraction=1.0)
    stream.num_eval = 120
    with pytest.raises(DataError, match="no training documents"):
        next(stream.batches())


def test_a_run_starts_without_pytorch(corpus, tmp_path):
    """The tokenizer loaded is the one AutoTokenizer gives (class, ids, specials), without AutoTokenizer's model
    registry; with it, tensorboardX's writer and a streaming dataset, a command's process never imports PyTorch
    (3-4 s of each run's start, for nothing: the trainer is JAX)."""
    import subprocess
    import sys

    from trainer_helpers import REPO
    from transformers import AutoTokenizer

    from trainer.data.tokenizer import load_tokenizer

    paths, tok = corpus
    ours, auto = load_tokenizer(tok), AutoTokenizer.from_pretrained(tok)
    assert type(ours) is type(auto) and ours.all_special_ids == auto.all_special_ids and len(ours) == len(auto)
    assert ours("la casa <mask> roja")["input_ids"] == auto("la casa <mask> roja")["input_ids"]
    script = ("import sys, datasets\n"
              "from mc4_sampling.common.console import datasets_without_torch\n"
              "from trainer.data.tokenizer import load_tokenizer\n"
              "from trainer.monitor import summary_writer_class\n"
              "with datasets_without_torch():\n"
              "    load_tokenizer(sys.argv[1])\n"
              "    summary_writer_class()(sys.argv[3]).close()\n"
              "    next(iter(datasets.load_dataset('json', data_files=sys.argv[2], split='train', streaming=True)))\n"
              "print('torch' in sys.modules, datasets.config.TORCH_AVAILABLE)\n")
    r = subprocess.run([sys.executable, "-c", script, tok, paths[0], str(tmp_path / "tb")], cwd=REPO,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.split() == ["False", "True"], r.stderr[-2000:]  # datasets' own again
    assert any(name.startswith("events.out.tfevents") for name in os.listdir(tmp_path / "tb"))
