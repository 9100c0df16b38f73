"""Materialise a sampled subset (Parquet shards + a dataset card) and push it to the Hub."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from .builder import Mc4SamplingConfig
from .errors import ConfigError
from .pipeline import SamplingRule, SamplingStats

logger = logging.getLogger(__name__)

CARD_TEMPLATE = Path(__file__).with_name("data") / "dataset_card.md"
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

    if max_docs is not None and max_docs <= 0:
        raise ConfigError(f"max_docs={max_docs} is not valid; it must be a positive integer")
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

        for shard in config.shard_refs(split):
            sampler = config.document_sampler(shard.language, split, return_perplexity=True)
            for _, example in sampler.sample(shard, stats):
                rows.append(example)
                if len(rows) >= rows_per_file:
                    flush()
                if progress and stats.kept % 256 == 0:
                    progress(split, stats)
                if max_docs and stats.kept >= max_docs:
                    break
            if max_docs and stats.kept >= max_docs:
                break
        flush()
        results[split] = stats
        logger.info("%s: kept %d of %d documents", split, stats.kept, stats.read)
    return results


def render_card(config: Mc4SamplingConfig, stats: dict[str, SamplingStats], repo_id: str, splits) -> str:
    """The dataset card (README.md with YAML metadata) of a materialised subset."""
    language = config.languages[0]
    rule: SamplingRule = config.sampling_rules(language)["train"]
    validation: SamplingRule = config.sampling_rules(language)["validation"]
    model = config.model(language)
    total = sum(s.kept for s in stats.values())
    rows = []
    for split, s in stats.items():
        q = np.percentile(s.kept_perplexities, [25, 50, 75]) if s.kept_perplexities else None
        quartiles = " / ".join(f"{v:.1f}" for v in q) if q is not None else "-"
        rows.append(f"| {split} | {s.read:,} | {s.kept:,} | {s.keep_rate:.4f} | {quartiles} |")
    source = f"local copy ({len(config.shard_refs('train'))} train shards)" if config.data_dir else (
        f"`{config.base_url}`" if config.base_url else "`allenai/c4` (Hub), pinned revision")
    return CARD_TEMPLATE.read_text(encoding="utf-8").format(
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


def write_card(output_dir: str, card: str) -> str:
    path = os.path.join(output_dir, "README.md")
    with open(path, "w", encoding="utf-8") as f:
        f.write(card)
    return path


def push_to_hub(output_dir: str, repo_id: str, private: bool = False, token: str | None = None):
    """Create the dataset repository if needed and upload ``output_dir`` in one commit."""
    from huggingface_hub import HfApi

    api = HfApi(endpoint=os.environ.get("HF_ENDPOINT") or None, token=token)
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    info = api.upload_folder(
        folder_path=output_dir, repo_id=repo_id, repo_type="dataset",
        commit_message="Upload perplexity-sampled mC4 subset (mc4-sampling)",
    )
    logger.info("pushed %s to %s", output_dir, repo_id)
    return info
