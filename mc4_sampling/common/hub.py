"""Hub access for both packages: the reachability probe, the one resolver of Hub locations, uploads and cards.

* :func:`require_reachable` is the one reachability rule of every command that reads the network (the
  Hub's files, an mC4 mirror, a Hub dataset): one quick probe before any work, one line when it fails.
  :func:`require_hub` applies it to a lookup on the Hub. Without it,
  ``huggingface_hub`` retries an unreachable Hub for 25-35 s (20-25 warnings) before a misleading
  last line ("not found"). With ``HF_HUB_OFFLINE`` set it does nothing (the library then reads its
  cache only, without retries); else one quick connection to the endpoint (``HF_ENDPOINT`` or the
  Hub, :data:`PROBE_TIMEOUT` seconds, once per process and endpoint) decides, and an unreachable Hub
  raises :class:`~.errors.HubUnreachableError` saying so and what to do.
* :class:`HubLocation` parses ``[hf://]owner/name[/subfolder][@revision]``; :func:`fetch` resolves one
  to a local folder of the Hub cache (some files, or the whole subfolder): every download of the
  sampler (perplexity and scorer models) and of the trainer (models to fine-tune or transfer from)
  goes through it, so the offline behaviour is the same everywhere.
* :func:`push_folder` creates a repository (if needed) and uploads a folder to it in one commit.
* :func:`render_card` fills a card template: one of ``data/cards/`` (``dataset.md``) by name, or
  any template file by path (the trainer's model cards: ``trainer/cards/``); :func:`write_card`
  writes a card as a folder's ``README.md``.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence
from urllib.parse import urlsplit

from .errors import HubError, HubUnreachableError

logger = logging.getLogger(__name__)


# --- reachability --------------------------------------------------------------------------------

#: Seconds the reachability probe waits for a connection.
PROBE_TIMEOUT = 3.0

DEFAULT_ENDPOINT = "https://huggingface.co"

_PROBED: dict = {}


#: Whether :func:`require_hub` turned huggingface_hub's offline constant on (to undo when the variable goes).
_FORCED_OFFLINE = False


def hub_offline() -> bool:
    """Whether ``HF_HUB_OFFLINE`` (or ``HF_DATASETS_OFFLINE``) asks for no network access."""
    return any(os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on")
               for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))


def endpoint(explicit: Optional[str] = None) -> str:
    return explicit or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT


def _probe_target(url: str) -> tuple[str, int]:
    """The host and port a connection to ``url`` opens first: its proxy's when one is set for it."""
    import urllib.request

    parts = urlsplit(url)
    host = parts.hostname or ""
    proxy = urllib.request.getproxies().get(parts.scheme)
    if proxy and not urllib.request.proxy_bypass(host):
        proxy_parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        return proxy_parts.hostname or "", proxy_parts.port or 8080
    return host, parts.port or (443 if parts.scheme == "https" else 80)


def probe(url: str, timeout: float = PROBE_TIMEOUT) -> Optional[str]:
    """None when a TCP connection to ``url``'s host (or its proxy) opens within ``timeout`` s, else the reason."""
    key = _probe_target(url)
    if key not in _PROBED:
        try:
            with socket.create_connection(key, timeout=timeout):
                _PROBED[key] = None
        except OSError as e:
            _PROBED[key] = e.strerror or ("timed out" if isinstance(e, TimeoutError) else type(e).__name__)
    return _PROBED[key]


#: What an unreachable Hub lookup suggests.
HUB_ADVICE = "check the network, give a local folder instead, or set HF_HUB_OFFLINE=1 to use files cached earlier"


