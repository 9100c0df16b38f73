"""The one reader of each file format a corpus source holds: Parquet and JSON lines (plain, ``.gz``, ``.zst``),
local or over HTTP(S), as ``(position, row)`` with the bad-record policy.

* JSON lines go through :func:`mc4_sampling.reader.iter_records` (the mC4 reader: gzip or zstd decoded as
  read, damage located, remote files resumed at the exact byte and replayed when they change).
* Parquet goes through ``pyarrow.parquet.ParquetFile`` on a local path or an
  :class:`~mc4_sampling.http_stream.HTTPRangeFile` (ranges, retries, size and validator checks), a row group
  at a time, only the columns asked for.

:func:`file_format` says which reader a file name needs (one error line for any other file);
:func:`first_columns` the columns of a file (its schema, or its first record's keys) for the sources'
``check``; :func:`make_record` turns a row into a :class:`~mc4_sampling.sources.base.Record`.
"""

from __future__ import annotations

import logging
import os
from typing import Iterator, Sequence

from ..errors import BadFileError, BadRecordError, DataNotFoundError
from ..http_stream import HTTPRangeFile, is_remote
from ..reader import iter_records
from .base import Record

logger = logging.getLogger(__name__)

#: file name endings -> format
FORMATS = {".parquet": "parquet", ".jsonl": "jsonl", ".jsonl.gz": "jsonl", ".jsonl.zst": "jsonl",
           ".json.gz": "jsonl", ".json": "jsonl", ".jsonl.zstd": "jsonl", ".json.zst": "jsonl"}


def file_format(path: str) -> str | None:
    """``parquet`` or ``jsonl`` from the name of ``path`` (a query string ignored); None for any other file."""
    name = path.split("?", 1)[0].lower()
    for ending in sorted(FORMATS, key=len, reverse=True):
        if name.endswith(ending):
            return FORMATS[ending]
    return None


def is_data_file(path: str) -> bool:
    return file_format(path) is not None


def require_format(path: str) -> str:
    """:func:`file_format`, or one error line naming the file and the endings read."""
    kind = file_format(path)
    if kind is None:
        raise BadFileError(f"{path}: not a Parquet or JSON-lines file (files ending in {', '.join(FORMATS)} are read)")
    return kind


def parquet_file(path: str, retries: int = 5, timeout: float | None = None):
    """``pyarrow.parquet.ParquetFile`` of a local path or URL; a file that is not Parquet is one error line."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if is_remote(path):
        source = HTTPRangeFile(path, retries=retries, timeout=timeout)
    else:
        if not os.path.isfile(path):
            raise DataNotFoundError(f"data file not found: {path!r}")
        source = path
    try:
        return pq.ParquetFile(source)
    except (pa.ArrowInvalid, OSError) as e:
        if _is_network_error(e):
            raise
        raise BadFileError(f"{path}: not a readable Parquet file ({_first_line(e)})") from None


def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]


def iter_rows(path: str, *, text_field: str, columns: Sequence[str] | None = None,
              row_groups: Sequence[int] | None = None, on_bad_record: str = "raise", retries: int = 5,
              timeout: float | None = None) -> Iterator[tuple[int, dict | None]]:
    """``(position, row)`` of a file (``row_groups``: only these of a Parquet file); ``row`` None for a bad
    record skipped by ``on_bad_record``. A row without a string ``text_field`` is a bad record."""
    if require_format(path) == "jsonl":
        yield from iter_records(path, on_bad_record, retries, timeout=timeout, text_field=text_field)
        return
    pf = parquet_file(path, retries, timeout)
    try:
        names = set(pf.schema_arrow.names)
        wanted = [c for c in dict.fromkeys([text_field, *(columns or ())]) if c in names]
        groups = range(pf.num_row_groups) if row_groups is None else row_groups
        position = 0
        for group in groups:
            try:
                rows = pf.read_row_group(group, columns=wanted).to_pylist()
            except Exception as e:  # noqa: BLE001 - pyarrow raises many kinds for damaged data
                if isinstance(e, (KeyboardInterrupt, BadRecordError)) or _is_network_error(e):
                    raise
                reason = f"row group {group} is unreadable ({_first_line(e)})"
                if on_bad_record == "raise":
                    raise BadRecordError(path, None, reason) from None
                logger.warning("%s: %s; skipped", path, reason)
                yield position, None
                position += 1
                continue
            for row in rows:
                if not isinstance(row.get(text_field), str):
                    reason = f"row has no string column {text_field!r}"
                    if on_bad_record == "raise":
                        raise BadRecordError(path, position + 1, reason)
                    logger.warning("%s:%d: %s; skipped", path, position + 1, reason)
                    yield position, None
                else:
                    yield position, row
                position += 1
    finally:
        _close(pf)


def _is_network_error(e: BaseException) -> bool:
    from ..errors import Mc4SamplingError

    return isinstance(e, (ConnectionError, Mc4SamplingError))


def _close(pf) -> None:
    reader = getattr(pf, "reader", None)
    close = getattr(reader, "close", None)
    if close is not None:
        try:
            close()
        except Exception:  # noqa: BLE001 - closing is best effort
            pass


def row_group_sizes(path: str, retries: int = 5, timeout: float | None = None) -> list[int]:
    """The number of rows of each row group of a Parquet file."""
    pf = parquet_file(path, retries, timeout)
    try:
        return [pf.metadata.row_group(i).num_rows for i in range(pf.num_row_groups)]
    finally:
        _close(pf)


def first_columns(path: str, *, text_field: str, retries: int = 5, timeout: float | None = None) -> list[str]:
    """The columns of a file: a Parquet file's schema, a JSON-lines file's first record's keys (``[]``
    when it has none; a file without any readable record raises its first bad record's error)."""
    if require_format(path) == "parquet":
        pf = parquet_file(path, retries, timeout)
        try:
            return list(pf.schema_arrow.names)
        finally:
            _close(pf)
    for policy in ("skip", "raise"):  # no good record at all: read again to raise the first bad one's reason
        rows = iter_records(path, policy, retries, timeout=timeout, text_field=None)
        try:
            for _, row in rows:
                if row is not None:
                    return list(row)
        finally:
            rows.close()
    return []


def missing_columns_error(path: str, wanted: dict[str, str], present: Sequence[str]) -> BadFileError | None:
    """One error naming the columns of ``wanted`` (option -> column) that ``present`` lacks, the file and
    the columns it has; None when none is missing."""
    missing = [f"{option}={column!r}" for option, column in wanted.items() if column and column not in present]
    if not missing:
        return None
    return BadFileError(f"{path}: no column for {', '.join(missing)}; its columns: "
                             f"{', '.join(present) or 'none'}")


def make_record(row: dict, text_column: str, id_column: str | None, metadata_columns: Sequence[str],
                renamed: dict[str, str] | None = None) -> Record:
    """The :class:`Record` of a row: its text, its id as a string (None without an id column) and its
    metadata columns (``renamed``: metadata name -> the row's column, e.g. ``url`` -> ``u``)."""
    renamed = renamed or {}
    value = row.get(id_column) if id_column else None
    return Record(row[text_column], None if value is None else str(value),
                  {name: row.get(renamed.get(name, name)) for name in metadata_columns})
