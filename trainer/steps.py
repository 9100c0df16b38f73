"""The train and eval step functions (pure functions of the state and a batch; jitted by the caller)
and the run's PRNG keys."""

from __future__ import annotations

from typing import Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import optax

from .data.nsp import token_types
from .masking import MaskingRule
from .models import family_of
from .models.layers import mlm_loss_sums, prediction_positions


class RunKeys(NamedTuple):
    """The three independent PRNG keys of a run: ``init, step, eval = split(key(seed), 3)``."""

    init: jax.Array  # parameter initialisation
    step: jax.Array  # parent of the training steps' keys: step s uses fold_in(step, s)
    eval: jax.Array  # the fixed masks of the held-out eval set


def run_keys(seed: int) -> RunKeys:
    """Split ``key(seed)`` once into the init, per-step and eval keys (pure: resume recomputes them)."""
    return RunKeys(*jax.random.split(jax.random.key(seed), 3))


def gather_predictions(labels, weights, max_predictions: Optional[int]):
    """``(positions, labels, weights)`` at each row's masked positions (``max_predictions`` of them).

    ``positions`` is None when ``max_predictions`` is None (the head runs everywhere); otherwise
    ``[..., max_predictions]`` (:func:`~trainer.models.layers.prediction_positions`), with the labels and
    weights gathered there: the loss over them is the full-head loss when no row has more
    masked positions (the masking rule caps them).
    """
    if max_predictions is None:
        return None, labels, weights
    positions = prediction_positions(weights, max_predictions)
    take = lambda a: jnp.take_along_axis(a, positions, axis=-1)  # noqa: E731
    return positions, take(labels), take(weights)


def make_train_step(spec, tx: optax.GradientTransformation, schedule: Callable, rule: MaskingRule,
                    step_key: jax.Array, skip_nonfinite: bool = False, nsp_sep_id: Optional[int] = None):
    """``step(params, opt_state, step, tokens[accum, micro, L]) -> (params, opt_state, metrics)``.

    ``metrics["nonfinite"]`` is 1.0 when the loss or the gradient norm is not finite (else 0.0);
    with ``skip_nonfinite`` such a step returns the params and optimizer state it was given.

    Per step key ``k = fold_in(step_key, step)`` (``step_key``: :attr:`RunKeys.step`); ``split(k)[0]``
    masks the whole global batch (seen as ``[accum * micro, L]``, so the masks do not depend on
    the accumulation) at the step's rate (``rule.rate_at(step)``, logged as ``mlm_probability``),
    micro-batch ``i`` drops out with ``fold_in(split(k)[1], i)``. Gradients are
    summed over the micro-batches and divided by the total number of masked tokens, so the update
    is the gradient of the mean masked-LM loss over the global batch whatever the accumulation and
    the device count. The learning rate ``schedule(step)`` scales AdamW's unit-rate update.

    The network is ``spec``'s family's (:mod:`trainer.models`); it sees the unmasked rows too
    (``ModelFamily.packed_inputs``: e.g. ModernBERT's document ids of the packed rows).

    ``nsp_sep_id`` (``training.objective: mlm+nsp``): the rows are ``[CLS] A [SEP] B [SEP]`` pairs with their
    next-sentence label in a last column (:mod:`trainer.data.nsp`); the token types follow from the
    ``[SEP]`` ids, and the loss is BERT's, ``mean masked-LM loss + mean next-sentence loss`` over the global
    batch (``metrics["nsp_loss"]``, ``["nsp_accuracy"]``; ``metrics["loss"]`` stays the masked-LM loss).
    """
    family = family_of(spec)
    nsp = nsp_sep_id is not None

    def micro_loss(params, inputs, source, positions, labels, weights, dropout_key, nsp_labels, nsp_scale):
        if not nsp:
            logits = family.apply_mlm(spec, params, inputs, deterministic=False, dropout_key=dropout_key,
                                      predict_positions=positions, source_tokens=source)
            loss_sum, count, correct = mlm_loss_sums(logits, labels, weights)
            return loss_sum, jnp.stack([loss_sum, count, correct])
        logits, nsp_logits = family.apply_pretraining(spec, params, inputs, token_types(source, nsp_sep_id),
                                                      deterministic=False, dropout_key=dropout_key,
                                                      predict_positions=positions)
        loss_sum, count, correct = mlm_loss_sums(logits, labels, weights)
        nsp_sum, pairs, nsp_correct = mlm_loss_sums(nsp_logits, nsp_labels, jnp.ones(nsp_labels.shape))
        # divided by the masked tokens below: the gradient of mean MLM loss + mean NSP loss
        return loss_sum + nsp_scale * nsp_sum, jnp.stack([loss_sum, count, correct, nsp_sum, pairs, nsp_correct])

    grad_fn = jax.value_and_grad(micro_loss, has_aux=True)

    def train_step(params, opt_state, step, tokens):
        mask_key, dropout_root = jax.random.split(jax.random.fold_in(step_key, step))
        nsp_labels = tokens[..., -1] if nsp else jnp.zeros(tokens.shape[:2], jnp.int32)
        if nsp:
            tokens = tokens[..., :-1]
        flat = tokens.reshape(-1, tokens.shape[-1])
        inputs, labels, weights = rule.apply(mask_key, flat, step)
        positions, labels, weights = gather_predictions(labels, weights, rule.max_predictions)
        # NSP: mean over the pairs, scaled to the masked-token denominator of the summed gradients
        nsp_scale = jnp.maximum(jnp.sum(weights.astype(jnp.float32)), 1.0) / flat.shape[0] if nsp else 0.0
        micro = lambda a: None if a is None else a.reshape(tokens.shape[:2] + a.shape[1:])  # noqa: E731
        masked = (micro(inputs), tokens, micro(positions), micro(labels), micro(weights), nsp_labels)
        n_sums = 6 if nsp else 3

        def body(carry, xs):
            grads, sums = carry
            inputs, source, positions, labels, weights, nsp_labels, i = xs
            dropout_key = jax.random.fold_in(dropout_root, i)
            (_, micro_sums), g = grad_fn(params, inputs, source, positions, labels, weights, dropout_key,
                                         nsp_labels, nsp_scale)
            grads = jax.tree.map(jnp.add, grads, g)
            return (grads, sums + micro_sums), None

        zeros = jax.tree.map(jnp.zeros_like, params)
        (grads, sums), _ = jax.lax.scan(body, (zeros, jnp.zeros(n_sums, jnp.float32)),
                                        (*masked, jnp.arange(tokens.shape[0])))
        loss_sum, count, correct = sums[0], sums[1], sums[2]
        denom = jnp.maximum(count, 1.0)
        grads = jax.tree.map(lambda g: g / denom, grads)
        grad_norm = optax.tree.norm(grads)
        updates, new_opt_state = tx.update(grads, opt_state, params)
        lr = schedule(step)
        updates = jax.tree.map(lambda u: (lr * u).astype(u.dtype), updates)
        new_params = optax.apply_updates(params, updates)
        loss = loss_sum / denom
        finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
        if skip_nonfinite:  # keep the state as it was: the update of a non-finite step is dropped
            keep = lambda new, old: jnp.where(finite, new, old)  # noqa: E731
            new_params = jax.tree.map(keep, new_params, params)
            new_opt_state = jax.tree.map(keep, new_opt_state, opt_state)
        metrics = {"loss": loss, "accuracy": correct / denom, "grad_norm": grad_norm,
                   "learning_rate": lr, "masked_tokens": count,
                   "mlm_probability": jnp.asarray(rule.rate_at(step), jnp.float32),
                   "nonfinite": 1.0 - finite.astype(jnp.float32)}
        if nsp:
            metrics.update(nsp_loss=sums[3] / sums[4], nsp_accuracy=sums[5] / sums[4])
        return new_params, new_opt_state, metrics

    return train_step


