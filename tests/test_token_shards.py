"""Token shards: the format (read back, and by datatrove's reader), the training order against its
definition, rows and resume, and ``mc4-sampling publish --tokenizer`` then ``trainer`` end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from trainer_helpers import make_corpus, make_tokenizer, run_trainer, tiny_overrides

import mc4_sampling
from trainer.config import DataConfig
from trainer.data.batches import BatchStream, StreamPosition, block_permutation
from trainer.data.holdout import content_key
from trainer.data.publish_tokens import tokenize_config
from trainer.data.shard_writer import write_shard
from trainer.data.token_shards import TokenShardStream, TokenSplit


def test_a_shard_reads_back_and_datatrove_reads_it(tmp_path):
    rng = np.random.default_rng(0)
    docs = [rng.integers(0, 60000, int(rng.integers(0, 50))).tolist() for _ in range(40)]
    path = str(tmp_path / "s" / "00000.ds")
    os.makedirs(os.path.dirname(path))
    total = write_shard(path, docs, 2, np.dtype("<u2"), "tok")
    kept = [d for d in docs if d]
    assert total == sum(len(d) + 1 for d in kept)
    split = TokenSplit(str(tmp_path / "s"), np.dtype("<u2"))
    assert [d.tolist() for d in split.documents()] == [d + [2] for d in kept]
    assert (tmp_path / "s" / "00000.ds.metadata").read_text().splitlines()[:2] == ["tok|2", str(total)]
    assert not list((tmp_path / "s").glob("*.tmp.*"))
    dataset = pytest.importorskip("datatrove.utils.dataset")
    if not hasattr(dataset, "DatatroveFileDataset"):
        pytest.skip("datatrove's reader needs torch")
    ds = dataset.DatatroveFileDataset(path, seq_len=15, token_size=2, return_positions=True)
    stream = np.concatenate([np.asarray(d + [2]) for d in kept])
    item = ds[1]  # windows of seq_len + 1 tokens: [16, 32)
    assert item["input_ids"].tolist() == stream[16: 32].tolist()
    ends = np.cumsum([len(d) + 1 for d in kept])
    starts = np.concatenate([[0], ends[:-1]])
    # positions within the document, counted from the window start (datatrove's convention)
    want = [int(p - max(16, starts[np.searchsorted(ends, p, side="right")])) for p in range(16, 32)]
    assert item["positions"].tolist() == want  # document boundaries from our .ds.index


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """A fake published train split (3 Parquet files, duplicates inside) tokenised by tokenize_config."""
    root = tmp_path_factory.mktemp("pub")
    paths = make_corpus(str(root / "raw"), n_docs=240, n_files=1)
    texts = [json.loads(line)["text"] for line in open(paths[0])]
    texts += [t.upper() for t in texts[:40]]  # exact duplicates (after normalisation) later in the split
    tok = make_tokenizer(str(root / "tok"), paths, vocab_size=300)
    data = root / "out" / "data" / "cfg"
    data.mkdir(parents=True)
    for i in range(3):
        pq.write_table(pa.table({"text": texts[i::3]}), data / f"train-{i:05d}-of-00003.parquet")
    stats = tokenize_config(str(root / "out"), "cfg", tok, num_eval=20, eval_fraction=0.25)
    return root, tok, stats


def _shard_stream(published, **kw):
    from transformers import AutoTokenizer

    root, tok, stats = published
    cfg = DataConfig(tokenizer=tok, token_shards=stats["folder"], max_seq_length=16, shuffle_buffer=30, **kw)
    return TokenShardStream(cfg, AutoTokenizer.from_pretrained(tok), batch_size=8, seed=5)


def test_the_hold_out_is_the_trainers_and_applied(published):
    from transformers import AutoTokenizer

    root, tok, stats = published
    files = sorted((root / "out" / "data" / "cfg").glob("train-*.parquet"))
    cfg = DataConfig(path="parquet", name=None, data_files=[str(f) for f in files], tokenizer=tok,
                     num_eval_samples=20, eval_fraction=0.25)
    ref = BatchStream(cfg, AutoTokenizer.from_pretrained(tok), batch_size=8, seed=5)  # the streaming path
    manifest = json.load(open(os.path.join(stats["folder"], "eval_manifest.json")))
    assert [d["content_sha256"] for d in manifest["documents"]] == [content_key(t).hex() for t in ref.eval_texts()]
    s = _shard_stream(published)
    enc = ref.tok.encode(ref.eval_texts())
    assert [d.tolist() for d in s.eval_documents()] == [e + [ref.tok.eos_id] for e in enc]
    train = {tuple(d.tolist()) for d in s.train.documents()}
    assert not train & {tuple(e + [ref.tok.eos_id]) for e in enc}
    texts = [t for f in files for t in pq.read_table(f).column("text").to_pylist()]
    eval_keys = {content_key(t) for t in ref.eval_texts()}
    assert stats["train_documents"] == sum(content_key(t) not in eval_keys for t in texts) == len(s.train)
    assert stats["held_out_duplicates"] > 0  # some eval documents have an upper-case copy in the split
    assert json.load(open(os.path.join(stats["folder"], "manifest.json")))["splits"]["eval"]["documents"] == 20


def test_batches_follow_the_definition_and_resume_at_any_batch(published):
    s = _shard_stream(published)
    docs = s.train.documents()
    n, L, B = len(docs), 16, 8
    stream = []
    for epoch in range(3):  # the endless stream, by its definition
        for b in range(-(-n // 30)):
            block = docs[b * 30: (b + 1) * 30]
            stream += [block[i] for i in block_permutation(5, epoch, b, len(block))]
    stream = np.concatenate(stream)
    it = s.batches()
    got = [next(it) for _ in range(2 * len(stream) // (3 * B * (L - 1)))]  # about two epochs
    assert got[-1].position.epoch >= 1
    for k, batch in enumerate(got):
        body = stream[k * B * (L - 1): (k + 1) * B * (L - 1)].reshape(B, L - 1)
        assert (batch.tokens[:, 0] == s.tok.bos_id).all() and np.array_equal(batch.tokens[:, 1:], body), k
    for k in (0, 7, len(got) // 2):
        saved = StreamPosition.from_json(json.loads(json.dumps(got[k].position.to_json())))
        again = _shard_stream(published).batches(saved)
        for want in got[k + 1: k + 4]:
            assert np.array_equal(next(again).tokens, want.tokens)
    rows = np.asarray([1, 2, 3, 6])  # a process reads only its rows
    part = _shard_stream(published).batches(rows=rows)
    for want in got[:5]:
        assert np.array_equal(next(part).tokens, want.tokens[rows])


def test_a_stream_position_is_refused_by_the_shards(published):
    from trainer.errors import DataError

    with pytest.raises(DataError, match="'stream' path"):
        next(_shard_stream(published).batches(StreamPosition(batches=3, version=2)))


@pytest.mark.slow
def test_publish_with_a_tokenizer_then_train_from_the_shards(tmp_path):
    """``mc4-sampling publish --tokenizer`` on the bundled sample, then ``trainer`` with data.token_shards."""
    paths = make_corpus(str(tmp_path / "raw"), n_docs=100, n_files=1)
    tok = make_tokenizer(str(tmp_path / "tok"), paths, vocab_size=300)
    out = tmp_path / "subset"
    cli = [sys.executable, "-m", "mc4_sampling.cli", "publish", str(out), "--data-dir", mc4_sampling.SAMPLE_DATA_DIR,
           "--method", "gaussian", "--splits", "train", "--max-docs", "300", "--tasks", "1", "--tokenizer", tok,
           "--eval-docs", "20", "--eval-fraction", "0.3"]
    r = subprocess.run(cli, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    folder = out / "tokens" / "gaussian"
    assert "token shards in" in r.stdout and (folder / "manifest.json").exists()
    again = subprocess.run(cli, capture_output=True, text=True, timeout=600)  # resumes: the folder is ours
    assert again.returncode == 0, again.stderr[-3000:]
    run = tmp_path / "run"
    args = ["--config", "tiny-cpu"]
    for s in tiny_overrides(paths, tok, str(run), **{"data.token_shards": str(folder), "training.max_steps": 3,
                                                      "training.eval_every_steps": 3, "checkpoint.every_steps": 3}):
        args += ["--set", s]
    r = run_trainer(args)
    assert r.returncode == 0, r.stderr[-3000:]
    manifest = json.loads((folder / "eval_manifest.json").read_text())
    assert json.loads((run / "eval_manifest.json").read_text()) == manifest
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert any(m["kind"] == "eval" and m["step"] == 3 for m in metrics)