def origin(url: str) -> str:
    """``scheme://host[:port]`` of ``url``."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def require_reachable(url: str, what: str, advice: str = HUB_ADVICE, name: str = "the Hub") -> None:
    """The one reachability rule of every command that reads the network: before any work, one quick
    connection to ``url``'s host (:func:`probe`, :data:`PROBE_TIMEOUT` s, once per process and host);
    when it fails, :class:`~.errors.HubUnreachableError`: ``<name> cannot be reached at <origin>
    (<reason>) to <what>; <advice>`` (``name``: ``the Hub``, or ``the server`` of a mirror)."""
    reason = probe(url)
    if reason is not None:
        raise HubUnreachableError(f"{name} cannot be reached at {origin(url)} ({reason}) to {what}; {advice}")


def require_hub(what: str, endpoint_url: Optional[str] = None) -> None:
    """Raise HubUnreachableError at once when ``what`` (e.g. ``model 'owner/name'``) would be looked up
    on a Hub that cannot be reached; nothing when it can, or when ``HF_HUB_OFFLINE`` is set."""
    global _FORCED_OFFLINE
    constants = sys.modules.get("huggingface_hub.constants")
    if hub_offline():
        if constants is not None and not constants.HF_HUB_OFFLINE:  # imported before the variable was set
            constants.HF_HUB_OFFLINE = _FORCED_OFFLINE = True  # (the library reads it once)
        return
    if _FORCED_OFFLINE and constants is not None:  # the variable is gone again: so is our override
        constants.HF_HUB_OFFLINE = _FORCED_OFFLINE = False
    require_reachable(endpoint(endpoint_url), f"look up {what}")


# --- Hub locations -------------------------------------------------------------------------------

#: ``[hf://]owner/name[/subfolder][@revision]``
HUB_LOCATION = re.compile(r"^(?:hf://)?(?P<repo>[\w.-]+/[\w.-]+)(?P<sub>(?:/[\w.-]+)*)(?:@(?P<rev>[\w.-]+))?$")


@dataclass(frozen=True)
class HubLocation:
    """A repository of the Hub, a subfolder of it (``""``: its root) and a revision (None: ``main``)."""

    repo: str
    subfolder: str = ""
    revision: Optional[str] = None

    @classmethod
    def parse(cls, spec) -> Optional["HubLocation"]:
        """The location ``spec`` names, or None when it is not one (a path starting with ``.``, ``/``, ``~``)."""
        text = str(spec)
        match = HUB_LOCATION.match(text)
        if match is None or text.startswith((".", "/", "~")):
            return None
        return cls(match["repo"], match["sub"].strip("/"), match["rev"])

    def __str__(self) -> str:
        return f"{self.repo}{'/' + self.subfolder if self.subfolder else ''}@{self.revision or 'main'}"


def fetch(location: HubLocation, what: str, files: Optional[Sequence[str]] = None,
          missing_ok: bool = False) -> Optional[str]:
    """The local folder (in the Hub cache, ``HF_ENDPOINT`` honoured) of ``location``: with ``files``, those
    files of its subfolder are fetched (``missing_ok``: a file the repository lacks is skipped; None when
    none was there), else the whole subfolder (or repository).

    :func:`require_hub` runs first (``what``, e.g. ``model 'owner/name'``, names the lookup): an
    unreachable Hub is one line at once, ``HF_HUB_OFFLINE`` reads the cache only. The errors of
    ``huggingface_hub`` (no such repository, revision or file...) pass: the caller words them.
    """
    from huggingface_hub import hf_hub_download, snapshot_download
    from huggingface_hub.errors import EntryNotFoundError

    require_hub(what)
    endpoint_url = os.environ.get("HF_ENDPOINT") or None
    sub = location.subfolder
    if files is None:
        local = snapshot_download(location.repo, revision=location.revision, endpoint=endpoint_url,
                                  allow_patterns=[f"{sub}/*"] if sub else None)
        return os.path.join(local, sub) if sub else local
    folder = None
    for name in files:
        try:
            path = hf_hub_download(location.repo, name, subfolder=sub or None, revision=location.revision,
                                   endpoint=endpoint_url)
        except EntryNotFoundError:
            if not missing_ok:
                raise
            continue
        folder = os.path.dirname(path)
    return folder


# --- uploads and cards ---------------------------------------------------------------------------



#: Folder of the card templates: ``{name}.md`` with ``str.format`` fields (``{{``/``}}`` for braces).
CARDS_DIR = Path(__file__).parent.parent / "data" / "cards"


def render_card(template: str | os.PathLike, **fields) -> str:
    """A card template with its fields filled in (``str.format``): ``template`` is a path to a
    template file (:class:`os.PathLike`), or the name of one of ``data/cards/`` (``"dataset"``)."""
    path = Path(template) if isinstance(template, os.PathLike) else CARDS_DIR / f"{template}.md"
    return path.read_text(encoding="utf-8").format(**fields)


def write_card(folder: str, card: str) -> str:
    """Write ``card`` as ``folder/README.md`` (where the Hub reads a repository's card); its path."""
    path = os.path.join(folder, "README.md")
    with open(path, "w", encoding="utf-8") as f:
        f.write(card)
    return path


def push_folder(
    folder: str,
    repo_id: str,
    *,
    repo_type: str,
    private: bool = False,
    token: str | None = None,
    endpoint: str | None = None,
    commit_message: str = "Upload with mc4-sampling",
    allow_patterns: list[str] | str | None = None,
    large: bool = False,
    revision: str | None = None,
    create_branch: bool = False,
):
    """Create the ``repo_type`` repository ``repo_id`` (unless it exists) and upload ``folder`` in one commit.

    ``endpoint`` defaults to ``HF_ENDPOINT`` when set (else the Hub), ``token`` to the one
    ``huggingface_hub`` finds; ``allow_patterns`` limits the files sent. ``large=True`` (datasets of
    many files): ``upload_large_folder`` where ``huggingface_hub`` has it (resumable, several
    commits); in ``huggingface_hub`` 2.x, where it is gone, ``upload_folder`` itself streams large
    folders in several commits and resumes by re-running (returns its commit info, the last one).
    ``revision``: upload to that branch (``create_branch=True`` makes it first, from the main
    branch's head, unless it exists). Returns the commit info;
    raises :class:`HubError` (naming the folder and the repository, not the token) when it fails.
    """
    from huggingface_hub import HfApi

    try:  # one line at once, not 25 s of retries
        require_hub(f"{repo_type} repository {repo_id!r}", endpoint)
    except HubUnreachableError as e:
        raise HubError(f"upload of {folder} to {repo_id} failed: {e}") from None
    api = HfApi(endpoint=endpoint or os.environ.get("HF_ENDPOINT") or None, token=token)
    try:
        api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True)
        if revision and create_branch:
            api.create_branch(repo_id, branch=revision, repo_type=repo_type, exist_ok=True)
        upload_large_folder = getattr(api, "upload_large_folder", None) if large else None
        if upload_large_folder is not None:
            return upload_large_folder(repo_id=repo_id, folder_path=folder, repo_type=repo_type, private=private,
                                       allow_patterns=allow_patterns, print_report=False)
        info = api.upload_folder(folder_path=folder, repo_id=repo_id, repo_type=repo_type,
                                 commit_message=commit_message, allow_patterns=allow_patterns, revision=revision)
    except Exception as e:
        reason = _redact(f"{type(e).__name__}: {e}", token)
        raise HubError(f"upload of {folder} to {repo_id} failed: {reason}") from None
    logger.info("pushed %s to %s repository %s%s", folder, repo_type, repo_id, f" ({revision})" if revision else "")
    return info


def _redact(text: str, token: str | None) -> str:
    """``text`` without the token passed or found in the environment."""
    for secret in (token, os.environ.get("HF_TOKEN"), os.environ.get("HUGGING_FACE_HUB_TOKEN")):
        if secret:
            text = text.replace(secret, "***")
    return text
