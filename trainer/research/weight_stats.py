"""Weight statistics: mean, standard deviation and maximum absolute value of every parameter.

``trainer stats`` compares them between checkpoints (:mod:`.stats_report`). During training,
``logging.weight_stats_every_steps: N`` writes them to the metrics sinks (TensorBoard
``weights/<path>/<stat>``, ``metrics.jsonl`` records of kind ``weights``) through a hook
(:func:`make_hook`; :class:`WeightStatsExtension`, composed by :mod:`trainer.entry`).
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from ..errors import ConfigError
from ..hooks import Extension, Hook
from ..models import get_family
from ..param_paths import flat_params, path_str  # noqa: F401  (path_str: part of this module's API)

STATS = ("mean", "std", "max_abs")


STAT_TITLES = {"mean": "mean", "std": "standard deviation", "max_abs": "max |w|"}


def leaf_stats(value: np.ndarray) -> dict[str, float]:
    a = np.asarray(value, np.float64)
    return {"mean": float(a.mean()), "std": float(a.std()), "max_abs": float(np.abs(a).max())}


def param_stats(params, vocab_size: Optional[int] = None, family=None) -> dict[str, dict[str, float]]:
    """``{path: {mean, std, max_abs}}`` of every leaf (numpy, float64); the vocabulary padding rows
    of the word embeddings and LM-head bias (``family.vocab_row_paths``; None: RoBERTa's) are left out
    when ``vocab_size`` is given."""
    rows = {"/".join(p) for p in (family or get_family(None)).vocab_row_paths}
    out = {}
    for path, leaf in flat_params(params).items():
        a = np.asarray(leaf)
        if vocab_size is not None and path in rows:
            a = a[:vocab_size]
        out[path] = leaf_stats(a)
    return out


def device_stats_fn():
    """A jitted ``params -> {path: [mean, std, max_abs]}`` (float32 on the device; for the training hook)."""
    import jax
    import jax.numpy as jnp

    def stats(params):
        flat = flat_params(params)
        return {k: jnp.stack([jnp.mean(v.astype(jnp.float32)), jnp.std(v.astype(jnp.float32)),
                              jnp.max(jnp.abs(v.astype(jnp.float32)))]) for k, v in flat.items()}

    return jax.jit(stats)


def make_hook(trainer):
    """The hook of ``logging.weight_stats_every_steps``: statistics as ``weights/<path>/<stat>`` scalars."""
    import jax

    fn = device_stats_fn()

    def weight_stats(info) -> None:
        values = jax.device_get(fn(info.params))
        record = {f"{path}/{stat}": float(v[i]) for path, v in values.items() for i, stat in enumerate(STATS)}
        trainer.monitor.write(info.step, record, "weights")

    return weight_stats


class WeightStatsExtension(Extension):
    """``logging.weight_stats_every_steps: N``: the :func:`make_hook` statistics every N steps."""

    options = ("logging.weight_stats_every_steps",)

    @classmethod
    def enabled(cls, cfg) -> bool:
        return bool(cfg.logging.weight_stats_every_steps)

    @classmethod
    def validate(cls, cfg) -> None:
        if cfg.logging.weight_stats_every_steps < 0:
            raise ConfigError("logging.weight_stats_every_steps must be >= 0 (0: off), got "
                              f"{cfg.logging.weight_stats_every_steps}")

    def hooks(self, trainer) -> list[Hook]:
        every = trainer.cfg.logging.weight_stats_every_steps
        # on every process: the statistics of sharded parameters are collective computations
        return [Hook(make_hook(trainer), every)] if every else []
