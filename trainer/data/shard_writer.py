"""The one writer of token shards, in the format :mod:`trainer.data.token_shards` reads.

:func:`write_shard` writes one shard (``NNNNN.ds``, ``.ds.index``, ``.ds.metadata``; the ``.ds`` last,
so a shard is complete when it exists). :class:`TokenShardWriter` writes a token-shard folder: the
shards of each split, ``eval_manifest.json``, and ``manifest.json`` last (the folder is complete when
it exists), whose format, tokenizer, dtype and special-token fields it fills; the caller adds what it
knows (hold-out settings, counts, sources). Every file goes through the common atomic writer
(:mod:`mc4_sampling.common.outputs`). Its users: ``mc4-sampling publish --tokenizer``
(:mod:`trainer.data.publish_tokens`) and the study's corpus index and arm samples
(:mod:`trainer.study.index`).
"""

from __future__ import annotations

import json
import os
from typing import Callable, Optional, Sequence

import numpy as np

from mc4_sampling.common.outputs import write_atomic

from ..errors import DataError
from .token_shards import EVAL_MANIFEST, FORMAT, MANIFEST, token_dtype, tokenizer_sha256


def write_shard(path: str, docs: Sequence[Sequence[int]], eos_id: int, dtype: np.dtype, tokenizer_name: str) -> int:
    """Write ``path`` (``.ds``), ``path.index`` and ``path.metadata``; every non-empty document ends with
    ``eos_id``. The ``.ds`` file is renamed last (a shard is complete when it exists). Returns the tokens."""
    parts, ends, total = [], [], 0
    for ids in docs:
        if len(ids):
            parts.append(np.asarray(ids, np.int64))
            parts.append(np.asarray([eos_id], np.int64))
            total += len(ids) + 1
            ends.append(total)
    tokens = np.concatenate(parts) if parts else np.zeros((0,), np.int64)
    if len(tokens) and int(tokens.max()) > np.iinfo(dtype).max:
        raise DataError(f"token id {int(tokens.max())} does not fit {dtype}")
    write_atomic(path + ".index", np.asarray(ends, "<u8").tobytes())
    write_atomic(path + ".metadata", f"{tokenizer_name}|{dtype.itemsize}\n{total}\n{total / 1e6:.1f}M".encode())
    write_atomic(path, tokens.astype(dtype).tobytes())
    return total


def write_json(path: str, value) -> None:
    """``value`` as JSON (indent 1) at ``path``, whole or not at all: how the manifests are written."""
    write_atomic(path, json.dumps(value, indent=1))


class TokenShardWriter:
    """Writes the token-shard folder ``folder`` with tokenizer ``tok`` (a
    :class:`~trainer.data.batches.TokenizerFns`), named ``name`` in the shards' metadata and the manifest.
    ``dump``: how the manifests are written (default :func:`write_json`)."""

    def __init__(self, folder: str, tok, name: str, dump: Optional[Callable[[str, object], None]] = None):
        self.folder, self.tok, self.name = str(folder), tok, name
        self.dtype = token_dtype(tok.vocab_size)
        self.tokenizer_sha256 = tokenizer_sha256(tok.to_json())
        self._dump = dump or write_json

    def shard_path(self, split: str, index: int) -> str:
        return os.path.join(self.folder, split, f"{index:05d}.ds")

    def write(self, split: str, index: int, docs: Sequence[Sequence[int]]) -> int:
        """Shard ``index`` of ``split`` holding ``docs`` (token ids, ``</s>`` appended); its tokens."""
        path = self.shard_path(split, index)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return write_shard(path, docs, self.tok.eos_id, self.dtype, self.name)

    def write_eval_manifest(self, manifest: dict) -> None:
        """``eval_manifest.json``: the eval documents' digests (:func:`trainer.data.holdout.eval_manifest`)."""
        self._dump(os.path.join(self.folder, EVAL_MANIFEST), manifest)

    def write_manifest(self, **fields) -> dict:
        """``manifest.json``, last: format, tokenizer, dtype and token ids, then ``fields`` in their order."""
        manifest = {"format": FORMAT, "tokenizer": self.name, "tokenizer_sha256": self.tokenizer_sha256,
                    "dtype": self.dtype.str, "eos_id": self.tok.eos_id, "bos_id": self.tok.bos_id,
                    "vocab_size": self.tok.vocab_size, **fields}
        self._dump(os.path.join(self.folder, MANIFEST), manifest)
        return manifest
