"""Downstream task types, registered by name: ``token`` (:mod:`.token`), ``sequence`` (:mod:`.sequence`).

A new type is one module with a :class:`~.base.TaskKind` subclass, registered here (and its head
in :mod:`trainer.finetune.heads` and the model family's transformers mapping, under the same name).
"""

from __future__ import annotations

from ...errors import DataError
from .base import TaskKind
from .sequence import SequenceKind
from .token import TokenKind

TOKEN, SEQUENCE = TokenKind.name, SequenceKind.name

#: name -> kind.
KINDS: dict[str, TaskKind] = {k.name: k for k in (TokenKind(), SequenceKind())}


def get_kind(name: str) -> TaskKind:
    """The kind registered as ``name``; DataError naming the known ones."""
    if name not in KINDS:
        raise DataError(f"unknown task kind {name!r}; known: {', '.join(KINDS)}")
    return KINDS[name]


__all__ = ["KINDS", "SEQUENCE", "TOKEN", "TaskKind", "get_kind"]
