"""A read-only byte stream over an HTTP(S) URL that reconnects where a transfer broke off.

:class:`ResumableHTTPStream` (what :func:`mc4_sampling.reader.open_shard` opens for a URL) never
takes an early end of a transfer for the end of the file:

* every request (the first one too) is retried with exponential backoff on a network error, a
  timeout, HTTP 5xx or 429; 401/403/404/410 raise :class:`DataNotFoundError` at once; the last
  failure raises :class:`RemoteReadError` (a ``ConnectionError``) naming the URL, the byte, the
  cause and what to try;
* a transfer that breaks off is resumed at the exact byte it stopped at (``Range``, with
  ``If-Range`` on the first response's ``ETag``/``Last-Modified``; by skipping bytes, checked
  against a CRC of those already read, when the server ignores ranges). The size comes from
  ``Content-Length`` or a ``Content-Range`` total; without one, a gzip shard is complete only at
  the end of a gzip member (its reader, :class:`mc4_sampling.gunzip.Gunzip`, says so through
  :meth:`~ResumableHTTPStream.resume` and :meth:`~ResumableHTTPStream.confirm_end`), and an
  uncompressed file when the server has no byte past its end;
* every ``Content-Range`` is checked (start = the byte asked for, total = the known size);
* a file that changed on the server between two requests raises :class:`RemoteFileChangedError`.

:class:`HTTPRangeFile` is the seekable read-only file over the same transport that random access needs
(``pyarrow.parquet.ParquetFile`` over HTTP): each read is a :class:`ResumableHTTPStream` from the byte
asked for, checked against the size and validator of the first answer.
"""

from __future__ import annotations

import http.client
import io
import logging
import re
import socket
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib

from .errors import DataNotFoundError, RemoteFileChangedError, RemoteReadError

logger = logging.getLogger(__name__)

#: Defaults of the remote reader, read when a call leaves them unset.
#: Seconds without an answer or a byte before a request counts as failed.
HTTP_TIMEOUT = 60.0
#: Seconds to wait before the first retry of a file; doubled at every further retry, at most
#: :data:`HTTP_MAX_BACKOFF`.
HTTP_BACKOFF = 0.5
HTTP_MAX_BACKOFF = 30.0

#: Bytes read at a time (from a response, a compressed stream, a line reader).
READ_CHUNK = 1 << 16
_HINT = "check the network or base_url, or raise http_retries"
_NOT_FOUND = (401, 403, 404, 410)
_NO_SUCH_HOST = {e for e in (getattr(socket, "EAI_NONAME", None), getattr(socket, "EAI_NODATA", None)) if e}


def is_remote(path: str) -> bool:
    return path.startswith(("http://", "https://"))


