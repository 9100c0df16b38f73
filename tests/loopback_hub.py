"""A loopback Hub: the parts of the Hub's HTTP API that ``huggingface_hub`` downloads and uploads use.

Repositories are keyed by ``(repo_type, repo_id)`` ("model", "dataset" or "space"). Each one has
named revisions (branches; "main" by default) pointing at commits, and each commit is a snapshot
``{path: bytes}``, so a file resolves at a branch or at a commit id. Served:

* ``HEAD/GET [/datasets|/spaces]/{owner}/{name}/resolve/{revision}/{path}``: a file of a repository
  at a revision (branch or commit id), with ``X-Repo-Commit`` and ``ETag`` (a byte ``Range``, as
  readers of Parquet footers ask for, is answered 206 with ``Content-Range``); a 404 carries the
  ``X-Error-Code`` (RepoNotFound, RevisionNotFound, EntryNotFound) that ``huggingface_hub`` maps
  to its errors;
* ``POST /api/repos/create``: creates the repository with an empty "main" (idempotent);
* ``POST /api/{type}s/{owner}/{name}/preupload/{revision}``: every file is "regular" (inline);
* ``POST /api/{type}s/{owner}/{name}/commit/{revision}``: NDJSON of ``file`` (inline base64),
  ``deletedFile`` and ``deletedFolder`` operations, applied on top of the revision's head;
* ``POST /api/{type}s/{owner}/{name}/branch/{branch}``: creates a branch at ``startingPoint``
  (a revision; default: the head of "main"); 409 ``Conflict`` when it exists;
* ``GET /api/{type}s/{owner}/{name}/refs``: the branches and their commits (``list_repo_refs``);
* ``POST /api/validate-yaml``: parses a card's YAML front matter.
* ``GET /api/{type}s/{owner}/{name}[/revision/{revision}]``: repository info (``sha``, ``siblings``);
  ``GET .../tree/{revision}[/{path}][?recursive=true]`` and ``POST .../paths-info/{revision}``: file
  listings, as ``datasets.load_dataset("owner/name")`` resolves a repository's data files;

Every request is recorded in ``requests`` ("METHOD /path"), every creation payload in
``created``, every validated card in ``validated``, every commit in ``commits`` and every
created branch in ``branches``. To serve
another endpoint (a branch, an LFS batch...), add a route to ``ROUTES`` and a method to the handler.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from pathlib import Path
from urllib.parse import unquote, urlsplit

from loopback import Handler, LoopbackServer

REPO_TYPES = ("model", "dataset", "space")
_URL_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}
_REPO = r"(?P<repo_id>[^/?]+/[^/?]+)"
_API_REPO = r"/api/(?P<repo_type>model|dataset|space)s/" + _REPO

#: (method, path pattern, handler method): the first match serves a request.
ROUTES = [
    ("GET", r"/(?:(?P<prefix>datasets|spaces)/)?" + _REPO + r"/resolve/(?P<revision>[^/]+)/(?P<path>.+)", "resolve"),
    ("POST", r"/api/repos/create", "create_repo"),
    ("POST", r"/api/validate-yaml", "validate_yaml"),
    ("POST", _API_REPO + r"/preupload/(?P<revision>[^/]+)", "preupload"),
    ("POST", _API_REPO + r"/commit/(?P<revision>[^/]+)", "commit"),
    ("POST", _API_REPO + r"/branch/(?P<branch>[^/]+)", "create_branch"),
    ("GET", _API_REPO + r"/refs", "list_refs"),
    ("GET", _API_REPO + r"(?:/revision/(?P<revision>[^/]+))?", "repo_info"),
    ("GET", _API_REPO + r"/tree/(?P<revision>[^/]+)(?:/(?P<path>.*))?", "list_tree"),
    ("POST", _API_REPO + r"/paths-info/(?P<revision>[^/]+)", "paths_info"),
]
_ROUTES = [(method, re.compile(pattern + "$"), name) for method, pattern, name in ROUTES]


class HubError(Exception):
    """A request the Hub refuses: answered 404 (or ``status``) with ``X-Error-Code: code``."""

    def __init__(self, code: str, message: str, status: int = 404):
        super().__init__(message)
        self.code, self.status = code, status


class _HubHandler(Handler):
    def _route(self):
        hub: LoopbackHub = self.owner
        hub.requests.append(f"{self.command} {self.path}")
        path = urlsplit(self.path).path
        method = "GET" if self.command == "HEAD" else self.command
        body = self.read_body() if self.command == "POST" else b""
        for route_method, pattern, name in _ROUTES:
            match = pattern.match(path) if route_method == method else None
            if match:
                args = {k: unquote(v) for k, v in match.groupdict().items() if v is not None}
                try:
                    return getattr(self, name)(hub, body, **args)
                except HubError as e:
                    return self.send_json({"error": str(e)}, e.status, [("X-Error-Code", e.code)])
        self.send_json({"error": f"no route for {self.command} {path}"}, 404, [("X-Error-Code", "RepoNotFound")])

    do_HEAD = do_GET = do_POST = _route

    def resolve(self, hub, body, repo_id, revision, path, prefix="models"):
        oid, tree = hub._tree(prefix[:-1], repo_id, revision)
        if path not in tree:
            raise HubError("EntryNotFound", f"{path} not found in {repo_id}@{revision}")
        data = tree[path]
        headers = [("X-Repo-Commit", oid), ("ETag", f'"{hashlib.sha256(data).hexdigest()}"'),
                   ("Accept-Ranges", "bytes")]
        ranged = re.fullmatch(r"bytes=(\d*)-(\d*)", self.headers.get("Range") or "")
        if ranged and data and (ranged[1] or ranged[2]):  # a byte range (readers of Parquet footers ask for one)
            if ranged[1]:
                start, end = int(ranged[1]), min(int(ranged[2] or len(data) - 1), len(data) - 1)
            else:  # the last N bytes
                start, end = max(0, len(data) - int(ranged[2])), len(data) - 1
            if start > end:
                return self.send(b"", 416, [("Content-Range", f"bytes */{len(data)}")])
            headers.append(("Content-Range", f"bytes {start}-{end}/{len(data)}"))
            return self.send(data[start:end + 1], 206, headers)
        self.send(data, 200, headers)

    def repo_info(self, hub, body, repo_type, repo_id, revision="main"):
        oid, tree = hub._tree(repo_type, repo_id, revision)
        self.send_json({"id": repo_id, "sha": oid, "private": False, "disabled": False, "gated": False,
                        "siblings": [{"rfilename": p} for p in sorted(tree)]})

    def list_tree(self, hub, body, repo_type, repo_id, revision, path=""):
        oid, tree = hub._tree(repo_type, repo_id, revision)
        self.send_json(_tree_entries(tree, path.strip("/"), "recursive=true" in urlsplit(self.path).query.lower()))

    def paths_info(self, hub, body, repo_type, repo_id, revision):
        from urllib.parse import parse_qs

        oid, tree = hub._tree(repo_type, repo_id, revision)
        try:
            paths = json.loads(body)["paths"]
        except ValueError:
            paths = parse_qs(body.decode()).get("paths", [])
        entries = _tree_entries(tree, "", True)
        self.send_json([e for e in entries if e["path"] in paths])

    def create_repo(self, hub, body):
        payload = json.loads(body)
        repo_type = payload.get("type") or "model"
        repo_id = f"{payload.get('organization')}/{payload['name']}"
        with hub._lock:
            hub.created.append(payload)
            hub._ensure_repo(repo_type, repo_id)
        self.send_json({"url": f"{hub.url}/{_URL_PREFIX[repo_type]}{repo_id}", "name": repo_id})

    def validate_yaml(self, hub, body):
        import yaml

        content = json.loads(body)["content"]
        try:
            meta = yaml.safe_load(content.split("---")[1]) if content.startswith("---") else None
            errors = [] if meta is None or isinstance(meta, dict) else [{"message": "not a mapping"}]
        except yaml.YAMLError as e:
            errors = [{"message": str(e)}]
        hub.validated.append(content)
        warnings = [] if content.startswith("---") else [{"message": "empty metadata"}]
        self.send_json({"errors": errors, "warnings": warnings}, 400 if errors else 200)

    def preupload(self, hub, body, repo_type, repo_id, revision):
        hub._tree(repo_type, repo_id, revision)
        files = json.loads(body)["files"]
        self.send_json({"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files]})

    def list_refs(self, hub, body, repo_type, repo_id):
        hub._tree(repo_type, repo_id, "main")  # RepoNotFound
        with hub._lock:
            refs = dict(hub._refs[(repo_type, repo_id)])
        branches = [{"name": name, "ref": f"refs/heads/{name}", "targetCommit": oid}
                    for name, oid in sorted(refs.items())]
        self.send_json({"branches": branches, "tags": [], "converts": []})

    def create_branch(self, hub, body, repo_type, repo_id, branch):
        payload = json.loads(body) if body.strip() else {}
        oid, _ = hub._tree(repo_type, repo_id, payload.get("startingPoint") or "main")
        with hub._lock:
            refs = hub._refs[(repo_type, repo_id)]
            if branch in refs:
                raise HubError("Conflict", f"branch {branch} already exists in {repo_id}", 409)
            refs[branch] = oid
            hub.branches.append({"repo_type": repo_type, "repo_id": repo_id, "branch": branch, "oid": oid})
        self.send_json({"name": branch, "oid": oid})

    def commit(self, hub, body, repo_type, repo_id, revision):
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        oid = hub._commit(repo_type, repo_id, revision, lines)
        url = f"{hub.url}/{_URL_PREFIX[repo_type]}{repo_id}/commit/{oid}"
        self.send_json({"commitUrl": url, "commitOid": oid, "pullRequestUrl": None})


def _tree_entries(tree: dict[str, bytes], folder: str, recursive: bool) -> list[dict]:
    """The files and folders under ``folder`` (all levels with ``recursive``) as the tree API lists them."""
    prefix = folder + "/" if folder else ""
    entries: dict[str, dict] = {}
    for path, data in sorted(tree.items()):
        if not path.startswith(prefix):
            continue
        parts = path[len(prefix):].split("/")
        for depth in range(1, len(parts)):
            sub = prefix + "/".join(parts[:depth])
            if recursive or depth == 1:
                oid = hashlib.sha1(sub.encode()).hexdigest()
                entries.setdefault(sub, {"type": "directory", "path": sub, "oid": oid})
        if recursive or len(parts) == 1:
            entries[path] = {"type": "file", "path": path, "size": len(data), "oid": hashlib.sha1(data).hexdigest()}
    return list(entries.values())


class LoopbackHub(LoopbackServer):
    """A Hub on loopback HTTP; point ``HF_ENDPOINT`` (or an ``endpoint=``) at ``url``.

    ``files`` seeds repositories: ``"[datasets/|spaces/]owner/name/path/in/repo" -> local file``
    (or bytes), committed to "main".
    """

    handler = _HubHandler

    def __init__(self, files: dict[str, Path | str | bytes] | None = None):
        self.requests: list[str] = []
        self.created: list[dict] = []
        self.validated: list[str] = []
        self.commits: list[dict] = []
        self.branches: list[dict] = []  # every branch created through the API
        self._refs: dict[tuple[str, str], dict[str, str]] = {}  # (type, repo) -> {revision: commit id}
        self._history: dict[tuple[str, str], set[str]] = {}  # (type, repo) -> its commit ids
        self._trees: dict[str, dict[str, bytes]] = {}  # commit id -> {path: content}
        self._lock = threading.Lock()
        seeds: dict[tuple[str, str], dict] = {}
        for key, source in (files or {}).items():
            repo_type, parts = "model", key.split("/")
            if parts[0] in ("datasets", "spaces"):
                repo_type, parts = parts[0][:-1], parts[1:]
            seeds.setdefault((repo_type, "/".join(parts[:2])), {})["/".join(parts[2:])] = source
        for (repo_type, repo_id), repo_files in seeds.items():
            self.add_files(repo_id, repo_files, repo_type=repo_type)
        super().__init__()

    def add_files(self, repo_id: str, files: dict[str, Path | str | bytes], repo_type: str = "model",
                  revision: str = "main") -> str:
        """Commit ``{path in repo: local file or bytes}`` to ``revision`` (creating the repository); its id."""
        with self._lock:
            self._ensure_repo(repo_type, repo_id)
        lines = [{"key": "file", "value": {"path": path, "encoding": "base64", "content": base64.b64encode(
            data if isinstance(data, bytes) else Path(data).read_bytes()).decode()}} for path, data in files.items()]
        return self._commit(repo_type, repo_id, revision, lines, record=False)

    def pin(self, repo_id: str, commit_id: str, repo_type: str = "model", revision: str = "main") -> None:
        """Make ``commit_id`` (a real repository's pinned commit, such as mC4's) resolve to ``revision``'s files."""
        with self._lock:
            refs = self._refs[(repo_type, repo_id)]
            refs[commit_id] = refs[revision]

    def repo_branches(self, repo_id: str, repo_type: str = "model") -> list[str]:
        """The branch names of a repository (sorted)."""
        with self._lock:
            return sorted(self._refs.get((repo_type, repo_id), {}))

    def repo_files(self, repo_id: str, repo_type: str = "model", revision: str = "main") -> dict[str, bytes]:
        """The files of a repository at a revision (branch or commit id): ``{path: content}``."""
        return dict(self._tree(repo_type, repo_id, revision)[1])

    # --- storage -----------------------------------------------------------------------------

    def _ensure_repo(self, repo_type: str, repo_id: str) -> None:
        """Create a repository with an empty "main" unless it exists (call under the lock)."""
        if (repo_type, repo_id) not in self._refs:
            oid = self._store(None, {})
            self._refs[(repo_type, repo_id)] = {"main": oid}
            self._history[(repo_type, repo_id)] = {oid}

    def _store(self, parent: str | None, tree: dict[str, bytes]) -> str:
        """Store a snapshot as a new commit (its id hashes the parent and the files; under the lock)."""
        digest = hashlib.sha1((parent or "").encode())
        for path in sorted(tree):
            digest.update(path.encode() + b"\0" + hashlib.sha1(tree[path]).digest())
        oid = digest.hexdigest()
        self._trees[oid] = tree
        return oid

    def _tree(self, repo_type: str, repo_id: str, revision: str) -> tuple[str, dict[str, bytes]]:
        """``(commit id, files)`` at a branch or commit id; :class:`HubError` for unknown repos and revisions."""
        with self._lock:
            refs = self._refs.get((repo_type, repo_id))
            if refs is None:
                raise HubError("RepoNotFound", f"{repo_type} repository {repo_id} not found")
            oid = refs.get(revision) or (revision if revision in self._history[(repo_type, repo_id)] else None)
            if oid is None:
                raise HubError("RevisionNotFound", f"revision {revision} not found in {repo_id}")
            return oid, self._trees[oid]

    def _commit(self, repo_type: str, repo_id: str, revision: str, lines: list[dict], record: bool = True) -> str:
        """Apply NDJSON commit ``lines`` on top of the branch ``revision``; the new commit id."""
        with self._lock:
            refs = self._refs.get((repo_type, repo_id))
            if refs is None:
                raise HubError("RepoNotFound", f"{repo_type} repository {repo_id} not found")
            if revision not in refs:
                raise HubError("RevisionNotFound", f"branch {revision} not found in {repo_id}")
            parent = refs[revision]
            tree = dict(self._trees[parent])
            for line in lines:
                key, value = line["key"], line.get("value", {})
                if key == "file":
                    tree[value["path"]] = base64.b64decode(value["content"])
                elif key == "deletedFile":
                    tree.pop(value["path"], None)
                elif key == "deletedFolder":
                    folder = value["path"].rstrip("/") + "/"
                    tree = {p: d for p, d in tree.items() if not p.startswith(folder)}
                elif key != "header":
                    raise HubError("BadRequest", f"operation {key!r} is not supported by the loopback Hub", 400)
            oid = self._store(parent, tree)
            refs[revision] = oid
            self._history[(repo_type, repo_id)].add(oid)
            if record:
                self.commits.append({"repo_type": repo_type, "repo_id": repo_id, "revision": revision,
                                     "parent": parent, "oid": oid, "lines": lines})
        return oid
