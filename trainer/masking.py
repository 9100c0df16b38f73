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
computed on the selected positions only.

Whole-word masking (``training.masking: whole-word``; BETO, Google's BERT-wwm): the row is cut into
words, a word being a piece that starts one (the tokenizer marks it: ``Ġ``/``▁`` before it, no ``##``;
:meth:`trainer.data.tokenizer.TokenizerFns.continuation_ids`) and the pieces that continue it; every
special token is a word of its own. ``n = max(1, round(p m))`` tokens are wanted (``m`` maskable tokens of
the row, at most ``max_predictions``): the words are visited in a random order and each is selected whole
when it still fits in ``n`` (:func:`select_whole_words`), so the rate is counted in tokens and no word is
ever partly selected; the 80/10/10 replacement is then drawn per token.

The rate ``p`` may follow a schedule over the steps (:mod:`trainer.masking_rate`); the step's rate is
passed to :meth:`MaskingRule.apply`. The key of training step ``s`` is
``fold_in(step_key, s)``, with ``step_key`` one of the run's three keys
(:func:`trainer.steps.run_keys`), so a resumed run draws the same masks as an uninterrupted one.
A run's rule (:class:`MaskingRule`) comes from its config and tokenizer (:func:`masking_rule`).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp

from .masking_rate import RateSchedule, parse_rate

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
    continuation_ids: Optional[Sequence[int]] = None,
):
    """Return ``(inputs, labels, weights)``.

    ``selected = maskable & (u1 < p)`` (then, with ``max_predictions``, only the first
    ``max_predictions`` selected positions of each row);
    ``inputs = <mask>`` where ``selected & u2 < m``, a random id where ``selected & m <= u2 < m + r``
    (uniform over ``[0, vocab_size)`` minus ``random_exclude``: :func:`random_allowed_ids`), the
    original id elsewhere; ``labels = input_ids``; ``weights = selected`` (float32).
    ``u1, u2 ~ U[0, 1)`` and the random ids come from three independent sub-keys of ``key``.
    With ``continuation_ids`` (whole-word masking) ``selected`` is :func:`select_whole_words` instead
    (``u1``'s key orders the words).
    """
    k_select, k_action, k_random = jax.random.split(key, 3)
    shape = input_ids.shape
    can = maskable(input_ids, special_ids)
    if continuation_ids is not None:
        starts = word_starts(input_ids, can, continuation_ids)
        n = jnp.sum(can, axis=-1).astype(jnp.float32)
        target = jnp.maximum(1, jnp.round(n * mlm_probability)).astype(jnp.int32)
        if max_predictions is not None:
            target = jnp.minimum(target, max_predictions)
        selected = select_whole_words(k_select, starts, can, target)
    else:
        selected = can & (jax.random.uniform(k_select, shape) < mlm_probability)
    if max_predictions is not None and continuation_ids is None:
        selected = selected & (jnp.cumsum(selected.astype(jnp.int32), axis=-1) <= max_predictions)
    action = jax.random.uniform(k_action, shape)
    to_mask = selected & (action < mask_replace_prob)
    to_random = selected & (action >= mask_replace_prob) & (action < mask_replace_prob + random_replace_prob)
    random_ids = random_token_ids(k_random, shape, vocab_size, random_exclude, input_ids.dtype)
    inputs = jnp.where(to_mask, jnp.asarray(mask_id, input_ids.dtype), input_ids)
    inputs = jnp.where(to_random, random_ids, inputs)
    return inputs, input_ids, selected.astype(jnp.float32)


def word_starts(input_ids: jax.Array, can_mask: jax.Array, continuation_ids: Sequence[int]) -> jax.Array:
    """``True`` where a word starts: the first position, a special token, a token after a special one, and
    every token that is not in ``continuation_ids`` (so a word is a start and the continuation pieces after it)."""
    size = max([int(i) for i in continuation_ids] + [-1]) + 1
    table = jnp.zeros((max(size, 1),), bool).at[jnp.asarray(list(continuation_ids), jnp.int32)].set(True) \
        if size else jnp.zeros((1,), bool)
    cont = jnp.take(table, input_ids, mode="fill", fill_value=False) & can_mask
    special = ~can_mask
    after_special = jnp.concatenate([jnp.ones_like(special[..., :1]), special[..., :-1]], axis=-1)
    return ~cont | after_special