def make_eval_step(spec, pad_id: int, max_predictions: Optional[int] = None, nsp_sep_id: Optional[int] = None,
                   per_row: bool = False):
    """``eval(params, inputs, labels, weights) -> [loss_sum, count, correct]`` (deterministic); with
    ``per_row`` also the same three sums of each row, ``[batch, 3]`` (the study's Multi-Bootstrap resamples them).

    The attention mask is ``labels != pad`` (eval rows are right-padded); rows of padding only
    have their weights zeroed. With ``max_predictions`` the head runs on the gathered masked
    positions, as in training (same sums as the full head when no row has more). With ``nsp_sep_id``
    the inputs carry the next-sentence label in a last column (-1: a padding row) and the sums go on
    with ``[nsp_loss_sum, pairs, nsp_correct]``.
    """
    family = family_of(spec)

    def eval_step(params, inputs, labels, weights):
        attention_mask = labels != pad_id
        source = labels  # the unmasked rows
        weights = jnp.where(jnp.any(attention_mask, axis=-1, keepdims=True), weights, 0.0)
        positions, labels, weights = gather_predictions(labels, weights, max_predictions)
        if nsp_sep_id is None:
            logits = family.apply_mlm(spec, params, inputs, attention_mask=attention_mask, deterministic=True,
                                      predict_positions=positions, source_tokens=source)
            sums = jnp.stack(mlm_loss_sums(logits, labels, weights))
            if per_row:
                return sums, jnp.stack(jax.vmap(mlm_loss_sums)(logits, labels, weights), axis=-1)
            return sums
        if per_row:
            raise ValueError("per-row sums are kept for the masked-LM objective only")
        nsp_labels, inputs = inputs[:, -1], inputs[:, :-1]
        logits, nsp_logits = family.apply_pretraining(spec, params, inputs, token_types(source, nsp_sep_id),
                                                      attention_mask=attention_mask, predict_positions=positions)
        nsp_sums = mlm_loss_sums(nsp_logits, jnp.maximum(nsp_labels, 0), (nsp_labels >= 0).astype(jnp.float32))
        return jnp.stack([*mlm_loss_sums(logits, labels, weights), *nsp_sums])

    return eval_step
