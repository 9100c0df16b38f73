"""Throughput of ``mc4-sampling publish`` on a FineWeb-2-shaped Parquet folder against the equivalent datatrove
pipeline written with datatrove's own ``ParquetReader``, measured in this run.

The data: ``--files`` Parquet files (default 4) of ``--docs`` documents each (default 10 000), FineWeb-2's
layout and columns (``data/spa_Latn/train/000_0000N.parquet``: ``text``, ``id``, ``url``, ``date``,
``language_score``, ``minhash_cluster_size``, ...), made from the bundled Spanish sample
(``tests/source_fixtures.make_fineweb2``) in a temporary folder. Sampling: KenLM, the embedded model in
``ccnet`` mode (FineWeb-2's ``spa_Latn`` scored by the Spanish model), gaussian, seed 2021, one task per
file. Measured, interleaved (best of ``--repeats``):

- datatrove baseline, all scored: ``ParquetReader`` -> a ``BaseFilter`` (batches of 256) that scores every
  document with the same scorer and keeps it when ``u < p(perplexity)``, ``u`` the same counter-based draw
  keyed by the document's id -> datatrove's ``ParquetWriter``, 1 worker. What a user writes first;
- datatrove baseline, draw first: the same filter scoring only the documents the draw does not already
  reject (the same work as ``publish``);
- ``publish --source fineweb2``, local executor, 1 worker and 2 workers (the whole run: read, draw, score,
  decide, write Parquet per unit, card).

Both baselines keep exactly the ids ``publish`` keeps (checked). Targets (issue 26): publish >= 0.9 x
the datatrove pipeline; 2 workers >= 1.8 x one worker on 2 idle cores; the same kept ids for 1, 2 and 3
tasks (checked and printed).
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from bench_scale import quiet_stderr  # noqa: E402  (benchmarks/ is the script's folder)
from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.filters.base_filter import BaseFilter
from datatrove.pipeline.readers import ParquetReader
from datatrove.pipeline.writers import ParquetWriter

from mc4_sampling.draw import document_key, hashes64, uniform_draws
from mc4_sampling.options import SamplingOptions
from mc4_sampling.plan import SamplingPlan
from mc4_sampling.publish import method_configs, publish
from mc4_sampling.sources import SourceOptions

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from source_fixtures import LANG, make_fineweb2  # noqa: E402

SEED = 2021


class PerplexityFilter(BaseFilter):
    """The baseline's filter: the same scorer and keep rule as publish's gaussian config, in batches.

    ``draw_first``: score only the documents whose draw ``u`` is below the rule's highest keep probability
    (the others are rejected whatever their score)."""

    name = "perplexity filter"

    def __init__(self, options: SamplingOptions, draw_first: bool):
        super().__init__(batch_size=256)
        self.options, self.draw_first = options, draw_first
        self._plan = None

    def filter(self, doc):  # pragma: no cover - filter_batch decides
        return self.filter_batch([doc])[0]

    def filter_batch(self, batch):
        if self._plan is None:
            self._plan = SamplingPlan.resolve(self.options, LANG)
        plan = self._plan
        rule, model = plan.train, plan.model
        u = uniform_draws(document_key(plan.seed, LANG), hashes64([d.id for d in batch]))
        to_score = u < rule.max_probability if self.draw_first else np.ones(len(batch), dtype=bool)
        scores = np.full(len(batch), np.nan)
        idx = np.flatnonzero(to_score)
        if len(idx):
            scores[idx] = model.score([batch[i].text for i in idx.tolist()])
        keep = u < rule.probability(scores)
        for d, s in zip(batch, scores.tolist()):
            d.metadata["perplexity"] = s
        return keep.tolist()


def baseline_pass(folder: Path, options: SamplingOptions, draw_first: bool, work: Path, files: int) -> list[str]:
    """The datatrove pipeline (1 worker, one task per file); the kept ids, in file order."""
    out = work / f"baseline-{time.monotonic_ns()}"
    pipeline = [
        ParquetReader(str(folder / "data" / LANG / "train"), glob_pattern="*.parquet", text_key="text", id_key="id"),
        PerplexityFilter(options, draw_first),
        ParquetWriter(str(out / "data"), output_filename="${rank}.parquet"),
    ]
    with quiet_stderr():
        LocalPipelineExecutor(pipeline, tasks=files, workers=1, logging_dir=str(out / "logs")).run()
    ids = [i for f in sorted(glob.glob(str(out / "data" / "*.parquet")))
           for i in pq.read_table(f, columns=["id"]).column(0).to_pylist()]
    shutil.rmtree(out)
    return ids


def publish_pass(folder: Path, options: SamplingOptions, work: Path, workers: int, tasks: int | None = None
                 ) -> list[str]:
    out = work / f"publish-{time.monotonic_ns()}"
    with quiet_stderr():
        publish(method_configs(options, ["gaussian"]), str(out), source=SourceOptions("fineweb2", LANG, str(folder)),
                splits=["train"], workers=workers, tasks=tasks)
    ids = [i for f in sorted(glob.glob(str(out / "data" / "gaussian" / "*.parquet")))
           for i in pq.read_table(f, columns=["id"]).column(0).to_pylist()]
    shutil.rmtree(out)
    return ids




def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=4, help="Parquet files (default 4)")
    parser.add_argument("--docs", type=int, default=10_000, help="documents a file (default 10 000)")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each measurement, interleaved (default 1)")
    args = parser.parse_args()
    os.environ.setdefault("DATATROVE_COLORIZE_LOGS", "0")
    work = Path(tempfile.mkdtemp(prefix="bench-publish-sources-"))
    try:
        folder = make_fineweb2(work / "fineweb2", files=args.files, docs_per_file=args.docs, test_docs=0,
                               row_group_size=1000)
        n = args.files * args.docs
        options = SamplingOptions(sampling_method="gaussian", seed=SEED)
        plan = SamplingPlan.resolve(options, LANG)
        print(f"{n} documents in {args.files} FineWeb-2-shaped Parquet files; model {plan.model.model_id} "
              f"({plan.model.mode}); {os.cpu_count()} CPUs; best of {args.repeats}, interleaved")
        print(f"load average before: {os.getloadavg()[0]:.2f}")
        runs = {
            "datatrove ParquetReader + filter, all scored": lambda: baseline_pass(folder, options, False, work,
                                                                                  args.files),
            "datatrove ParquetReader + filter, draw first": lambda: baseline_pass(folder, options, True, work,
                                                                                  args.files),
            "publish --source fineweb2, 1 worker": lambda: publish_pass(folder, options, work, 1),
            "publish --source fineweb2, 2 workers": lambda: publish_pass(folder, options, work, 2),
        }
        wall = {name: float("inf") for name in runs}
        cpu = dict(wall)  # of this process: the 1-worker runs run in it (the stable figure under load)
        kept = {}
        for _ in range(args.repeats):
            for name, fn in runs.items():
                start, start_cpu = time.perf_counter(), time.process_time()
                kept[name] = fn()
                wall[name] = min(wall[name], time.perf_counter() - start)
                cpu[name] = min(cpu[name], time.process_time() - start_cpu)
        reference = kept["publish --source fineweb2, 1 worker"]
        same = all(ids == reference for ids in kept.values())
        rate = {k: n / v for k, v in wall.items()}
        cpu_rate = {k: n / v for k, v in cpu.items()}
        base = rate["datatrove ParquetReader + filter, draw first"]
        base_cpu = cpu_rate["datatrove ParquetReader + filter, draw first"]
        print("| measurement (gaussian, KenLM ccnet) | docs/s (wall) | ratio | docs per CPU-second | ratio |")
        print("|---|---:|---:|---:|---:|")
        for name in runs:
            if name.endswith("2 workers"):
                ratio = f"{rate[name] / rate['publish --source fineweb2, 1 worker']:.2f} x 1 worker"
                print(f"| {name} | {rate[name]:,.0f} | {ratio} | - | - |")
            else:
                print(f"| {name} | {rate[name]:,.0f} | {rate[name] / base:.2f} x datatrove (draw first) | "
                      f"{cpu_rate[name]:,.0f} | {cpu_rate[name] / base_cpu:.2f} |")
        print(f"kept {len(reference)} of {n}; the same ids in every run: {same}")
        by_tasks = {tasks: publish_pass(folder, options, work, 1, tasks) for tasks in (1, 2, 3)}
        same_tasks = by_tasks[1] == by_tasks[2] == by_tasks[3] == reference
        print(f"the same kept ids for 1, 2 and 3 tasks: {same_tasks}")
        one = rate["publish --source fineweb2, 1 worker"] / base
        two = rate["publish --source fineweb2, 2 workers"] / rate["publish --source fineweb2, 1 worker"]
        print(f"load average after: {os.getloadavg()[0]:.2f} (2 workers can only reach 2x on 2 idle cores)")
        print(f"targets: publish >= 0.90 x datatrove: {'met' if one >= 0.90 else 'NOT met'} ({one:.2f}); "
              f"2 workers >= 1.8 x: {'met' if two >= 1.8 else 'NOT met'} ({two:.2f}); "
              f"same ids: {'met' if same and same_tasks else 'NOT met'}")
        return 0 if same and same_tasks else 1  # the ratios are a report: the machine's load decides them
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
