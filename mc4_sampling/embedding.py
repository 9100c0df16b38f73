"""Document embeddings by any transformers encoder: the mean of the last hidden states over the attention mask.

``e(doc) = sum_t m_t h_t / sum_t m_t`` with ``h_t`` the encoder's last hidden state at token ``t`` and ``m_t``
its attention mask (1 for a token of the text, 0 for padding), the text truncated to ``max_length`` tokens.
PyTorch and transformers are imported only here and only when called (the sampler needs neither otherwise):
``pip install 'mc4-sampling[maps]' torch``.
"""

from __future__ import annotations

import logging
import os
from typing import Callable, Sequence

import numpy as np

from .errors import ConfigError

log = logging.getLogger(__name__)


def mean_pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``(batch, tokens, dim)`` hidden states and a ``(batch, tokens)`` 0/1 mask -> ``(batch, dim)`` masked means."""
    m = mask[..., None].astype(hidden.dtype)
    return (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1)


def _imports():
    try:
        import torch
        import transformers
    except ImportError as e:
        raise ConfigError(f"embedding documents needs PyTorch and transformers ({e.name} is missing): "
                          "pip install torch transformers") from None
    return torch, transformers


def load_encoder(spec: str):
    """``(tokenizer, model)`` of a transformers encoder: a local folder or a Hub id (``owner/name``)."""
    torch, transformers = _imports()
    if not os.path.isdir(spec) and (os.path.exists(spec) or spec.startswith((".", "/")) or spec.count("/") > 1):
        raise ConfigError(f"--encoder {spec}: no such folder (and not a Hub model id owner/name)")
    if os.path.isdir(spec) and not os.path.exists(os.path.join(spec, "config.json")):
        raise ConfigError(f"--encoder {spec}: no config.json (not a transformers model folder)")
    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()  # no report of the unused masked-LM head or pooler
    transformers.logging.disable_progress_bar()
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(spec)
        model = transformers.AutoModel.from_pretrained(spec).eval()
    except Exception as e:  # noqa: BLE001 - transformers raises many types; all mean "not loadable"
        first = (str(e).splitlines() or [""])[0]
        raise ConfigError(f"--encoder {spec}: cannot load a transformers encoder: {type(e).__name__}: {first}") \
            from None
    finally:
        transformers.logging.set_verbosity(verbosity)
        transformers.logging.enable_progress_bar()
    if tokenizer.pad_token is None:  # a causal LM's tokenizer: any token pads (masked out of the mean)
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    return tokenizer, model


def embed_texts(texts: Sequence[str], encoder, *, batch_size: int = 32, max_length: int = 128,
                progress: Callable[[int], None] | None = None) -> np.ndarray:
    """The ``(len(texts), dim)`` float32 embeddings of ``texts`` (module doc), in batches on the CPU;
    ``encoder``: a folder or Hub id, or the ``(tokenizer, model)`` of :func:`load_encoder`."""
    torch, _ = _imports()
    tokenizer, model = load_encoder(encoder) if isinstance(encoder, str) else encoder
    limit = getattr(tokenizer, "model_max_length", None)
    if limit and limit < 1e6:
        max_length = min(max_length, int(limit))
    out = []
    with torch.no_grad():
        for start in range(0, len(texts), batch_size):
            batch = list(texts[start:start + batch_size])
            enc = tokenizer(batch, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
            hidden = model(**enc).last_hidden_state
            out.append(mean_pool(hidden.float().numpy(), enc["attention_mask"].numpy()))
            if progress is not None:
                progress(len(batch))
    return np.concatenate(out).astype(np.float32) if out else np.zeros((0, 0), np.float32)
