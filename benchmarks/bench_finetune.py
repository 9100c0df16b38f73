#!/usr/bin/env python
"""Fine-tuning throughput: examples/s of ``trainer finetune``'s jitted, sharded step (tiny config on CPU by default).

    python benchmarks/bench_finetune.py [--examples 400] [--epochs 3] [--batch-size 16] [--dtype bfloat16]

A tiny RoBERTa (2 layers, hidden 32, random weights) and a tokenizer trained on the synthetic
sentences of ``tests/finetune_data.py``; a token-classification (NER-like) and a sentence-pair task
read as local Parquet files through ``load_dataset("parquet")``. Each task is fine-tuned twice with
the same compiled step: the first run's wall time includes the compilation, the second's does not;
the rate (training examples/s) leaves out each run's first step, and the evaluation.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_UPDATE_DOWNLOAD_COUNTS", "0")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--examples", type=int, default=400, help="training examples per task")
    p.add_argument("--epochs", type=float, default=3)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
    args = p.parse_args()

    import datasets
    import finetune_data as fd
    import jax

    from trainer.finetune.loading import load_model
    from trainer.finetune.run import FineTuner, Settings
    from trainer.finetune.tasks import get_preset, load_task_data

    datasets.disable_progress_bars()
    tmp = tempfile.mkdtemp(prefix="bench-finetune-")
    model_dir = fd.tiny_model_folder(os.path.join(tmp, "tiny"))
    loaded = load_model(model_dir, dtype=args.dtype)
    tasks = {
        "token (ner)": ("ner", fd.ner_rows, fd.ner_features()),
        "pair (paws-x)": ("paws-x-512", fd.pair_rows, fd.pair_features()),
    }
    print(f"backend {jax.default_backend()} x {jax.device_count()}, tiny RoBERTa (2 x 32), dtype {args.dtype}, "
          f"batch {args.batch_size}, {args.examples} examples x {args.epochs} epochs")
    for label, (preset, rows, features) in tasks.items():
        files = {}
        for split, n, seed in (("train", args.examples, 1), ("validation", max(args.examples // 4, 16), 2)):
            path = os.path.join(tmp, f"{preset}-{split}.parquet")
            with open(path, "wb") as f:
                f.write(fd.parquet_bytes(rows(n, seed), features))
            files[split] = path
        task = dataclasses.replace(get_preset(preset), path="parquet", name=None, revision=None, max_length=64,
                                   batch_size=args.batch_size, epochs=args.epochs, learning_rate=5e-3)
        data = load_task_data(task, files)
        tuner = FineTuner(loaded, task, data, Settings(seeds=1, dtype=args.dtype))
        for attempt in ("first run (compiles)", "second run"):
            start = time.perf_counter()
            result = tuner.train(0)
            wall = time.perf_counter() - start
            print(f"{label:14} {attempt:22} {result.examples_per_s:9.1f} train examples/s  "
                  f"{result.steps} steps of {tuner.train_enc.input_ids.shape[1]} tokens  wall {wall:.1f} s  "
                  f"accuracy {result.metrics['accuracy']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
