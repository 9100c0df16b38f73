"""Materialise a sampled subset (Parquet shards) and render its dataset card (pushed with :mod:`.hub`)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from . import hub
from .builder import Mc4SamplingConfig
from .plan import SamplingPlan, check_max_docs, iter_kept
from .sampler import SamplingStats
from .shards import shard_refs_for
from .weighting import SamplingRule

logger = logging.getLogger(__name__)

FORMULAS = {
    "none": "1 (every document kept)",
    "random": "`p = factor`",
    "stepwise": "`factor / b1` (x <= b1), `factor / (b2 - b1)` (b1 < x < b2), `factor / (b3 - b2)` (b2 <= x < b3), `factor / (10 b3)` (x >= b3)",
    "gaussian": "`p = factor * exp(-(1 / width) * ((x - b2) / b2) ** 2)`",
}


def materialize(
    config: Mc4SamplingConfig,
    output_dir: str,
    splits=("train", "validation"),
    max_docs: int | None = None,
    rows_per_file: int = 100_000,
    progress=None,
) -> dict[str, SamplingStats]:
    """Write the kept documents of each split to ``output_dir/data/{split}-NNNNN.parquet``.

    Every document carries its ``perplexity``. ``max_docs`` caps the documents kept per split.
    ``progress(split, stats)`` is called after every block of documents (for progress bars).
    Returns the statistics of each split.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    check_max_docs(max_docs)
    data_dir = Path(output_dir) / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    for old in data_dir.glob("*.parquet"):
        old.unlink()
    schema = pa.schema([("text", pa.string()), ("timestamp", pa.string()), ("url", pa.string()), ("perplexity", pa.float64())])
    results = {}
    for split in splits:
        stats = SamplingStats()
        rows: list[dict] = []
        n_files = 0

        def flush():
            nonlocal rows, n_files
            if rows or n_files == 0:
                pq.write_table(pa.Table.from_pylist(rows, schema=schema), data_dir / f"{split}-{n_files:05d}.parquet")
                n_files += 1
                rows = []

        for example in iter_kept(config, split, stats=stats, max_docs=max_docs, return_perplexity=True):
            rows.append(example)
            if len(rows) >= rows_per_file:
                flush()
            if progress and stats.kept % 256 == 0:
                progress(split, stats)
        flush()
        results[split] = stats
        logger.info("%s: kept %d of %d documents", split, stats.kept, stats.read)
    return results


def render_card(config: Mc4SamplingConfig, stats: dict[str, SamplingStats], repo_id: str, splits) -> str:
    """The dataset card (README.md with YAML metadata) of a materialised subset."""
    language = config.languages[0]
    plan = SamplingPlan.resolve(config, language)
    rule: SamplingRule = plan.train
    validation: SamplingRule = plan.validation
    model = plan.model
    total = sum(s.kept for s in stats.values())
    rows = []
    for split, s in stats.items():
        q = np.percentile(s.kept_perplexities, [25, 50, 75]) if s.kept_perplexities else None
        quartiles = " / ".join(f"{v:.1f}" for v in q) if q is not None else "-"
        rows.append(f"| {split} | {s.read:,} | {s.kept:,} | {s.keep_rate:.4f} | {quartiles} |")
    source = f"local copy ({len(shard_refs_for(config, 'train'))} train shards)" if config.data_dir else (
        f"`{config.base_url}`" if config.base_url else "`allenai/c4` (Hub), pinned revision")
    return hub.render_card(
        "dataset",
        language_yaml="\n".join(f"- {lang.split('-')[0]}" for lang in config.languages),
        pretty_name=f"mC4 {'+'.join(config.languages)}, {rule.method} perplexity sampling",
        size_category=_size_category(total),
        data_files_yaml="\n".join(f"  - split: {s}\n    path: data/{s}-*" for s in splits),
        languages=", ".join(config.languages),
        method=rule.method,
        formula=FORMULAS[rule.method],
        factor=f"{rule.factor:g}" if rule.method != "none" else "-",
        width=f"{rule.width:g}" if rule.method == "gaussian" else "-",
        boundaries=", ".join(f"{b:.2f}" for b in rule.boundaries) if rule.boundaries else "-",
        validation_rule="not sampled (every document kept)" if validation.method == "none" else f"factor {validation.factor:g}",
        model_id=model.model_id,
        model_name=model.name,
        mode=model.mode,
        seed=config.seed,
        source=source,
        stats_rows="\n".join(rows),
        repo_id=repo_id,
    )


def _size_category(n: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
                        (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B")):
        if n < limit:
            return name
    return "1B<n<10B"
