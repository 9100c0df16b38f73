"""Loopback HTTP servers of the tests: one threaded server base, and a static file server on it.

A server subclasses :class:`LoopbackServer` and names its request handler (a :class:`Handler`
subclass) in ``handler``; the handler reaches the server object as ``self.owner``. The server
listens on a free port of 127.0.0.1 (``url``) from construction until :meth:`close`.
"""

from __future__ import annotations

import email.utils
import hashlib
import http.server
import json
import threading
from pathlib import Path


class Handler(http.server.BaseHTTPRequestHandler):
    """Request handler base: silent, with helpers to read a body and send bytes or JSON."""

    server: http.server.ThreadingHTTPServer

    @property
    def owner(self):
        """The :class:`LoopbackServer` this request reached."""
        return self.server.owner

    def log_message(self, *args):
        pass

    def read_body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def send(self, data: bytes = b"", status: int = 200, headers=()):
        """Answer ``data`` with ``headers`` and its Content-Length (no body for HEAD)."""
        self.send_response(status)
        for key, value in headers:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def send_json(self, obj, status: int = 200, headers=()):
        self.send(json.dumps(obj).encode(), status, [("Content-Type", "application/json"), *headers])


class LoopbackServer:
    """A threaded HTTP server on 127.0.0.1 (a free port), serving ``handler`` in a daemon thread."""

    handler: type[Handler] = Handler

    def __init__(self):
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self.handler)
        self.server.owner = self
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self._thread.join()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class _FileHandler(Handler):
    def do_GET(self):
        server: FileServer = self.owner
        name = self.path.rsplit("/", 1)[-1]
        with server.lock:
            server.requests.append((name, self.headers.get("Range")))
            server.request_headers.append((name, dict(self.headers)))
            count = server.counts[name] = server.counts.get(name, 0) + 1
            hang = server.hangs.get(name, 0) > 0
            if hang:
                server.hangs[name] -= 1
            status = server.errors[name].pop(0) if server.errors.get(name) else None
        if hang:  # accept the request, answer nothing
            server.closing.wait(30)
            self.close_connection = True
            return
        if status is not None:
            self.send(b"injected fault", status)
            return
        data, version = server.content(name, count)
        if data is None:
            self.send_error(404)
            return
        validators = server.validators(data, version)
        start, status = 0, 200
        rng, if_range = self.headers.get("Range"), self.headers.get("If-Range")
        if rng and not server.ignore_range and (if_range is None or if_range in validators.values()):
            start, status = int(rng.split("=")[1].split("-")[0]), 206
        if status == 206 and start >= len(data):
            self.send(b"", 416, [("Content-Range", f"bytes */{len(data)}")])
            return
        shift, total = 0, len(data)
        if status == 206 and server.bad_ranges.get(name):
            shift, delta = server.bad_ranges[name].pop(0)
            start, total = max(0, start - shift), total + delta
        body = data[start:]
        mode = server.no_length.get(name)
        if mode == "chunked":
            self.protocol_version = "HTTP/1.1"
        self.send_response(status)
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{total}")
        for key, value in validators.items():
            self.send_header(key, value)
        if mode == "chunked":
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Connection", "close")
        elif mode is None:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.close_connection = True
        cuts, stalls = server.cuts.get(name), server.stalls.get(name)
        cut = cuts.pop(0) if cuts else None
        stall = stalls.pop(0) if stalls else None
        if stall is not None:  # send part of the body, then nothing more until the server closes
            self.wfile.write(body[:stall])
            self.wfile.flush()
            server.closing.wait(30)
            return
        sent = body if cut is None else body[:cut]
        try:
            if mode == "chunked":
                for i in range(0, len(sent), 4096):
                    piece = sent[i: i + 4096]
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                if cut is None:
                    self.wfile.write(b"0\r\n\r\n")
                elif len(sent) < len(body):  # cut inside a chunk: announce more than is sent
                    self.wfile.write(b"%x\r\n%s" % (len(body) - len(sent), body[len(sent): len(sent) + 1]))
            else:
                self.wfile.write(sent)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass


class FileServer(LoopbackServer):
    """Serves a folder over loopback HTTP with Range, ETag and If-Range; can inject faults on purpose.

    Every response carries an ``ETag`` (a hash of the bytes served) and a ``Last-Modified``
    (``validator`` chooses: "both", "etag", "last-modified" or None). The faults, per file name;
    those given as lists are used up one per response:

    * ``cuts[name] = [n, ...]``: the next responses send ``n`` body bytes (headers as usual, with
      the full Content-Length unless ``no_length``) and close the connection;
    * ``no_length[name] = "close" | "chunked"``: no Content-Length: the body ends when the
      connection closes, or is sent in chunks (a cut ends it without the last chunk);
    * ``stalls[name] = [n, ...]``: the next responses send ``n`` body bytes, then nothing (the
      connection stays open);
    * ``errors[name] = [status, ...]``: the next requests are answered ``status`` (e.g. 500; None:
      answered as usual);
    * ``hangs[name] = n``: the next ``n`` requests are accepted and get no answer at all;
    * ``bad_ranges[name] = [(shift, delta), ...]``: the next range answers start ``shift`` bytes
      before the byte asked for (saying so in Content-Range) and give a total of size + ``delta``;
    * ``replace[name] = (n, data)``: from its ``n + 1``-th request on, the file is ``data`` (another
      ETag and Last-Modified);
    * ``ignore_range``: every answer is the whole file (200), whatever Range and If-Range say.

    ``requests`` lists ``(name, Range header)`` and ``request_headers`` ``(name, headers)`` of
    every request, in order.
    """

    handler = _FileHandler

    def __init__(self, root: Path):
        self.root = Path(root)
        self.cuts: dict[str, list[int]] = {}
        self.no_length: dict[str, str] = {}
        self.errors: dict[str, list[int | None]] = {}
        self.stalls: dict[str, list[int]] = {}
        self.hangs: dict[str, int] = {}
        self.bad_ranges: dict[str, list[tuple[int, int]]] = {}
        self.replace: dict[str, tuple[int, bytes]] = {}
        self.ignore_range = False
        self.validator: str | None = "both"
        self.requests: list[tuple[str, str | None]] = []
        self.request_headers: list[tuple[str, dict]] = []
        self.counts: dict[str, int] = {}
        self.lock = threading.Lock()
        self.closing = threading.Event()
        super().__init__()

    def content(self, name: str, count: int) -> tuple[bytes | None, int]:
        """The bytes served for ``name`` at its ``count``-th request, and their version (0, or 1 once replaced)."""
        replace = self.replace.get(name)
        if replace is not None and count > replace[0]:
            return replace[1], 1
        path = self.root / name
        return (path.read_bytes(), 0) if path.is_file() else (None, 0)

    def validators(self, data: bytes, version: int) -> dict[str, str]:
        headers = {}
        if self.validator in ("both", "etag"):
            headers["ETag"] = '"%s"' % hashlib.sha1(data).hexdigest()[:16]
        if self.validator in ("both", "last-modified"):
            headers["Last-Modified"] = email.utils.formatdate(1_600_000_000 + 3600 * version, usegmt=True)
        return headers

    def close(self):
        self.closing.set()  # let hanging requests end, or closing would wait for them
        super().close()