def select_whole_words(key: jax.Array, starts: jax.Array, can_mask: jax.Array, target: jax.Array) -> jax.Array:
    """Google's whole-word selection, per row: words (a start and the positions up to the next start) in a
    random order (a uniform priority per word from ``key``), each taken whole when the tokens already taken
    plus its length stay ``<= target``, otherwise skipped; words of unmaskable tokens are never taken.

    Vectorised: the positions are sorted by their word's priority (a stable sort, so each word stays
    contiguous and in order) and a scan over the sorted positions keeps the running count."""
    shape = starts.shape
    length_ax = shape[-1]
    pos = jnp.broadcast_to(jnp.arange(length_ax, dtype=jnp.int32), shape)
    start_pos = jax.lax.cummax(jnp.where(starts, pos, 0), axis=starts.ndim - 1)
    ends = jnp.concatenate([starts[..., 1:], jnp.ones_like(starts[..., :1])], axis=-1)
    end_pos = jax.lax.cummin(jnp.where(ends, pos, length_ax - 1), axis=starts.ndim - 1, reverse=True)
    word_len = end_pos - start_pos + 1
    prio = jnp.take_along_axis(jax.random.uniform(key, shape), start_pos, axis=-1)
    prio = jnp.where(can_mask, prio, 2.0)
    order = jnp.argsort(prio, axis=-1, stable=True)
    take = lambda a: jnp.moveaxis(jnp.take_along_axis(a, order, axis=-1), -1, 0)  # noqa: E731
    xs = (take(starts), take(word_len), take(can_mask))

    def body(carry, x):
        count, current = carry
        first, n, ok = x
        fits = first & ok & (count + n <= target)
        current = jnp.where(first, fits, current)
        count = count + jnp.where(fits, n, 0)
        return (count, current), current & ok

    init = (jnp.zeros(shape[:-1], jnp.int32), jnp.zeros(shape[:-1], bool))
    _, chosen = jax.lax.scan(body, init, xs)
    chosen = jnp.moveaxis(chosen, 0, -1)
    return jnp.take_along_axis(chosen, jnp.argsort(order, axis=-1), axis=-1)


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

    ``mlm_probability``: the rate of :meth:`apply` without a step (the eval set's); ``rate``: the rate of
    training step ``s`` (:class:`~trainer.masking_rate.RateSchedule`; None: ``mlm_probability``);
    ``continuation_ids``: whole-word masking's continuation pieces (None: token masking).

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
    rate: Optional[RateSchedule] = None
    continuation_ids: Optional[tuple] = None

    def rate_at(self, step=None):
        """The masking rate of training step ``step`` (None: ``mlm_probability``, the eval set's)."""
        if step is None or self.rate is None:
            return self.mlm_probability
        return self.rate.at(step)

    def apply(self, key, tokens, step=None):
        return mask_tokens(key, tokens, special_ids=self.special_ids, mask_id=self.mask_id,
                           vocab_size=self.vocab_size, mlm_probability=self.rate_at(step),
                           mask_replace_prob=self.mask_replace_prob, random_replace_prob=self.random_replace_prob,
                           random_exclude=self.random_exclude, max_predictions=self.max_predictions,
                           continuation_ids=self.continuation_ids)


def masking_rule(cfg: "TrainerConfig", tok) -> MaskingRule:
    """The run's masking: random replacements from the tokenizer's vocabulary (without its specials
    unless ``training.random_replace_excludes_specials`` is false), at most
    ``training.max_predictions_per_seq`` masked positions per row (None: the default bound at the
    schedule's peak rate, :func:`default_max_predictions`; 0: no cap and the LM head at every position),
    the rate of each step from ``training.mlm_probability`` (a constant or a schedule), the eval set's
    ``training.eval_mlm_probability`` (None: the schedule's final rate), whole words with
    ``training.masking: whole-word``. ``tok``: a :class:`~trainer.data.tokenizer.TokenizerFns`."""
    t = cfg.training
    rate = parse_rate(t.mlm_probability, t.max_steps)
    cap = t.max_predictions_per_seq
    if cap is None:
        cap = default_max_predictions(cfg.data.max_seq_length, rate.peak)
    exclude = tok.special_ids if t.random_replace_excludes_specials else ()
    eval_rate = t.eval_mlm_probability if t.eval_mlm_probability is not None else rate.final
    words = tuple(tok.continuation_ids()) if t.masking == "whole-word" else None
    return MaskingRule(tok.special_ids, tok.mask_id, tok.vocab_size, eval_rate, t.mask_replace_prob,
                       t.random_replace_prob, random_exclude=tuple(exclude),
                       max_predictions=min(cap, cfg.data.max_seq_length) if cap else None,
                       rate=None if rate.kind == "constant" and eval_rate == rate.final else rate,
                       continuation_ids=words)
