"""A transformers model folder on disk, for any family: writing one (``config.json``, ``model.safetensors``,
the tokenizer, extra files), reading its weights (``model.safetensors`` or ``pytorch_model.bin``), and the
folder of a Hub model id (``owner/name[@revision]``: MultiBERTs' ``google/multiberts-seed_3-step_0k``, an
EarlyBERTs repository at ``@step7000``) in the Hub cache.

A family's transformers mapping (:mod:`.roberta_hf`, :mod:`.modernbert_hf`) builds the config and the
state dict and calls these.
"""

from __future__ import annotations

import logging
import os
from typing import Optional

import numpy as np

from ..errors import ConfigError, ExportError

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


#: The files of a Hub model repository :func:`model_folder` downloads (those it has): the config, the weights
#: (safetensors, else PyTorch's; MultiBERTs have only the latter), the tokenizer (BERT's ``vocab.txt``
#: included).
HUB_MODEL_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt",
                   "vocab.json", "merges.txt")


def multiberts_id(seed: int, step_k: Optional[int] = 0) -> str:
    """The Hub id of a MultiBERTs checkpoint: ``google/multiberts-seed_{seed}-step_{step_k}k`` (thousands of
    steps; 0: the initialisation EarlyBERTs start from), or ``google/multiberts-seed_{seed}`` (the final
    2 M-step model) when ``step_k`` is None."""
    return f"google/multiberts-seed_{seed}" + ("" if step_k is None else f"-step_{step_k}k")


def model_folder(source: str, option: str) -> str:
    """``source`` itself when it is a folder, else the Hub model ``owner/name[@revision]`` it names, downloaded
    into the Hub cache (:data:`HUB_MODEL_FILES` and the weights) by the common resolver; a ConfigError naming
    ``option`` when it is neither (one line at once when the Hub cannot be reached)."""
    from mc4_sampling.common.errors import HubUnreachableError
    from mc4_sampling.common.hub import HubLocation, fetch

    if os.path.isdir(source):
        return source
    location = HubLocation.parse(source)
    if location is None or os.path.exists(source):
        raise ConfigError(f"{option}={source!r}: no such model folder (nor a Hub model id owner/name[@revision])")
    what = f"{option}={source!r}"
    try:
        folder = fetch(location, what, HUB_MODEL_FILES, missing_ok=True)
        if folder is None or not os.path.exists(os.path.join(folder, "config.json")):
            raise ConfigError(f"{what}: the Hub repository has no config.json (not a transformers model)")
        if fetch(location, what, ["model.safetensors"], missing_ok=True) is None:
            fetch(location, what, ["pytorch_model.bin"])
    except (HubUnreachableError, ConfigError):
        raise
    except Exception as e:  # no such repository, revision or weights
        first = str(e).splitlines()[0] if str(e) else ""
        raise ConfigError(f"{what}: not a model folder here, and the Hub has no such model or revision "
                          f"({type(e).__name__}: {first})") from None
    return folder
