"""Loopback HTTP servers of the tests: one threaded server base, and a static file server on it.

A server subclasses :class:`LoopbackServer` and names its request handler (a :class:`Handler`
subclass) in ``handler``; the handler reaches the server object as ``self.owner``. The server
listens on a free port of 127.0.0.1 (``url``) from construction until :meth:`close`.
"""

from __future__ import annotations

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
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
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
        path = server.root / name
        server.requests.append((name, self.headers.get("Range")))
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        start = 0
        rng = self.headers.get("Range")
        if rng and not server.ignore_range:
            start = int(rng.split("=")[1].split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        cuts = server.cuts.get(name)
        if cuts:
            self.wfile.write(body[: cuts.pop(0)])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)


class FileServer(LoopbackServer):
    """Serves a folder over loopback HTTP with Range support; can cut transfers on purpose.

    ``cuts[name] = [n, ...]`` makes the first ``len(list)`` responses for ``name`` send ``n`` bytes
    (with the full Content-Length) and then close the connection. ``ignore_range`` serves the
    whole file even when a range is asked for.
    """

    handler = _FileHandler

    def __init__(self, root: Path):
        self.root = Path(root)
        self.cuts: dict[str, list[int]] = {}
        self.ignore_range = False
        self.requests: list[tuple[str, str | None]] = []
        super().__init__()
