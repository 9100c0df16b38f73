"""Upload an exported folder (model, tokenizer, model card) with ``huggingface_hub``."""

from __future__ import annotations

import logging
import os
from typing import Optional

from .errors import ExportError

log = logging.getLogger(__name__)

REQUIRED_FILES = ("config.json", "model.safetensors", "tokenizer.json", "README.md")


def upload_plan(folder: str) -> list[str]:
    """The files an upload sends (checked: model, config, tokenizer and model card must be there)."""
    files = sorted(f for f in os.listdir(folder) if os.path.isfile(os.path.join(folder, f)))
    missing = [f for f in REQUIRED_FILES if f not in files]
    if missing:
        raise ExportError(f"{folder} is not a complete export (missing {', '.join(missing)})")
    return files


def push_folder(folder: str, repo_id: str, private: bool = False, endpoint: Optional[str] = None,
                token: Optional[str] = None, commit_message: str = "Upload RoBERTa MLM from mc4-sampling trainer"):
    """Create ``repo_id`` (if needed) and upload every file of ``folder`` in one commit."""
    from huggingface_hub import HfApi

    files = upload_plan(folder)
    api = HfApi(endpoint=endpoint, token=token)
    try:
        api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        info = api.upload_folder(folder_path=folder, repo_id=repo_id, repo_type="model",
                                 commit_message=commit_message, allow_patterns=files)
    except Exception as e:
        raise ExportError(f"upload of {folder} to {repo_id} failed: {type(e).__name__}: {e}") from None
    log.info("uploaded %d files to %s", len(files), repo_id)
    return info
