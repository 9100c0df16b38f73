"""Fail fast, with one line, when a Hub lookup cannot reach the Hub.

Without this, ``huggingface_hub`` retries an unreachable Hub for 25-35 s (20-25 warnings) before a
misleading last line ("not found"). :func:`require_hub` is called just before a Hub lookup: with
``HF_HUB_OFFLINE`` set it does nothing (the library then reads its cache only, without retries);
else one quick connection to the endpoint (``HF_ENDPOINT`` or the Hub, :data:`PROBE_TIMEOUT`
seconds, once per process and endpoint) decides, and an unreachable Hub raises
:class:`HubUnreachableError` saying so and what to do.
"""

from __future__ import annotations

import os
import socket
import sys
from typing import Optional
from urllib.parse import urlsplit

from .errors import HubUnreachableError

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


def probe(url: str, timeout: float = PROBE_TIMEOUT) -> Optional[str]:
    """None when a TCP connection to ``url``'s host opens within ``timeout`` s, else the reason."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    key = (host, port)
    if key not in _PROBED:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                _PROBED[key] = None
        except OSError as e:
            _PROBED[key] = e.strerror or type(e).__name__
    return _PROBED[key]


def looks_like_hub_id(name: str) -> bool:
    """``owner/name`` (optionally ``@revision``) that is not a local path."""
    if not isinstance(name, str) or os.path.exists(name) or name.startswith((".", "/", "~")):
        return False
    return name.split("@")[0].count("/") in (1, 2) and "\\" not in name


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
    url = endpoint(endpoint_url)
    reason = probe(url)
    if reason is not None:
        raise HubUnreachableError(
            f"the Hub cannot be reached at {url} ({reason}) to look up {what}; check the network, give a local "
            "folder instead, or set HF_HUB_OFFLINE=1 to use files cached earlier")