class _Retry(Exception):
    """One request or transfer failed in a way worth retrying; the message says how."""

    def __init__(self, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.retry_after = retry_after


class ResumableHTTPStream(io.RawIOBase):
    """A read-only byte stream over an HTTP(S) URL that reconnects where a transfer broke off.

    Args:
        url: the file.
        retries: failed requests and broken transfers allowed for this file, all together.
        timeout: seconds without an answer or a byte before a request counts as failed
            (default :data:`HTTP_TIMEOUT`).
        backoff: seconds before the first retry, doubled at every further one (default
            :data:`HTTP_BACKOFF`, at most :data:`HTTP_MAX_BACKOFF`).
        verify_end: at an end of transfer whose completeness nothing proves (no size known, no
            chunked encoding), ask the server for the bytes after it before reporting the end of
            the file. A reader that can tell a complete file by itself (gzip) passes ``False``
            and calls :meth:`resume` or :meth:`confirm_end` (see :attr:`end_verified`).
        start: the first byte to read (a ranged first request; the bytes before it are never checked).
        length, validator: the file's size and ``(header, value)`` validator when an earlier answer
            gave them: a different size or validator is a changed file.

    The first request is made on construction. Raises :class:`DataNotFoundError` (HTTP
    401/403/404/410), :class:`RemoteReadError` (retries exhausted, or an error retrying cannot
    fix) and :class:`RemoteFileChangedError` (the file changed between two requests).
    """

    def __init__(self, url: str, retries: int = 5, timeout: float | None = None, backoff: float | None = None,
                 verify_end: bool = True, *, start: int = 0, length: int | None = None,
                 validator: tuple[str, str] | None = None):
        self.url = url
        self.retries = retries
        self.timeout = HTTP_TIMEOUT if timeout is None else timeout
        self.backoff = HTTP_BACKOFF if backoff is None else backoff
        self.verify_end = verify_end
        self.position = start
        self.length: int | None = length
        self.validator: tuple[str, str] | None = validator  # ("ETag" | "Last-Modified", value) of the first response
        self.reconnections = 0  # retries used
        # CRC-32 of bytes [0, position): checks the bytes a server that ignores ranges sends again (None: not read)
        self._crc: int | None = 0 if start == 0 else None
        self._response = None
        self._at_end = False  # the end of the file is reached and proven
        self._unverified_eof = False  # a transfer ended, and nothing proves it was the end of the file
        self._asked_at: int | None = None  # position where confirm_end asked for more
        parts = urllib.parse.urlsplit(url)
        self._hostname = parts.hostname or url
        self._host = f"{self._hostname}:{parts.port}" if parts.port else self._hostname  # no credentials
        self._request()

    def readable(self) -> bool:
        return True

    @property
    def end_verified(self) -> bool:
        """Whether the last end of data returned is the proven end of the file."""
        return self._at_end

    # -- requests -------------------------------------------------------------------------

    def _request(self, force_range: bool = False) -> None:
        """Open a response from :attr:`position`, retrying as allowed."""
        while True:
            try:
                self._open(force_range)
                return
            except _Retry as e:
                self._failed(str(e), e.retry_after)

    def _failed(self, reason: str, retry_after: float | None = None) -> None:
        """Count one retry (raise :class:`RemoteReadError` when none is left) and wait before it."""
        self._close_response()
        self.reconnections += 1
        if self.reconnections > self.retries:
            raise RemoteReadError(
                self.url,
                f"{self.url}: cannot read from byte {self.position} after {self.retries} retries: {reason}; {_HINT}",
            )
        delay = min(self.backoff * 2 ** (self.reconnections - 1), HTTP_MAX_BACKOFF)
        if retry_after is not None:
            delay = max(delay, min(retry_after, HTTP_MAX_BACKOFF))
        logger.warning("%s: %s; reading again from byte %d in %.2g s (retry %d/%d)",
                       self.url, reason, self.position, delay, self.reconnections, self.retries)
        time.sleep(delay)

    def _open(self, force_range: bool) -> None:
        headers = {"User-Agent": "mc4-sampling", "Accept-Encoding": "identity"}
        ranged = self.position > 0 or force_range
        if ranged:
            headers["Range"] = f"bytes={self.position}-"
            if self.validator is not None:
                headers["If-Range"] = self.validator[1]
        request = urllib.request.Request(self.url, headers=headers)
        try:
            response = urllib.request.urlopen(request, timeout=self.timeout)
        except urllib.error.HTTPError as e:
            try:
                e.close()
            except Exception:  # noqa: BLE001 - an error without a body
                pass
            if e.code in _NOT_FOUND:
                raise DataNotFoundError(
                    f"{self.url}: HTTP {e.code} {e.reason}. Check the location (base_url, data_files), the "
                    "language and the shard indices, or use a local copy (data_dir=FOLDER)"
                ) from None
            if e.code == 416 and ranged:
                self._nothing_past(e.headers.get("Content-Range"))
                return
            if e.code == 429 or e.code >= 500:
                raise _Retry(f"HTTP {e.code} {e.reason}", _retry_after(e.headers)) from None
            raise RemoteReadError(
                self.url, f"{self.url}: HTTP {e.code} {e.reason} at byte {self.position}; check base_url"
            ) from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
            reason, retry = self._network_reason(e)
            if not retry:
                raise RemoteReadError(
                    self.url,
                    f"{self.url}: {reason}. Check the network or base_url, or use a local copy (data_dir=FOLDER)"
                ) from None
            raise _Retry(reason) from None
        try:
            self._check(response, ranged)
        except BaseException:
            response.close()
            raise
        self._response = response

    def _check(self, response, ranged: bool) -> None:
        """Accept ``response`` as the data from :attr:`position` on, or raise why not."""
        status = response.status
        validator = _validator(response.headers)
        size = _int(response.headers.get("Content-Length"))
        if not ranged:
            if status != 200:
                raise _Retry(f"HTTP {status} {response.reason} to a request for the whole file")
            self.validator = validator
            self.length = size
            return
        if status == 206:
            header = response.headers.get("Content-Range")
            start, total = _content_range(header)
            if start != self.position:
                raise _Retry(f"the server answered Content-Range {header!r} to a request for bytes={self.position}-")
            self._same_file(validator)
            if self.validator is None:
                self.validator = validator
            if total is not None:
                if self.length is None:
                    self.length = total
                elif total != self.length:
                    raise RemoteFileChangedError(
                        self.url,
                        f"{self.url}: the server gives a size of {total} bytes (Content-Range {header!r}) to a "
                        f"file of {self.length} bytes: the file changed on the server, or the server is misconfigured",
                    )
            return
        if status == 200:  # the file changed (If-Range), or the server ignores ranges
            self._same_file(validator)
            if size is not None and self.length is not None and size != self.length:
                raise RemoteFileChangedError(
                    self.url, f"{self.url}: the file changed on the server while it was read "
                              f"(size {self.length} -> {size} bytes)",
                )
            self._skip_prefix(response)
            return
        raise _Retry(f"HTTP {status} {response.reason} to a request for bytes={self.position}-")

    def _same_file(self, validator) -> None:
        if validator is not None and self.validator is not None and validator[0] == self.validator[0] \
                and validator[1] != self.validator[1]:
            raise RemoteFileChangedError(
                self.url, f"{self.url}: the file changed on the server while it was read "
                          f"({validator[0]} {self.validator[1]} -> {validator[1]})",
            )

    def _skip_prefix(self, response) -> None:
        """Read the first :attr:`position` bytes of a whole-file answer, checking they are the same."""
        remaining, crc = self.position, 0
        while remaining:
            try:
                chunk = response.read(min(remaining, READ_CHUNK))
            except (OSError, http.client.HTTPException) as e:
                raise _Retry(f"{self._read_reason(e)} while skipping to byte {self.position} "
                             "(the server ignores Range)") from None
            if not chunk:
                raise _Retry(f"connection closed at byte {self.position - remaining} while skipping to byte "
                             f"{self.position} (the server ignores Range)")
            crc = zlib.crc32(chunk, crc)
            remaining -= len(chunk)
        if self._crc is not None and crc != self._crc:
            raise RemoteFileChangedError(
                self.url, f"{self.url}: the file changed on the server while it was read "
                          f"(its first {self.position} bytes differ from those read before)",
            )

    def _nothing_past(self, header: str | None) -> None:
        """A 416 answer: the server has no byte from :attr:`position` on."""
        _, total = _content_range(header, unsatisfied=True)
        if total is not None and total != self.position:
            if self.length is not None or total < self.position:
                raise RemoteFileChangedError(
                    self.url, f"{self.url}: the server has {total} bytes (Content-Range {header!r}), "
                              f"{self.position} were read: the file changed on the server",
                )
            raise _Retry(f"HTTP 416 with Content-Range {header!r} to a request for bytes={self.position}-")
        if self.length is not None and self.length != self.position:
            raise _Retry(f"HTTP 416 to a request for bytes={self.position}- of a {self.length}-byte file")
        self.length = self.position
        self._at_end = True

    def _network_reason(self, e: BaseException) -> tuple[str, bool]:
        """What went wrong in words, and whether a retry may help."""
        reason = e.reason if isinstance(e, urllib.error.URLError) else e
        if isinstance(reason, socket.gaierror):
            return f"cannot reach {self._hostname} ({reason.strerror or reason})", reason.errno not in _NO_SUCH_HOST
        if isinstance(reason, ssl.SSLCertVerificationError):
            return f"cannot reach {self._host} (TLS: {reason.verify_message or reason})", False
        if isinstance(reason, ConnectionRefusedError):
            return f"cannot reach {self._host} (connection refused)", True
        if isinstance(reason, (TimeoutError, socket.timeout)):
            return f"no answer from {self._host} within {self.timeout:g} s", True
        if isinstance(reason, OSError) and not isinstance(e, urllib.error.URLError):
            return f"connection to {self._host} failed ({type(reason).__name__}: {reason})", True
        if isinstance(reason, http.client.HTTPException):
            return f"bad answer from {self._host} ({type(reason).__name__}: {reason})", True
        return f"cannot reach {self._host} ({reason})", True

    def _read_reason(self, e: BaseException) -> str:
        if isinstance(e, (TimeoutError, socket.timeout)):
            return f"no data from {self._host} for {self.timeout:g} s"
        if isinstance(e, http.client.IncompleteRead):
            return "connection closed before the end of the response"
        return f"transfer broke off ({type(e).__name__}: {e})"

    # -- reading ---------------------------------------------------------------------------

    def readinto(self, buffer) -> int:
        if not len(buffer):
            return 0
        while True:
            if self._at_end or self._unverified_eof:
                return 0
            if self._response is None:
                self._request()
                continue
            try:
                n = self._response.readinto(buffer)
            except (OSError, http.client.HTTPException) as e:
                self._failed(f"{self._read_reason(e)} at byte {self.position}")
                continue
            if n:
                if self._crc is not None:
                    self._crc = zlib.crc32(memoryview(buffer)[:n], self._crc)
                self.position += n
                return n
            chunked = bool(getattr(self._response, "chunked", False))
            self._close_response()
            if self.length is not None:
                if self.position == self.length:
                    self._at_end = True
                    return 0
                if self.position < self.length:
                    self._failed(f"connection closed at byte {self.position} of {self.length}")
                    continue
                raise RemoteReadError(self.url, f"{self.url}: the server sent {self.position} bytes of a "
                                                f"{self.length}-byte file; {_HINT}")
            if chunked or self._asked_at == self.position:
                # a chunked body that ended with its last chunk, or confirm_end asked for more and got none
                self.length = self.position
                self._at_end = True
                return 0
            self._unverified_eof = True
            if not self.verify_end:
                return 0
            self.confirm_end()

    def resume(self, reason: str) -> None:
        """The data ended before the end of the file (its reader knows): ask for the rest, as a retry."""
        if self._at_end:
            return
        self._failed(f"{reason} at byte {self.position}")
        self._unverified_eof = False
        self._asked_at = None  # the reader knows data is missing: an answer that has none is no proof of the end
        self._request(force_range=True)

    def confirm_end(self) -> bool:
        """At an end of data nothing proves: ask the server for the bytes after it (not a retry).

        True when it has none (the end is proven); False when it has (reading goes on).
        """
        if self._at_end:
            return True
        self._close_response()
        self._unverified_eof = False
        self._asked_at = self.position
        self._request(force_range=True)
        return self._at_end

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


class HTTPRangeFile(io.RawIOBase):
    """A seekable read-only file over an HTTP(S) URL, for readers that need random access (Parquet).

    The first request (``Range: bytes=0-``) gives the size (``Content-Range`` total or
    ``Content-Length``; a server that gives none is refused) and the validator; every read is a
    :class:`ResumableHTTPStream` from the byte asked for (kept open while reads go on where the last
    one stopped), with its retries, ``Content-Range`` checks and changed-file detection against them.
    A read that ends before the bytes it asked for (within the size) is an error, never a short file.
    """

    def __init__(self, url: str, retries: int = 5, timeout: float | None = None, backoff: float | None = None):
        self.url = url
        self._options = dict(retries=retries, timeout=timeout, backoff=backoff)
        first = ResumableHTTPStream(url, **self._options)
        try:
            self.size, self.validator = first.length, first.validator
        finally:
            first.close()
        if self.size is None:
            raise RemoteReadError(url, f"{url}: the server gives no size (Content-Length) for the file, and reading it "
                                       "in parts (Parquet) needs one; download it and read the local copy")
        self._position = 0
        self._stream: ResumableHTTPStream | None = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self.size}[whence]
        if base + offset < 0:
            raise ValueError(f"negative seek position {base + offset}")
        self._position = base + offset
        return self._position

    def readinto(self, buffer) -> int:
        want = min(len(buffer), self.size - self._position)
        if want <= 0:
            return 0
        if self._stream is None or self._stream.position != self._position:
            self._close_stream()
            self._stream = ResumableHTTPStream(self.url, **self._options, start=self._position, length=self.size,
                                               validator=self.validator)
        view = memoryview(buffer)[:want]
        done = 0
        while done < want:
            n = self._stream.readinto(view[done:])
            if not n:
                raise RemoteReadError(self.url, f"{self.url}: the file ended at byte {self._position + done} of the "
                                                f"{self.size} it had; {_HINT}")
            done += n
        self._position += done
        return done

    def _close_stream(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None

    def close(self) -> None:
        self._close_stream()
        super().close()


def _int(value) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _validator(headers) -> tuple[str, str] | None:
    """The strong ``ETag`` of a response (``If-Range`` needs a strong one), else its ``Last-Modified``."""
    etag = headers.get("ETag")
    if etag and not etag.startswith("W/"):
        return ("ETag", etag)
    modified = headers.get("Last-Modified")
    return ("Last-Modified", modified) if modified else None


_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(?:(\d+)-(\d+)|(\*))/(\d+|\*)\s*$")


def _content_range(header: str | None, unsatisfied: bool = False) -> tuple[int | None, int | None]:
    """``(start, total)`` of a ``Content-Range`` (``total`` None for ``*``); for a 416, ``(None, total)``."""
    m = _CONTENT_RANGE.match(header or "")
    if m is None:
        if unsatisfied:
            return None, None
        raise _Retry(f"the server answered a range request with Content-Range {header!r}")
    total = None if m[4] == "*" else int(m[4])
    return (int(m[1]) if m[1] is not None else None), total


def _retry_after(headers) -> float | None:
    value = _int(headers.get("Retry-After")) if headers is not None else None
    return float(value) if value is not None else None
