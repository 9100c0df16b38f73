"""Shared fixtures: offline environment, a tiny KenLM model, loopback HTTP servers."""

from __future__ import annotations

import base64
import hashlib
import http.server
import gzip
import json
import os
import random
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


WORDS = "el gato come pescado perro casa sol luna agua".split()


def write_shard(path, n, seed=0, lines=None):
    rng = random.Random(seed)
    with gzip.open(path, "wt", encoding="utf-8") as f:
        for j in range(n):
            text = "\n".join(" ".join(rng.choices(WORDS, k=rng.randint(3, 30))) for _ in range(rng.randint(1, 4)))
            f.write(json.dumps({"text": f"{j} {text}", "timestamp": "2020-05-0%dT10:00:00Z" % (1 + j % 9), "url": f"https://ejemplo.es/{seed}/{j}"}) + "\n")
        for line in lines or []:
            f.write(line + "\n")


@pytest.fixture(scope="module")
def mini_mc4(tmp_path_factory):
    """Three train shards (of 2048) and one validation shard (of 16), 400 documents each."""
    root = tmp_path_factory.mktemp("mc4") / "multilingual"
    root.mkdir()
    for i in (0, 1, 2):
        write_shard(root / f"c4-es.tfrecord-{i:05d}-of-02048.json.gz", 400, seed=i)
    write_shard(root / "c4-es-validation.tfrecord-00000-of-00016.json.gz", 400, seed=99)
    return root


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
    """The parts of the Hub's HTTP API that ``huggingface_hub`` downloads and uploads use.

    Downloads: ``HEAD/GET [/datasets]/{owner}/{name}/resolve/{rev}/{path}`` of ``files``
    (``"owner/name/path" -> local file``) or of what was uploaded. Uploads: ``/api/repos/create``,
    ``/api/{type}s/{repo}/preupload/{rev}`` (every file "regular", sent inline) and
    ``/api/{type}s/{repo}/commit/{rev}`` (NDJSON), stored in ``uploaded``; ``/api/validate-yaml`` parses the card's front matter.
    """

    COMMIT = "0123456789abcdef0123456789abcdef01234567"

    def __init__(self, files: dict[str, Path] | None = None):
        self.files = {k: Path(v).read_bytes() for k, v in (files or {}).items()}
        self.uploaded: dict[str, bytes] = {}  # "type:owner/name/path" -> content
        self.created: list[dict] = []
        self.validated: list[str] = []
        self.commits: list[dict] = []
        self.requests: list[str] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _lookup(self):
                outer.requests.append(f"{self.command} {self.path}")
                parts = self.path.split("?")[0].lstrip("/").split("/")
                kind = "model"
                if parts and parts[0] in ("datasets", "spaces"):
                    kind, parts = parts[0][:-1], parts[1:]
                if len(parts) < 5 or parts[2] != "resolve":
                    return None, "RepoNotFound"
                repo = "/".join(parts[:2])
                key = repo + "/" + "/".join(parts[4:])
                if kind == "model" and key in outer.files:
                    return outer.files[key], None
                if f"{kind}:{key}" in outer.uploaded:
                    return outer.uploaded[f"{kind}:{key}"], None
                known = [k for k in outer.files if kind == "model"] + [k.split(":", 1)[1] for k in outer.uploaded if k.startswith(kind + ":")]
                return None, "EntryNotFound" if any(k.startswith(repo + "/") for k in known) else "RepoNotFound"

            def _send(self, data: bytes, status=200, headers=()):
                self.send_response(status)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            def _file(self):
                data, code = self._lookup()
                if data is None:
                    return self._send(b"", 404, [("X-Error-Code", code)])
                self._send(data, 200, [("X-Repo-Commit", outer.COMMIT), ("ETag", '"' + hashlib.sha256(data).hexdigest() + '"')])

            do_HEAD = do_GET = _file

            def do_POST(self):
                outer.requests.append(f"POST {self.path}")
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                parts = self.path.split("?")[0].lstrip("/").split("/")
                if parts[:3] == ["api", "repos", "create"]:
                    payload = json.loads(body)
                    outer.created.append(payload)
                    name = f"{payload.get('organization')}/{payload['name']}"
                    return self._send(json.dumps({"url": f"{outer.url}/{name}", "name": name}).encode())
                if parts[:2] == ["api", "validate-yaml"]:  # the README's front matter must be YAML
                    import yaml

                    content = json.loads(body)["content"]
                    try:
                        meta = yaml.safe_load(content.split("---")[1]) if content.startswith("---") else None
                        errors = [] if meta is None or isinstance(meta, dict) else [{"message": "not a mapping"}]
                    except yaml.YAMLError as e:
                        errors = [{"message": str(e)}]
                    outer.validated.append(content)
                    answer = {"errors": errors, "warnings": [] if content.startswith("---") else [{"message": "empty metadata"}]}
                    return self._send(json.dumps(answer).encode(), 400 if errors else 200)
                if len(parts) >= 6 and parts[0] == "api" and parts[4] in ("preupload", "commit"):
                    kind, repo = parts[1][:-1], "/".join(parts[2:4])
                    if parts[4] == "preupload":
                        files = json.loads(body)["files"]
                        answer = {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files]}
                        return self._send(json.dumps(answer).encode())
                    lines = [json.loads(x) for x in body.splitlines() if x.strip()]
                    outer.commits.append({"repo": f"{kind}:{repo}", "lines": lines})
                    for item in lines:
                        if item["key"] == "file":
                            value = item["value"]
                            outer.uploaded[f"{kind}:{repo}/{value['path']}"] = base64.b64decode(value["content"])
                    answer = {"commitUrl": f"{outer.url}/{repo}/commit/{outer.COMMIT}", "commitOid": outer.COMMIT, "pullRequestUrl": None}
                    return self._send(json.dumps(answer).encode())
                self._send(b"", 404, [("X-Error-Code", "RepoNotFound")])

        self.server, self.url = _serve(Handler)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_hub(monkeypatch, tmp_path):
    hubs = []

    def start(files=None):
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
