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
    key = keys.eval if cfg.training.eval_seed is None else jax.random.key(cfg.training.eval_seed)
    # global batches: each process puts its devices' rows on them
    eval_set = mask_rows(seqs, rule, key, pad_id, cfg.training.eval_batch_size)
    if nsp_labels is not None:  # the inputs carry the label column, -1 on padding rows (no NSP weight)
        n_batches, eval_batch = eval_set[0].shape[:2]
        column = np.full((n_batches * eval_batch, 1), -1, np.int32)
        column[: len(seqs), 0] = nsp_labels
        eval_set[0] = np.concatenate([eval_set[0], column.reshape(n_batches, eval_batch, 1)], axis=-1)
    eval_tokens = int(eval_set[2].sum())
    log.info("eval set: %d documents -> %d sequences, %d masked tokens", num_docs, len(seqs), eval_tokens)
    return eval_set, eval_tokens


def mask_rows(seqs: np.ndarray, rule: MaskingRule, key, pad_id: int, batch_size: int) -> list[np.ndarray]:
    """``[inputs, labels, weights]``, each ``[batches, batch_size, L]``: ``seqs`` padded with ``<pad>`` rows to
    whole batches, then masked once by ``rule`` with ``key`` (on the host; the masks depend on the padded
    shape, so the same texts, key and ``batch_size`` give the same masks)."""
    L = seqs.shape[-1]
    n_batches = -(-len(seqs) // batch_size) if len(seqs) else 0
    padded = np.full((n_batches * batch_size, L), pad_id, np.int32)
    padded[: len(seqs)] = seqs
    with jax.default_device(jax.local_devices(backend="cpu")[0]):
        arrays = jax.jit(rule.apply)(key, jnp.asarray(padded))
    return [np.asarray(a).reshape(n_batches, batch_size, L) for a in arrays]


def pack_texts(tok, texts: list[str], seq_len: int) -> np.ndarray:
    """``texts`` packed as the trainer packs its eval set (``<s>`` rows of the ``doc </s>`` stream, the last
    one padded; :meth:`trainer.data.batches.BatchStream.eval_sequences`). ``tok``: a TokenizerFns."""
    from .data.packing import pack, pad_final

    seqs, rem = pack(np.zeros((0,), np.int32), tok.encode(texts), seq_len, tok.bos_id, tok.eos_id)
    return np.concatenate([seqs, pad_final(rem, seq_len, tok.bos_id, tok.pad_id)])


def masked_lm_metrics(spec, params, tok, texts: list[str], rule: MaskingRule, seq_len: int, batch_size: int,
                      key) -> dict:
    """``{loss, accuracy, masked_tokens}`` of a model on ``texts``, exactly as the trainer evaluates its eval set:
    :func:`pack_texts`, :func:`mask_rows`, the eval step (:func:`trainer.steps.make_eval_step`), :func:`evaluate`
    (``trainer evaluate --mlm``)."""
    from .steps import make_eval_step

    eval_set = mask_rows(pack_texts(tok, texts, seq_len), rule, key, tok.pad_id, batch_size)
    step = jax.jit(make_eval_step(spec, tok.pad_id, rule.max_predictions))
    return evaluate(step, params, eval_set, jnp.asarray)


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
