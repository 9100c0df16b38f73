"""Flax parameter trees <-> transformers (PyTorch) state dicts, by a family's list of entries.

An entry is ``(flax path, torch name, transposed)``: a Dense kernel is stored transposed in PyTorch.
Parameters with one row per vocabulary id (``vocab_rows``) have ``padded_vocab_size`` rows in Flax
and ``vocab_size`` in the state dict (the padding rows are never predicted nor an input).
"""

from __future__ import annotations

from typing import Iterable, Optional

import numpy as np

from ..errors import ExportError

Entry = tuple[tuple[str, ...], str, bool]


def get_path(tree, path):
    for p in path:
        tree = tree[p]
    return tree


def params_to_state_dict(params, entries: Iterable[Entry], vocab_rows, vocab_size: int) -> dict[str, np.ndarray]:
    """Flax params -> ``{torch name: float32 array}`` (contiguous, vocabulary padding rows dropped)."""
    out = {}
    for fpath, tname, transposed in entries:
        value = np.asarray(get_path(params, fpath), dtype=np.float32)
        if fpath in vocab_rows:
            value = value[:vocab_size]
        out[tname] = np.ascontiguousarray(value.T if transposed else value)
    return out


def state_dict_to_params(state_dict: dict[str, np.ndarray], entries: Iterable[Entry], vocab_rows, vocab_size: int,
                         padded_vocab_size: int, fallback=None, fallback_roots: tuple[str, ...] = ()) -> dict:
    """``{torch name: array}`` -> Flax params of ``entries``, vocabulary rows padded to ``padded_vocab_size``.

    A weight missing from ``state_dict`` under one of ``fallback_roots`` is taken from ``fallback``
    (params of the same model), whose shapes every weight must then have; any other missing weight
    is an ExportError.
    """
    params: dict = {}
    missing = []
    for fpath, tname, transposed in entries:
        if tname in state_dict:
            value = np.asarray(state_dict[tname], dtype=np.float32)
            value = value.T if transposed else value
            if fpath in vocab_rows and value.shape[0] == vocab_size < padded_vocab_size:
                pad = np.zeros((padded_vocab_size - vocab_size,) + value.shape[1:], np.float32)
                value = np.concatenate([value, pad])
        elif fallback is not None and fpath[0] in fallback_roots:
            value = np.asarray(get_path(fallback, fpath), dtype=np.float32)
        else:
            missing.append(tname)
            continue
        expected: Optional[tuple] = tuple(np.shape(get_path(fallback, fpath))) if fallback is not None else None
        if expected is not None and expected != value.shape:
            raise ExportError(f"weight {tname} has shape {value.shape}, the model expects {expected}")
        node = params
        for p in fpath[:-1]:
            node = node.setdefault(p, {})
        node[fpath[-1]] = value
    if missing:
        raise ExportError(f"{len(missing)} weights missing from the checkpoint, e.g. {missing[:3]}")
    return params


def dense_head_from_state_dict(state_dict: dict[str, np.ndarray], prefix: str = "classifier") -> Optional[dict]:
    """A one-layer head ``PREFIX.{weight,bias}`` of a state dict as Flax ``{kernel, bias}`` (the weight
    transposed), or None when the state dict has none."""
    if f"{prefix}.weight" not in state_dict or f"{prefix}.bias" not in state_dict:
        return None
    return {"kernel": np.asarray(state_dict[f"{prefix}.weight"], np.float32).T,
            "bias": np.asarray(state_dict[f"{prefix}.bias"], np.float32)}
