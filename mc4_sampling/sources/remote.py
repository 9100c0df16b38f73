"""Where a source's remote files are: ``hf://datasets/<repo>[@rev]/<path>`` resolved to URLs on ``HF_ENDPOINT``,
Hub folders listed through the tree API, and the reachability rule applied before any work.

Files are read over HTTP(S) by :mod:`mc4_sampling.http_stream` (one transport for every source); this
module only says which URLs to read:

* :func:`parse_hf` / :func:`resolve_url`: ``hf://datasets/owner/name@rev/data/x.parquet`` ->
  ``{HF_ENDPOINT}/datasets/owner/name/resolve/rev/data/x.parquet``;
* :func:`list_hub` lists a repository folder (``HfApi(endpoint=...).list_repo_tree``, recursive);
* :func:`require_remote` is :func:`mc4_sampling.common.hub.require_reachable` for a URL (and refuses the
  Hub under ``HF_HUB_OFFLINE``: these files are streamed, never cached).
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from urllib.parse import quote

from ..common.errors import HubUnreachableError
from ..common.hub import endpoint, hub_offline, require_reachable
from ..errors import DataNotFoundError

_HF = re.compile(r"^hf://datasets/(?P<repo>[\w.-]+/[\w.-]+)(?:@(?P<rev>[^/]+))?(?:/(?P<path>.*))?$")


@dataclass(frozen=True)
class HubPath:
    """A path in a dataset repository of the Hub at a revision."""

    repo: str
    revision: str
    path: str

    def url(self, path: str | None = None) -> str:
        """The ``resolve`` URL of ``path`` (default: this path) on ``HF_ENDPOINT``."""
        return resolve_url(self.repo, self.revision, self.path if path is None else path)

    def __str__(self) -> str:
        return f"hf://datasets/{self.repo}@{self.revision}/{self.path}"


def is_hf(location) -> bool:
    return str(location).startswith("hf://")


def parse_hf(location: str, spell: str = "location") -> HubPath:
    """The :class:`HubPath` of ``hf://datasets/<owner>/<name>[@rev][/<path>]``; anything else is one error."""
    m = _HF.match(str(location))
    if m is None:
        raise DataNotFoundError(f"{spell}={location!r} is not a Hub dataset path; write "
                                "hf://datasets/<owner>/<name>[@revision]/<path>")
    return HubPath(m["repo"], m["rev"] or "main", (m["path"] or "").strip("/"))


def resolve_url(repo: str, revision: str, path: str) -> str:
    """``{HF_ENDPOINT}/datasets/<repo>/resolve/<revision>/<path>``."""
    return f"{endpoint().rstrip('/')}/datasets/{repo}/resolve/{quote(revision, safe='')}/{quote(path)}"


def require_remote(url: str, what: str) -> None:
    """The reachability rule for a remote source file or listing, before any work."""
    if url.startswith("hf://") or url.startswith(endpoint().rstrip("/")):
        if hub_offline():
            raise HubUnreachableError(f"HF_HUB_OFFLINE is set, and {what} is streamed from the Hub, never cached; "
                                      "give a local copy, or unset HF_HUB_OFFLINE")
        require_reachable(endpoint(), what, "check the network, or give a local copy of the files")
        return
    require_reachable(url, what, "check the network and the URL, or give a local copy of the files",
                      name="the server")


def list_hub(hub: HubPath, pattern: str | None = None, *, folders: bool = False) -> list[str]:
    """The file paths under ``hub.path`` in the repository (recursive, sorted), those matching the glob
    ``pattern`` (relative to the repository root) when given. A repository, revision or folder the Hub
    does not have is one error line. ``folders``: the names of the folders right under ``hub.path`` instead."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import (
        EntryNotFoundError,
        HfHubHTTPError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )
    from huggingface_hub.hf_api import RepoFile

    require_remote(str(hub), f"list {hub}")
    api = HfApi(endpoint=endpoint())
    try:
        entries = api.list_repo_tree(hub.repo, path_in_repo=hub.path or None, revision=hub.revision,
                                     repo_type="dataset", recursive=not folders)
        if folders:
            return sorted(e.path.rsplit("/", 1)[-1] for e in entries if not isinstance(e, RepoFile))
        paths = sorted(e.path for e in entries if isinstance(e, RepoFile))
    except (RepositoryNotFoundError, RevisionNotFoundError, EntryNotFoundError) as e:
        raise DataNotFoundError(f"{hub}: {type(e).__name__.replace('Error', '')} on {endpoint()} "
                                f"({str(e).splitlines()[0]})") from None
    except HfHubHTTPError as e:
        raise DataNotFoundError(f"{hub}: the Hub cannot list it ({str(e).splitlines()[0]})") from None
    if pattern is not None:
        paths = [p for p in paths if fnmatch.fnmatchcase(p, pattern)]
    return paths
