"""What goes to the Hub, for the datasets of ``publish`` and the models of the trainer's export.

* :func:`render_card` fills a card template: one of ``data/cards/`` (``dataset.md``) by name, or
  any template file by path (the trainer's model cards: ``trainer/cards/``); :func:`write_card`
  writes a card as a folder's ``README.md``.
* :func:`push_folder` creates a repository (if needed) and uploads a folder to it in one commit.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from .errors import HubError, HubUnreachableError

logger = logging.getLogger(__name__)

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

    from .hub_reach import require_hub

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
