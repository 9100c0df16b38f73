"""Any ``datasets`` streaming dataset as a corpus source: a Hub dataset id (with a config) or local data files.

The location is what :func:`mc4_sampling.corpus.open_corpus` opens (``owner/name`` on the Hub, a file, a glob
or a folder of one format); ``source_options``: ``config`` (the dataset's configuration, e.g. FineWeb-2's
``spa_Latn``) and ``splits`` (default ``["train"]``). Units are the streaming dataset's shards
(``IterableDataset.n_shards``, each read by ``shard(num_shards, index)``), so ``publish`` can give them to
tasks; a dataset that cannot be sharded is one unit. Columns as the other sources (``text_column``,
``id_column``: none by default, the draw keyed by the text's hash; ``metadata_columns``).
"""

from __future__ import annotations

from typing import Iterator

from ..errors import BadRecordError, ConfigError
from .base import CorpusSource, Record, SourceUnit, register_source
from .formats import make_record, missing_columns_error


@register_source
class DatasetsSource(CorpusSource):
    """A ``datasets`` streaming dataset (see the module)."""

    name = "datasets"
    title = "a datasets dataset"
    layout = ("any `datasets.load_dataset(location, config, split=..., streaming=True)`: a Hub dataset id or "
              "local files; options `config`, `splits`; columns `text_column` (default `text`), `id_column` "
              "(default none: the text's hash), `metadata_columns`; units: the stream's shards (`n_shards`)")
    extra_options = {"config": "the dataset's configuration name", "splits": "the splits to read (default train)"}

    def __init__(self, options):
        super().__init__(options)
        if not options.location:
            raise ConfigError("the datasets source needs location=<dataset id, file, glob or folder>")
        unknown = sorted(set(options.options) - set(self.extra_options))
        if unknown:
            raise ConfigError(f"source_options {', '.join(map(repr, unknown))} are not options of the datasets "
                              f"source; valid: {', '.join(self.extra_options)}")
        splits = options.options.get("splits", ["train"])
        if isinstance(splits, str):
            splits = [splits]
        if not (isinstance(splits, (list, tuple)) and splits and all(isinstance(s, str) for s in splits)):
            raise ConfigError(f"source_options splits={splits!r} is not valid; give split names, e.g. ['train']")
        self._splits = tuple(splits)
        self._streams: dict = {}

    def stream(self, split: str):
        """The split's ``IterableDataset`` (opened once)."""
        if split not in self._streams:
            from ..corpus import open_corpus

            self._streams[split] = open_corpus(str(self.options.location), self.options.options.get("config"), split)
        return self._streams[split]

    def check(self) -> None:
        ds = self.stream(self._splits[0])
        present = ds.column_names
        if present is None:  # unknown until read: the first row's
            first = next(iter(ds), None)
            present = list(first) if first is not None else []
        wanted = {"text_column": self.text_column, "id_column": self.id_column or ""}
        wanted.update({f"metadata_columns[{m!r}]": m for m in self.metadata_columns})
        error = missing_columns_error(str(self.options.location), wanted, present)
        if error is not None:
            raise error

    def splits(self) -> tuple[str, ...]:
        return self._splits

    def units(self, split: str) -> list[SourceUnit]:
        n = max(1, int(getattr(self.stream(split), "n_shards", 1) or 1))
        return [SourceUnit(split, i, n, self.language, str(self.options.location)) for i in range(n)]

    def records(self, unit: SourceUnit, *, on_bad_record: str = "raise", retries: int = 5,
                timeout: float | None = None) -> Iterator[tuple[int, Record | None]]:
        ds = self.stream(unit.split)
        if unit.count > 1:
            ds = ds.shard(num_shards=unit.count, index=unit.index, contiguous=True)
        for position, row in enumerate(ds):
            if isinstance(row.get(self.text_column), str):
                yield position, make_record(row, self.text_column, self.id_column, self.metadata_columns)
                continue
            reason = f"row has no string column {self.text_column!r}"
            if on_bad_record == "raise":
                raise BadRecordError(f"{self.options.location} ({unit.name})", position + 1, reason)
            yield position, None
