"""The bundled FineWeb-2-shaped folder (``mc4_sampling.SAMPLE_FINEWEB2_DIR``): exactly what
``scripts/build_fineweb2_sample.py`` makes, read by the ``fineweb2`` source, and disjoint from the text the
README's offline example trains its perplexity model on (the mC4 sample's validation split)."""

from __future__ import annotations

import gzip
import importlib.util
import json
from pathlib import Path

import pyarrow.parquet as pq

import mc4_sampling
from mc4_sampling.sources import SourceOptions, make_source

REPO = Path(__file__).resolve().parent.parent
BUNDLED = Path(mc4_sampling.SAMPLE_FINEWEB2_DIR)


def _script():
    path = REPO / "scripts" / "build_fineweb2_sample.py"
    spec = importlib.util.spec_from_file_location("build_fineweb2_sample", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_the_bundled_folder_is_what_the_script_builds(tmp_path):
    built = _script().build(tmp_path / "fineweb2")
    assert _files(built) == _files(BUNDLED) == [
        "README.md", "data/spa_Latn/test/000_00000.parquet", "data/spa_Latn/train/000_00000.parquet",
        "data/spa_Latn/train/000_00001.parquet"]
    assert (built / "README.md").read_text() == (BUNDLED / "README.md").read_text()
    for name in _files(BUNDLED)[1:]:
        ours, theirs = pq.ParquetFile(BUNDLED / name), pq.ParquetFile(built / name)
        assert ours.read().equals(theirs.read()), f"{name} differs from scripts/build_fineweb2_sample.py's output"
        assert ours.metadata.num_row_groups == theirs.metadata.num_row_groups
    size = sum((BUNDLED / n).stat().st_size for n in _files(BUNDLED))
    assert size < 1_000_000


def test_the_fineweb2_source_reads_it_and_the_readme_training_text_is_other_text():
    source = make_source(SourceOptions(source="fineweb2", language="spa_Latn", location=str(BUNDLED)), "--source")
    source.check()
    texts = {}
    for split in ("train", "test"):
        units = list(source.units(split))
        records = [r for u in units for _, r in source.records(u)]
        texts[split] = {r.text for r in records}
        assert len({r.id for r in records}) == len(records) == {"train": 1600, "test": 200}[split]
        assert set(records[0].metadata) >= {"url", "date", "language_score", "minhash_cluster_size"}
    # the sample repeats a few short pages ('Error 404') as the web does; no longer text is shared
    assert all(len(t) < 100 for t in texts["train"] & texts["test"])
    multilingual = Path(mc4_sampling.SAMPLE_DATA_DIR) / "multilingual"
    validation = multilingual / "c4-es-validation.tfrecord-00000-of-00016.json.gz"
    with gzip.open(validation, "rt", encoding="utf-8") as f:
        other = {json.loads(line)["text"] for line in f}
    shared = other & (texts["train"] | texts["test"])
    assert len(other) > 380 and len(shared) < 10 and all(len(t) < 100 for t in shared)
