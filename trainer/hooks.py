"""Periodic actions of the training loop: when they are due, what they see, the list they sit in.

After every optimizer step the loop builds a :class:`StepInfo` and calls each :class:`Hook`
whose period is due (:func:`itstime`), in order. Logging, evaluation, checkpoints and the
progress bar are such hooks (registered by :mod:`trainer.loop`); more are added with
``Trainer.add_hook(fn, every=N)``, e.g. a test's fault injection.

Features that live outside the core loop (checkpoint-schedule revisions, weight statistics,
transfer: :mod:`trainer.research`) come in as :class:`Extension` objects, composed by the entry
(:mod:`trainer.entry`) and passed to ``Trainer(cfg, extensions=[...])``: the core loop imports none
of them.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence

if TYPE_CHECKING:  # pragma: no cover
    from .data.batches import Batch, StreamPosition


def itstime(step: int, every: int, last_step: int) -> bool:
    """Is an action run every ``every`` steps due after step ``step``?

    ``step % every == 0 or step == last_step``: on the multiples of ``every`` and always after
    the last step, so the final state is logged, evaluated and saved. ``step`` counts the
    optimizer steps done (1 after the first update); a resumed run continues the count.
    """
    return step % every == 0 or step == last_step


@dataclasses.dataclass(frozen=True)
class StepInfo:
    """What a hook sees after a step."""

    step: int  # optimizer steps done, 1 after the first update
    last_step: int  # training.max_steps
    trainer: Any  # the trainer.train.Trainer running the loop (not imported: train.py imports this module)
    batch: "Batch"  # the batch just trained on: tokens, position after it, digest
    metrics: dict  # the step's metrics as device arrays (loss, accuracy, grad_norm, learning_rate, masked_tokens)

    @property
    def params(self):
        return self.trainer.params

    @property
    def opt_state(self):
        return self.trainer.opt_state

    @property
    def position(self) -> "StreamPosition":
        """Where the batch stream stands after this step's batch (what a checkpoint saves)."""
        return self.batch.position


@dataclasses.dataclass(frozen=True)
class Hook:
    """``fn(info)`` after every ``every``-th step and after the last one."""

    fn: Callable[[StepInfo], Any]
    every: int = 1

    def __post_init__(self):
        if self.every < 1:
            raise ValueError(f"a hook runs every N >= 1 steps, got every={self.every}")


def run_hooks(hooks: list[Hook], info: StepInfo) -> None:
    """Call, in order, every hook due after ``info.step``."""
    for hook in hooks:
        if itstime(info.step, hook.every, info.last_step):
            hook.fn(info)


class Extension:
    """A feature composed into the Trainer from outside the core loop; every method is optional.

    The Trainer calls, in this order: :meth:`preserved_steps` when it opens the checkpoint folder,
    :meth:`initial_params` when it starts from scratch (no resume, no ``checkpoint.init_from``),
    :meth:`hooks` when the loop starts (run after the default hooks), and :meth:`close` when the
    loop ends (also after an error). ``options`` names the config keys the extension implements:
    a Trainer refuses a config that sets an extension option no extension implements
    (:data:`trainer.train.EXTENSION_OPTIONS`), rather than silently ignoring it.
    """

    options: tuple[str, ...] = ()

    def preserved_steps(self, cfg) -> Sequence[int]:
        """Checkpoint steps that ``checkpoint.keep`` must never delete."""
        return ()

    def initial_params(self, spec, fresh: Callable[[], Any]) -> Optional[Any]:
        """The starting parameters (a tree like ``fresh()``, the run's random initialisation), or None
        to leave the choice to the Trainer (an imported transformers folder, or ``fresh()``)."""
        return None

    def hooks(self, trainer) -> list[Hook]:
        """Hooks to run after the default ones, built once the Trainer is set up."""
        return []

    def close(self) -> Optional[BaseException]:
        """Finish background work; an error to raise once the loop has closed everything, or None."""
        return None
