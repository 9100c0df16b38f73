"""A transformers model folder on disk, for any family: writing one (``config.json``, ``model.safetensors``,
the tokenizer, extra files) and reading its weights (``model.safetensors`` or ``pytorch_model.bin``).

A family's transformers mapping (:mod:`.roberta_hf`, :mod:`.modernbert_hf`) builds the config and the
state dict and calls these.
"""

from __future__ import annotations

import logging
import os
from typing import Optional

import numpy as np

from ..errors import ExportError

log = logging.getLogger(__name__)


def write_folder(state_dict: dict, make_config, out_dir: str, max_length: int, tokenizer_dir: Optional[str] = None,
                 tokenizer=None, extra_files: Optional[dict[str, str]] = None, what: str = "") -> str:
    """A transformers folder: ``make_config(bos, eos).save_pretrained``, the weights as ``model.safetensors``,
    the tokenizer (its ``model_max_length`` set to ``max_length``) and ``extra_files`` (any family)."""
    from safetensors.numpy import save_file

    os.makedirs(out_dir, exist_ok=True)
    if tokenizer is None and tokenizer_dir is not None:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    bos = getattr(tokenizer, "bos_token_id", None) if tokenizer is not None else None
    eos = getattr(tokenizer, "eos_token_id", None) if tokenizer is not None else None
    config = make_config(bos if bos is not None else 0, eos if eos is not None else 2)
    if tokenizer is not None:  # the model's length, not the training length the tokenizer was saved with
        tokenizer.model_max_length = max_length
    config.save_pretrained(out_dir)
    save_file(state_dict, os.path.join(out_dir, "model.safetensors"), metadata={"format": "pt"})
    if tokenizer is not None:
        tokenizer.save_pretrained(out_dir)
    for name, text in (extra_files or {}).items():
        with open(os.path.join(out_dir, name), "w", encoding="utf-8") as f:
            f.write(text)
    log.info("exported %s (%s)", out_dir, what)
    return out_dir


def read_weights(folder: str) -> dict[str, np.ndarray]:
    """Weights of a transformers folder as ``{torch name: array}`` (``model.safetensors``, or
    ``pytorch_model.bin`` with torch); ExportError when it has neither."""
    st = os.path.join(folder, "model.safetensors")
    if os.path.exists(st):
        from safetensors.numpy import load_file

        return load_file(st)
    if os.path.exists(os.path.join(folder, "pytorch_model.bin")):
        try:
            import torch
        except ImportError:
            raise ExportError(f"{folder} holds pytorch_model.bin; reading it needs torch") from None
        return {k: v.float().numpy() for k, v in torch.load(os.path.join(folder, "pytorch_model.bin"),
                                                             map_location="cpu", weights_only=True).items()}
    raise ExportError(f"{folder}: no model.safetensors or pytorch_model.bin")
