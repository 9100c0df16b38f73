"""Dynamic masking for masked-LM training (pure JAX functions of a PRNG key).

BERT/RoBERTa rule: every maskable token is selected with probability ``p`` (0.15); a selected
token is replaced by ``<mask>`` with probability ``m`` (0.8), by a uniformly random vocabulary
token with probability ``r`` (0.1) and left unchanged otherwise (``1 - m - r``). Special tokens
(``<s>``, ``</s>``, ``<pad>``, ...) are never selected, and the random replacements are drawn
uniformly from the tokenizer's real vocabulary without the special tokens (as fairseq does: a
random ``<pad>`` would shift the RoBERTa position ids of the rest of the row; the rows a model
pads its vocabulary with are never drawn). At most ``max_predictions`` positions per row are
selected when it is set (the first ones in the row, as in the original BERT's
``max_predictions_per_seq``; the default bound makes a cap practically never bite). The loss is
computed on the selected positions only. The key of training step ``s`` is
``fold_in(step_key, s)``, with ``step_key`` one of the run's three keys
(:func:`trainer.steps.run_keys`), so a resumed run draws the same masks as an uninterrupted one.
A run's rule (:class:`MaskingRule`) comes from its config and tokenizer (:func:`masking_rule`).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp

if TYPE_CHECKING:  # pragma: no cover
    from .config import TrainerConfig


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
    random_exclude: Sequence[int] = (),
    max_predictions: Optional[int] = None,
):
    """Return ``(inputs, labels, weights)``.

    ``selected = maskable & (u1 < p)`` (then, with ``max_predictions``, only the first
    ``max_predictions`` selected positions of each row);
    ``inputs = <mask>`` where ``selected & u2 < m``, a random id where ``selected & m <= u2 < m + r``
    (uniform over ``[0, vocab_size)`` minus ``random_exclude``: :func:`random_allowed_ids`), the
    original id elsewhere; ``labels = input_ids``; ``weights = selected`` (float32).
    ``u1, u2 ~ U[0, 1)`` and the random ids come from three independent sub-keys of ``key``.
    """
    k_select, k_action, k_random = jax.random.split(key, 3)
    shape = input_ids.shape
    selected = maskable(input_ids, special_ids) & (jax.random.uniform(k_select, shape) < mlm_probability)
    if max_predictions is not None:
        selected = selected & (jnp.cumsum(selected.astype(jnp.int32), axis=-1) <= max_predictions)
    action = jax.random.uniform(k_action, shape)
    to_mask = selected & (action < mask_replace_prob)
    to_random = selected & (action >= mask_replace_prob) & (action < mask_replace_prob + random_replace_prob)
    random_ids = random_token_ids(k_random, shape, vocab_size, random_exclude, input_ids.dtype)
    inputs = jnp.where(to_mask, jnp.asarray(mask_id, input_ids.dtype), input_ids)
    inputs = jnp.where(to_random, random_ids, inputs)
    return inputs, input_ids, selected.astype(jnp.float32)


def random_token_ids(key: jax.Array, shape, vocab_size: int, exclude: Sequence[int] = (), dtype=jnp.int32):
    """Ids drawn uniformly from ``[0, vocab_size)`` minus ``exclude``.

    ``r ~ U{0, ..., n_allowed - 1}`` is mapped to the ``r``-th allowed id by stepping over the
    excluded ids in increasing order (``r += r >= e`` for each), elementwise and without a table.
    """
    excluded = sorted({int(e) for e in exclude if 0 <= int(e) < vocab_size})
    n_allowed = vocab_size - len(excluded)
    if n_allowed < 1:
        raise ValueError(f"no token id left to draw from [0, {vocab_size}) without {excluded}")
    ids = jax.random.randint(key, shape, 0, n_allowed, dtype=dtype)
    for e in excluded:
        ids = ids + (ids >= e).astype(dtype)
    return ids


def default_max_predictions(seq_len: int, mlm_probability: float) -> int:
    """``ceil(L p + 6 sqrt(L p (1 - p)))`` rounded up to a multiple of 8, at most ``L``.

    Six standard deviations above the mean number of selected tokens of a row (fewer tokens are
    maskable than ``L``, so the bound is looser still): a row selecting more has a probability
    below 1e-9. RoBERTa at 128 and p = 0.15: 48 (19.2 expected); at 512: 128 (76.8 expected).
    """
    mean = seq_len * mlm_probability
    bound = math.ceil(mean + 6.0 * math.sqrt(mean * (1.0 - mlm_probability)))
    return min(seq_len, -(-bound // 8) * 8)


class MaskingRule(NamedTuple):
    """The arguments of :func:`mask_tokens` (a run's: :func:`masking_rule`).

    ``vocab_size`` bounds the random replacements: the tokenizer's real vocabulary (not the
    model's padded one); ``random_exclude``: ids never drawn (the specials by default);
    ``max_predictions``: masked positions per row at most, and the LM head's static width
    (None: no cap, the head runs at every position).
    """

    special_ids: tuple
    mask_id: int
    vocab_size: int
    mlm_probability: float
    mask_replace_prob: float
    random_replace_prob: float
    random_exclude: tuple = ()
    max_predictions: Optional[int] = None

    def apply(self, key, tokens):
        return mask_tokens(key, tokens, special_ids=self.special_ids, mask_id=self.mask_id,
                           vocab_size=self.vocab_size, mlm_probability=self.mlm_probability,
                           mask_replace_prob=self.mask_replace_prob, random_replace_prob=self.random_replace_prob,
                           random_exclude=self.random_exclude, max_predictions=self.max_predictions)


def masking_rule(cfg: "TrainerConfig", tok) -> MaskingRule:
    """The run's masking: random replacements from the tokenizer's vocabulary (without its specials
    unless ``training.random_replace_excludes_specials`` is false), at most
    ``training.max_predictions_per_seq`` masked positions per row (None: the default bound,
    :func:`default_max_predictions`; 0: no cap and the LM head at every position).
    ``tok``: a :class:`~trainer.data.tokenizer.TokenizerFns`."""
    t = cfg.training
    cap = t.max_predictions_per_seq
    if cap is None:
        cap = default_max_predictions(cfg.data.max_seq_length, t.mlm_probability)
    exclude = tok.special_ids if t.random_replace_excludes_specials else ()
    return MaskingRule(tok.special_ids, tok.mask_id, tok.vocab_size, t.mlm_probability, t.mask_replace_prob,
                       t.random_replace_prob, random_exclude=tuple(exclude),
                       max_predictions=min(cap, cfg.data.max_seq_length) if cap else None)
