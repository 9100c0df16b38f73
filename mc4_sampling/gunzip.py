"""Gzip decoding of a shard as it is read: one or more members, each checked by zlib, damage located.

:class:`Gunzip` decompresses a byte stream (a local file or a
:class:`~mc4_sampling.http_stream.ResumableHTTPStream`); corrupt, truncated or empty gzip data
raises :class:`GzipDataError` with the compressed byte where the damage starts.
"""

from __future__ import annotations

import io
import zlib

from .http_stream import READ_CHUNK


class GzipDataError(Exception):
    """The gzip data is corrupt, truncated or empty from compressed byte ``offset``."""

    def __init__(self, reason: str, offset: int):
        super().__init__(reason)
        self.reason = reason
        self.offset = offset


class Gunzip(io.RawIOBase):
    """The decompressed bytes of a gzip stream (one or more members) read from ``raw``.

    zlib checks each member's header, CRC-32 and size. When ``raw`` ends inside a member and
    nothing proves it is the end of the file (``raw.end_verified`` false: a remote transfer
    without a known size), the transfer is resumed (``raw.resume``) instead.
    """

    def __init__(self, raw):
        self.raw = raw
        self.offset = 0  # compressed bytes consumed
        self._input = b""  # compressed bytes read, not yet consumed
        self._d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._started = False  # the current member has begun
        self._members = 0
        self._done = False
        self._careful = False  # feeding a byte at a time, after a zlib error

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        size = len(buffer)
        while size and not self._done:
            if self._d.eof:  # between members: zero padding is allowed, then another member
                stripped = self._input.lstrip(b"\0")
                self.offset += len(self._input) - len(stripped)
                self._input = stripped
                if not self._input and not self._fill():
                    self._done = True
                    break
                if self._input.lstrip(b"\0"):
                    self._d, self._started = zlib.decompressobj(16 + zlib.MAX_WBITS), False
                continue
            if not self._input:
                try:
                    out = self._d.decompress(b"", size) if self._started else b""  # output zlib still holds
                except zlib.error as e:
                    raise GzipDataError(f"corrupt or truncated gzip data: {e}", self.offset) from None
                if out:
                    buffer[: len(out)] = out
                    return len(out)
                if not self._fill():
                    self._done = True
                    break
                continue
            if self.offset == 0 and not self._started and len(self._input) >= 2 and self._input[:2] != b"\x1f\x8b":
                raise GzipDataError(
                    "corrupt or truncated gzip data: the file does not start with the gzip magic bytes (not gzip)", 0
                )
            # After a zlib error, the input is fed again a byte at a time from the state before it:
            # what precedes the damage comes out, however the data was split, and the damage is located.
            feed = self._input[:1] if self._careful else self._input
            snapshot = None if self._careful else self._d.copy()
            try:
                out = self._d.decompress(feed, size)
            except zlib.error as e:
                if self._careful:
                    raise GzipDataError(f"corrupt or truncated gzip data: {e}", self.offset) from None
                self._d, self._careful = snapshot, True
                continue
            self._started = True
            rest = self._d.unused_data if self._d.eof else self._d.unconsumed_tail
            self.offset += len(feed) - len(rest)
            self._input = rest + self._input[len(feed):]
            if self._d.eof:
                self._members += 1
            if out:
                buffer[: len(out)] = out
                return len(out)
        return 0

    def _fill(self) -> bool:
        """Read more compressed bytes; False at the (proven) end of the file."""
        while True:
            chunk = self.raw.read(READ_CHUNK)
            if chunk:
                self._input += chunk
                self._careful = False
                return True
            verified = getattr(self.raw, "end_verified", True)
            in_member = self._started and not self._d.eof
            if in_member:
                if verified:
                    raise GzipDataError(
                        "corrupt or truncated gzip data: the file ends inside a gzip member (truncated)", self.offset
                    )
                self.raw.resume("the connection closed before the end of the gzip data")
                continue
            if self._members == 0 and not verified and not self.raw.confirm_end():
                continue
            if self.offset == 0 and self._members == 0:
                raise GzipDataError("empty file, not gzip data", 0)
            return False

