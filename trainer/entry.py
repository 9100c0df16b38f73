"""The training entry: the core loop (:class:`trainer.train.Trainer`) composed with the research features.

As levanter's ``main/train_lm.py``: :func:`build_trainer` gives the Trainer the
:class:`~trainer.hooks.Extension` of each registered research feature (:data:`trainer.research.EXTENSIONS`:
weight statistics, checkpoint-schedule revisions, transfer) that the config enables, in the
registry's order (the order their hooks run in, after the default hooks).

``trainer train``, ``trainer suite`` and :func:`train` go through here; the core loop imports none
of these modules.
"""

from __future__ import annotations

from typing import Callable, Optional

from .config import TrainerConfig
from .research import research_extensions
from .train import Trainer, TrainResult

__all__ = ["build_trainer", "research_extensions", "train"]


def build_trainer(cfg: TrainerConfig, on_eval: Optional[Callable[[int, dict], None]] = None) -> Trainer:
    """A :class:`~trainer.train.Trainer` with the research features ``cfg`` asks for."""
    return Trainer(cfg, on_eval=on_eval, extensions=research_extensions(cfg))


def train(cfg: TrainerConfig, on_eval: Optional[Callable[[int, dict], None]] = None) -> TrainResult:
    """Train (or resume) as configured; returns the final step, metrics and eval history."""
    return build_trainer(cfg, on_eval).run()
