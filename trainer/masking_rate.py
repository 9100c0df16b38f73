"""The masking rate of a run: ``training.mlm_probability`` as a constant or a schedule over the steps.

A constant ``p`` (BERT/RoBERTa's 0.15) or a mapping with ``schedule``:

* ``linear``: ``p(s) = start + (end - start) min(s / S, 1)`` ("Dynamic Masking Rate Schedules for MLM
  Pretraining": 0.30 -> 0.15);
* ``cosine``: ``p(s) = end + (start - end) (1 + cos(pi min(s / S, 1))) / 2``;
* ``piecewise``: ``p(s) = values[i]`` for ``boundaries[i-1] <= s < boundaries[i]`` (mmBERT's
  0.30 -> 0.15 -> 0.05 phases), ``len(values) = len(boundaries) + 1``;

with ``S = steps`` (default ``training.max_steps``). The rate is a pure function of the step
(:meth:`RateSchedule.at`, traced inside the jitted train step), so a resumed run masks exactly as an
uninterrupted one. The LM head is sized for :attr:`RateSchedule.peak`; the eval set is masked at
:attr:`RateSchedule.final` (``training.eval_mlm_probability`` when set).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Optional, Union

import jax.numpy as jnp

from .errors import ConfigError

KINDS = ("linear", "cosine", "piecewise")


@dataclasses.dataclass(frozen=True)
class RateSchedule:
    """A parsed ``training.mlm_probability``: ``kind`` (``constant`` or one of :data:`KINDS`), the rates
    ``values`` (``[p]``; ``[start, end]``; the pieces' rates) and ``boundaries`` (``[S]`` or the piece starts)."""

    kind: str
    values: tuple
    boundaries: tuple = ()

    @property
    def peak(self) -> float:
        return max(self.values)

    @property
    def final(self) -> float:
        return self.values[-1]

    def at(self, step):
        """``p(step)`` (a float32 scalar; ``step`` a Python or traced integer)."""
        v = self.values
        if self.kind == "constant":
            return jnp.float32(v[0])
        s = jnp.asarray(step, jnp.float32)
        if self.kind == "piecewise":
            index = jnp.sum(s >= jnp.asarray(self.boundaries, jnp.float32))
            return jnp.asarray(v, jnp.float32)[index]
        frac = jnp.clip(s / float(self.boundaries[0]), 0.0, 1.0)
        if self.kind == "linear":
            return jnp.float32(v[0]) + (jnp.float32(v[1]) - jnp.float32(v[0])) * frac
        return jnp.float32(v[1]) + (jnp.float32(v[0]) - jnp.float32(v[1])) * 0.5 * (1.0 + jnp.cos(jnp.pi * frac))


def _rate(value, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < float(value) < 1.0:
        raise ConfigError(f"{key} must be a rate in (0, 1), got {value!r}")
    return float(value)


def parse_rate(value: Union[float, dict], max_steps: int, key: str = "training.mlm_probability") -> RateSchedule:
    """``value`` (a number or a schedule mapping) -> :class:`RateSchedule`; a ConfigError naming the key and
    the valid range for anything else."""
    if not isinstance(value, dict):
        return RateSchedule("constant", (_rate(value, key),))
    kind = value.get("schedule")
    allowed = {"linear": {"schedule", "start", "end", "steps"}, "cosine": {"schedule", "start", "end", "steps"},
               "piecewise": {"schedule", "values", "boundaries"}}
    if kind not in KINDS:
        raise ConfigError(f"{key}.schedule must be one of {', '.join(KINDS)}, got {kind!r} "
                          "(or give training.mlm_probability a number)")
    unknown = sorted(set(value) - allowed[kind])
    if unknown:
        raise ConfigError(f"{key}: unknown key {unknown[0]!r} for a {kind} schedule; valid keys: "
                          f"{', '.join(sorted(allowed[kind]))}")
    if kind == "piecewise":
        values, bounds = value.get("values"), value.get("boundaries")
        if not isinstance(values, list) or not isinstance(bounds, list) or len(values) != len(bounds) + 1:
            raise ConfigError(f"{key}: a piecewise schedule needs values (n rates) and boundaries (n - 1 steps), "
                              f"got values={values!r}, boundaries={bounds!r}")
        rates = tuple(_rate(v, f"{key}.values[{i}]") for i, v in enumerate(values))
        for i, b in enumerate(bounds):
            if isinstance(b, bool) or not isinstance(b, int) or b < 1 or (i and b <= bounds[i - 1]):
                raise ConfigError(f"{key}.boundaries must be steps >= 1, strictly increasing; got {bounds!r}")
        return RateSchedule(kind, rates, tuple(bounds))
    for name in ("start", "end"):
        if name not in value:
            raise ConfigError(f"{key}.{name} is missing: a {kind} schedule goes from start to end, e.g. "
                              f"{{schedule: {kind}, start: 0.30, end: 0.15}}")
    steps = value.get("steps", max_steps)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ConfigError(f"{key}.steps must be a number of steps >= 1 (default training.max_steps), got {steps!r}")
    return RateSchedule(kind, (_rate(value["start"], f"{key}.start"), _rate(value["end"], f"{key}.end")), (steps,))


def check_capacity(schedule: RateSchedule, seq_len: int, max_predictions: Optional[int],
                   key: str = "training.mlm_probability") -> None:
    """ConfigError when ``training.max_predictions_per_seq`` (set, not 0) cannot hold the mean number of masked
    tokens of a row at the schedule's peak rate (``ceil(peak L) > max_predictions``)."""
    if not max_predictions:
        return
    need = math.ceil(schedule.peak * seq_len)
    if need > max_predictions:
        raise ConfigError(
            f"{key} peaks at {schedule.peak}: {need} masked tokens per row of data.max_seq_length={seq_len} on "
            f"average, more than training.max_predictions_per_seq={max_predictions} holds; raise it to at least "
            f"{need} (or null: sized for the peak), or lower the rate")
