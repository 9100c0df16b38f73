"""What every model family's network shares: the attention choice, the vocabulary-padding mask and the
masked-LM loss over the gathered prediction positions.

Pure ``jax`` functions (no Linen module): a family's module (:mod:`.roberta`, :mod:`.modernbert`)
calls them, and the train and eval steps (:mod:`trainer.steps`) compute the loss with them.
"""

from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp


def resolve_attention_impl(requested: str, dtype: str, head_dim: int, backend: Optional[str] = None) -> Optional[str]:
    """``auto`` -> ``"cudnn"`` on NVIDIA GPUs for bf16/fp16 with head_dim % 8 == 0, else ``"xla"``."""
    if requested != "auto":
        return requested
    backend = backend or jax.default_backend()
    if backend == "gpu" and dtype in ("bfloat16", "float16") and head_dim % 8 == 0:
        return "cudnn"
    return "xla"


def mask_padded_vocab(logits: jax.Array, vocab_size: int) -> jax.Array:
    """Logits of the ids ``>= vocab_size`` (vocabulary padding) set to the dtype's lowest value.

    They are never predicted (argmax, softmax) and get no gradient.
    """
    if logits.shape[-1] == vocab_size:
        return logits
    real = jnp.arange(logits.shape[-1]) < vocab_size
    return jnp.where(real, logits, jnp.finfo(logits.dtype).min)


def prediction_positions(weights: jax.Array, max_predictions: int):
    """``[batch, max_predictions]`` indices: each row's positions with a weight, in order, then others.

    With at most ``max_predictions`` weighted positions per row (masking caps them), gathering the
    hidden states, labels and weights at these indices keeps every position with a loss.
    """
    order = jnp.argsort(weights <= 0, axis=-1, stable=True)
    return order[..., :max_predictions].astype(jnp.int32)


def mlm_loss_sums(logits: jax.Array, labels: jax.Array, weights: jax.Array):
    """Sums for the masked-LM metrics over the tokens with weight 1.

    Returns ``(sum_i w_i * CE_i, sum_i w_i, sum_i w_i * [argmax logits_i == label_i])``; the loss
    is ``loss_sum / count`` and the accuracy ``correct / count``. Summing first (instead of
    averaging per device or micro-batch) makes the result independent of how the batch is split.
    """
    logits = logits.astype(jnp.float32)
    ce = -jnp.take_along_axis(jax.nn.log_softmax(logits, axis=-1), labels[..., None], axis=-1)[..., 0]
    w = weights.astype(jnp.float32)
    correct = (jnp.argmax(logits, axis=-1) == labels).astype(jnp.float32)
    # where, not a product: a meaningless (even NaN) output at a weight-0 position adds nothing
    return jnp.sum(jnp.where(w > 0, ce * w, 0.0)), jnp.sum(w), jnp.sum(jnp.where(w > 0, correct * w, 0.0))
