"""Dynamic masking for masked-LM training (pure JAX functions of a PRNG key).

BERT/RoBERTa rule: every maskable token is selected with probability ``p`` (0.15); a selected
token is replaced by ``<mask>`` with probability ``m`` (0.8), by a uniformly random vocabulary
token with probability ``r`` (0.1) and left unchanged otherwise (``1 - m - r``). Special tokens
(``<s>``, ``</s>``, ``<pad>``, ...) are never selected. The loss is computed on the selected
positions only. The key of training step ``s`` is ``fold_in(step_key, s)``, with ``step_key`` one
of the run's three keys (:func:`trainer.steps.run_keys`), so a resumed run draws the same masks as
an uninterrupted one.
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp


def maskable(input_ids: jax.Array, special_ids: Sequence[int]) -> jax.Array:
    """``True`` where the token is not one of ``special_ids`` (padding included)."""
    special = jnp.asarray(list(special_ids), dtype=input_ids.dtype)
    return ~jnp.isin(input_ids, special)


def mask_tokens(
    key: jax.Array,
    input_ids: jax.Array,
    *,
    special_ids: Sequence[int],
    mask_id: int,
    vocab_size: int,
    mlm_probability: float = 0.15,
    mask_replace_prob: float = 0.8,
    random_replace_prob: float = 0.1,
):
    """Return ``(inputs, labels, weights)``.

    ``selected = maskable & (u1 < p)``;
    ``inputs = <mask>`` where ``selected & u2 < m``, a random id in ``[0, vocab_size)`` where
    ``selected & m <= u2 < m + r``, the original id elsewhere; ``labels = input_ids``;
    ``weights = selected`` (float32). ``u1, u2 ~ U[0, 1)`` and the random ids come from three
    independent sub-keys of ``key``.
    """
    k_select, k_action, k_random = jax.random.split(key, 3)
    shape = input_ids.shape
    selected = maskable(input_ids, special_ids) & (jax.random.uniform(k_select, shape) < mlm_probability)
    action = jax.random.uniform(k_action, shape)
    to_mask = selected & (action < mask_replace_prob)
    to_random = selected & (action >= mask_replace_prob) & (action < mask_replace_prob + random_replace_prob)
    random_ids = jax.random.randint(k_random, shape, 0, vocab_size, dtype=input_ids.dtype)
    inputs = jnp.where(to_mask, jnp.asarray(mask_id, input_ids.dtype), input_ids)
    inputs = jnp.where(to_random, random_ids, inputs)
    return inputs, input_ids, selected.astype(jnp.float32)
