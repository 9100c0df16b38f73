"""Read the documents of one mC4 shard (``.json.gz``, one JSON object a line), local or HTTP(S).

Remote files are read through :class:`ResumableHTTPStream`: when the server drops the
connection mid-file, the transfer is resumed at the exact byte it stopped at (HTTP ``Range``;
by skipping bytes when the server ignores ranges), so the decompressed stream neither repeats
nor loses a document.
"""

from __future__ import annotations

import gzip
import http.client
import io
import json
import logging
import os
import time
import urllib.error
import urllib.request
import zlib
from typing import Iterator

from .errors import BadRecordError, DataNotFoundError

logger = logging.getLogger(__name__)

BAD_RECORD_POLICIES = ("raise", "skip")
_TRANSIENT = (ConnectionError, TimeoutError, http.client.HTTPException, urllib.error.URLError, OSError)


def is_remote(path: str) -> bool:
    return path.startswith(("http://", "https://"))


class ResumableHTTPStream(io.RawIOBase):
    """A read-only byte stream over an HTTP(S) URL that reconnects where a transfer broke off."""

    def __init__(self, url: str, retries: int = 5, timeout: float = 60.0, backoff: float = 0.5):
        self.url = url
        self.retries = retries
        self.timeout = timeout
        self.backoff = backoff
        self.position = 0
        self.reconnections = 0
        self.length: int | None = None
        self._response = None
        self._connect()

    def readable(self) -> bool:
        return True

    def _connect(self) -> None:
        headers = {"User-Agent": "mc4-sampling", "Accept-Encoding": "identity"}
        if self.position:
            headers["Range"] = f"bytes={self.position}-"
        request = urllib.request.Request(self.url, headers=headers)
        try:
            response = urllib.request.urlopen(request, timeout=self.timeout)
        except urllib.error.HTTPError as e:
            if e.code in (401, 403, 404, 410):
                raise DataNotFoundError(
                    f"{self.url}: HTTP {e.code} {e.reason}. Check base_url, the language and the "
                    "shard indices, or use data_dir= for a local copy"
                ) from None
            raise
        if self.position and response.status != 206:  # the server ignored the range: skip ahead
            remaining = self.position
            while remaining:
                chunk = response.read(min(remaining, 1 << 20))
                if not chunk:
                    raise ConnectionError(f"{self.url}: stream ended while skipping to byte {self.position}")
                remaining -= len(chunk)
        if self.length is None:
            size = response.headers.get("Content-Length")
            self.length = int(size) if size is not None else None
        self._response = response

    def readinto(self, buffer) -> int:
        while True:
            try:
                if self._response is None:
                    self._connect()
                n = self._response.readinto(buffer)
                if n == 0 and len(buffer) and self.length is not None and self.position < self.length:
                    raise ConnectionError(f"connection closed at byte {self.position} of {self.length}")
                self.position += n
                return n
            except DataNotFoundError:
                raise
            except _TRANSIENT as e:
                self.reconnections += 1
                attempt = self.reconnections
                self._close_response()
                if attempt > self.retries:
                    raise ConnectionError(
                        f"{self.url}: transfer failed at byte {self.position} after {self.retries} retries: {e}"
                    ) from e
                logger.warning("%s: %s; resuming at byte %d (retry %d/%d)", self.url, e, self.position, attempt, self.retries)
                time.sleep(self.backoff * 2 ** (attempt - 1))

    def _close_response(self) -> None:
        if self._response is not None:
            try:
                self._response.close()
            except Exception:  # noqa: BLE001 - closing a broken connection may fail in many ways
                pass
            self._response = None

    def close(self) -> None:
        self._close_response()
        super().close()


def open_shard(path: str, retries: int = 5):
    """A binary stream of the (still compressed) shard at ``path`` (local file or URL)."""
    if is_remote(path):
        return ResumableHTTPStream(path, retries=retries)
    if not os.path.isfile(path):
        raise DataNotFoundError(f"data file not found: {path!r}")
    return open(path, "rb")


def iter_records(path: str, on_bad_record: str = "raise", retries: int = 5) -> Iterator[tuple[int, dict | None]]:
    """Yield ``(position, record)`` for every line of a shard, ``position`` counting from 0.

    Files are gzip-compressed unless their name ends in ``.json`` or ``.jsonl``.

    A bad record (a line that is not a JSON object with a string ``text``) raises
    :class:`BadRecordError` naming the file and line, or with ``on_bad_record="skip"`` is
    yielded as ``(position, None)`` so the caller can count it. A corrupt or truncated gzip
    stream ends the file the same way (the rest of the file cannot be read).
    """
    raw = open_shard(path, retries)
    position = -1
    try:
        buffered = io.BufferedReader(raw, 1 << 16)
        compressed = not path.endswith((".json", ".jsonl"))  # mC4 files are .json.gz
        with gzip.GzipFile(fileobj=buffered, mode="rb") if compressed else buffered as lines:
            for position, line in enumerate(lines):
                record = _parse(line)
                if isinstance(record, str):
                    if on_bad_record == "raise":
                        raise BadRecordError(path, position + 1, record)
                    logger.warning("%s:%d: %s; skipped", path, position + 1, record)
                    yield position, None
                else:
                    yield position, record
    except (gzip.BadGzipFile, EOFError, zlib.error) as e:
        reason = f"corrupt or truncated gzip data after line {position + 1}: {e}"
        if on_bad_record == "raise":
            raise BadRecordError(path, None, reason) from None
        logger.warning("%s: %s; rest of the file skipped", path, reason)
        yield position + 1, None
    finally:
        raw.close()


def _parse(line: bytes) -> dict | str:
    """The record on ``line``, or a string saying why it is not a valid mC4 record."""
    try:
        record = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        return f"not a JSON object ({e.msg if hasattr(e, 'msg') else e})"
    if not isinstance(record, dict):
        return f"not a JSON object (a {type(record).__name__})"
    if not isinstance(record.get("text"), str):
        return "record has no string field 'text'"
    return record
