"""Learning-rate schedule and AdamW (no weight decay on biases and LayerNorm scales)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from .config import TrainerConfig
from .param_paths import freeze_labels


def warmup_linear_decay(step, peak: float, warmup_steps: int, decay_steps: int, end: float = 0.0):
    """Linear warm-up then linear decay::

        lr(s) = peak * s / warmup                                      s <  warmup
        lr(s) = peak + (end - peak) * (s - warmup) / (decay - warmup)  warmup <= s < decay
        lr(s) = end                                                    s >= decay

    ``s`` is the number of optimizer steps already taken (0 for the first update).
    """
    s = jnp.asarray(step, jnp.float32)
    warm = peak * s / max(warmup_steps, 1)
    frac = jnp.clip((s - warmup_steps) / max(decay_steps - warmup_steps, 1), 0.0, 1.0)
    decay = peak + (end - peak) * frac
    return jnp.where(s < warmup_steps, warm, decay)


def decay_mask(params):
    """``True`` for the leaves AdamW decays: Dense kernels and embeddings (not biases, not LayerNorm scales)."""
    return jax.tree_util.tree_map_with_path(
        lambda path, _: getattr(path[-1], "key", None) in ("kernel", "embedding"), params
    )


def make_optimizer(cfg: TrainerConfig) -> optax.GradientTransformation:
    """Clip by global norm (when > 0), then AdamW at learning rate 1.

    The train step multiplies the updates by ``warmup_linear_decay(step)``. Keeping the schedule
    outside the optimizer state makes it a pure function of the phase's step, so a phase switch
    that keeps the optimizer state still gets its own warm-up. ``adamw(lr=1) * lr`` equals
    ``adamw(lr)`` exactly (decoupled decay ``lr * wd * p`` included).
    """
    o = cfg.optimizer
    parts = []
    if o.max_grad_norm > 0:
        parts.append(optax.clip_by_global_norm(o.max_grad_norm))
    parts.append(optax.adamw(1.0, b1=o.b1, b2=o.b2, eps=o.eps, weight_decay=o.weight_decay, mask=decay_mask))
    tx = optax.chain(*parts)
    if cfg.model.freeze:  # frozen leaves (trainer.param_paths): zero update, no decay, not in the clipping norm
        patterns = list(cfg.model.freeze)
        tx = optax.multi_transform({"train": tx, "frozen": optax.set_to_zero()},
                                   lambda params: freeze_labels(params, patterns))
    return tx


def schedule_fn(cfg: TrainerConfig):
    o, s = cfg.optimizer, cfg.schedule
    return lambda step: warmup_linear_decay(step, o.learning_rate, s.warmup_steps, cfg.decay_steps, s.end_learning_rate)
