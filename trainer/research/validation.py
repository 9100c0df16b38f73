"""Config checks of the research options: checkpoint schedule, transfer, freeze, weight statistics.

Run by :func:`trainer.config_loading.load_config` after :func:`trainer.config.validate` (the core
fields), so that ``config.py`` knows nothing of the research features.
"""

from __future__ import annotations

import re

from ..config import TrainerConfig
from ..errors import ConfigError
from .checkpoint_schedule import resolve_schedule


def validate_research(cfg: TrainerConfig) -> None:
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
