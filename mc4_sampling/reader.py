"""The records of one JSON-lines file (mC4's ``.json.gz`` shards, ``.jsonl``, ``.jsonl.gz``, ``.jsonl.zst``),
local or HTTP(S), with the bad-record policy.

:func:`iter_records` opens the shard (:func:`open_shard`: a local file, or a
:class:`~mc4_sampling.http_stream.ResumableHTTPStream` for a URL), decompresses it as it reads
(:class:`~mc4_sampling.gunzip.Gunzip`; :class:`~mc4_sampling.unzstd.Unzstd` for ``.zst``), holds no
line longer than ``max_record_bytes``, and parses each line into a record. A line that is not a
record, and corrupt, truncated or empty gzip or zstd data (reported with where the damage starts), are
bad records: raised or skipped
(:data:`BAD_RECORD_POLICIES`). A remote file that changed on the server
(:class:`RemoteFileChangedError`) is read again from the start, the records already yielded
skipped after checking that they are the same (a running hash).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
from typing import Iterator

from .errors import BadRecordError, ConfigError, DataNotFoundError, RemoteFileChangedError
from .gunzip import Gunzip, GzipDataError
from .http_stream import READ_CHUNK, ResumableHTTPStream, is_remote
from .unzstd import Unzstd

logger = logging.getLogger(__name__)

BAD_RECORD_POLICIES = ("raise", "skip")

#: Longest line read as one record (bytes, newline excluded); a longer line is a bad record.
MAX_RECORD_BYTES = 16 << 20

#: Times :func:`iter_records` reads a file again from the start because it changed on the server.
_MAX_RESTARTS = 2


def open_shard(path: str, retries: int = 5, *, timeout: float | None = None, backoff: float | None = None,
               verify_end: bool = True):
    """A binary stream of the (still compressed) shard at ``path`` (local file or URL).

    ``timeout``, ``backoff`` and ``verify_end``: see :class:`ResumableHTTPStream`.
    """
    if is_remote(path):
        return ResumableHTTPStream(path, retries=retries, timeout=timeout, backoff=backoff, verify_end=verify_end)
    if not os.path.isfile(path):
        raise DataNotFoundError(f"data file not found: {path!r}")
    return open(path, "rb")


def iter_records(
    path: str,
    on_bad_record: str = "raise",
    retries: int = 5,
    *,
    max_record_bytes: int | None = None,
    timeout: float | None = None,
    backoff: float | None = None,
    text_field: str | None = "text",
) -> Iterator[tuple[int, dict | None]]:
    """Yield ``(position, record)`` for every line of a shard, ``position`` counting from 0.

    Files are gzip-compressed unless their name ends in ``.json`` or ``.jsonl`` (plain) or ``.zst``
    (zstd).

    Args:
        path: a local file or an ``http(s)://`` URL.
        on_bad_record: ``"raise"``: a bad record raises :class:`BadRecordError` naming the file
            and line; ``"skip"``: it is logged and yielded as ``(position, None)`` so the caller
            can count it.
        retries: for a URL, failed requests and broken transfers allowed (see
            :class:`ResumableHTTPStream`, with ``timeout`` and ``backoff``).
        max_record_bytes: longest line read as a record, in bytes without its newline (default
            :data:`MAX_RECORD_BYTES`, 16 MiB); a longer line is a bad record, skipped without
            being held in memory. It bounds the memory one record takes.
        text_field: the field every record must hold as a string (``text``; None: any JSON object).

    Bad records: a line that is not a JSON object with a string ``text_field``, a line longer than
    ``max_record_bytes``, and gzip data that is corrupt, truncated or empty: the rest of the file
    cannot be read, so it is one last bad record (``(position, None)`` once, with a warning that
    says from which compressed byte and after which line the file is lost).

    Network errors are never bad records: they raise :class:`RemoteReadError` (a
    ``ConnectionError``) or :class:`DataNotFoundError`. A remote file that changes on the server
    while it is read is read again from the start, its records up to the last one yielded
    skipped (checked identical by a running hash; :class:`RemoteFileChangedError` if not), so
    the consumer sees no record twice and none lost.
    """
    if on_bad_record not in BAD_RECORD_POLICIES:
        raise ConfigError(
            f"on_bad_record={on_bad_record!r} is not valid; choose one of {', '.join(BAD_RECORD_POLICIES)}"
        )
    limit = MAX_RECORD_BYTES if max_record_bytes is None else int(max_record_bytes)
    if limit < 1:
        raise ConfigError(f"max_record_bytes={max_record_bytes!r} is out of range: it must be >= 1")
    progress = _Progress(is_remote(path))
    restarts = 0
    while True:
        try:
            yield from _read_once(path, progress, on_bad_record, limit,
                                  dict(retries=retries, timeout=timeout, backoff=backoff), text_field)
            return
        except RemoteFileChangedError as e:
            restarts += 1
            if not getattr(e, "restartable", True) or restarts > _MAX_RESTARTS:
                raise
            logger.warning("%s; reading it again from the start, checking and skipping the %d records already read",
                           e, progress.done)


class _Progress:
    """Lines of a file consumed by :func:`iter_records` so far, and a hash of their bytes (remote files)."""

    def __init__(self, remote: bool):
        self.done = 0
        self.hash = hashlib.blake2b(digest_size=16) if remote else None


def _read_once(path: str, progress: _Progress, on_bad_record: str, limit: int, remote_options: dict,
               text_field: str | None = "text"):
    """One pass over the file: yield the records after the ``progress.done`` first (checked, not yielded)."""
    zstd = path.endswith(".zst")
    compressed = not zstd and not path.endswith((".json", ".jsonl"))  # mC4 files are .json.gz
    raw = open_shard(path, **remote_options, verify_end=not compressed)
    replay = hashlib.blake2b(digest_size=16) if progress.done and progress.hash is not None else None
    position = 0
    try:
        if compressed or zstd:
            lines = io.BufferedReader(Gunzip(raw) if compressed else Unzstd(raw), READ_CHUNK)
        else:
            lines = raw if isinstance(raw, io.BufferedIOBase) else io.BufferedReader(raw, READ_CHUNK)
        while True:
            if replay is not None and position == progress.done:
                _check_replay(path, replay, progress)
                replay = None
            hasher = replay if replay is not None else progress.hash
            line, length = _read_line(lines, limit, hasher)
            if length == 0:
                break
            if replay is not None:  # already yielded before the file changed
                position += 1
                continue
            if line is None:
                record = (f"line of {length} bytes is longer than max_record_bytes={limit}" if on_bad_record == "skip"
                          else f"line longer than max_record_bytes={limit} bytes (raise max_record_bytes to read it)")
            else:
                record = _parse(line, text_field)
            progress.done = position + 1
            if isinstance(record, str):
                if on_bad_record == "raise":
                    raise BadRecordError(path, position + 1, record)
                logger.warning("%s:%d: %s; skipped", path, position + 1, record)
                yield position, None
            else:
                yield position, record
            position += 1
        if replay is not None:
            _check_replay(path, replay, progress, short=position)
    except GzipDataError as e:
        if replay is not None:  # the new version of a changed file is damaged before the records read so far
            raise _changed_content(path, progress, f"its new version is unreadable ({e.reason})") from None
        where = f"at compressed byte {e.offset}, after line {progress.done}"
        if on_bad_record == "raise":
            raise BadRecordError(path, None, f"{e.reason} {where}") from None
        logger.warning("%s: %s; the rest of the file skipped from compressed byte %d (after line %d)",
                       path, e.reason, e.offset, progress.done)
        position = progress.done
        progress.done += 1
        yield position, None
    finally:
        raw.close()


def _read_line(lines, limit: int, hasher) -> tuple[bytes | None, int]:
    """The next line and its length; ``(None, length without the newline)`` for a line longer than
    ``limit`` (read through in pieces, never whole); ``(b"", 0)`` at the end of the file."""
    line = lines.readline(limit + 1)
    if hasher is not None:
        hasher.update(line)
    if len(line) <= limit or line.endswith(b"\n"):
        return line, len(line)
    length = len(line)
    while True:
        piece = lines.readline(READ_CHUNK)
        if hasher is not None:
            hasher.update(piece)
        length += len(piece)
        if not piece or piece.endswith(b"\n"):
            return None, length - (1 if piece else 0)  # without its newline


def _check_replay(path: str, replay, progress: _Progress, short: int | None = None) -> None:
    if short is not None:
        raise _changed_content(path, progress, f"its new version has {short} lines")
    if replay.digest() != progress.hash.digest():
        raise _changed_content(path, progress, "its first lines differ from those already read")


def _changed_content(path: str, progress: _Progress, what: str) -> RemoteFileChangedError:
    e = RemoteFileChangedError(
        path,
        f"{path}: the file changed on the server while it was read, and {what}: the {progress.done} records "
        "read so far came from its old version; read it again from the start",
    )
    e.restartable = False
    return e


def _parse(line: bytes, text_field: str | None = "text") -> dict | str:
    """The record on ``line``, or a string saying why it is not a valid record."""
    try:
        record = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        return f"not a JSON object ({e.msg if hasattr(e, 'msg') else e})"
    if not isinstance(record, dict):
        return f"not a JSON object (a {type(record).__name__})"
    if text_field is not None and not isinstance(record.get(text_field), str):
        return f"record has no string field {text_field!r}"
    return record
