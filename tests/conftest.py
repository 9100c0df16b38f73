"""Shared fixtures: offline environment, a tiny KenLM model, loopback HTTP servers."""

from __future__ import annotations

import hashlib
import http.server
import os
import socketserver
import threading
from pathlib import Path

import pytest

# No network in tests: datasets must not try to count downloads or reach the Hub.
os.environ.setdefault("HF_UPDATE_DOWNLOAD_COUNTS", "0")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import mc4_sampling  # noqa: E402  (registers the builder)

SAMPLE_DIR = Path(mc4_sampling.SAMPLE_DATA_DIR) / "multilingual"

TINY_ARPA = """\
\\data\\
ngram 1=8
ngram 2=4

\\1-grams:
-1.2\t<unk>\t0
0\t<s>\t-0.4
-0.9\t</s>\t0
-0.8\tel\t-0.3
-0.9\tgato\t-0.2
-1.0\tcome\t-0.2
-1.1\tpescado\t-0.1
-1.3\tperro\t-0.1

\\2-grams:
-0.3\t<s> el
-0.2\tel gato
-0.25\tgato come
-0.3\tcome pescado

\\end\\
"""


@pytest.fixture(scope="session")
def tiny_arpa(tmp_path_factory) -> str:
    """A hand-written bigram ARPA model: small enough to check scores by hand."""
    path = tmp_path_factory.mktemp("lm") / "tiny.arpa"
    path.write_text(TINY_ARPA, encoding="utf-8")
    return str(path)


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def _serve(handler_cls):
    server = _Server(("127.0.0.1", 0), handler_cls)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


class FileServer:
    """Serves a folder over loopback HTTP with Range support; can cut transfers on purpose.

    ``cut_after[name] = n`` makes the first ``len(list)`` responses for ``name`` send ``n`` bytes
    (with the full Content-Length) and then close the connection. ``ignore_range`` serves the
    whole file even when a range is asked for.
    """

    def __init__(self, root: Path):
        self.root = Path(root)
        self.cuts: dict[str, list[int]] = {}
        self.ignore_range = False
        self.requests: list[tuple[str, str | None]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                name = self.path.rsplit("/", 1)[-1]
                path = outer.root / name
                outer.requests.append((name, self.headers.get("Range")))
                if not path.is_file():
                    self.send_error(404)
                    return
                data = path.read_bytes()
                start = 0
                rng = self.headers.get("Range")
                if rng and not outer.ignore_range:
                    start = int(rng.split("=")[1].split("-")[0])
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                cuts = outer.cuts.get(name)
                if cuts:
                    self.wfile.write(body[: cuts.pop(0)])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self.server, self.url = _serve(Handler)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def file_server():
    servers = []

    def start(root):
        server = FileServer(root)
        servers.append(server)
        return server

    yield start
    for s in servers:
        s.close()


class FakeHub:
    """The part of the Hub's HTTP API ``hf_hub_download`` uses: ``/{repo}/resolve/{rev}/{path}``."""

    COMMIT = "0123456789abcdef0123456789abcdef01234567"

    def __init__(self, files: dict[str, Path]):
        self.files = files  # "owner/name/path/in/repo" -> local file
        self.requests: list[str] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _lookup(self):
                outer.requests.append(f"{self.command} {self.path}")
                parts = self.path.lstrip("/").split("/")
                if len(parts) < 5 or parts[2] != "resolve":
                    return None, "RepoNotFound"
                repo = "/".join(parts[:2])
                if not any(k.startswith(repo + "/") for k in outer.files):
                    return None, "RepoNotFound"
                key = repo + "/" + "/".join(parts[4:])
                return outer.files.get(key), "EntryNotFound"

            def _headers(self, data: bytes):
                self.send_response(200)
                self.send_header("X-Repo-Commit", outer.COMMIT)
                self.send_header("ETag", '"' + hashlib.sha256(data).hexdigest() + '"')
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()

            def _missing(self, code):
                self.send_response(404)
                self.send_header("X-Error-Code", code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_HEAD(self):
                path, code = self._lookup()
                if path is None:
                    return self._missing(code)
                self._headers(Path(path).read_bytes())

            def do_GET(self):
                path, code = self._lookup()
                if path is None:
                    return self._missing(code)
                data = Path(path).read_bytes()
                self._headers(data)
                self.wfile.write(data)

        self.server, self.url = _serve(Handler)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_hub(monkeypatch, tmp_path):
    hubs = []

    def start(files):
        hub = FakeHub(files)
        hubs.append(hub)
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        import huggingface_hub.constants

        from mc4_sampling import perplexity

        monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub-cache"))
        monkeypatch.setattr(perplexity, "_CACHE", {})
        return hub

    yield start
    for h in hubs:
        h.close()
