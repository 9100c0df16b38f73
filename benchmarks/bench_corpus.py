"""The generic sampler (``mc4_sampling.sample_dataset``) against the builder, on the same documents, in one run.

Both read the bundled sample's training shards (3 600 documents, gzip JSON lines) through
``datasets`` streaming and keep them with the gaussian weighting of the embedded model:

- builder: ``load_dataset("mc4-sampling", "es", sampling_method="gaussian", data_dir=SAMPLE_DATA_DIR)``;
- generic: ``load_dataset("json", data_files=<the same shards>, streaming=True)`` then
  ``sample_dataset(ds, sampling_method="gaussian")`` (draw keyed by the text; with ``--id-column``
  keyed by the url column instead).

Runs are interleaved (builder, generic, builder, ...), best of ``REPEATS``; reported: documents
read per second and the ratio generic / builder (target >= 0.9).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import datasets

import mc4_sampling
from mc4_sampling import sample_dataset

REPEATS = 5
TARGET = 0.9


def main() -> int:
    datasets.disable_progress_bars()
    shards = sorted(str(p) for p in (Path(mc4_sampling.SAMPLE_DATA_DIR) / "multilingual").glob("c4-es.tfrecord-*"))

    def builder():
        ds = datasets.load_dataset("mc4-sampling", "es", sampling_method="gaussian", streaming=True, split="train",
                                   data_dir=mc4_sampling.SAMPLE_DATA_DIR)
        return sum(1 for _ in ds)

    def generic(id_column=None):
        ds = datasets.load_dataset("json", data_files=shards, split="train", streaming=True)
        return sum(1 for _ in sample_dataset(ds, sampling_method="gaussian", id_column=id_column))

    runs = {"builder": builder, "generic (text key)": generic, "generic (id key: url)": lambda: generic("url")}
    n_docs = sum(1 for _ in datasets.load_dataset("json", data_files=shards, split="train", streaming=True))
    kept = {name: fn() for name, fn in runs.items()}  # warm-up: model loaded, files cached
    best = {name: float("inf") for name in runs}
    for _ in range(REPEATS):
        for name, fn in runs.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    base = n_docs / best["builder"]
    print(f"{n_docs} documents read per run, gaussian, embedded model, best of {REPEATS} (interleaved)")
    print(f"{'path':<24} {'docs/s':>8} {'kept':>6} {'x builder':>10}")
    for name in runs:
        rate = n_docs / best[name]
        print(f"{name:<24} {rate:8.0f} {kept[name]:6d} {rate / base:10.2f}")
    ratio = (n_docs / best["generic (text key)"]) / base
    print(f"generic / builder: {ratio:.2f} (target >= {TARGET}): {'met' if ratio >= TARGET else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
