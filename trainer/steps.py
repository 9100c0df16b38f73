"""The train and eval step functions (pure functions of the state and a batch; jitted by the caller)
and the run's PRNG keys."""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from .masking import mask_tokens
from .model import RobertaForMaskedLM, RobertaSpec, mlm_loss_sums


class RunKeys(NamedTuple):
    """The three independent PRNG keys of a run: ``init, step, eval = split(key(seed), 3)``."""

    init: jax.Array  # parameter initialisation
    step: jax.Array  # parent of the training steps' keys: step s uses fold_in(step, s)
    eval: jax.Array  # the fixed masks of the held-out eval set


def run_keys(seed: int) -> RunKeys:
    """Split ``key(seed)`` once into the init, per-step and eval keys (pure: resume recomputes them)."""
    return RunKeys(*jax.random.split(jax.random.key(seed), 3))


class MaskingRule(NamedTuple):
    special_ids: tuple
    mask_id: int
    vocab_size: int
    mlm_probability: float
    mask_replace_prob: float
    random_replace_prob: float

    def apply(self, key, tokens):
        return mask_tokens(key, tokens, special_ids=self.special_ids, mask_id=self.mask_id,
                           vocab_size=self.vocab_size, mlm_probability=self.mlm_probability,
                           mask_replace_prob=self.mask_replace_prob, random_replace_prob=self.random_replace_prob)


def make_train_step(spec: RobertaSpec, tx: optax.GradientTransformation, schedule: Callable, rule: MaskingRule,
                    step_key: jax.Array):
    """``step(params, opt_state, step, tokens[accum, micro, L]) -> (params, opt_state, metrics)``.

    Per step key ``k = fold_in(step_key, step)`` (``step_key``: :attr:`RunKeys.step`); ``split(k)[0]``
    masks the whole global batch (seen as ``[accum * micro, L]``, so the masks do not depend on
    the accumulation), micro-batch ``i`` drops out with ``fold_in(split(k)[1], i)``. Gradients are
    summed over the micro-batches and divided by the total number of masked tokens, so the update
    is the gradient of the mean masked-LM loss over the global batch whatever the accumulation and
    the device count. The learning rate ``schedule(step)`` scales AdamW's unit-rate update.
    """
    model = RobertaForMaskedLM(spec)

    def micro_loss(params, inputs, labels, weights, dropout_key):
        logits = model.apply({"params": params}, inputs, deterministic=False, rngs={"dropout": dropout_key})
        loss_sum, count, correct = mlm_loss_sums(logits, labels, weights)
        return loss_sum, (count, correct)

    grad_fn = jax.value_and_grad(micro_loss, has_aux=True)

    def train_step(params, opt_state, step, tokens):
        mask_key, dropout_root = jax.random.split(jax.random.fold_in(step_key, step))
        flat = tokens.reshape(-1, tokens.shape[-1])
        masked = [a.reshape(tokens.shape) for a in rule.apply(mask_key, flat)]

        def body(carry, xs):
            grads, sums = carry
            inputs, labels, weights, i = xs
            dropout_key = jax.random.fold_in(dropout_root, i)
            (loss_sum, (count, correct)), g = grad_fn(params, inputs, labels, weights, dropout_key)
            grads = jax.tree.map(jnp.add, grads, g)
            return (grads, sums + jnp.stack([loss_sum, count, correct])), None

        zeros = jax.tree.map(jnp.zeros_like, params)
        (grads, sums), _ = jax.lax.scan(body, (zeros, jnp.zeros(3, jnp.float32)),
                                        (*masked, jnp.arange(tokens.shape[0])))
        loss_sum, count, correct = sums[0], sums[1], sums[2]
        denom = jnp.maximum(count, 1.0)
        grads = jax.tree.map(lambda g: g / denom, grads)
        grad_norm = optax.tree.norm(grads)
        updates, opt_state = tx.update(grads, opt_state, params)
        lr = schedule(step)
        updates = jax.tree.map(lambda u: (lr * u).astype(u.dtype), updates)
        params = optax.apply_updates(params, updates)
        metrics = {"loss": loss_sum / denom, "accuracy": correct / denom, "grad_norm": grad_norm,
                   "learning_rate": lr, "masked_tokens": count}
        return params, opt_state, metrics

    return train_step


def make_eval_step(spec: RobertaSpec, pad_id: int):
    """``eval(params, inputs, labels, weights) -> [loss_sum, count, correct]`` (deterministic)."""
    model = RobertaForMaskedLM(spec)

    def eval_step(params, inputs, labels, weights):
        logits = model.apply({"params": params}, inputs, attention_mask=(labels != pad_id), deterministic=True)
        return jnp.stack(mlm_loss_sums(logits, labels, weights))

    return eval_step
