"""Input pipeline: token shards (``data.token_shards``) against the streaming path, measured in this run.

The data: the bundled sample's 4 train shards (3 600 Spanish mC4 documents) repeated ``--copies``
times (default 4), one Parquet file per copy, a byte-level BPE tokenizer of ``--vocab`` ids trained
on them (not timed). Measured, global batches of ``--batch`` x ``--seq-len`` tokens (RoBERTa-base at
128: 2048 x 128), each for ``--seconds`` (best of ``--repeats``):

- streaming path: :class:`trainer.data.batches.BatchStream` over the Parquet files (read, hold-out
  by content, block shuffle, tokenise in the pipeline's thread, pack), 0 and 2 tokenizer workers;
- token shards: the same documents tokenised once by ``trainer.data.publish_tokens`` (the step of
  ``publish --tokenizer``; its time is printed, not counted), read by
  :class:`trainer.data.token_shards.TokenShardStream` from memory maps.

Target (issue 20): token shards >= 10 M tokens/s on one host of 2 cores, i.e. >= 1.5 x the
consumption of an 8 x H100 node training RoBERTa-base at 128 at 45 % MFU (about 6.4 M tokens/s).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

NODE_CONSUMPTION = 6.4e6  # tokens/s: 8 x H100, RoBERTa-base at 128, 45 % MFU (issue 20)
TARGET = 10e6


def _texts(copies: int) -> list[list[str]]:
    import mc4_sampling

    folder = Path(mc4_sampling.SAMPLE_DATA_DIR) / "multilingual"
    texts = []
    for f in sorted(folder.glob("c4-es.tfrecord-*.json.gz")):
        with gzip.open(f, "rt", encoding="utf-8") as fh:
            texts += [json.loads(line)["text"] for line in fh]
    # copy k is marked so that copies are distinct documents (not duplicates of the eval set)
    return [[f"{t}\n(copia {k})" for t in texts] for k in range(copies)]


def _rate(batches, seconds: float) -> float:
    next(batches)  # started (workers, first epoch order)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        n += next(batches).tokens.size
    return n / (time.perf_counter() - t0)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--copies", type=int, default=4)
    p.add_argument("--vocab", type=int, default=8000)
    p.add_argument("--batch", type=int, default=2048)
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--workers", type=int, nargs="+", default=[0, 2], help="tokenizer workers of the streaming path")
    args = p.parse_args(argv)

    import pyarrow as pa
    import pyarrow.parquet as pq
    from transformers import AutoTokenizer

    from trainer.config import DataConfig
    from trainer.data.batches import BatchStream
    from trainer.data.publish_tokens import tokenize_config
    from trainer.data.token_shards import TokenShardStream
    from trainer.data.tokenizer import train_tokenizer

    work = tempfile.mkdtemp(prefix="bench-token-shards-")
    try:
        copies = _texts(args.copies)
        data = Path(work) / "pub" / "data" / "bench"
        data.mkdir(parents=True)
        files = []
        for k, texts in enumerate(copies):
            files.append(str(data / f"train-{k:05d}-of-{len(copies):05d}.parquet"))
            pq.write_table(pa.table({"text": texts}), files[-1])
        tok_dir = os.path.join(work, "tok")
        train_tokenizer(copies[0], tok_dir, vocab_size=args.vocab, model_max_length=512)
        tok = AutoTokenizer.from_pretrained(tok_dir)
        t0 = time.perf_counter()
        stats = tokenize_config(str(Path(work) / "pub"), "bench", tok_dir, num_eval=100, eval_fraction=0.1)
        prep_s = time.perf_counter() - t0
        common = dict(tokenizer=tok_dir, max_seq_length=args.seq_len, shuffle_buffer=10_000, num_eval_samples=100,
                      eval_fraction=0.1, tokenize_batch_size=256)
        print(f"== input pipeline: {sum(map(len, copies))} documents in {len(files)} Parquet files, "
              f"{stats['train_tokens']:,} training tokens; batches of {args.batch} x {args.seq_len}; "
              f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
        print(f"token shards written in {prep_s:.1f} s (once, by publish --tokenizer; not counted below)")
        results = {}
        for _ in range(args.repeats):
            for w in args.workers:
                cfg = DataConfig(path="parquet", name=None, data_files=files, num_workers=w, **common)
                it = BatchStream(cfg, tok, args.batch, seed=0).batches()
                results[f"streaming, {w} tokenizer workers"] = max(results.get(f"streaming, {w} tokenizer workers", 0),
                                                                   _rate(it, args.seconds))
                it.close()
            cfg = DataConfig(token_shards=stats["folder"], **common)
            it = TokenShardStream(cfg, tok, args.batch, seed=0).batches()
            results["token shards"] = max(results.get("token shards", 0), _rate(it, args.seconds))
        stream_best = max(v for k, v in results.items() if k.startswith("streaming"))
        for name, tps in results.items():
            print(f"  {name}: {tps:,.0f} tokens/s = {tps / NODE_CONSUMPTION:.2f}x an 8 x H100 node's consumption")
        shards = results["token shards"]
        print(f"token shards / best streaming: {shards / stream_best:.1f}x; target >= {TARGET / 1e6:.0f} M tokens/s: "
              + ("met" if shards >= TARGET else "NOT met"))
        return 0 if shards >= TARGET else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
