"""Checkpoint schedules: extra saves at fixed steps.

``checkpoint.schedule: earlyberts`` is the EarlyBERTs pattern (Müller-Eberstein et al., 2023):
31 checkpoints, step 10, every 100 from 100 to 1 000, every 1 000 from 2 000 to 20 000, and
40 000. ``checkpoint.schedule: [10, 100, 250]`` lists the steps explicitly (strictly increasing,
positive). Scheduled steps are saved in addition to the regular ``checkpoint.every_steps`` saves,
and the ``checkpoint.keep`` policy never deletes them.
"""

from __future__ import annotations

from typing import Optional, Union

from ..errors import ConfigError

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
