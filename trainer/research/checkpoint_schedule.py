"""Checkpoint schedules (extra saves at fixed steps) and the checks of the research options.

``checkpoint.schedule: earlyberts`` is the EarlyBERTs pattern (Müller-Eberstein et al., 2023):
31 checkpoints, step 10, every 100 from 100 to 1 000, every 1 000 from 2 000 to 20 000, and
40 000. ``checkpoint.schedule: [10, 100, 250]`` lists the steps explicitly (strictly increasing,
positive). Scheduled steps are saved in addition to the regular ``checkpoint.every_steps`` saves,
and the ``checkpoint.keep`` policy never deletes them.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Optional, Union

from ..errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from ..config import TrainerConfig

#: The EarlyBERTs checkpoint steps (31 of them).
EARLYBERTS_STEPS: tuple[int, ...] = (
    (10,) + tuple(range(100, 1001, 100)) + tuple(range(2000, 20001, 1000)) + (40000,)
)

#: Named schedules accepted by ``checkpoint.schedule``.
NAMED_SCHEDULES = {"earlyberts": EARLYBERTS_STEPS}


def resolve_schedule(value: Union[None, str, list[int]], max_steps: Optional[int] = None) -> list[int]:
    """The scheduled steps of ``checkpoint.schedule`` (those after ``max_steps`` dropped when given).

    A string is a named schedule or a comma-separated list of steps; raises ConfigError for an
    unknown name and for steps that are not positive and strictly increasing.
    """
    if value is None:
        return []
    if isinstance(value, str):
        name = value.strip().lower()
        if name in NAMED_SCHEDULES:
            steps = list(NAMED_SCHEDULES[name])
        else:
            try:
                steps = [int(v) for v in name.replace(" ", "").split(",") if v]
            except ValueError:
                raise ConfigError(f"checkpoint.schedule: unknown schedule {value!r}; use one of "
                                  f"{', '.join(NAMED_SCHEDULES)} or a list of steps, e.g. [10, 100, 1000]") from None
    else:
        steps = [int(v) for v in value]
    if not steps:
        raise ConfigError("checkpoint.schedule is empty; leave it unset (null) for no scheduled checkpoints")
    bad = [s for s in steps if s <= 0]
    if bad:
        raise ConfigError(f"checkpoint.schedule: steps must be positive (optimizer steps done, >= 1), got {bad}")
    for a, b in zip(steps, steps[1:]):
        if b <= a:
            raise ConfigError(f"checkpoint.schedule must be strictly increasing: {b} follows {a}")
    if max_steps is not None:
        steps = [s for s in steps if s <= max_steps]
    return steps


def revision_name(step: int) -> str:
    """The Hub branch of a scheduled checkpoint: ``step{N}`` (as EarlyBERTs' ``revision=step7000``)."""
    return f"step{step}"


def validate_research(cfg: "TrainerConfig") -> None:
    """Config checks of the schedule, transfer, freeze and weight-statistics options."""
    m, c = cfg.model, cfg.checkpoint
    resolve_schedule(c.schedule)
    if cfg.logging.weight_stats_every_steps < 0:
        raise ConfigError("logging.weight_stats_every_steps must be >= 0 (0: off), got "
                          f"{cfg.logging.weight_stats_every_steps}")
    for pattern in m.freeze:
        try:
            re.compile(pattern)
        except re.error as e:
            raise ConfigError(f"model.freeze: {pattern!r} is not a regular expression: {e}") from None
    if m.transfer_from:
        others = [k for k, v in (("model.init_from_transformers", m.init_from_transformers),
                                 ("checkpoint.init_from", c.init_from)) if v]
        if others:
            raise ConfigError(f"model.transfer_from and {' and '.join(others)} both choose the starting weights; "
                              "set only one")
    elif m.reset_position_embeddings:
        raise ConfigError("model.reset_position_embeddings needs model.transfer_from (the weights to start from)")
