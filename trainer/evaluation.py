"""The held-out evaluation: the eval set with its fixed masks, and the masked-LM loss and accuracy over it.

:func:`build_eval_set` takes the eval sequences (``data.eval_files``, or the documents the stream
holds out), the same on every process, pads them to whole ``training.eval_batch_size`` batches and
masks them once with the run's eval key (``training.eval_seed`` when set): every evaluation of a
run, and of a resumed run, sees the same masks. :func:`evaluate` sums the eval step's outputs.
"""

from __future__ import annotations

import logging
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from .config import TrainerConfig
from .masking import MaskingRule
from .steps import RunKeys

log = logging.getLogger(__name__)


def build_eval_set(cfg: TrainerConfig, stream, pad_id: int, rule: MaskingRule,
                   keys: RunKeys) -> tuple[list[np.ndarray], int]:
    """``([inputs, labels, weights], masked tokens)``, each array ``[batches, eval_batch_size, L]``;
    ``stream``: the run's batch source (:func:`trainer.run_setup.open_stream`)."""
    L = cfg.data.max_seq_length
    if cfg.data.eval_files:  # the same on every process
        from .data.eval_files import read_eval_texts

        texts = read_eval_texts(cfg.data.eval_files, cfg.data.text_column)
        seqs = stream.eval_sequences(texts, L) if texts else np.zeros((0, L), np.int32)
        num_docs = len(texts)
    else:
        seqs = stream.eval_rows(L)  # the same on every process
        num_docs = stream.num_eval_documents
    nsp_labels = None
    if seqs.shape[-1] == L + 1:  # next-sentence pairs: the label in the last column (trainer.data.nsp)
        seqs, nsp_labels = seqs[:, :L], seqs[:, L]
    rows = len(seqs)
    eval_batch = cfg.training.eval_batch_size  # global: each process puts its devices' rows on them
    n_batches = -(-rows // eval_batch) if rows else 0
    padded = np.full((n_batches * eval_batch, L), pad_id, np.int32)
    padded[: len(seqs)] = seqs
    with jax.default_device(jax.local_devices(backend="cpu")[0]):
        key = keys.eval if cfg.training.eval_seed is None else jax.random.key(cfg.training.eval_seed)
        inputs, labels, weights = jax.jit(rule.apply)(key, jnp.asarray(padded))
    shape = (n_batches, eval_batch, L)
    eval_set = [np.asarray(a).reshape(shape) for a in (inputs, labels, weights)]
    if nsp_labels is not None:  # the inputs carry the label column, -1 on padding rows (no NSP weight)
        column = np.full((n_batches * eval_batch, 1), -1, np.int32)
        column[: len(seqs), 0] = nsp_labels
        eval_set[0] = np.concatenate([eval_set[0], column.reshape(n_batches, eval_batch, 1)], axis=-1)
    eval_tokens = int(np.asarray(weights).sum())
    log.info("eval set: %d documents -> %d sequences, %d masked tokens", num_docs, len(seqs), eval_tokens)
    return eval_set, eval_tokens


def evaluate(eval_step: Callable, params, eval_set: list[np.ndarray], to_device: Callable) -> dict:
    """``{loss, accuracy, masked_tokens}`` over the eval set: the sums of ``eval_step(params, inputs, labels,
    weights)`` (each batch put on the devices by ``to_device``), divided by the masked tokens; with next-sentence
    pairs also ``{nsp_loss, nsp_accuracy, nsp_pairs}``."""
    sums = None
    for inputs, labels, weights in zip(*eval_set):
        args = [to_device(a) for a in (inputs, labels, weights)]
        out = np.asarray(eval_step(params, *args), np.float64)
        sums = out if sums is None else sums + out
    if sums is None:
        sums = np.zeros(3, np.float64)
    count = max(sums[1], 1.0)
    result = {"loss": float(sums[0] / count), "accuracy": float(sums[2] / count), "masked_tokens": int(sums[1])}
    if len(sums) == 6:
        pairs = max(sums[4], 1.0)
        result.update(nsp_loss=float(sums[3] / pairs), nsp_accuracy=float(sums[5] / pairs), nsp_pairs=int(sums[4]))
    return result
