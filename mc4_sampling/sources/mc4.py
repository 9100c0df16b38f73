"""mC4 (``allenai/c4``'s ``multilingual/``) as a corpus source: today's shard finder and reader, unchanged.

Units are mC4's shards (:mod:`mc4_sampling.shards`: a local folder, a mirror or the pinned Hub copy,
remote ones only once reachable); a unit's ``index``/``count`` are the shard's own numbering
(``c4-es.tfrecord-00003-of-02048.json.gz`` is unit ``train-00003-of-02048``), so the draw stays
BERTIN's positional one, keyed by (seed, language, split, shard, position), and every published subset
stays bit-exact. Records come from :func:`mc4_sampling.reader.iter_records`.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Iterator

from ..http_stream import is_remote
from ..languages import check_language, shard_counts
from ..reader import iter_records
from ..shards import no_files_error, require_source, shard_refs, shard_refs_for
from .base import CorpusSource, Record, SourceUnit, register_source


@register_source
class Mc4Source(CorpusSource):
    """mC4. Options: ``shards`` (only these shard indices), ``max_record_bytes``, ``backoff``."""

    name = "mc4"
    title = "mC4"
    layout = ("`c4-<lang>[-validation].tfrecord-NNNNN-of-NNNNN.json.gz` (a folder laid out like allenai/c4's "
              "`multilingual/`, a mirror URL, or the pinned Hub copy); JSON lines `text`, `timestamp`, `url`; "
              "splits train, validation; units: shards; the draw is BERTIN's, by shard and position")
    draw_by_position = True
    text_column = "text"
    id_column = None
    metadata_columns = ("timestamp", "url")

    def __init__(self, options):
        super().__init__(options)
        location = options.location
        local = location is not None and not is_remote(str(location))
        # what mc4_sampling.shards reads: the options of the builder
        self.shard_options = SimpleNamespace(
            languages=[options.language], data_dir=str(location) if local else None,
            base_url=None if local else location, shards=options.options.get("shards"))

    def check(self) -> None:
        check_language(self.language)
        if self.shard_options.data_dir is None:
            require_source(self.shard_options)
            return
        if not any(self._refs(split) for split in self.splits()):
            raise no_files_error(self.shard_options, "train")

    def splits(self) -> tuple[str, ...]:
        return ("train", "validation")

    def _refs(self, split: str):
        o = self.shard_options
        return shard_refs(o.languages, split, data_dir=o.data_dir, base_url=o.base_url, shards=o.shards)

    def units(self, split: str) -> list[SourceUnit]:
        count = shard_counts()[self.language].for_split(split)
        return [SourceUnit(split, ref.index, count, ref.language, ref.path)
                for ref in shard_refs_for(self.shard_options, split)]

    def records(self, unit: SourceUnit, *, on_bad_record: str = "raise", retries: int = 5,
                timeout: float | None = None) -> Iterator[tuple[int, Record | None]]:
        extra = self.options.options
        for position, row in iter_records(unit.path, on_bad_record, retries, timeout=timeout,
                                          max_record_bytes=extra.get("max_record_bytes"),
                                          backoff=extra.get("backoff")):
            if row is None:
                yield position, None
            else:
                yield position, Record(row["text"], None,
                                       {"timestamp": row.get("timestamp"), "url": row.get("url")})
