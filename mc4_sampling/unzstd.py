"""Zstandard decoding of a file as it is read (HPLT 3.0's ``.jsonl.zst``): one or more frames, damage located.

:class:`Unzstd` decompresses a byte stream (a local file or a
:class:`~mc4_sampling.http_stream.ResumableHTTPStream`) with the ``zstandard`` package; corrupt,
truncated or empty data raises :class:`ZstdDataError` (a :class:`~mc4_sampling.gunzip.GzipDataError`,
so that the reader treats both formats alike) with the compressed byte where the damage starts.
"""

from __future__ import annotations

import io

from .gunzip import GzipDataError
from .http_stream import READ_CHUNK

_MAGIC = b"\x28\xb5\x2f\xfd"


def _is_frame_start(head: bytes) -> bool:
    """A zstd frame's magic number, or a skippable frame's (``0x184D2A50``-``0x184D2A5F``, little-endian)."""
    return head == _MAGIC or (len(head) == 4 and head[1:] == b"\x2a\x4d\x18" and 0x50 <= head[0] <= 0x5F)


class ZstdDataError(GzipDataError):
    """The zstd data is corrupt, truncated or empty from compressed byte ``offset``."""


class Unzstd(io.RawIOBase):
    """The decompressed bytes of a zstd stream (one or more frames) read from ``raw``.

    The stream is complete only when it ends between frames; ``raw`` ending inside a frame is a
    truncated file (a remote stream verifies its own end: ``Content-Length`` or no byte past it).
    """

    def __init__(self, raw):
        import zstandard

        self._zstd = zstandard
        self.raw = raw
        self.offset = 0  # compressed bytes consumed by complete frames and the current one
        self._d = None  # the current frame's decompressor (None: between frames)
        self._out = b""  # decompressed bytes not yet returned
        self._input = b""  # compressed bytes read, not yet given to a decompressor
        self._frames = 0
        self._frame_start = 0
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        size = len(buffer)
        while not self._out and not self._done:
            if not self._input:
                chunk = self.raw.read(READ_CHUNK)
                if not chunk:
                    self._finish()
                    break
                self._input = chunk
            if self._d is None:
                if len(self._input) < 4:
                    more = self.raw.read(READ_CHUNK)
                    if more:
                        self._input += more
                        continue
                if not _is_frame_start(self._input[:4]):
                    what = "not zstd data (no frame magic bytes)" if self._frames == 0 else "data after the last frame"
                    raise ZstdDataError(f"corrupt zstd data: {what}", self.offset)
                self._d = self._zstd.ZstdDecompressor().decompressobj()
                self._frame_start = self.offset
            feed, self._input = self._input, b""
            try:
                self._out = self._d.decompress(feed)
            except self._zstd.ZstdError as e:
                raise ZstdDataError(f"corrupt zstd data: {e}", self._frame_start) from None
            if self._d.eof:
                rest = self._d.unused_data
                self.offset += len(feed) - len(rest)
                self._input = rest
                self._d = None
                self._frames += 1
            else:
                self.offset += len(feed)
        n = min(size, len(self._out))
        buffer[:n] = self._out[:n]
        self._out = self._out[n:]
        return n

    def _finish(self) -> None:
        if self._d is not None:
            raise ZstdDataError("corrupt or truncated zstd data: the file ends inside a zstd frame (truncated)",
                                self._frame_start)
        if self._frames == 0:
            raise ZstdDataError("empty file, not zstd data", 0)
        self._done = True
