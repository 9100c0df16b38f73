"""Top-k predictions for ``<mask>`` with our Flax model (any family) on an exported transformers folder (inputs
padded to a bucket of lengths with an attention mask, so texts of similar length share one compilation)."""

from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from .errors import ExportError, TrainerError
from .models import family_of_hf_config

#: Inputs are padded to a multiple of this many tokens (one compilation per bucket, not per text length).
BUCKET = 32


class FillMask:
    def __init__(self, model_dir: str):
        from .data.tokenizer import load_tokenizer

        self.family = family_of_hf_config(_read_config(model_dir))
        self.spec, self.params = self.family.hf.import_pretrained(model_dir, dtype="float32", attention_impl="xla")
        self.tokenizer = load_tokenizer(model_dir, "the model's tokenizer", TrainerError, fast=False)
        self.model = self.family.mlm_module(self.spec)
        self._apply = jax.jit(lambda p, ids, mask: self.model.apply({"params": p}, ids, mask, deterministic=True))

    def _padded(self, ids: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """``ids`` right-padded to the next multiple of :data:`BUCKET` (at most the tokenizer's maximum length)
        with its attention mask: texts of similar length share one compilation."""
        limit = self.tokenizer.model_max_length
        width = -(-len(ids) // BUCKET) * BUCKET
        width = len(ids) if not limit or limit > 1e6 or width > limit else width
        padded = np.full((1, width), self.tokenizer.pad_token_id, np.int32)
        padded[0, : len(ids)] = ids
        mask = np.zeros((1, width), np.int32)
        mask[0, : len(ids)] = 1
        return padded, mask

    def __call__(self, text: str, top_k: int = 5) -> list[list[dict]]:
        """For every ``<mask>`` in ``text``: ``[{"token", "token_str", "score", "sequence"}...]``."""
        tok = self.tokenizer
        if tok.mask_token not in text:
            raise TrainerError(f"the text has no {tok.mask_token} token")
        tokens = tok(text)["input_ids"]
        n = len(tokens)
        padded, mask = self._padded(tokens)
        ids = padded[:, :n]
        logits = np.asarray(self._apply(self.params, jnp.asarray(padded), jnp.asarray(mask)))[0, :n]
        out = []
        for pos in np.flatnonzero(ids[0] == tok.mask_token_id):
            probs = np.asarray(jax.nn.softmax(logits[pos].astype(np.float64)))
            best = np.argsort(-probs)[:top_k]
            preds = []
            for t in best:
                filled = ids[0].copy()
                filled[pos] = t
                preds.append({"token": int(t), "token_str": tok.decode([int(t)]), "score": float(probs[t]),
                              "sequence": tok.decode(filled, skip_special_tokens=True)})
            out.append(preds)
        return out


def _read_config(model_dir: str) -> dict:
    import json
    import os

    path = os.path.join(model_dir, "config.json")
    if not os.path.exists(path):
        raise ExportError(f"{model_dir}: no config.json (not a transformers model folder)")
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def fill_mask(model_dir: str, text: str, top_k: int = 5, runner: Optional[FillMask] = None) -> list[list[dict]]:
    return (runner or FillMask(model_dir))(text, top_k)
