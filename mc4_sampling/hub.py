"""What goes to the Hub, for the datasets of ``publish`` and the models of the trainer's export.

* :func:`render_card` fills a card template of ``data/cards/`` (``dataset.md``, ``model.md``);
  :func:`write_card` writes a card as a folder's ``README.md``.
* :func:`push_folder` creates a repository (if needed) and uploads a folder to it in one commit.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from .errors import Mc4SamplingError

logger = logging.getLogger(__name__)

#: Folder of the card templates: ``{name}.md`` with ``str.format`` fields (``{{``/``}}`` for braces).
CARDS_DIR = Path(__file__).with_name("data") / "cards"


class HubError(Mc4SamplingError):
    """An upload to the Hub failed; the message names the folder and the repository."""


def render_card(template_name: str, **fields) -> str:
    """The card template ``data/cards/{template_name}.md`` with its fields filled in."""
    return (CARDS_DIR / f"{template_name}.md").read_text(encoding="utf-8").format(**fields)


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
):
    """Create the ``repo_type`` repository ``repo_id`` (unless it exists) and upload ``folder`` in one commit.

    ``endpoint`` defaults to ``HF_ENDPOINT`` when set (else the Hub), ``token`` to the one
    ``huggingface_hub`` finds; ``allow_patterns`` limits the files sent. Returns the commit info;
    raises :class:`HubError` (naming the folder and the repository, not the token) when it fails.
    """
    from huggingface_hub import HfApi

    api = HfApi(endpoint=endpoint or os.environ.get("HF_ENDPOINT") or None, token=token)
    try:
        api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True)
        info = api.upload_folder(folder_path=folder, repo_id=repo_id, repo_type=repo_type,
                                 commit_message=commit_message, allow_patterns=allow_patterns)
    except Exception as e:
        reason = _redact(f"{type(e).__name__}: {e}", token)
        raise HubError(f"upload of {folder} to {repo_id} failed: {reason}") from None
    logger.info("pushed %s to %s repository %s", folder, repo_type, repo_id)
    return info


def _redact(text: str, token: str | None) -> str:
    """``text`` without the token passed or found in the environment."""
    for secret in (token, os.environ.get("HF_TOKEN"), os.environ.get("HUGGING_FACE_HUB_TOKEN")):
        if secret:
            text = text.replace(secret, "***")
    return text
