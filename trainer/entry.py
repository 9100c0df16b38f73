"""The training entry: the core loop (:class:`trainer.train.Trainer`) composed with the research features.

As levanter's ``main/train_lm.py``: :func:`build_trainer` gives the Trainer the
:class:`~trainer.hooks.Extension` of each research option the config uses, in this order
(the order their hooks run in, after the default hooks):

* ``logging.weight_stats_every_steps``: :class:`trainer.research.weight_stats.WeightStatsExtension`;
* ``checkpoint.schedule``: :class:`trainer.research.revisions.RevisionsExtension` (scheduled
  checkpoints kept, exported and uploaded as revisions ``step{N}``);
* ``model.transfer_from``: :class:`trainer.research.transfer.TransferExtension` (starting weights).

``trainer train``, ``trainer suite`` and :func:`train` go through here; the core loop imports none
of these modules.
"""

from __future__ import annotations

from typing import Callable, Optional

from .config import TrainerConfig
from .hooks import Extension
from .research.revisions import RevisionsExtension
from .research.transfer import TransferExtension
from .research.weight_stats import WeightStatsExtension
from .train import Trainer, TrainResult


def research_extensions(cfg: TrainerConfig) -> list[Extension]:
    """The extensions of the research options ``cfg`` sets (none: the plain core loop)."""
    out: list[Extension] = []
    if cfg.logging.weight_stats_every_steps:
        out.append(WeightStatsExtension())
    if cfg.checkpoint.schedule is not None:
        out.append(RevisionsExtension())
    if cfg.model.transfer_from:
        out.append(TransferExtension(cfg.model))
    return out


def build_trainer(cfg: TrainerConfig, on_eval: Optional[Callable[[int, dict], None]] = None) -> Trainer:
    """A :class:`~trainer.train.Trainer` with the research features ``cfg`` asks for."""
    return Trainer(cfg, on_eval=on_eval, extensions=research_extensions(cfg))


def train(cfg: TrainerConfig, on_eval: Optional[Callable[[int, dict], None]] = None) -> TrainResult:
    """Train (or resume) as configured; returns the final step, metrics and eval history."""
    return build_trainer(cfg, on_eval).run()
