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

from .errors import ConfigError

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

    The extension class is the one declaration of its config options: :attr:`options` names the
    keys it implements, :meth:`enabled` says whether a config asks for it, :meth:`validate` checks
    them (run by :func:`trainer.config_loading.load_config`) and :meth:`from_config` builds it
    (:mod:`trainer.entry` iterates the registered extensions, :data:`trainer.research.EXTENSIONS`).

    The Trainer calls, in this order: :meth:`preserved_steps` when it opens the checkpoint folder,
    :meth:`initial_params` when it starts from scratch (no resume, no ``checkpoint.init_from``),
    :meth:`hooks` when the loop starts (run after the default hooks), and :meth:`close` when the
    loop ends (also after an error). A Trainer refuses a config that enables an extension it was not
    given (:func:`check_served`), rather than silently ignoring the option.
    """

    #: the config keys the extension implements (in its messages and in :func:`check_served`'s)
    options: tuple[str, ...] = ()

    @classmethod
    def enabled(cls, cfg) -> bool:
        """Whether ``cfg`` sets one of the extension's options (the entry then composes it)."""
        return False

    @classmethod
    def validate(cls, cfg) -> None:
        """ConfigError naming the key when one of the extension's options has a bad value."""

    @classmethod
    def from_config(cls, cfg) -> "Extension":
        """The extension for ``cfg`` (which :meth:`enabled`)."""
        return cls()

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


def check_served(cfg, extensions: Sequence[Extension]) -> None:
    """ConfigError when ``cfg`` enables an extension class (any defined :class:`Extension` subclass)
    of which ``extensions`` holds no instance: its options would be silently ignored."""
    pending, defined = list(Extension.__subclasses__()), []
    while pending:
        cls = pending.pop(0)
        defined.append(cls)
        pending.extend(cls.__subclasses__())
    missing = [o for cls in defined if cls.options and cls.enabled(cfg)
               and not any(isinstance(e, cls) for e in extensions) for o in cls.options]
    if missing:
        raise ConfigError(f"{', '.join(sorted(missing))} set, but this Trainer has no extension implementing it: "
                          "build it with trainer.entry.build_trainer(cfg) (or train with `trainer train`)")
